import type { ValueType } from '../crypto/ciphertext';

/**
 * How values of one Prisma scalar type become plaintext bytes and back, and what their blind
 * index hashes. Pure functions; the envelope authenticates `type`, so bytes of one encoding are
 * never decoded by another.
 */
export interface ValueEncoding {
  readonly type: ValueType;
  /** What this encoding accepts, for error messages ("a string"). */
  readonly expects: string;
  /** The plaintext bytes, or `undefined` when `value` is not of this type (the caller raises the typed error). */
  encode(value: unknown): Buffer | undefined;
  decode(bytes: Buffer): unknown;
  /**
   * The canonical text the blind index hashes (before normalisation), or `undefined` when
   * `value` is not of this type. Equal values must give equal text.
   */
  canonical(value: unknown): string | undefined;
}

export const stringEncoding: ValueEncoding = {
  type: 'String',
  expects: 'a string',
  encode: (value) => (typeof value === 'string' ? Buffer.from(value, 'utf8') : undefined),
  decode: (bytes) => bytes.toString('utf8'),
  canonical: (value) => (typeof value === 'string' ? value : undefined),
};

const ENCODINGS: Readonly<Partial<Record<ValueType, ValueEncoding>>> = { String: stringEncoding };

/** The encoding for a field's type; `undefined` for a type this release cannot encrypt. */
export function encodingFor(type: ValueType): ValueEncoding | undefined {
  return ENCODINGS[type];
}

/** `null`, `undefined` or the JavaScript type name, for "got ..." in error messages (never the value). */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'Date';
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return 'bytes';
  return typeof value;
}
