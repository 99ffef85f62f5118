/**
 * Primary-key tuples as text, for the checkpoint table. Values go back to the database as query
 * parameters, so their driver types must survive: bigint, Date, Buffer and the non-finite numbers
 * a floating-point key can hold are tagged, since JSON has no such values (JSON.stringify writes
 * Infinity and NaN as null, and a chunk bounded by NULL holds no rows: they were skipped).
 */

export type KeyTuple = readonly unknown[];

type Tagged = { $bigint: string } | { $date: string } | { $bytes: string } | { $number: string };

function toJson(value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() } satisfies Tagged;
  if (value instanceof Date) return { $date: value.toISOString() } satisfies Tagged;
  if (Buffer.isBuffer(value)) return { $bytes: value.toString('base64') } satisfies Tagged;
  if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) } satisfies Tagged;
  return value;
}

function fromJson(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const v = value as Partial<Record<'$bigint' | '$date' | '$bytes' | '$number', string>>;
  if (v.$bigint !== undefined) return BigInt(v.$bigint);
  if (v.$date !== undefined) return new Date(v.$date);
  if (v.$bytes !== undefined) return Buffer.from(v.$bytes, 'base64');
  if (v.$number !== undefined) return Number(v.$number);
  return value;
}

export function encodeKey(key: KeyTuple): string {
  return JSON.stringify(key.map(toJson));
}

export function decodeKey(text: string): KeyTuple {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) throw new Error('checkpoint key is not a tuple');
  return parsed.map(fromJson);
}

/** A primary key as a JSON-safe object for reports and logs: `{ orgId: 'o1', userId: 'u1' }`. */
export function describeKey(fields: readonly string[], key: KeyTuple): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  fields.forEach((f, i) => {
    const v = key[i];
    out[f] =
      typeof v === 'bigint' ? v.toString() : v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? v.toString('base64') : (v as string | number | boolean | null);
  });
  return out;
}

/** Compact text form of a primary key for log lines: `id=5` or `orgId=o1,userId=u1`. */
export function formatKey(fields: readonly string[], key: KeyTuple): string {
  const d = describeKey(fields, key);
  return fields.map((f) => `${f}=${String(d[f])}`).join(',');
}
