import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { Prisma } from '../../generated/postgres/client/client';
import { TYPE_TAGS } from '../../src/crypto/ciphertext';
import type { Provider } from '../support/databases';
import { TYPED_FIELDS, typedArbitraries, type TypedField, type TypedValues } from './typedArbitraries';
import { createHarness, providers, type Harness } from '../support/clients';
import { codecFor, expectTableInStep, rawRows } from '../integration/shapes.support';

/**
 * Property-based round trips of every typed scalar (NatalChart has one encrypted field of each,
 * with a blind index): two rows of arbitrary values are written through the extension, read back,
 * found through their blind indexes under other spellings of the same value, and scanned raw.
 *
 * The oracle for what a value reads back as is independent of the codec: for DateTime and Decimal
 * (the types a column rounds) it is plain Prisma writing the same value to the typed column of a
 * scratch row on the same database and reading it back; for the exact types it is the value
 * itself (Json through a JSON round trip, Float keeping -0, NaN and the infinities, which never
 * reach the database). Equality between rows is decided on those read-back values.
 */

/** Runs per provider: each run writes two rows and makes ~60 queries. */
const NUM_RUNS = 15;

// ---- arbitraries ------------------------------------------------------------------------------

type Field = TypedField;
const FIELDS = TYPED_FIELDS;
type Row = { [K in Field]: TypedValues[K] | null };

/** A row's values, and a second row that shares some of them (so that equality has more than one row to find). */
const rowPair = (p: Provider) => {
  const one = fc.record(Object.fromEntries(FIELDS.map((f) => [f, fc.option(typedArbitraries(p)[f] as fc.Arbitrary<unknown>, { nil: null, freq: 6 })])) as { [K in Field]: fc.Arbitrary<Row[K]> });
  return fc.tuple(one, one, fc.array(fc.constantFrom(...FIELDS))).map(([a, b, shared]): [Row, Row] => [a, { ...b, ...Object.fromEntries(shared.map((f) => [f, a[f]])) }]);
};

// ---- what each value reads back as, and its other spellings ---------------------------------------

/** Values a typed column rounds: what plain Prisma reads back from it is the oracle. */
const ROUNDED: readonly Field[] = ['bornAt', 'birthDay', 'recordedAt', 'fee'];

/** The value written, in the type Prisma takes (Decimal strings as Prisma.Decimal). */
const input = (f: Field, v: unknown): unknown => (v === null ? null : f === 'fee' ? new Prisma.Decimal(v as string) : v);

/** What an exact type reads back as. */
function exact(f: Field, v: unknown): unknown {
  if (v === null) return null;
  if (f === 'chart') return JSON.parse(JSON.stringify(v)) as unknown;
  if (f === 'portrait') return new Uint8Array(v as Uint8Array);
  return v;
}

/** Equality as the database would decide it on the typed column (Float: -0 = 0, NaN = NaN; Json: key order ignored). */
function same(f: Field, x: unknown, y: unknown): boolean {
  if (x === null || y === null) return x === y;
  if (x instanceof Date) return x.getTime() === (y as Date).getTime();
  if (Prisma.Decimal.isDecimal(x)) return (x as Prisma.Decimal).equals(y as Prisma.Decimal);
  if (f === 'latitude') return x === y || (Number.isNaN(x) && Number.isNaN(y));
  return isDeepStrictEqual(x, y);
}

/** A read-back value compared with its oracle: the same value in the same JavaScript type (Float keeps the sign of zero). */
function expectReadBack(f: Field, got: unknown, want: unknown): void {
  if (f === 'latitude' && typeof want === 'number') {
    expect({ f, got: Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)) ? 'same' : got }).toEqual({ f, got: 'same' });
    return;
  }
  if (Prisma.Decimal.isDecimal(want)) {
    expect(got).toBeInstanceOf(Prisma.Decimal);
    expect({ f, got: (got as Prisma.Decimal).toFixed() }).toEqual({ f, got: (want as Prisma.Decimal).toFixed() });
    return;
  }
  if (want instanceof Uint8Array) expect(got).toBeInstanceOf(Uint8Array);
  expect({ f, got }).toEqual({ f, got: want });
}

/** The instant as ISO 8601 local time at an offset of `minutes` (what a client in that zone might send). */
function atOffset(d: Date, minutes: number): string {
  const local = new Date(d.getTime() + minutes * 60_000).toISOString(); // "±YYYYYY-..." outside 0000-9999
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${local.slice(0, -1)}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** A deep copy with every object's keys in reverse order. */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversedKeys(x)]));
}

/** Other spellings of a written value that must find the same rows: the read-back value and the type's canonical equalities. */
function spellings(f: Field, written: unknown, readBack: unknown, offset: number): unknown[] {
  const out: unknown[] = [readBack];
  if (written instanceof Date) out.push(atOffset(written, offset));
  if (f === 'fee') out.push(`${written as string}${(written as string).includes('.') ? '' : '.'}000`, new Prisma.Decimal(written as string));
  if (f === 'chart') out.push(reversedKeys(written));
  if (f === 'latitude' && written === 0) out.push(Object.is(written, -0) ? 0 : -0);
  if (f === 'accuracy' && written === 0) out.push(-0);
  if (f === 'ephemeris' && Number.isSafeInteger(Number(written))) out.push(Number(written));
  if (f === 'portrait') out.push(Buffer.from(written as Uint8Array));
  return out;
}

/** Texts of a value long enough that finding one in a raw row would mean plaintext at rest. */
function plaintextsOf(f: Field, readBack: unknown): string[] {
  if (readBack === null) return [];
  const texts: string[] = [];
  if (readBack instanceof Date) texts.push(readBack.toISOString());
  else if (Prisma.Decimal.isDecimal(readBack)) texts.push((readBack as Prisma.Decimal).toFixed());
  else if (readBack instanceof Uint8Array) texts.push(Buffer.from(readBack).toString('base64url'), Buffer.from(readBack).toString('hex'));
  else if (f === 'chart') texts.push(JSON.stringify(readBack), ...JSON.stringify(readBack).split(/[[\]{},:"]+/));
  else texts.push(String(readBack));
  return texts.filter((t) => t.length >= 8);
}

// ---- the property -----------------------------------------------------------------------------

describe.each(providers())('typed fields: property round trips on %s', (provider) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(provider);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** What plain Prisma reads back for the rounded types: the same values through a scratch row's typed columns. */
  async function plainReadBack(row: Row): Promise<Partial<Row>> {
    const data = Object.fromEntries(ROUNDED.map((f) => [f, input(f, row[f])]));
    const scratch = await h.plain.natalChart.create({ data: { label: 'oracle', ...data }, select: Object.fromEntries(ROUNDED.map((f) => [f, true])) as never });
    return scratch as Partial<Row>;
  }

  const idsWhere = async (label: string, f: Field, filter: unknown) =>
    (await h.prisma.natalChart.findMany({ where: { label, [f]: filter } as Prisma.NatalChartWhereInput, select: { id: true }, orderBy: { id: 'asc' } })).map((r) => r.id);

  test('every type reads back as plain Prisma would, is found by equality under its canonical spellings, and is only ciphertext at rest', async () => {
    const stats = { finds: 0, multiRowFinds: 0 };
    let run = 0;
    await fc.assert(
      fc.asyncProperty(rowPair(provider), fc.integer({ min: -14 * 4, max: 14 * 4 }).map((q) => q * 15), async ([a, b], offset) => {
        const label = `rt-${run++}`;
        await h.sql(`DELETE FROM ${h.q('NatalChart')}`);
        const rows = [a, b];
        const created = [];
        for (const row of rows) {
          created.push(await h.prisma.natalChart.create({ data: { label, ...Object.fromEntries(FIELDS.map((f) => [f, input(f, row[f])])) } as Prisma.NatalChartUncheckedCreateInput }));
        }
        const oracle = await Promise.all(rows.map(async (row) => ({ ...Object.fromEntries(FIELDS.map((f) => [f, exact(f, row[f])])), ...(await plainReadBack(row)) }) as Row));
        await h.sql(`DELETE FROM ${h.q('NatalChart')} WHERE ${h.q('label')} = 'oracle'`);

        // Read back: from the write's result and from a fresh read, in each type's JavaScript type.
        const read = await h.prisma.natalChart.findMany({ where: { label }, orderBy: { id: 'asc' } });
        for (const [i, row] of read.entries()) {
          for (const f of FIELDS) {
            expectReadBack(f, row[f], oracle[i]![f]);
            expectReadBack(f, (created[i] as Record<string, unknown>)[f], oracle[i]![f]);
            expect(row).not.toHaveProperty(codecFor(h, 'NatalChart', f).storageField!);
          }
        }

        // Equality through the blind index, under every spelling of each value (row b: as written).
        const lookups: Array<{ f: Field; filter: unknown; ids: number[] }> = [];
        for (const f of FIELDS) {
          for (const [i, row] of rows.entries()) {
            const want = oracle[i]![f];
            const matching = created.filter((_, j) => same(f, oracle[j]![f], want)).map((c) => c.id);
            if (want === null) {
              lookups.push({ f, filter: f === 'chart' ? { equals: Prisma.DbNull } : null, ids: matching });
              continue;
            }
            const others = created.filter((_, j) => oracle[j]![f] !== null && !same(f, oracle[j]![f], want)).map((c) => c.id);
            for (const spelling of [row[f], ...(i === 0 ? spellings(f, row[f], want, offset) : [])]) lookups.push({ f, filter: { equals: input(f, spelling) }, ids: matching });
            lookups.push({ f, filter: { not: input(f, row[f]) }, ids: others });
            // Prisma's Json and Boolean filters have no lists.
            if (f !== 'chart' && f !== 'consent') lookups.push({ f, filter: { in: [input(f, row[f])] }, ids: matching });
          }
        }
        const found = await Promise.all(lookups.map(({ f, filter }) => idsWhere(label, f, filter)));
        expect(lookups.map(({ f, filter }, i) => ({ f, filter, ids: found[i] }))).toEqual(lookups);
        stats.finds += lookups.length;
        stats.multiRowFinds += lookups.filter((l) => l.ids.length > 1).length;

        // At rest: the typed column NULL, the storage column a v2 envelope of the field's type, no plaintext anywhere in the row.
        for (const [i, id] of created.map((c) => c.id).entries()) {
          const [raw] = await rawRows(h, 'NatalChart', 'id', id);
          const rawText = JSON.stringify(raw, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
          for (const f of FIELDS) {
            const codec = codecFor(h, 'NatalChart', f);
            expect({ f, typed: raw![f] }).toEqual({ f, typed: null });
            const stored = raw![codec.storageField!];
            if (oracle[i]![f] === null) expect({ f, stored }).toEqual({ f, stored: null });
            else expect({ f, stored }).toEqual({ f, stored: expect.stringMatching(new RegExp(`^pce:v2:${TYPE_TAGS[codec.spec.type!]}:k:d1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$`)) });
            for (const text of plaintextsOf(f, oracle[i]![f])) if (rawText.includes(text)) throw new Error(`plaintext of ${f} found at rest`);
          }
        }
        await expectTableInStep(h, 'NatalChart');
      }),
      { numRuns: NUM_RUNS },
    );
    // Not vacuous: many lookups ran, and values shared between the rows were found in both.
    expect(stats.finds).toBeGreaterThan(NUM_RUNS * 10);
    expect(stats.multiRowFinds).toBeGreaterThan(NUM_RUNS);
  }, 300_000);
});
