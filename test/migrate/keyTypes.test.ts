import { providers, silentLogger, type Harness } from '../support/clients';
import { rotate, type EncryptionSchema, type Keyring } from '../../src';
import { FieldCodec } from '../../src/codec/fieldCodec';
import type { SqlConnection } from '../../src/migrate/connection';
import { encryptExistingFilter, reindexFilter, rotateFilter } from '../../src/migrate/filters';
import { resolveScope } from '../../src/migrate/scope';
import { readKeyPage, selectBatch } from '../../src/migrate/sql';
import { closeFixture, codec, openFixture, schemaFor, type Rotation } from './migrateSupport';

/**
 * Primary keys of every type and awkward text through the chunk scan, the checkpoint's key text,
 * the dry run and the batch update's key arrays: every row rotated, and the dry run's counts
 * equal to the real run's. (The defect: a floating-point key's Infinity and NaN became NULL in the
 * checkpoint, so their chunks held no rows and a run skipped them while reporting complete.)
 */
const SPEC = { readMode: 'strict' } as const;

function customSchema(provider: string, tables: Record<string, string[]>): EncryptionSchema {
  return {
    version: 1,
    provider: provider === 'postgres' ? 'postgresql' : 'mysql',
    models: Object.fromEntries(
      Object.entries(tables).map(([t, pk]) => [
        t,
        { dbName: t, primaryKey: pk, scalarFields: [...pk, 'secret'], columns: {}, encrypted: { secret: SPEC }, relations: {}, compoundUniques: {}, uniqueFields: [] },
      ]),
    ),
  } as unknown as EncryptionSchema;
}

const TRICKY_ALL = ['', ' ', 'a"b', 'a\\b', 'a,b', '{x}', '{', '}', 'NULL', 'null', "o'q", 'tab\t', 'nl\n', 'é', '\u{1F600}', 'a b', '"', '\\', '\\"', ',', 'NUL L'];

describe.each(providers())('primary key types on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider));
  });
  afterEach(() => closeFixture({ h, conn }));

  async function seed(table: string, cols: string[], rows: unknown[][], keyring: (i: number) => Keyring) {
    const q = conn.quote;
    for (let i = 0; i < rows.length; i++) {
      const c = new FieldCodec(table, 'secret', SPEC as never, keyring(i), () => undefined);
      const vals = [...rows[i]!, c.encrypt(`secret ${i}`)];
      await conn.execute(`INSERT INTO ${q(table)} (${[...cols, 'secret'].map(q).join(', ')}) VALUES (${vals.map((_, n) => conn.placeholder(n + 1)).join(', ')})`, vals);
    }
  }

  async function checkAll(table: string, schema: EncryptionSchema, n: number, stale: number) {
    const dry = await rotate({ connection: conn, schema, keyring: keys.after, model: table, batchSize: 2, dryRun: true, logger: silentLogger });
    const real = await rotate({ connection: conn, schema, keyring: keys.after, model: table, batchSize: 2, logger: silentLogger });
    const keyCols = resolveScope(schema, { model: table })[0]!.keyColumns.map((c) => conn.quote(c));
    const rows = await conn.query<{ secret: string }>(`SELECT ${keyCols.join(', ')}, ${conn.quote('secret')} AS secret FROM ${conn.quote(table)}`);
    expect(rows).toHaveLength(n);
    // The keys of rows left unrotated, so a failure names them.
    const notRotated = rows.filter((r) => !r.secret.startsWith('pce:v1:d2:')).map(({ secret: _, ...key }) => Object.values(key).map(String).join(','));
    return { dry: { u: dry.updated, s: dry.scanned, b: dry.models[0]!.batches, c: dry.complete }, real: { u: real.updated, s: real.scanned, b: real.models[0]!.batches, c: real.complete, f: real.failedCount }, notRotated, stale };
  }

  test('tricky text keys, compound keys', async () => {
    const q = conn.quote;
    const text = provider === 'postgres' ? 'text' : 'VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin';
    await conn.execute(`CREATE TABLE ${q('kt')} (${q('id')} ${text} PRIMARY KEY, ${q('secret')} TEXT)`, []);
    await conn.execute(`CREATE TABLE ${q('kc')} (${q('a')} ${text}, ${q('b')} INT, ${q('secret')} TEXT, PRIMARY KEY (${q('a')}, ${q('b')}))`, []);
    const schema = customSchema(provider, { kt: ['id'], kc: ['a', 'b'] });
    // MySQL's PAD SPACE: '' and ' ' are one key there.
    const TRICKY = provider === 'postgres' ? TRICKY_ALL : TRICKY_ALL.filter((t) => t !== ' ');
    await seed('kt', ['id'], TRICKY.map((t) => [t]), (i) => (i % 3 === 1 ? keys.after : keys.before));
    const compound = TRICKY.flatMap((t) => [[t, -1], [t, 0], [t, 7]]);
    await seed('kc', ['a', 'b'], compound, (i) => (i % 4 === 2 ? keys.after : keys.before));

    // Key pages after every key equal the database's own order and WHERE verdicts.
    const target = resolveScope(schema, { model: 'kc' })[0]!;
    for (const filter of [rotateFilter('d2', 'i2'), encryptExistingFilter(['d2']), reindexFilter('d2', 'i2')]) {
      const all = await readKeyPage(conn, target, undefined, 1000, filter);
      expect(all).toHaveLength(compound.length);
      const { sql, params } = selectBatch(conn, target, { filter });
      const workKeys = new Set((await conn.query(sql, params)).map((r) => JSON.stringify([r.k0, r.k1])));
      expect(all.map((r) => r.work)).toEqual(all.map((r) => workKeys.has(JSON.stringify(r.key))));
      for (let i = 0; i < all.length; i++) {
        const page = await readKeyPage(conn, target, all[i]!.key, 5, filter);
        expect(page).toEqual(all.slice(i + 1, i + 6));
      }
    }

    const staleT = TRICKY.filter((_, i) => i % 3 !== 1).length;
    const staleC = compound.filter((_, i) => i % 4 !== 2).length;
    const t = await checkAll('kt', schema, TRICKY.length, staleT);
    const c = await checkAll('kc', schema, compound.length, staleC);
    expect({ t, c }).toEqual({
      t: { dry: { u: staleT, s: staleT, b: t.real.b, c: true }, real: { u: staleT, s: staleT, b: t.real.b, c: true, f: 0 }, notRotated: [], stale: staleT },
      c: { dry: { u: staleC, s: staleC, b: c.real.b, c: true }, real: { u: staleC, s: staleC, b: c.real.b, c: true, f: 0 }, notRotated: [], stale: staleC },
    });
    expect(t.dry.b).toBe(t.real.b);
    expect(c.dry.b).toBe(c.real.b);
  });

  test('numeric key types: bigint beyond 2^53, numeric, floats (Infinity, NaN), uuid, bytea, timestamp, boolean', async () => {
    const q = conn.quote;
    const pg = provider === 'postgres';
    const defs: Record<string, { type: string; values: unknown[] }> = {
      ki: { type: 'INT', values: [-2147483648, -1, 0, 1, 2147483647] },
      kb: { type: pg ? 'BIGINT' : 'BIGINT', values: ['-9223372036854775808', '9007199254740992', '9007199254740993', '9007199254740994', '9223372036854775807'] },
      kn: { type: pg ? 'NUMERIC' : 'DECIMAL(40,10)', values: ['-1e20', '0', '0.1', pg ? '0.10000000000000001' : '0.1000000001', '12345678901234567890.123'] },
      kf: { type: pg ? 'DOUBLE PRECISION' : 'DOUBLE', values: pg ? ['-Infinity', '-1e300', '-0', '5e-324', '0.1', '0.30000000000000004', '1e21', '1e300', 'Infinity', 'NaN'] : [-1e300, -0, 5e-324, 0.1, 0.30000000000000004, 1e21, 1e300] },
      ...(pg ? { kr: { type: 'REAL', values: ['0.1', '1.5', '3.4e38', '-1e-38'] } } : {}),
      ...(pg ? { ku: { type: 'UUID', values: ['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '123e4567-e89b-12d3-a456-426614174000'] } } : {}),
      ky: { type: pg ? 'BYTEA' : 'VARBINARY(16)', values: [Buffer.from(''), Buffer.from([0]), Buffer.from([0, 0]), Buffer.from('a"\\,{}'), Buffer.from([255])] },
      kd: { type: pg ? 'TIMESTAMP(3)' : 'DATETIME(3)', values: [new Date('1970-01-01T00:00:00.001Z'), new Date('2024-03-31T01:30:00.000Z'), new Date('2024-10-27T01:30:00.000Z')] },
      ...(pg ? { kz: { type: 'TIMESTAMPTZ', values: [new Date(0), new Date('2030-01-01T00:00:00.123Z')] } } : {}),
      kbool: { type: pg ? 'BOOLEAN' : 'TINYINT(1)', values: pg ? [false, true] : [0, 1] },
      kch: { type: pg ? 'CHAR(3)' : 'CHAR(3)', values: ['a', 'ab', 'abc', ''] },
    };
    const results: Record<string, unknown> = {};
    const expected: Record<string, unknown> = {};
    for (const [table, { type, values }] of Object.entries(defs)) {
      await conn.execute(`CREATE TABLE ${q(table)} (${q('id')} ${type} PRIMARY KEY, ${q('secret')} TEXT)`, []);
      const schema = customSchema(provider, { [table]: ['id'] });
      try {
        await seed(table, ['id'], values.map((v) => [v]), () => keys.before);
      } catch (e) {
        results[table] = `seed failed: ${(e as Error).message}`;
        expected[table] = results[table];
        continue;
      }
      const n = values.length;
      try {
        const r = await checkAll(table, schema, n, n);
        results[table] = r;
      } catch (e) {
        results[table] = `run failed: ${(e as Error).message}`;
      }
      const b = Math.floor(n / 2) + 1;
      expected[table] = { dry: { u: n, s: n, b, c: true }, real: { u: n, s: n, b, c: true, f: 0 }, notRotated: [], stale: n };
    }
    expect(results).toEqual(expected);
  });

  test('dry run: maxBatches, empty table, exact multiple of batchSize', async () => {
    const schema = schemaFor(provider);
    const base = { connection: conn, schema, keyring: keys.after, model: 'Tag', batchSize: 3, logger: silentLogger } as const;
    const empty = await rotate({ ...base, dryRun: true });
    expect({ b: empty.models[0]!.batches, c: empty.complete, s: empty.scanned }).toEqual({ b: 1, c: true, s: 0 });
    const label = codec(provider, keys.before, 'Tag', 'label');
    for (let i = 0; i < 9; i++) {
      await conn.execute(`INSERT INTO ${conn.quote('Tag')} (${conn.quote('label')}, ${conn.quote('labelIndex')}) VALUES (${conn.placeholder(1)}, ${conn.placeholder(2)})`, [label.encrypt(`t${i}`), label.indexForWrite(`t${i}`)]);
    }
    const out: Record<string, unknown> = {};
    for (const maxBatches of [1, 2, 3, 4, 5]) {
      const d = await rotate({ ...base, dryRun: true, maxBatches });
      out[`dry${maxBatches}`] = { b: d.models[0]!.batches, u: d.updated, c: d.complete };
    }
    expect(out).toEqual({
      dry1: { b: 1, u: 3, c: false },
      dry2: { b: 2, u: 6, c: false },
      dry3: { b: 3, u: 9, c: false },
      dry4: { b: 4, u: 9, c: true },
      dry5: { b: 4, u: 9, c: true },
    });
    const real3 = await rotate({ ...base, maxBatches: 3 });
    expect({ b: real3.models[0]!.batches, u: real3.updated, c: real3.complete }).toEqual({ b: 3, u: 9, c: false });
  });

  test('MySQL: a single-precision FLOAT key is refused by name before anything is read or written', async () => {
    if (provider !== 'mysql') return;
    const q = conn.quote;
    await conn.execute(`CREATE TABLE ${q('kr')} (${q('id')} FLOAT PRIMARY KEY, ${q('secret')} TEXT)`, []);
    await seed('kr', ['id'], [[0.1], [1.5], [3.4e38], [-1e-38]], () => keys.before);
    const schema = customSchema(provider, { kr: ['id'] });
    for (const dryRun of [true, false]) {
      // Before the refusal, a real run wrote 1 of these 4 rows and reported the rest as conflicts.
      await expect(rotate({ connection: conn, schema, keyring: keys.after, model: 'kr', dryRun, logger: silentLogger })).rejects.toMatchObject({
        name: 'ConfigurationError',
        model: 'kr',
        message: expect.stringMatching(/^kr: primary key column id is a single-precision FLOAT/),
      });
    }
    const rows = await conn.query<{ secret: string }>(`SELECT ${q('secret')} AS secret FROM ${q('kr')}`);
    expect(rows.map((r) => r.secret.slice(0, 10))).toEqual(['pce:v1:d1:', 'pce:v1:d1:', 'pce:v1:d1:', 'pce:v1:d1:']);
  });
});
