import fc from 'fast-check';
import type { Provider } from '../support/databases';

/**
 * Arbitrary values of every typed scalar, one per NatalChart field, for the property tests
 * (round trips on each database, and node against native crypto).
 */

/**
 * The dates plain Prisma can write to the typed column (the oracle): PostgreSQL 0001-9999 (Prisma
 * formats neither BC years nor years past 9999 for it, and reads a value rounded up into year 10000
 * back as an invalid date), MariaDB's DATETIME range 1000-9999.
 */
export const DATE_RANGE: Record<Provider, { min: Date; max: Date }> = {
  postgres: { min: new Date('0001-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.499Z') },
  mysql: { min: new Date('1000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z') },
};
/** Dates across the range, with milliseconds biased to the rounding edges of a Timestamp(0) column. */
const date = (p: Provider) =>
  fc.oneof(
    fc.date({ ...DATE_RANGE[p], noInvalidDate: true }),
    fc
      .tuple(fc.date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), fc.constantFrom(0, 1, 499, 500, 501, 999))
      .map(([d, ms]) => new Date(Math.floor(d.getTime() / 1000) * 1000 + ms)),
  );

/** Decimals with up to 35 integer digits and up to 40 fraction digits (Decimal(65, 30) keeps 30, rounding the rest). */
const decimal = fc
  .tuple(fc.boolean(), fc.stringMatching(/^(0|[1-9][0-9]{0,34})$/), fc.stringMatching(/^[0-9]{0,40}$/))
  .map(([negative, int, frac]) => `${negative ? '-' : ''}${int}${frac ? `.${frac}` : ''}`);

/** Arbitrary JSON (unicode keys and strings, nested arrays and objects) other than a top-level null, which Prisma writes as JsonNull. */
const json = fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }).filter((v) => v !== null);

/** One arbitrary per NatalChart typed field with a blind index, with dates in `p`'s column range. */
export const typedArbitraries = (p: Provider) => ({
  bornAt: date(p),
  birthDay: date(p),
  recordedAt: date(p),
  accuracy: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  ephemeris: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  latitude: fc.oneof(fc.double(), fc.constantFrom(0, -0, Number.NaN, Infinity, -Infinity)),
  fee: decimal,
  consent: fc.boolean(),
  chart: json,
  portrait: fc.uint8Array({ maxLength: 64 }),
});
export type TypedValues = { [K in keyof ReturnType<typeof typedArbitraries>]: ReturnType<typeof typedArbitraries>[K] extends fc.Arbitrary<infer T> ? T : never };
export type TypedField = keyof TypedValues;
export const TYPED_FIELDS = Object.keys(typedArbitraries('postgres')) as TypedField[];
