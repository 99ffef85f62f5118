import { createSecretKey, type KeyObject } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { ConfigurationError } from '../errors';
import { decodeBase64Key } from '../keys/keyMaterial';
import { openRecord, sealRecord, startChain, type ChainHead } from './chain';

/**
 * The audit chain's file end: a pino destination that seals every line it is given and appends
 * it to one file, continuing the chain already in the file.
 */

/**
 * The chain key from base64 of 32 random bytes (env `PCE_AUDIT_KEY` by default). It must be a key
 * of its own, not a data or index key: whoever verifies the log holds it, and needs no other.
 */
export function auditChainKey(base64?: string, env: NodeJS.ProcessEnv = process.env): KeyObject {
  const text = base64 ?? env.PCE_AUDIT_KEY;
  if (!text || text.trim() === '') {
    throw new ConfigurationError(undefined, undefined, 'no audit chain key: set PCE_AUDIT_KEY to base64 of 32 random bytes (openssl rand -base64 32)');
  }
  const bytes = decodeBase64Key('audit', text);
  try {
    if (bytes.length !== 32) throw new ConfigurationError(undefined, undefined, `the audit chain key must be 32 bytes (base64 of 32 random bytes), got ${bytes.length}`);
    return createSecretKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** A pino destination (`pino(options, destination)`) that writes chained records. */
export interface AuditChainDestination {
  /** pino calls this with each serialised line. */
  write(chunk: string): boolean;
  /**
   * The last record written (or found in the file at opening), with the chain's identity: keep
   * `chain` from when the file is started, and `seq` and `mac` as they grow, where the application
   * cannot write, to pass to `audit verify`.
   */
  readonly head: ChainHead;
  close(): void;
}

/**
 * Opens (or creates) a chained audit file. An empty file starts a new chain with a fresh random
 * identity (or `options.chain`). When the file already holds records, the last one must verify
 * under `key` and the chain continues from it, with its identity; otherwise it refuses to start,
 * because appending to a chain that does not verify would hide what happened to it.
 *
 * Writes are synchronous appends, one `write(2)` per record, so a crash loses at most the record
 * being written. One process per file: two writers would interleave two chains (which
 * `audit verify` reports); give each process its own file, e.g. with the pid in the name.
 */
export function openAuditChain(file: string, key: KeyObject, options: { readonly chain?: string } = {}): AuditChainDestination {
  const fd = openSync(file, 'a+', 0o600);
  let head: ChainHead;
  try {
    head = lastHead(fd, key, file) ?? startChain(options.chain);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  let pending = '';
  let closed = false;
  return {
    get head() {
      return head;
    },
    write(chunk: string): boolean {
      if (closed) return false;
      pending += chunk;
      let end = pending.indexOf('\n');
      while (end >= 0) {
        const json = pending.slice(0, end);
        pending = pending.slice(end + 1);
        if (json.length > 0) {
          const sealed = sealRecord(key, json, head);
          writeSync(fd, `${sealed.line}\n`);
          head = sealed.head;
        }
        end = pending.indexOf('\n');
      }
      return true;
    },
    close(): void {
      if (closed) return;
      closed = true;
      closeSync(fd);
    },
  };
}

/** Reads the file's last line (backwards, in blocks) and returns its place in the chain; `undefined` for an empty file. */
function lastHead(fd: number, key: KeyObject, file: string): ChainHead | undefined {
  const size = fstatSync(fd).size;
  if (size === 0) return undefined;
  const block = 64 * 1024;
  let tail = Buffer.alloc(0);
  let position = size;
  for (;;) {
    const length = Math.min(block, position);
    position -= length;
    const chunk = Buffer.alloc(length);
    readSync(fd, chunk, 0, length, position);
    tail = Buffer.concat([chunk, tail]);
    const text = tail.toString('utf8');
    if (!text.endsWith('\n')) {
      throw new ConfigurationError(undefined, undefined, `audit file ${file} does not end with a complete record (a crash mid-write, or an edit): run \`audit verify\` and start a new file`);
    }
    const start = text.lastIndexOf('\n', text.length - 2);
    if (start >= 0 || position === 0) {
      const opened = openRecord(key, text.slice(start + 1, -1));
      if (!opened.authentic) {
        throw new ConfigurationError(undefined, undefined, `audit file ${file}: its last record ${opened.reason === 'MAC does not verify' ? 'does not verify under this key' : 'is not a chained record'}; run \`audit verify\` and start a new file`);
      }
      return { chain: opened.chain, seq: opened.seq, mac: opened.mac };
    }
  }
}
