import { hashString } from 'prisma-field-encryption/dist/hash';
import { decryptStringSync, encryptStringSync, parseKeySync } from '@47ng/cloak';
import { encryptedFields } from '../generated/postgres/encryption';
import type { Keyring } from '../dist';
import { FieldCodec } from '../dist/codec/fieldCodec';
import { backendNamed } from '../dist/codec/backendChoice';
import { rawDecrypt, rawEncrypt, rawIndex } from './support/rawCrypto';
import { collectGarbage } from '../test/support/collectGarbage';
import { microsPerCall } from './support/rounds';
import { summarize, type Summary } from './support/stats';
import type { RawKit } from './workloads';

export interface FieldCost {
  /** `decrypt (1000 at once)`: the values of one result field, as result decryption hands them over; per value. */
  readonly operation: 'encrypt' | 'decrypt' | 'decrypt (1000 at once)' | 'hmac';
  /** The field codec on the default backend (native where it loads). */
  readonly extension: Summary;
  /** The field codec on node:crypto. */
  readonly extensionNode: Summary;
  readonly raw: Summary;
  readonly peer: Summary;
}

/**
 * Microseconds per value for one short field (an e-mail address), for the extension's field codec,
 * the raw node:crypto reference and prisma-field-encryption's primitives (cloak + salted SHA-256).
 */
export function measureFieldCosts(keyring: Keyring, kit: RawKit, peerKeyText: string, scale: number): FieldCost[] {
  const spec = encryptedFields.models.User.encrypted.email;
  const codec = new FieldCodec('User', 'email', spec as never, keyring, () => undefined);
  const nodeCodec = new FieldCodec('User', 'email', spec as never, keyring, { backend: backendNamed('node') });
  const aad = kit.aad('User.email');
  const indexKey = kit.indexKey('User.email');
  const peerKey = parseKeySync(peerKeyText);
  const peerHash = { targetField: 'emailIndex', algorithm: 'sha256', salt: 'bench-salt', inputEncoding: 'utf8' as const, outputEncoding: 'hex' as const, normalize: ['lowercase', 'trim'] as never };
  const values = Array.from({ length: 1000 }, (_, i) => `user${String(i).padStart(4, '0')}@example.org`);
  const ours = values.map((v) => codec.encrypt(v));
  const peers = values.map((v) => encryptStringSync(v, peerKey));
  const at = (i: number) => i % values.length;
  const batches = Math.max(5, Math.round(15 * scale));
  // Interleaved so that frequency scaling hits all four alike. Each batch starts on a collected
  // heap, so the garbage one contender left (node:crypto's cipher objects) is not timed as the
  // next one's, and runs 20,000 values, so each contender pays for its own garbage inside its batch.
  const names = ['extension', 'extensionNode', 'raw', 'peer'] as const;
  const measure = (fns: Record<(typeof names)[number], (i: number) => unknown>, perCall = 1) => {
    const series: Record<string, number[]> = { extension: [], extensionNode: [], raw: [], peer: [] };
    for (let b = 0; b < batches; b++) {
      for (const name of names) {
        collectGarbage();
        series[name]!.push(...microsPerCall(fns[name], 20000 / perCall, 1).map((us) => us / perCall));
      }
    }
    return { extension: summarize(series.extension!), extensionNode: summarize(series.extensionNode!), raw: summarize(series.raw!), peer: summarize(series.peer!) };
  };
  return [
    {
      operation: 'encrypt',
      ...measure({
        extension: (i) => codec.encrypt(values[at(i)]!),
        extensionNode: (i) => nodeCodec.encrypt(values[at(i)]!),
        raw: (i) => rawEncrypt(kit.dataKey, kit.header, aad, values[at(i)]!),
        peer: (i) => encryptStringSync(values[at(i)]!, peerKey),
      }),
    },
    {
      operation: 'decrypt',
      ...measure({
        extension: (i) => codec.decrypt(ours[at(i)]!),
        extensionNode: (i) => nodeCodec.decrypt(ours[at(i)]!),
        raw: (i) => rawDecrypt(kit.dataKey, kit.header.length, aad, ours[at(i)]!),
        peer: (i) => decryptStringSync(peers[at(i)]!, peerKey),
      }),
    },
    {
      operation: 'decrypt (1000 at once)',
      ...measure(
        {
          extension: () => codec.decryptMany(ours),
          extensionNode: () => nodeCodec.decryptMany(ours),
          raw: () => ours.forEach((v) => rawDecrypt(kit.dataKey, kit.header.length, aad, v)),
          peer: () => peers.forEach((v) => decryptStringSync(v, peerKey)),
        },
        values.length,
      ),
    },
    {
      operation: 'hmac',
      ...measure({
        extension: (i) => codec.indexForWrite(values[at(i)]!),
        extensionNode: (i) => nodeCodec.indexForWrite(values[at(i)]!),
        raw: (i) => rawIndex(indexKey, kit.indexPrefix, values[at(i)]!.normalize('NFKC').trim().toLowerCase()),
        peer: (i) => hashString(values[at(i)]!, peerHash),
      }),
    },
  ];
}
