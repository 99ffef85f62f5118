import { randomBytes } from 'node:crypto';
import { Prisma } from '../generated/postgres/client/client';
import { encryptedFields } from '../generated/postgres/encryption';
import type { Keyring } from '../dist';
import { FieldCodec } from '../dist/codec/fieldCodec';
import { backendNamed } from '../dist/codec/backendChoice';
import type { Clients } from './clients';
import { rawEncrypt, rawOpen } from './support/rawCrypto';
import { microsPerCall, runRounds } from './support/rounds';
import { summarize, type Summary } from './support/stats';
import type { RawKit } from './workloads';

/*
 * Typed fields (issue 10): what a DateTime, Json or Decimal costs compared with a String. Two
 * measurements: per value and type, the field codec (native and node:crypto) against raw AES-GCM
 * on the same plaintext bytes; and a findMany of 1000 NatalChart rows with three typed fields
 * encrypted against plain Prisma reading the same values from plain typed columns.
 */

export type TypedField = 'bornAt' | 'accuracy' | 'ephemeris' | 'latitude' | 'fee' | 'consent' | 'chart' | 'portrait';
const TYPE_LETTER: Record<string, string> = { DateTime: 't', Int: 'i', BigInt: 'b', Float: 'f', Decimal: 'd', Boolean: 'o', Json: 'j', Bytes: 'y' };

/** The n-th value of each type: short and realistic, like the String fields' e-mail addresses. */
export const VALUES: Record<TypedField, (n: number) => unknown> = {
  bornAt: (n) => new Date(Date.UTC(1950, 0, 1) + n * 86_400_123),
  accuracy: (n) => n % 240,
  ephemeris: (n) => 9_007_199_254_740_993n + BigInt(n),
  latitude: (n) => -33.0472 + n / 1000,
  fee: (n) => new Prisma.Decimal(`${100 + (n % 900)}.${String(n % 100).padStart(2, '0')}`),
  consent: (n) => n % 2 === 0,
  chart: (n) => ({ sun: 'Aries', moon: ['Leo', 'Virgo', 'Libra'][n % 3], ascendant: 'Gemini', degree: n % 360, houses: [1, 4, 7, 10].map((h) => ({ house: h, sign: 'Aquarius' })) }),
  portrait: () => randomBytes(64),
};
/** The three fields of the findMany workload (the DateTime, Json and Decimal). */
const FIND_FIELDS = ['bornAt', 'chart', 'fee'] as const;

export interface TypedCost {
  readonly type: string;
  /** Plaintext bytes per value (the canonical text; raw bytes for Bytes). */
  readonly bytes: number;
  readonly encrypt: { readonly native: Summary; readonly node: Summary; readonly raw: Summary };
  /** Per value, decrypting the 1000 values of one result field at once (decryptMany). */
  readonly decrypt: { readonly native: Summary; readonly node: Summary; readonly raw: Summary };
}

export interface TypedFindMany {
  readonly name: string;
  readonly rounds: number;
  readonly plain: Summary;
  readonly native: Summary;
  readonly node: Summary;
  readonly raw: Summary;
}

const spec = (field: TypedField) => encryptedFields.models.NatalChart.encrypted[field] as never as { type: string };
const codecs = (keyring: Keyring, field: TypedField) => ({
  native: new FieldCodec('NatalChart', field, spec(field) as never, keyring, () => undefined),
  node: new FieldCodec('NatalChart', field, spec(field) as never, keyring, { backend: backendNamed('node') }),
});

/** Header and AAD of a typed field's envelope, for the raw reference (`pce:v2:<type>:k:<keyId>:` + `Model.field`). */
export function rawHeader(keyring: Keyring, field: TypedField): { header: string; aad: Buffer } {
  const header = `pce:v2:${TYPE_LETTER[spec(field).type]}:k:${keyring.primaryData.id}:`;
  return { header, aad: Buffer.from(`${header}NatalChart.${field}`, 'utf8') };
}

/** Microseconds per value for each typed scalar: encrypt one at a time, decrypt 1000 at once. */
export function measureTypedCosts(keyring: Keyring, kit: RawKit, scale: number): TypedCost[] {
  const batches = Math.max(5, Math.round(15 * scale));
  const fields = Object.keys(VALUES) as TypedField[];
  return fields.map((field) => {
    const { native, node } = codecs(keyring, field);
    const { header, aad } = rawHeader(keyring, field);
    const values = Array.from({ length: 1000 }, (_, i) => VALUES[field](i));
    const stored = values.map((v) => native.encrypt(v) as string);
    // The raw reference encrypts the plaintext bytes the codec would (read back from a stored value).
    const plaintexts = stored.map((s) => Buffer.from(rawDecryptBytes(kit, header.length, aad, s)));
    const at = (i: number) => i % values.length;
    const series = { encrypt: { native: [] as number[], node: [] as number[], raw: [] as number[] }, decrypt: { native: [] as number[], node: [] as number[], raw: [] as number[] } };
    for (let b = 0; b < batches; b++) {
      series.encrypt.native.push(...microsPerCall((i) => native.encrypt(values[at(i)]), 1000, 1));
      series.encrypt.node.push(...microsPerCall((i) => node.encrypt(values[at(i)]), 1000, 1));
      series.encrypt.raw.push(...microsPerCall((i) => rawEncrypt(kit.dataKey, header, aad, plaintexts[at(i)]!), 1000, 1));
      series.decrypt.native.push(...microsPerCall(() => native.decryptMany(stored), 1, 1).map((us) => us / stored.length));
      series.decrypt.node.push(...microsPerCall(() => node.decryptMany(stored), 1, 1).map((us) => us / stored.length));
      series.decrypt.raw.push(...microsPerCall(() => stored.forEach((s) => rawDecryptBytes(kit, header.length, aad, s)), 1, 1).map((us) => us / stored.length));
    }
    const sum = (s: { native: number[]; node: number[]; raw: number[] }) => ({ native: summarize(s.native), node: summarize(s.node), raw: summarize(s.raw) });
    return { type: spec(field).type, bytes: Math.round(plaintexts.reduce((n, p) => n + p.length, 0) / plaintexts.length), encrypt: sum(series.encrypt), decrypt: sum(series.decrypt) };
  });
}

function rawDecryptBytes(kit: RawKit, headerLength: number, aad: Buffer, stored: string): Buffer {
  return rawOpen(kit.dataKey, headerLength, aad, stored);
}

/**
 * findMany of 1000 NatalChart rows selecting bornAt (DateTime), chart (Json) and fee (Decimal):
 * encrypted rows through the extension, plain rows of the same values through plain Prisma, and
 * raw AES-GCM decryption of the same 3000 stored values.
 */
export async function measureTypedFindMany(clients: Clients, keyring: Keyring, kit: RawKit, scale: number): Promise<TypedFindMany> {
  const rows = 1000;
  const data = (i: number) => Object.fromEntries(FIND_FIELDS.map((f) => [f, VALUES[f](i)]));
  await clients.extension.natalChart.createMany({ data: Array.from({ length: rows }, (_, i) => ({ label: 'bench-typed', ...data(i) })) as never });
  await clients.plain.natalChart.createMany({ data: Array.from({ length: rows }, (_, i) => ({ label: 'bench-plain', ...data(i) })) as never });
  const select = { id: true, bornAt: true, chart: true, fee: true };
  const args = (label: string) => ({ where: { label }, select, orderBy: { id: 'asc' as const } });
  const stored = (await clients.plain.natalChart.findMany({ where: { label: 'bench-typed' }, select: { bornAtCipher: true, chartCipher: true, feeCipher: true } })) as Array<Record<string, string>>;
  const sealed = FIND_FIELDS.flatMap((f) => {
    const { header, aad } = rawHeader(keyring, f);
    return stored.map((row) => ({ length: header.length, aad, text: row[`${f}Cipher`]! }));
  });
  const r = (n: number) => Math.max(3, Math.round(n * scale));
  const rounds = r(30);
  const samples = await runRounds(
    [
      { name: 'plain', run: () => clients.plain.natalChart.findMany(args('bench-plain')) },
      { name: 'native', run: () => clients.extension.natalChart.findMany(args('bench-typed')) },
      { name: 'node', run: () => clients.extensionNode.natalChart.findMany(args('bench-typed')) },
      { name: 'raw', run: () => sealed.forEach((s) => rawDecryptBytes(kit, s.length, s.aad, s.text)) },
    ],
    { warmup: r(5), rounds },
  );
  const s = (name: string) => summarize(samples.get(name)!);
  return { name: `findMany ${rows} x 3 typed fields (DateTime, Json, Decimal)`, rounds, plain: s('plain'), native: s('native'), node: s('node'), raw: s('raw') };
}
