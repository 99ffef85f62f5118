import { providers, silentLogger, type Harness } from '../support/clients';
import { rotate } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { rotateFilter } from '../../src/migrate/filters';
import { resolveScope } from '../../src/migrate/scope';
import { readKeyPage, selectKeyPage, type RowFilter } from '../../src/migrate/sql';
import { closeFixture, connect, openFixture, rawUsers, schemaFor, seedUsers, userId, type Rotation } from './migrateSupport';

/**
 * The chunk scan that splits a run into chunks reads keys page by page. It must say, per key,
 * whether the run's filter selects the row, and each page must be an index range scan: with the
 * filter in WHERE, PostgreSQL scanned and sorted the rest of the table for every page.
 */
describe.each(providers())('chunk scan on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const schema = schemaFor(provider);
  const target = () => resolveScope(schema, { model: 'User' }).find((t) => t.model === 'User')!;

  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider));
  });
  afterEach(() => closeFixture({ h, conn }));

  test('each key carries the filter verdict; unknown (NULL) counts as no work; no filter means every row', async () => {
    // u00000-u00009 under d1 (rotate has work), u00010-u00019 under d2 (none).
    await seedUsers(conn, provider, keys.before, 10);
    await seedUsers(conn, provider, keys.after, 10, 10);
    const page = await readKeyPage(conn, target(), undefined, 100, rotateFilter('d2', 'i2'));
    expect(page.map((r) => r.key[0])).toEqual(Array.from({ length: 20 }, (_, i) => userId(i)));
    expect(page.map((r) => r.work)).toEqual(Array.from({ length: 20 }, (_, i) => i < 10));

    // A comparison with a NULL column is unknown, which WHERE treated as false: so must the verdict.
    const nameIsNotEmail: RowFilter = (c, _p, _t, alias) => `${alias}.${c.quote('name')} <> ${alias}.${c.quote('email')}`;
    const verdicts = await readKeyPage(conn, target(), [userId(4)], 100, nameIsNotEmail);
    expect(verdicts.map((r) => r.key[0])).toEqual(Array.from({ length: 15 }, (_, i) => userId(i + 5)));
    // seedUsers leaves name NULL in every third row.
    expect(verdicts.map((r) => r.work)).toEqual(Array.from({ length: 15 }, (_, i) => (i + 5) % 3 !== 0));

    const all = await readKeyPage(conn, target(), [userId(17)], 100, () => undefined);
    expect(all).toEqual([{ key: [userId(18)], work: true }, { key: [userId(19)], work: true }]);
  });

  test('chunks count only rows with work: rotation over interleaved stale and current rows finishes them all', async () => {
    for (let i = 0; i < 40; i += 10) await seedUsers(conn, provider, (i / 10) % 2 === 0 ? keys.before : keys.after, 10, i);
    const report = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 3, logger: silentLogger });
    expect(report.updated).toBe(20);
    expect(report.complete).toBe(true);
    const rows = await rawUsers(conn);
    expect(rows).toHaveLength(40);
    expect(rows.every((r) => r.email.startsWith('pce:v1:d2:') && (r.name === null || r.name.startsWith('pce:v1:d2:')))).toBe(true);
  });

  test('a page is a range scan of the primary key, with no full scan or sort of the table', async () => {
    await seedUsers(conn, provider, keys.before, 20000);
    await conn.execute(provider === 'postgres' ? 'ANALYZE "User"' : 'ANALYZE TABLE `User`', []);
    // The first page and a later one: with the filter in WHERE, PostgreSQL chose the full scan and
    // sort exactly where the rest of the table was largest.
    for (const after of [undefined, [userId(0)], [userId(10000)]]) {
      const { sql, params } = selectKeyPage(conn, target(), after, 5000, rotateFilter('d2', 'i2'));
      if (provider === 'postgres') {
        const plan = (await conn.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).map((r) => r['QUERY PLAN']).join('\n');
        expect(plan).toMatch(/Index Scan using "User_pkey"/);
        expect(plan).not.toMatch(/Seq Scan|Sort/);
      } else {
        const plan = await conn.query<{ key: string | null; Extra: string | null }>(`EXPLAIN ${sql}`, params);
        expect(plan).toHaveLength(1);
        expect(plan[0]!.key).toBe('PRIMARY');
        expect(plan[0]!.Extra ?? '').not.toMatch(/filesort/);
      }
    }
  });

  test('a dry run stopped by maxBatches reads no keys beyond its last chunk', async () => {
    // Work only at both ends of 12k rows: the second chunk's bound lies past two more key pages.
    await seedUsers(conn, provider, keys.before, 3);
    await seedUsers(conn, provider, keys.after, 12000, 3);
    await seedUsers(conn, provider, keys.before, 3, 12003);
    const keyPages: string[] = [];
    const counted = explaining(conn, async (sql) => {
      if (/ AS w FROM /.test(sql)) keyPages.push(sql);
    });
    const report = await rotate({ connection: counted, schema, keyring: keys.after, model: 'User', dryRun: true, batchSize: 3, maxBatches: 1, logger: silentLogger });
    expect(report).toMatchObject({ updated: 3, complete: false });
    expect(keyPages).toHaveLength(1);
  });

  test('no read of a dry run or a real run scans the whole table, every row having work', async () => {
    await seedUsers(conn, provider, keys.before, 20000);
    await conn.execute(provider === 'postgres' ? 'ANALYZE "User"' : 'ANALYZE TABLE `User`', []);
    const probe = await connect(h.db.url);
    try {
      for (const dryRun of [true, false]) {
        const reads: string[] = [];
        const fullScans: string[] = [];
        const explained = explaining(conn, async (sql, params) => {
          if (!/^SELECT\b/.test(sql) || !sql.includes(conn.quote('User'))) return;
          reads.push(sql);
          if (await scansWholeTable(probe, sql, params)) fullScans.push(sql.slice(0, 200));
        });
        const report = await rotate({ connection: explained, schema, keyring: keys.after, model: 'User', dryRun, logger: silentLogger });
        expect(report.updated).toBe(20000);
        // Key pages and batch reads: at least one of each per 5000 and 1000 rows.
        expect(reads.length).toBeGreaterThanOrEqual(24);
        expect(fullScans).toEqual([]);
      }
    } finally {
      await probe.close();
    }
  });
});

/** `conn`, with `before` awaited ahead of every statement it (or a transaction on it) runs. */
function explaining(conn: SqlConnection, before: (sql: string, params?: readonly unknown[]) => Promise<void>): SqlConnection {
  const wrap = (c: SqlConnection): SqlConnection => ({
    dialect: c.dialect,
    quote: (id) => c.quote(id),
    placeholder: (n) => c.placeholder(n),
    isTransient: (e) => c.isTransient(e),
    isUniqueViolation: (e) => c.isUniqueViolation(e),
    close: () => c.close(),
    query: async (sql, params) => (await before(sql, params), c.query(sql, params)),
    execute: async (sql, params) => (await before(sql, params), c.execute(sql, params)),
    transaction: (fn, options) => c.transaction((tx) => fn(wrap(tx)), options),
  });
  return wrap(conn);
}

/** Whether the database plans `sql` with a full scan of the User table (asked on a second connection). */
async function scansWholeTable(probe: SqlConnection, sql: string, params?: readonly unknown[]): Promise<boolean> {
  if (probe.dialect === 'postgres') {
    const plan = await probe.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
    return plan.some((r) => /Seq Scan on "User"/.test(r['QUERY PLAN']));
  }
  const plan = await probe.query<{ table: string; type: string }>(`EXPLAIN ${sql}`, params);
  return plan.some((r) => r.table === '_pce_t' && r.type === 'ALL');
}
