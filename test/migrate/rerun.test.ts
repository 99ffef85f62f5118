import { rotate } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { providers, silentLogger } from '../support/clients';
import { closeFixture, codec, connect, openFixture, rawUsers, runCli, schemaFor, schemaPath, seedUsers, userId, type MigrationFixture } from './migrateSupport';

/**
 * Issue 9 item 5: a run that leaves rows to the next run (rows the application kept changing)
 * must not make the next run report complete without scanning them again.
 */
describe.each(providers())('a rerun after rows were left to the next run on %s', (provider) => {
  let f: MigrationFixture;
  let writer: SqlConnection;
  beforeEach(async () => {
    f = await openFixture(provider);
    writer = await connect(f.h.db.url);
  });
  afterEach(async () => {
    await writer?.close();
    await closeFixture(f);
  });

  /**
   * The migrator's connection, with u00001's name changed right before each of the migrator's
   * first `times` UPDATEs of User: every compare-and-set on that row misses, so after its rounds
   * the row is left to the next run. The change is made on the migrator's own connection (in its
   * batch transaction): from another one it would wait for the row lock the previous round took.
   */
  function interfered(conn: SqlConnection, times: number): SqlConnection {
    const app = codec(provider, f.keys.before, 'User', 'name');
    const q = conn.quote;
    let left = times;
    const execute = async (sql: string, params?: readonly unknown[]): Promise<number> => {
      if (left > 0 && sql.startsWith(`UPDATE ${q('User')}`)) {
        left--;
        await conn.execute(`UPDATE ${q('User')} SET ${q('name')} = ${conn.placeholder(1)} WHERE ${q('id')} = ${conn.placeholder(2)}`, [app.encrypt(`changed ${left}`), userId(1)]);
      }
      return conn.execute(sql, params);
    };
    return new Proxy(conn, {
      get: (target, prop) => {
        if (prop === 'execute') return execute;
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  test('the run with rows left is not complete, and the next run (the real CLI) migrates them and only then reports complete', async () => {
    await seedUsers(f.conn, provider, f.keys.before, 5);
    const first = await rotate({ connection: interfered(f.conn, 10), schema: schemaFor(provider), keyring: f.keys.after, model: 'User', logger: silentLogger });
    expect(first.conflicts).toBe(1);
    expect(first.complete).toBe(false);
    expect((await rawUsers(f.conn)).find((r) => r.id === userId(1))!.name).toMatch(/^pce:v1:d1:/);

    const second = await runCli(['rotate', '--schema', schemaPath(provider), '--model', 'User', '--json'], { DATABASE_URL: f.h.db.url, ...f.keys.env });
    expect(second.code).toBe(0);
    const report = JSON.parse(second.stdout) as { complete: boolean; updated: number; models: Array<{ start: string }> };
    expect(report).toMatchObject({ complete: true, updated: 1 });
    expect(report.models[0]!.start).toBe('restarted');
    const row = (await rawUsers(f.conn)).find((r) => r.id === userId(1))!;
    expect(row.name).toMatch(/^pce:v1:d2:/);
    expect(row.email).toMatch(/^pce:v1:d2:/);
    expect(codec(provider, f.keys.after, 'User', 'name').decrypt(row.name!)).toMatch(/^changed /);
  });

  test('a run that stopped right after its last chunk, with rows left, is started over by the next run, not joined with nothing to do', async () => {
    await seedUsers(f.conn, provider, f.keys.before, 5);
    // One batch covers all five rows; --max-batches stops the run before it finishes the job.
    const first = await rotate({ connection: interfered(f.conn, 10), schema: schemaFor(provider), keyring: f.keys.after, model: 'User', maxBatches: 1, logger: silentLogger });
    expect(first).toMatchObject({ conflicts: 1, complete: false });
    const second = await rotate({ connection: f.conn, schema: schemaFor(provider), keyring: f.keys.after, model: 'User', logger: silentLogger });
    expect(second.models[0]!.start).toBe('restarted');
    expect(second).toMatchObject({ complete: true, updated: 1 });
    expect((await rawUsers(f.conn)).find((r) => r.id === userId(1))!.name).toMatch(/^pce:v1:d2:/);
  });
});
