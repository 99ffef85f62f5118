import { setTimeout as sleep } from 'node:timers/promises';
import { providers, silentLogger, type Harness } from '../support/clients';
import type { Provider } from '../support/databases';
import { verify } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { closeFixture, doneChunks, expectUsersIntact, holdUserRowLock, openFixture, rawUsers, schemaFor, schemaPath, seedUsers, someoneWaitsForALock, startCli, userId, waitFor, type Rotation } from './migrateSupport';

/**
 * Counts committed writes per User row with a trigger, so "no row done twice" is checked by the
 * database itself. A killed transaction's trigger rows roll back with it.
 */
async function countWrites(conn: SqlConnection, provider: Provider): Promise<void> {
  if (provider === 'postgres') {
    await conn.execute(`CREATE TABLE user_writes (id TEXT NOT NULL)`);
    await conn.execute(`CREATE FUNCTION count_user_write() RETURNS trigger AS $$ BEGIN INSERT INTO user_writes VALUES (NEW.id); RETURN NEW; END $$ LANGUAGE plpgsql`);
    await conn.execute(`CREATE TRIGGER user_write_counter AFTER UPDATE ON "User" FOR EACH ROW EXECUTE FUNCTION count_user_write()`);
  } else {
    await conn.execute('CREATE TABLE user_writes (id VARCHAR(191) NOT NULL)');
    await conn.execute('CREATE TRIGGER user_write_counter AFTER UPDATE ON `User` FOR EACH ROW INSERT INTO user_writes VALUES (NEW.id)');
  }
}

async function writesPerRow(conn: SqlConnection): Promise<{ rows: number; max: number; total: number }> {
  const [r] = await conn.query<{ n_rows: unknown; n_max: unknown; n_total: unknown }>(
    'SELECT COUNT(*) AS n_rows, COALESCE(MAX(n), 0) AS n_max, COALESCE(SUM(n), 0) AS n_total FROM (SELECT id, COUNT(*) AS n FROM user_writes GROUP BY id) w',
  );
  return { rows: Number(r!.n_rows), max: Number(r!.n_max), total: Number(r!.n_total) };
}

// Each test starts and kills several migrator processes: about 45 s on an idle machine, longer on a
// loaded one (shared CI cores), so the limit is a harness bound, not a timing assertion.
jest.setTimeout(180_000);

describe.each(providers())('migrator processes on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const cliArgs = (...more: string[]) => ['rotate', '--schema', schemaPath(provider), '--model', 'User', ...more];
  const env = () => ({ DATABASE_URL: h.db.url, ...keys.env });

  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider));
  });
  afterEach(() => closeFixture({ h, conn }));

  test('killed at any moment, a rerun resumes: no row lost, written twice, or left unreadable', async () => {
    const N = 1200;
    await seedUsers(conn, provider, keys.before, N);
    await countWrites(conn, provider);
    const check = async () => {
      const rows = await rawUsers(conn);
      // Every row is there, decrypts to what was seeded (so nothing was encrypted twice) and is indexed.
      expectUsersIntact(provider, keys.after, rows, N);
      const writes = await writesPerRow(conn);
      expect(writes.max).toBeLessThanOrEqual(1);
      return rows.filter((r) => r.email.startsWith('pce:v1:d2:')).length;
    };

    // Kill 1: inside a batch transaction. The test holds a row lock so the batch UPDATE is stuck mid-way.
    // One batch in flight (so the chunks after it are left for kills 2 and 3) and a lock timeout
    // longer than the test waits (so the batch is still stuck, not retried, when it is killed).
    const lock = await holdUserRowLock(h.db.url, userId(310));
    const first = startCli(cliArgs('--batch-size', '40', '--pause', '10', '--concurrency', '1', '--lock-timeout', '60000'), env());
    await waitFor('the migrator to block on the locked row', async () => {
      if (provider === 'mysql') await sleep(150);
      return someoneWaitsForALock(conn);
    });
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    await lock.release();
    // The server rolls the killed sessions back once it notices; give it a moment.
    await sleep(300);
    const afterFirst = await check();
    // The checkpoint and the data agree: exactly the rows of the chunks marked done were rewritten...
    expect(afterFirst).toBe((await doneChunks(conn)) * 40);
    expect(afterFirst).toBeGreaterThan(0);
    expect(afterFirst).toBeLessThan(N);
    // ...and nothing of the batch that was killed mid-transaction (u00280..u00319, the chunk holding u00310).
    const killedBatch = (await rawUsers(conn)).slice(280, 320);
    expect(killedBatch.every((r) => r.email.startsWith('pce:v1:d1:'))).toBe(true);

    // Kills 2 and 3: at random moments after the rerun has made progress.
    let progress = afterFirst;
    for (let kill = 0; kill < 2; kill++) {
      const run = startCli(cliArgs('--batch-size', '40', '--pause', '10'), env());
      const from = await doneChunks(conn);
      await waitFor('progress', async () => (await doneChunks(conn)) >= from + 2);
      await sleep(Math.random() * 60);
      run.child.kill('SIGKILL');
      await run.done;
      await sleep(100);
      const rotated = await check();
      expect(rotated).toBeGreaterThan(progress);
      progress = rotated;
    }
    expect(progress).toBeLessThan(N);

    // The final run finishes the job.
    const last = await startCli(cliArgs('--batch-size', '40', '--json'), env()).done;
    expect(last.code).toBe(0);
    const report = JSON.parse(last.stdout) as { updated: number; complete: boolean; models: Array<{ start: string }> };
    expect(report.models[0]!.start).toBe('joined');
    expect(report.complete).toBe(true);
    expect(report.updated).toBe(N - progress);
    expect(await check()).toBe(N);
    expect(await writesPerRow(conn)).toEqual({ rows: N, max: 1, total: N });
    const verified = await verify({ connection: conn, schema: schemaFor(provider), keyring: keys.after, model: 'User', logger: silentLogger });
    expect(verified.ok).toBe(true);
  });

  test('three processes share the work through the database without doing a row twice', async () => {
    const N = 1500;
    await seedUsers(conn, provider, keys.before, N);
    await countWrites(conn, provider);
    // A held row lock keeps the job open until all three have opened it, however slowly they start:
    // one creates it, the others join it (none finds it finished and restarts it).
    const lock = await holdUserRowLock(h.db.url, userId(700));
    const runs = [0, 1, 2].map(() => startCli(cliArgs('--batch-size', '25', '--pause', '25', '--json', '--lock-timeout', '60000'), env()));
    const started = runs.map(
      (r) =>
        new Promise<void>((resolve) => {
          let err = '';
          r.child.stderr!.on('data', (d) => {
            err += String(d);
            if (err.includes('"event":"pce.migrate.start"')) resolve();
          });
        }),
    );
    await Promise.all(started);
    await lock.release();
    const results = await Promise.all(runs.map((r) => r.done));
    for (const r of results) expect(r.code).toBe(0);
    const reports = results.map((r) => JSON.parse(r.stdout) as { updated: number; failedCount: number; models: Array<{ start: string; batches: number }> });
    expect(reports.reduce((n, r) => n + r.updated, 0)).toBe(N);
    // Each process really took part: one created the job, the others joined it and did batches.
    expect(reports.filter((r) => r.updated > 0).length).toBeGreaterThanOrEqual(2);
    expect(reports.map((r) => r.models[0]!.start).sort()).toEqual(['created', 'joined', 'joined']);
    expect(await writesPerRow(conn)).toEqual({ rows: N, max: 1, total: N });
    expectUsersIntact(provider, keys.after, await rawUsers(conn), N);
  });
});
