import { Decimal } from '@prisma/client/runtime/client';
import type { ColumnShape } from '../schema';
import type { ValueEncoding } from './valueEncoding';

/** A value of the right type that the column cannot hold (out of range, invalid date); the codec names model and field. */
export class InvalidValue extends Error {}

/**
 * Encodings of the typed scalars (every Prisma scalar but String). Pure.
 *
 * The plaintext of every type but Bytes is its canonical text in UTF-8, so what is encrypted is
 * what is indexed; Float is the one exception (its index folds -0 into 0, the plaintext keeps
 * the sign). Each canonical text is chosen so that values the database would call equal have
 * one text, and a value is first brought to what the typed column would keep of it (DateTime
 * precision, Decimal scale): reading it back gives what plain Prisma would return.
 */

/** An encoding whose plaintext is its canonical text; `canonical` returns undefined for a value of another type. */
function textual(
  type: ValueEncoding['type'],
  expects: string,
  canonical: (value: unknown) => string | undefined,
  decode: (text: string) => unknown,
  indexText: (value: unknown) => string | undefined = canonical,
): ValueEncoding {
  return {
    type,
    expects,
    encode: (value) => {
      const text = canonical(value);
      return text === undefined ? undefined : Buffer.from(text, 'utf8');
    },
    decode: (bytes) => decode(bytes.toString('utf8')),
    canonical: indexText,
  };
}

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };

function intText(value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value)) return undefined;
  if (value < INT32.min || value > INT32.max) throw new InvalidValue('the number is outside the 32-bit range of Int');
  return String(value); // -0 prints as "0"
}

/** BigInt: a bigint, or a safe integer number (Prisma accepts both), within 64 bits. */
function bigIntText(value: unknown): string | undefined {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else return undefined;
  if (n < INT64.min || n > INT64.max) throw new InvalidValue('the number is outside the 64-bit range of BigInt');
  return n.toString();
}

/**
 * Float: ECMAScript's shortest round-trip decimal (`String(x)`), exact and deterministic. The
 * plaintext keeps `-0`; NaN and the infinities are `NaN`, `Infinity` and `-Infinity`.
 */
function floatText(value: unknown): string | undefined {
  if (typeof value !== 'number') return undefined;
  return Object.is(value, -0) ? '-0' : String(value);
}

/** A Float's index text: -0 equals 0 (as in SQL), NaN equals NaN (as PostgreSQL compares them). */
function floatIndexText(value: unknown): string | undefined {
  const text = floatText(value);
  return text === '-0' ? '0' : text;
}

const booleanText = (value: unknown): string | undefined => (typeof value === 'boolean' ? String(value) : undefined);

/** ISO 8601 as Prisma accepts it for DateTime: a date and time with an explicit offset. */
const ISO_DATE_TIME = /^[+-]?\d{4,6}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const DAY_MS = 86_400_000;

/** DateTime: a Date or an ISO 8601 string, at the column's precision, as UTC ISO text (`toISOString`). */
function dateTimeText(shape: ColumnShape): (value: unknown) => string | undefined {
  const precision = shape.precision ?? 3;
  return (value) => {
    let date: Date;
    if (value instanceof Date) date = value;
    else if (typeof value === 'string' && ISO_DATE_TIME.test(value)) date = new Date(value);
    else return undefined;
    const ms = date.getTime();
    if (Number.isNaN(ms)) throw new InvalidValue('the date is invalid');
    return new Date(atPrecision(ms, precision, shape.excess)).toISOString();
  };
}

/** 2000-01-01T00:00:00Z: PostgreSQL counts timestamps from it, so its rounding is symmetric around it, not around 1970. */
const PG_EPOCH_MS = 946_684_800_000;

/**
 * What the database keeps of a timestamp: a date column the UTC day; a timestamp column with n
 * fractional digits either drops the rest (`truncate`, MariaDB: towards the earlier instant) or
 * rounds half away from zero on the offset from 2000-01-01 (PostgreSQL), so a tie between 1970 and
 * 2000 goes to the earlier instant. Both checked against plain Prisma by test/property/typedRoundTrip.
 */
export function atPrecision(ms: number, precision: number | 'date', excess?: 'truncate'): number {
  if (precision === 'date') return Math.floor(ms / DAY_MS) * DAY_MS;
  if (precision >= 3) return ms;
  const unit = 10 ** (3 - precision);
  if (excess === 'truncate') return Math.floor(ms / unit) * unit;
  const offset = ms - PG_EPOCH_MS;
  const rounded = Math.round(Math.abs(offset) / unit) * unit;
  return PG_EPOCH_MS + (offset < 0 ? -rounded : rounded);
}

/**
 * Decimal: rounded to the column's scale (half away from zero, as the database rounds), then in
 * plain notation without trailing zeros (decimal.js `toFixed()`), so 1.5 and 1.50 have one text.
 * Accepts what Prisma accepts: a Decimal (or decimal.js-like object), a finite number, a string.
 */
function decimalText(shape: ColumnShape): (value: unknown) => string | undefined {
  const scale = shape.scale ?? 30;
  const limit = new Decimal(10).pow((shape.digits ?? 65) - scale);
  return (value) => {
    let d: Decimal;
    if (Decimal.isDecimal(value)) d = value as Decimal;
    else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'string' || isDecimalLike(value)) {
      try {
        d = new Decimal(value as Decimal.Value);
      } catch {
        throw new InvalidValue('the text is not a decimal number');
      }
    } else {
      return undefined;
    }
    if (!d.isFinite()) throw new InvalidValue('a Decimal must be finite');
    const rounded = d.toDecimalPlaces(scale, Decimal.ROUND_HALF_UP);
    if (rounded.abs().gte(limit)) throw new InvalidValue("the Decimal has more integer digits than the column's precision allows");
    return rounded.isZero() ? '0' : rounded.toFixed();
  };
}

/** decimal.js-compatible objects from another copy of the library (Prisma's `DecimalJsLike`). */
function isDecimalLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'd' in value && 'e' in value && 's' in value && typeof (value as { toFixed?: unknown }).toFixed === 'function';
}

/**
 * Json: RFC 8785 (JCS) canonical text: object keys sorted by UTF-16 code units, no whitespace,
 * numbers and strings as JSON.stringify writes them (ECMAScript's shortest number form, as JCS
 * prescribes). Only JSON values are accepted: a Date, bigint, undefined, function, NaN, class
 * instance or a cycle is refused rather than silently changed the way JSON.stringify would.
 * (The `canonicalize` package implements the same algorithm but ships only as an ES module,
 * which this CommonJS package cannot load on Node 20.)
 */
export function canonicalJson(value: unknown): string {
  const seen = new Set<object>();
  const write = (v: unknown): string => {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new InvalidValue('Json numbers must be finite');
      return JSON.stringify(v);
    }
    if (typeof v !== 'object') throw new InvalidValue(`a Json value cannot contain a ${typeof v}`);
    if (seen.has(v)) throw new InvalidValue('the Json value contains a cycle');
    seen.add(v);
    let out: string;
    if (Array.isArray(v)) {
      out = `[${v.map(write).join(',')}]`;
    } else {
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new InvalidValue('a Json value can only contain plain objects, arrays, strings, finite numbers, booleans and null');
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      out = `{${keys.map((k) => `${JSON.stringify(k)}:${write(obj[k])}`).join(',')}}`;
    }
    seen.delete(v);
    return out;
  };
  return write(value);
}

const bytesOf = (value: unknown): Buffer | undefined =>
  value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : undefined;

const BYTES: ValueEncoding = {
  type: 'Bytes',
  expects: 'a Uint8Array',
  encode: (value) => {
    const bytes = bytesOf(value);
    return bytes && Buffer.from(bytes); // a copy: the caller's array may change after the write
  },
  // Prisma returns Bytes as a plain Uint8Array, not a Buffer.
  decode: (bytes) => new Uint8Array(bytes),
  canonical: (value) => bytesOf(value)?.toString('base64url'),
};

/** The encoding of a typed field whose column has `shape`. */
export function typedEncoding(type: Exclude<ValueEncoding['type'], 'String'>, shape: ColumnShape = {}): ValueEncoding {
  switch (type) {
    case 'Int':
      return textual(type, 'an integer number', intText, Number);
    case 'BigInt':
      return textual(type, 'a bigint or a safe integer number', bigIntText, BigInt);
    case 'Float':
      return textual(type, 'a number', floatText, Number, floatIndexText);
    case 'Decimal':
      return textual(type, 'a Prisma.Decimal, a finite number or a decimal string', decimalText(shape), (t) => new Decimal(t));
    case 'Boolean':
      return textual(type, 'a boolean', booleanText, (t) => t === 'true');
    case 'DateTime':
      return textual(type, 'a Date or an ISO 8601 date-time string', dateTimeText(shape), (t) => new Date(t));
    case 'Json':
      return textual(type, 'a JSON value', (v) => (v === undefined ? undefined : canonicalJson(v)), (t) => JSON.parse(t) as unknown);
    case 'Bytes':
      return BYTES;
  }
}
