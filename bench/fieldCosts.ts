import { hashString } from 'prisma-field-encryption/dist/hash';
import { decryptStringSync, encryptStringSync, parseKeySync } from '@47ng/cloak';
import { encryptedFields } from '../generated/postgres/encryption';
import type { Keyring } from '../dist';
import { FieldCodec } from '../dist/codec/fieldCodec';
import { rawDecrypt, rawEncrypt, rawIndex } from './support/rawCrypto';
import { microsPerCall } from './support/rounds';
import { summarize, type Summary } from './support/stats';
import type { RawKit } from './workloads';

export interface FieldCost {
  readonly operation: 'encrypt' | 'decrypt' | 'hmac';
  readonly extension: Summary;
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
  const aad = kit.aad('User.email');
  const indexKey = kit.indexKey('User.email');
  const peerKey = parseKeySync(peerKeyText);
  const peerHash = { targetField: 'emailIndex', algorithm: 'sha256', salt: 'bench-salt', inputEncoding: 'utf8' as const, outputEncoding: 'hex' as const, normalize: ['lowercase', 'trim'] as never };
  const values = Array.from({ length: 1000 }, (_, i) => `user${String(i).padStart(4, '0')}@example.org`);
  const ours = values.map((v) => codec.encrypt(v));
  const peers = values.map((v) => encryptStringSync(v, peerKey));
  const at = (i: number) => i % values.length;
  const batches = Math.max(5, Math.round(25 * scale));
  // Interleave so that frequency scaling or a GC pause hits all three alike.
  const measure = (fns: Record<'extension' | 'raw' | 'peer', (i: number) => unknown>) => {
    const series: Record<string, number[]> = { extension: [], raw: [], peer: [] };
    for (let b = 0; b < batches; b++) {
      for (const name of ['extension', 'raw', 'peer'] as const) series[name]!.push(...microsPerCall(fns[name], 2000, 1));
    }
    return { extension: summarize(series.extension!), raw: summarize(series.raw!), peer: summarize(series.peer!) };
  };
  return [
    {
      operation: 'encrypt',
      ...measure({
        extension: (i) => codec.encrypt(values[at(i)]!),
        raw: (i) => rawEncrypt(kit.dataKey, kit.header, aad, values[at(i)]!),
        peer: (i) => encryptStringSync(values[at(i)]!, peerKey),
      }),
    },
    {
      operation: 'decrypt',
      ...measure({
        extension: (i) => codec.decrypt(ours[at(i)]!),
        raw: (i) => rawDecrypt(kit.dataKey, kit.header.length, aad, ours[at(i)]!),
        peer: (i) => decryptStringSync(peers[at(i)]!, peerKey),
      }),
    },
    {
      operation: 'hmac',
      ...measure({
        extension: (i) => codec.indexForWrite(values[at(i)]!),
        raw: (i) => rawIndex(indexKey, kit.indexPrefix, values[at(i)]!.normalize('NFKC').trim().toLowerCase()),
        peer: (i) => hashString(values[at(i)]!, peerHash),
      }),
    },
  ];
}
