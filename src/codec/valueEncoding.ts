import type { ValueType } from '../crypto/ciphertext';
import type { ColumnShape } from '../schema';
import { typedEncoding } from './typedEncodings';

export { InvalidValue } from './typedEncodings';

/**
 * How values of one Prisma scalar type become plaintext bytes and back, and what their blind
 * index hashes. Pure functions; the envelope authenticates `type`, so bytes of one encoding are
 * never decoded by another.
 */
export interface ValueEncoding {
  readonly type: ValueType;
  /** What this encoding accepts, for error messages ("a string"). */
  readonly expects: string;
  /**
   * The plaintext bytes, or `undefined` when `value` is not of this type (the caller raises the
   * typed error). Throws `InvalidValue` for a value of the type that the column cannot hold.
   */
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

/** The encoding for a field's type, for a typed column of `shape` (precision, scale). */
export function encodingFor(type: ValueType, shape?: ColumnShape): ValueEncoding {
  return type === 'String' ? stringEncoding : typedEncoding(type, shape);
}

/** `null`, `undefined` or the JavaScript type name, for "got ..." in error messages (never the value). */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'Date';
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return 'bytes';
  return typeof value;
}
