import fc from 'fast-check';
import { Prisma } from '../../generated/postgres/client/client';
import { encryptedFields } from '../../generated/postgres/encryption';
import type { EncryptionSchema } from '../../src/schema';
import { providers, type Harness } from '../support/clients';
import { expectTableInStep } from '../integration/shapes.support';
import { comparableWithout, foundSomething, mirrorPair, outcomeOf, type Outcome, type Side } from './mirror.support';

/**
 * Random commands over NatalChart (one encrypted field of every typed scalar, each with a blind
 * index) on the encrypting client and, unchanged, on a plain client over a second database of the
 * same schema, where the typed columns hold the values themselves (the mirror). Filters are random
 * trees of equality, `in`, `notIn`, `not` (nested), null tests, AND/OR/NOT and relation filters;
 * values come from small pools that hold several spellings of one value (Decimal 1.5 and '1.50',
 * Json objects in two key orders, a DateTime as a Date and as ISO text at another offset, Float 0
 * and -0, BigInt 5n and 5, Bytes as Uint8Array and Buffer) and values a column rounds or truncates.
 * Every outcome must be the same; afterwards the encrypted table holds only ciphertext, the typed
 * columns NULL and every blind index in step.
 *
 * Lookup values are at the column's precision: plain SQL compares an unrounded parameter with the
 * rounded column (no match) where the blind index compares both at the column's precision (README,
 * typed fields), so a sub-precision value is written but never looked up. Range filters are
 * refused by the encrypting client; the mirror states the refusal.
 */

const schema = encryptedFields as unknown as EncryptionSchema;
const CHART = schema.models.NatalChart!.encrypted;
/** Index fields differ by design (hashes on one side, NULL on the other); storage fields are NULL on the mirror and absent on the encrypting side unless selected. */
const INDEX_FIELDS = new Set(Object.values(schema.models).flatMap((m) => Object.values(m.encrypted).flatMap((s) => (s.index ? [s.index] : []))));
const STORAGE_FIELDS = new Set(Object.values(CHART).flatMap((s) => (s.storage ? [s.storage] : [])));
const NUM_RUNS = 20;

// ---- value pools: `lookup` at the column's precision (several spellings of one value), `write` adds values the column rounds --------

const d = (iso: string) => new Date(iso);
const POOLS = {
  bornAt: { lookup: [d('1990-03-21T04:45:12.345Z'), '1990-03-21T06:45:12.345+02:00', d('2001-01-01T00:00:00Z'), d('1969-12-31T23:59:59.999Z')], write: [] },
  birthDay: { lookup: [d('1990-03-21T00:00:00Z'), '1990-03-21T00:00:00.000Z', d('1955-11-05T00:00:00Z')], write: [d('1990-03-21T23:59:59.999Z'), d('1955-11-05T10:00:00Z')] },
  // Ties and near-ties a Timestamp(0) keeps differently on PostgreSQL (rounds around 2000-01-01) and MariaDB (truncates).
  recordedAt: { lookup: [d('2024-05-06T07:08:09Z'), d('2024-05-06T07:08:10Z'), d('1985-06-01T00:00:00Z'), d('1985-06-01T00:00:01Z')], write: [d('2024-05-06T07:08:09.500Z'), d('1985-06-01T00:00:00.500Z'), d('1985-06-01T00:00:00.999Z')] },
  accuracy: { lookup: [0, 15, -(2 ** 31), 2 ** 31 - 1], write: [] },
  ephemeris: { lookup: [5n, 5, 2n ** 63n - 1n, -(2n ** 63n)], write: [] },
  latitude: { lookup: [0, -0, 1.25, -33.0472], write: [] },
  fee: { lookup: ['1.5', '1.50', new Prisma.Decimal('1.500'), 120.5, '0.001'], write: ['0.0010000000000000000000000000001'] },
  consent: { lookup: [true, false], write: [] },
  chart: { lookup: [{ sun: 'Aries', moon: 'Leo' }, { moon: 'Leo', sun: 'Aries' }, [1, 'x', { a: null }], 'Ω text', 3], write: [] },
  portrait: { lookup: [new Uint8Array(), new Uint8Array([0, 1, 2, 255]), Buffer.from([0, 1, 2, 255])], write: [] },
} satisfies Record<string, { lookup: unknown[]; write: unknown[] }>;
type Field = keyof typeof POOLS;
const FIELDS = Object.keys(POOLS) as Field[];

const lookupValue = (f: Field) => fc.constantFrom(...(POOLS[f].lookup as unknown[]));
const writeValue = (f: Field) => fc.option(fc.constantFrom(...(POOLS[f].lookup as unknown[]), ...(POOLS[f].write as unknown[])), { nil: null, freq: 4 });
/** Some fields of a chart, each a value or null (Json null is SQL NULL: `Prisma.DbNull`). */
const chartValues = fc
  .record(Object.fromEntries(FIELDS.map((f) => [f, writeValue(f)])) as Record<Field, fc.Arbitrary<unknown>>, { requiredKeys: [] })
  .map((values) => Object.fromEntries(Object.entries(values).map(([f, v]) => [f, v === null && f === 'chart' ? Prisma.DbNull : v])));

/** One condition on one typed field, in any of the equality shapes Prisma has for it. */
const leaf = fc.constantFrom(...FIELDS).chain((f) => {
  const json = f === 'chart';
  const nullTest = fc.constantFrom<unknown>(...(json ? [{ equals: Prisma.DbNull }, { not: Prisma.DbNull }] : [null, { equals: null }, { not: null }]));
  const shapes: Array<fc.Arbitrary<unknown>> = [lookupValue(f).map((v) => ({ equals: v })), lookupValue(f).map((v) => ({ not: v })), nullTest];
  // Prisma's Json filter has no shorthand, no nested `not` and no lists; its Boolean filter has no lists.
  if (!json) shapes.push(lookupValue(f), lookupValue(f).map((v) => ({ not: { not: v } })));
  if (!json && f !== 'consent') {
    shapes.push(
      fc.array(lookupValue(f), { maxLength: 3 }).map((vs) => ({ in: vs })),
      fc.array(lookupValue(f), { maxLength: 3 }).map((vs) => ({ notIn: vs })),
      fc.array(lookupValue(f), { maxLength: 2 }).map((vs) => ({ not: { in: vs } })),
    );
  }
  return fc.oneof(...shapes).map((filter) => ({ [f]: filter }));
});
const { tree } = fc.letrec<{ tree: Record<string, unknown> }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    leaf,
    fc.array(tie('tree'), { minLength: 1, maxLength: 3 }).map((ts) => ({ AND: ts })),
    fc.array(tie('tree'), { minLength: 1, maxLength: 3 }).map((ts) => ({ OR: ts })),
    tie('tree').map((t) => ({ NOT: t })),
  ),
}));

const id = fc.integer({ min: 1, max: 6 });
const userId = fc.option(fc.constantFrom('u0', 'u1'), { nil: null });
const selection = fc.subarray(FIELDS, { minLength: 1 });

const command = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('create' as const), id, userId, values: chartValues }) },
  fc.record({ kind: fc.constant('createMany' as const), rows: fc.array(fc.record({ id, values: chartValues }), { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('update' as const), id, values: chartValues }),
  fc.record({ kind: fc.constant('updateMany' as const), where: tree, values: chartValues }),
  fc.record({ kind: fc.constant('upsert' as const), id, create: chartValues, update: chartValues }),
  fc.record({ kind: fc.constant('deleteMany' as const), where: tree }),
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('findMany' as const), where: tree, select: fc.option(selection, { nil: undefined }) }) },
  fc.record({ kind: fc.constant('count' as const), where: tree }),
  fc.record({ kind: fc.constant('findUsers' as const), quantifier: fc.constantFrom('some' as const, 'every' as const, 'none' as const), where: tree, include: tree }),
  fc.record({ kind: fc.constant('range' as const), field: fc.constantFrom(...FIELDS.filter((f) => f !== 'chart' && f !== 'consent' && f !== 'portrait')), op: fc.constantFrom('gt', 'lte') }),
);
type Command = typeof command extends fc.Arbitrary<infer C> ? C : never;

// ---- running one command on one side ----------------------------------------------------------

type Client = Harness['prisma'];
const byId = { orderBy: { id: 'asc' as const } };

function run(db: Client, c: Command): Promise<unknown> {
  const charts = db.natalChart;
  switch (c.kind) {
    case 'create':
      return charts.create({ data: { id: c.id, userId: c.userId, ...c.values } as Prisma.NatalChartUncheckedCreateInput });
    case 'createMany':
      return charts.createMany({ data: c.rows.map((r) => ({ id: r.id, ...r.values })) as Prisma.NatalChartCreateManyInput[] });
    case 'update':
      return charts.update({ where: { id: c.id }, data: c.values as Prisma.NatalChartUpdateInput });
    case 'updateMany':
      return charts.updateMany({ where: c.where as Prisma.NatalChartWhereInput, data: c.values as Prisma.NatalChartUpdateManyMutationInput });
    case 'upsert':
      return charts.upsert({ where: { id: c.id }, create: { id: c.id, ...c.create } as Prisma.NatalChartCreateInput, update: c.update as Prisma.NatalChartUpdateInput });
    case 'deleteMany':
      return charts.deleteMany({ where: c.where as Prisma.NatalChartWhereInput });
    case 'findMany':
      return charts.findMany({ where: c.where as Prisma.NatalChartWhereInput, ...(c.select ? { select: { id: true, ...Object.fromEntries(c.select.map((f) => [f, true])) } } : {}), ...byId });
    case 'count':
      return charts.count({ where: c.where as Prisma.NatalChartWhereInput });
    case 'findUsers':
      return db.user.findMany({
        where: { charts: { [c.quantifier]: c.where } },
        select: { id: true, charts: { where: c.include as Prisma.NatalChartWhereInput, ...byId } },
        ...byId,
      });
    case 'range':
      return charts.findMany({ where: { [c.field]: { [c.op]: POOLS[c.field].lookup[0] } } });
  }
}

const comparable = {
  encrypted: comparableWithout((k) => INDEX_FIELDS.has(k)),
  mirror: comparableWithout((k) => INDEX_FIELDS.has(k) || STORAGE_FIELDS.has(k)),
};
const outcome = (db: Client, side: Side, c: Command): Promise<Outcome> => outcomeOf(side, c.kind === 'range' ? c.op : undefined, () => run(db, c), comparable[side]);

// ---- the property -----------------------------------------------------------------------------

describe.each(providers())('typed fields: encrypting client against a plain mirror on %s', (provider) => {
  const dbs = mirrorPair(provider);

  /** Two owners for the relation filters; the mirror stores its index fields as the plaintext (as in encryptedMirror). */
  async function reset(): Promise<void> {
    const { encrypted, mirror } = dbs;
    for (const h of [encrypted, mirror]) {
      await h.sql(`DELETE FROM ${h.q('NatalChart')}`);
      await h.sql(`DELETE FROM ${h.q('User')}`);
    }
    for (const uid of ['u0', 'u1']) {
      const email = `${uid}@x.io`;
      await encrypted.prisma.user.create({ data: { id: uid, email } });
      await mirror.plain.user.create({ data: { id: uid, email, emailIndex: email } });
    }
  }

  test('same outcome for every command, typed columns NULL and indexes in step at rest', async () => {
    const { encrypted, mirror } = dbs;
    const stats = { commands: 0, found: 0, sequencesFinding: 0, refused: 0, errors: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 6, maxLength: 14 }), async (commands) => {
        await reset();
        const foundBefore = stats.found;
        for (const c of commands) {
          const [got, want] = await Promise.all([outcome(encrypted.prisma, 'encrypted', c), outcome(mirror.plain, 'mirror', c)]);
          expect({ c, got }).toEqual({ c, got: want });
          stats.commands++;
          if (c.kind.startsWith('find') || c.kind === 'count') stats.found += foundSomething(got) ? 1 : 0;
          if ('refused' in got) stats.refused++;
          if ('error' in got) stats.errors++;
        }
        if (stats.found > foundBefore) stats.sequencesFinding++;
        await expectTableInStep(encrypted, 'NatalChart');
      }),
      { numRuns: NUM_RUNS },
    );
    // Not vacuous: lookups found rows in a good share of the random sequences (counted per sequence:
    // a count of found lookups over all commands fell just under a fixed bound in one CI run), and
    // refusals and Prisma errors (duplicate ids) came up.
    expect(stats.sequencesFinding).toBeGreaterThanOrEqual(NUM_RUNS / 4);
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.errors).toBeGreaterThan(0);
  }, 300_000);
});
