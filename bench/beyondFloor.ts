import { createDecipheriv, randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Keyring } from '../dist';
import { parseCiphertext } from '../dist/crypto/ciphertext';
import { NoncePool } from '../dist/crypto/nonces';
import { rawDecrypt, rawEncrypt } from './support/rawCrypto';
import { microsPerCall } from './support/rounds';
import { summarize, type Summary } from './support/stats';
import type { RawKit } from './workloads';

/** One "beyond the floor" idea: the same work done the usual way and the other way. */
export interface Experiment {
  readonly name: string;
  readonly unit: string;
  readonly baseline: Summary;
  readonly variant: Summary;
  readonly note: string;
}

/** Measures two variants alternately, so drift and GC affect both alike. */
function compare(batch: number, batches: number, baseline: (i: number) => unknown, variant: (i: number) => unknown): [Summary, Summary] {
  const a: number[] = [];
  const b: number[] = [];
  for (let k = 0; k < batches; k++) {
    a.push(...microsPerCall(baseline, batch, 1));
    b.push(...microsPerCall(variant, batch, 1));
  }
  return [summarize(a), summarize(b)];
}

// Decrypts batches of `[aad, stored]` sent by the main thread; the key arrives once as a KeyObject.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createDecipheriv } = require('node:crypto');
let key; let headerLength;
parentPort.on('message', (msg) => {
  if (msg.key) { key = msg.key; headerLength = msg.headerLength; return; }
  const out = new Array(msg.stored.length);
  for (let i = 0; i < msg.stored.length; i++) {
    const s = msg.stored[i];
    const sep = s.indexOf(':', headerLength);
    const nonce = Buffer.from(s.slice(headerLength, sep), 'base64url');
    const sealed = Buffer.from(s.slice(sep + 1), 'base64url');
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(msg.aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const body = d.update(sealed.subarray(0, sealed.length - 16));
    d.final();
    out[i] = body.toString('utf8');
  }
  parentPort.postMessage(out);
});`;

class DecryptPool {
  private readonly workers: Worker[];
  constructor(size: number, kit: RawKit) {
    this.workers = Array.from({ length: size }, () => new Worker(WORKER_SOURCE, { eval: true }));
    for (const w of this.workers) w.postMessage({ key: kit.dataKey, headerLength: kit.header.length });
  }
  /** Splits the values over the workers and waits for all of them (what an extension would await). */
  async decrypt(aad: Buffer, stored: readonly string[]): Promise<string[]> {
    const chunk = Math.ceil(stored.length / this.workers.length);
    const parts = await Promise.all(
      this.workers.map(
        (w, i) =>
          new Promise<string[]>((resolve) => {
            w.once('message', resolve);
            w.postMessage({ aad, stored: stored.slice(i * chunk, (i + 1) * chunk) });
          }),
      ),
    );
    return parts.flat();
  }
  close(): Promise<number[]> {
    return Promise.all(this.workers.map((w) => w.terminate()));
  }
}

async function workerExperiment(kit: RawKit, values: number, rounds: number): Promise<Experiment> {
  const aad = kit.aad('User.email');
  const stored = Array.from({ length: values }, (_, i) => rawEncrypt(kit.dataKey, kit.header, aad, `user${i}@example.org`));
  const pool = new DecryptPool(Math.max(2, Math.min(4, cpus().length)), kit);
  try {
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < rounds + 3; r++) {
      let t = performance.now();
      for (const s of stored) rawDecrypt(kit.dataKey, kit.header.length, aad, s);
      const main = performance.now() - t;
      t = performance.now();
      await pool.decrypt(aad, stored);
      const threaded = performance.now() - t;
      if (r >= 3) {
        a.push(main);
        b.push(threaded);
      }
    }
    return {
      name: `decrypt ${values} values: main thread vs ${Math.max(2, Math.min(4, cpus().length))} worker threads`,
      unit: 'ms',
      baseline: summarize(a),
      variant: summarize(b),
      note: 'includes posting the strings to the workers and back; the key is sent once as a KeyObject',
    };
  } finally {
    await pool.close();
  }
}

/**
 * Ideas for going under the raw node:crypto reference, each measured against it here. Only the
 * nonce pool is shipped (src/crypto/nonces.ts); the README explains the others.
 */
export async function runExperiments(_keyring: Keyring, kit: RawKit, scale: number): Promise<Experiment[]> {
  const batches = Math.max(5, Math.round(25 * scale));
  const aad = kit.aad('User.email');
  const values = Array.from({ length: 1000 }, (_, i) => `user${String(i).padStart(4, '0')}@example.org`);
  const stored = values.map((v) => rawEncrypt(kit.dataKey, kit.header, aad, v));
  const decoded = stored.map((s) => {
    const sep = s.indexOf(':', kit.header.length);
    const sealed = Buffer.from(s.slice(sep + 1), 'base64url');
    return { nonce: Buffer.from(s.slice(kit.header.length, sep), 'base64url'), body: sealed.subarray(0, sealed.length - 16), tag: sealed.subarray(sealed.length - 16) };
  });
  const at = (i: number) => i % values.length;
  // AES-GCM alone, on already decoded values: what a binary column would cost per decryption.
  const decryptDecoded = (i: number): string => {
    const { nonce, body, tag } = decoded[at(i)]!;
    const d = createDecipheriv('aes-256-gcm', kit.dataKey, nonce);
    d.setAAD(aad);
    d.setAuthTag(tag);
    const text = d.update(body);
    d.final();
    return text.toString('utf8');
  };
  const pool = new NoncePool(12);
  const out: Experiment[] = [];

  {
    const [baseline, variant] = compare(2000, batches, () => randomBytes(12), () => pool.next());
    out.push({ name: 'nonce: randomBytes(12) vs pooled block (shipped)', unit: 'us', baseline, variant, note: 'one CSPRNG call per 256 nonces' });
  }
  {
    // Envelope parsing decodes nonce and body with one Buffer.from each; one shared allocation instead:
    const oneBuffer = (s: string) => {
      const keyEnd = s.indexOf(':', 7);
      const nonceEnd = s.indexOf(':', keyEnd + 1);
      const buf = Buffer.allocUnsafe(12 + Math.ceil(((s.length - nonceEnd) * 3) / 4));
      const nonceBytes = buf.write(s.slice(keyEnd + 1, nonceEnd), 0, 'base64url');
      const sealedBytes = buf.write(s.slice(nonceEnd + 1), 12, 'base64url');
      return { keyId: s.slice(7, keyEnd), nonceBytes, nonce: buf.subarray(0, 12), sealed: buf.subarray(12, 12 + sealedBytes) };
    };
    const [baseline, variant] = compare(2000, batches, (i) => parseCiphertext(stored[at(i)]!), (i) => oneBuffer(stored[at(i)]!));
    out.push({ name: 'parse envelope: two decodes vs one shared buffer', unit: 'us', baseline, variant, note: 'Buffer.from uses a pooled slab already; a shared buffer saves nothing' });
  }
  {
    const [baseline, variant] = compare(2000, batches, decryptDecoded, (i) => rawDecrypt(kit.dataKey, kit.header.length, aad, stored[at(i)]!));
    // Reported the other way round: the variant is what a binary (bytea/BLOB) column would allow.
    out.push({ name: 'decrypt: base64url text column vs binary column (no decode)', unit: 'us', baseline: variant, variant: baseline, note: 'upper bound of what a binary column saves per value; the envelope format is fixed as text' });
  }
  {
    const [baseline, variant] = compare(2000, batches, decryptDecoded, (i) => {
      const { nonce, body, tag } = decoded[at(i)]!;
      const d = createDecipheriv('aes-256-gcm', kit.dataKey, nonce);
      d.setAAD(aad);
      d.setAuthTag(tag);
      const text = d.update(body, undefined, 'utf8');
      d.final();
      return text;
    });
    out.push({ name: "decrypt output: update() + toString vs update(..., 'utf8')", unit: 'us', baseline, variant, note: 'a string decoder per value costs more than the Buffer it saves' });
  }
  const rounds = Math.max(5, Math.round(20 * scale));
  out.push(await workerExperiment(kit, 3000, rounds));
  out.push(await workerExperiment(kit, 300, rounds));
  return out;
}
