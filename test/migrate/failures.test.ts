import { inspect } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { providers, silentLogger, type Harness } from '../support/clients';
import { encryptExisting, MigrationError, rotate, verify, type Keyring } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { resolveScope } from '../../src/migrate/scope';
import { keyColumnTypes, updateRows } from '../../src/migrate/batchUpdate';
import { readBatch } from '../../src/migrate/sql';
import { CHECKPOINT_TABLE, ensureCheckpointTable, finishJob, jobFor } from '../../src/migrate/checkpoint';
import { capturingLogger, closeFixture, codec, connect, emailOf, holdUserRowLock, openFixture, rawUsers, schemaFor, seedUsers, signal, userId, waitForLockWait, type Rotation } from './migrateSupport';

/** Review findings on failure paths: each test failed before its fix. */
describe.each(providers())('migrator failure paths on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const schema = schemaFor(provider);
  const q = (id: string) => conn.quote(id);
  const ph = (n: number) => conn.placeholder(n);

  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider));
  });
  afterEach(() => closeFixture({ h, conn }));

  const setUser = (id: string, column: string, value: string | null) => conn.execute(`UPDATE ${q('User')} SET ${q(column)} = ${ph(1)} WHERE ${q('id')} = ${ph(2)}`, [value, id]);
  const underD2 = async () => (await rawUsers(conn)).filter((r) => r.email.startsWith('pce:v1:d2:')).length;

  test('a failed batch stops every worker before the run rejects; nothing is written afterwards', async () => {
    await seedUsers(conn, provider, keys.before, 300);
    // The database refuses every update from the migrator's second connection (marked by a session
    // setting), so the worker on that connection fails and the one on the caller's connection is
    // the one that must stop.
    if (provider === 'postgres') {
      await conn.execute(
        `CREATE FUNCTION refuse_marked() RETURNS trigger AS $$ BEGIN IF current_setting('application_name') = 'refuse' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`,
      );
      await conn.execute(`CREATE TRIGGER refuse_marked BEFORE UPDATE ON "User" FOR EACH ROW EXECUTE FUNCTION refuse_marked()`);
    } else {
      await conn.execute("CREATE TRIGGER refuse_marked BEFORE UPDATE ON `User` FOR EACH ROW BEGIN IF @refuse = 1 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF; END");
    }
    const marked = async () => {
      const extra = await connect(h.db.url);
      await extra.execute(provider === 'postgres' ? `SET application_name = 'refuse'` : 'SET @refuse = 1');
      return extra;
    };
    const audit = capturingLogger();
    const run = rotate({ connection: conn, connect: marked, concurrency: 2, schema, keyring: keys.after, model: 'User', batchSize: 10, pauseMs: 20, logger: audit.logger });
    const error = await run.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    const rewritten = await underD2();
    await sleep(400);
    expect(await underD2()).toBe(rewritten);
    // Every failure event is the trigger's refusal: none comes from a worker cut off when the run
    // closed its connections.
    const failed = audit.lines().filter((l) => l.reason === 'batch-failed');
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const f of failed) expect(f).toMatchObject({ errorCode: provider === 'postgres' ? 'P0001' : 'ER_SIGNAL_EXCEPTION', chunk: failed[0]!.chunk });
    // Only the code is kept: the driver's message is not in the error, its cause, or its printout.
    expect(inspect(error, { depth: 5 })).not.toContain('refused by the test');
    // The caller's connection is free again (not inside a leftover worker's transaction).
    await conn.transaction(async (tx) => {
      await tx.query('SELECT 1');
    });
  });

  test('a unique blind-index collision is reported by primary key and the run goes on', async () => {
    await seedUsers(conn, provider, keys.after, 40);
    // Legacy plaintext that normalises to the same email: emailIndex is @unique.
    await setUser(userId(5), 'email', 'Dup@Example.org');
    await setUser(userId(6), 'email', ' dup@example.org');
    await setUser(userId(30), 'email', 'solo@example.org');
    for (const i of [5, 6, 30]) await setUser(userId(i), 'emailIndex', null);
    const report = await encryptExisting({ connection: conn, schema, keyring: keys.after, model: 'User', field: 'email', batchSize: 16, logger: silentLogger });
    expect(report.failures).toEqual([{ model: 'User', key: { id: userId(6) }, field: 'email', keyId: undefined, reason: 'index-conflict' }]);
    expect(report.failedCount).toBe(1);
    expect(report.updated).toBe(2);
    const email = codec(provider, keys.after, 'User', 'email');
    const rows = await rawUsers(conn);
    expect(email.decrypt(rows[5]!.email)).toBe('Dup@Example.org');
    expect(email.decrypt(rows[30]!.email)).toBe('solo@example.org');
    expect(rows[6]).toMatchObject({ email: ' dup@example.org', emailIndex: null });
    // A rerun is not blocked by it either.
    const again = await encryptExisting({ connection: conn, schema, keyring: keys.after, model: 'User', field: 'email', batchSize: 16, logger: silentLogger });
    expect(again).toMatchObject({ updated: 0, failedCount: 1 });
  });

  test('a driver error kept by MigrationError holds the code and constraint, never the duplicate value', async () => {
    await seedUsers(conn, provider, keys.after, 2);
    const [u0] = await rawUsers(conn);
    const driverError = await setUser(userId(1), 'emailIndex', u0!.emailIndex).then(() => undefined, (e: unknown) => e);
    expect(String((driverError as Error).message) + inspect(driverError)).toContain(u0!.emailIndex!);
    const wrapped = new MigrationError('rotate', 'User', 1, 'x', { cause: driverError });
    expect(inspect(wrapped, { depth: 5 })).not.toContain(u0!.emailIndex!);
    expect(wrapped.cause).toEqual({ code: provider === 'postgres' ? '23505' : 'ER_DUP_ENTRY', constraint: expect.stringMatching(/emailIndex/) });
  });

  test('compare-and-set compares bytes: trailing spaces the application added are not overwritten', async () => {
    await conn.execute(`INSERT INTO ${q('LegacyContact')} (${q('notes')}) VALUES ('alice')`);
    const [target] = resolveScope(schema, { model: 'LegacyContact', field: 'notes' });
    const [row] = await readBatch(conn, target!, { limit: 1 });
    await conn.execute(`UPDATE ${q('LegacyContact')} SET ${q('notes')} = 'alice  '`);
    const notes = codec(provider, keys.after, 'LegacyContact', 'notes');
    const written = await updateRows(conn, target!, await keyColumnTypes(conn, target!), ['notes'], [{ key: row!.key, old: ['alice'], next: [notes.encrypt('alice')] }], new Set(['notes']));
    expect(written).toBe(0);
    const [after] = await conn.query<{ notes: string }>(`SELECT ${q('notes')} FROM ${q('LegacyContact')}`);
    expect(after!.notes).toBe('alice  ');
  });

  test('encrypt-existing reports prefixed values that are not readable ciphertext, in fields without an index', async () => {
    const notes = codec(provider, keys.after, 'LegacyContact', 'notes');
    const good = codec(provider, keys.before, 'LegacyContact', 'notes').encrypt('fine');
    for (const v of ['hello', 'pce: my note', 'pce:v1:zz:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAA', 'pce:v1:d2:garbage', good]) {
      await conn.execute(`INSERT INTO ${q('LegacyContact')} (${q('notes')}) VALUES (${ph(1)})`, [v]);
    }
    const report = await encryptExisting({ connection: conn, schema, keyring: keys.after, model: 'LegacyContact', field: 'notes', logger: silentLogger });
    expect(report.updated).toBe(1);
    expect(report.failedCount).toBe(3);
    const ids = (await conn.query<{ id: unknown }>(`SELECT ${q('id')} AS id FROM ${q('LegacyContact')} ORDER BY ${q('id')}`)).map((r) => Number(r.id));
    expect(report.failures.map((f) => [Number(f.key.id), f.field]).sort()).toEqual([[ids[1], 'notes'], [ids[2], 'notes'], [ids[3], 'notes']].sort());
    expect(report.failures.find((f) => Number(f.key.id) === ids[2])).toMatchObject({ reason: 'unknown-key', keyId: 'zz' });
    const [first] = await conn.query<{ notes: string }>(`SELECT ${q('notes')} FROM ${q('LegacyContact')} WHERE ${q('id')} = ${ph(1)}`, [ids[0]]);
    expect(notes.decrypt(first!.notes)).toBe('hello');
  });

  test('a batch stuck behind an application row lock times out instead of waiting forever', async () => {
    await seedUsers(conn, provider, keys.before, 30);
    const lock = await holdUserRowLock(h.db.url, userId(5));
    try {
      const error = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 10, lockTimeoutMs: 200, logger: silentLogger }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MigrationError);
      expect(['55P03', 'ER_LOCK_WAIT_TIMEOUT']).toContain((error as MigrationError).dbErrorCode);
      expect((error as Error).message).toMatch(/--lock-timeout/);
    } finally {
      await lock.release();
    }
    // The caller's session keeps its own lock timeout.
    const [setting] = await conn.query<{ v: unknown }>(provider === 'postgres' ? `SELECT current_setting('lock_timeout') AS v` : 'SELECT @@SESSION.innodb_lock_wait_timeout AS v');
    expect(String(setting!.v)).toBe(provider === 'postgres' ? '0' : '50');
  }, 30000);

  test('rotate --reindex repairs indexes under the primary index key that do not match (a normalize change)', async () => {
    await seedUsers(conn, provider, keys.after, 30);
    const email = codec(provider, keys.after, 'User', 'email');
    await setUser(userId(2), 'emailIndex', email.indexForWrite('USER2@EXAMPLE.ORG '.repeat(2)));
    const before = await rawUsers(conn);
    const plain = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', logger: silentLogger });
    expect(plain.updated).toBe(0);
    const reindexed = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', reindex: true, batchSize: 8, logger: silentLogger });
    expect(reindexed).toMatchObject({ updated: 1, failedCount: 0, complete: true });
    const after = await rawUsers(conn);
    expect(after[2]!.emailIndex).toBe(email.indexForWrite(emailOf(2)));
    expect(after.filter((_, i) => i !== 2)).toEqual(before.filter((_, i) => i !== 2));
    expect((await verify({ connection: conn, schema, keyring: keys.after, model: 'User', logger: silentLogger })).ok).toBe(true);
  });

  test('refuses to write through a read-only session; a dry run still reads', async () => {
    await seedUsers(conn, provider, keys.before, 5);
    await conn.execute(provider === 'postgres' ? 'SET default_transaction_read_only = on' : 'SET SESSION TRANSACTION READ ONLY');
    await expect(rotate({ connection: conn, schema, keyring: keys.after, model: 'User', logger: silentLogger })).rejects.toThrow(/read-only.*primary server/);
    const dry = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', dryRun: true, logger: silentLogger });
    expect(dry.updated).toBe(5);
  });

  test('warns when the keyring is older than the one the last rotation used, not after a normal promote', async () => {
    await seedUsers(conn, provider, keys.after, 20);
    const audit = capturingLogger();
    const run = async (keyring: Keyring) => (await rotate({ connection: conn, schema, keyring, model: 'User', logger: audit.logger })).warnings;
    const older = await keys.dated('old');
    const promoted = await keys.dated('new');
    expect(await run(older)).toEqual([]);
    // The checkpoint orders jobs by a TIMESTAMP, whole seconds on MySQL/MariaDB.
    if (provider === 'mysql') await sleep(1100);
    // The last rotate wrote under d1; d2 was generated later and promoted: the normal state, no alarm.
    expect(await run(promoted)).toEqual([]);
    // Now the last rotate wrote under d2, and this keyring (a copy that missed the promote) has d1 primary.
    const stale = await rotate({ connection: conn, schema, keyring: older, model: 'User', dryRun: true, logger: audit.logger });
    expect(stale.warnings).toEqual([expect.stringMatching(/^User: the last rotate wrote under data key d2 \(created 2026-02-01T00:00:00\.000Z\), newer than this keyring's primary d1 .* and index key i2 /)]);
    expect(audit.lines().filter((l) => l.event === 'pce.migrate.warning')).toEqual([expect.objectContaining({ reason: 'stale-keyring', model: 'User', lastDataKey: 'd2', dataKey: 'd1' })]);
    // Local keys (PCE_DATA_KEYS, localKeys) carry no creation time: they cannot be ordered and never warn.
    expect((await rotate({ connection: conn, schema, keyring: keys.oldPrimary, model: 'User', dryRun: true, logger: audit.logger })).warnings).toEqual([]);
  });

  test('finishing a job cannot interleave with another process restarting it', async () => {
    await ensureCheckpointTable(conn);
    const job = jobFor('rotate Test(x) data=d2 index=i2');
    const t = q(CHECKPOINT_TABLE);
    await conn.execute(`INSERT INTO ${t} (job_id, chunk, state) VALUES (${ph(1)}, 0, 'running'), (${ph(2)}, 1, 'done')`, [job.id, job.id]);
    // Another process restarts the job: header locked and back to running, a new chunk pending, not yet committed.
    const other = await connect(h.db.url);
    const probe = await connect(h.db.url);
    try {
      const committed = signal();
      const restarting = signal();
      const restart = other.transaction(async (tx) => {
        await tx.execute(`UPDATE ${t} SET state = 'running' WHERE job_id = ${tx.placeholder(1)} AND chunk = 0`, [job.id]);
        await tx.execute(`INSERT INTO ${t} (job_id, chunk, state) VALUES (${tx.placeholder(1)}, 2, 'pending')`, [job.id]);
        restarting.fire();
        await committed.fired;
      });
      await restarting.fired;
      const finishing = finishJob(conn, job);
      await waitForLockWait(probe);
      committed.fire();
      await restart;
      expect((await finishing).pending).toBe(1);
      const [header] = await conn.query<{ state: string }>(`SELECT state FROM ${t} WHERE job_id = ${ph(1)} AND chunk = 0`, [job.id]);
      expect(header!.state).toBe('running');
    } finally {
      await other.close();
      await probe.close();
    }
  });
});
