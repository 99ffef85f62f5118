import { providers, silentLogger, type Harness } from '../support/clients';
import { collectStatus, cryptoBackend, encryptExisting, localKeys, rotate } from '../../src';
import { randomKey } from '../support/keys';
import { CHECKPOINT_TABLE } from '../../src/migrate/checkpoint';
import type { SqlConnection } from '../../src/migrate/connection';
import { capturingLogger, closeFixture, codec, emailOf, expectUsersIntact, nameOf, openFixture, rawUsers, rotation, schemaFor, seedUsers, userId, type Rotation } from './migrateSupport';

const USERS = 600;

describe.each(providers())('rotate on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const schema = schemaFor(provider);

  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider));
  });
  afterEach(() => closeFixture({ h, conn }));

  test('re-encrypts every value under the primary key, reindexes, and a second run writes nothing', async () => {
    await seedUsers(conn, provider, keys.before, USERS);
    const report = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 37, logger: silentLogger });
    expect(report.updated).toBe(USERS);
    expect(report.failedCount).toBe(0);
    expect(report.complete).toBe(true);
    // 600 rows in batches of 37: many batches, the last one partial.
    expect(report.models[0]!.batches).toBeGreaterThanOrEqual(Math.ceil(USERS / 37));

    const rows = await rawUsers(conn);
    for (const r of rows) {
      expect(r.email).toMatch(/^pce:v1:d2:/);
      expect(r.emailIndex).toMatch(/^i2:/);
      if (r.name !== null) expect(r.name).toMatch(/^pce:v1:d2:/);
    }
    expectUsersIntact(provider, keys.after, rows, USERS);
    // The application with the new keyring reads the same plaintext.
    const app = h.extend({ keys: keys.after });
    expect((await app.user.findFirst({ where: { email: emailOf(123) } }))?.id).toBe(userId(123));

    const again = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 37, logger: silentLogger });
    expect(again.updated).toBe(0);
    expect(again.scanned).toBe(0);
    expect(await rawUsers(conn)).toEqual(rows);
  });

  test('pages through a compound primary key without skipping or repeating rows', async () => {
    await seedUsers(conn, provider, keys.before, 40);
    const role = codec(provider, keys.before, 'Membership', 'role');
    const q = conn.quote;
    // Org ids that share prefixes and users that repeat across orgs, so ordering on both columns matters.
    const pairs: Array<[string, string]> = [];
    for (const org of ['o', 'o1', 'o10', 'o2', 'p']) for (let u = 0; u < 40; u += 3) pairs.push([org, userId(u)]);
    for (const [org, user] of pairs) {
      const plain = `role-${org}-${user}`;
      await conn.execute(
        `INSERT INTO ${q('Membership')} (${q('orgId')}, ${q('userId')}, ${q('role')}, ${q('roleIndex')}) VALUES (${[1, 2, 3, 4].map((n) => conn.placeholder(n)).join(', ')})`,
        [org, user, role.encrypt(plain), role.indexForWrite(plain)],
      );
    }
    const report = await rotate({ connection: conn, schema, keyring: keys.after, model: 'Membership', batchSize: 4, logger: silentLogger });
    expect(report.updated).toBe(pairs.length);
    const after = codec(provider, keys.after, 'Membership', 'role');
    const rows = await conn.query<{ orgId: string; userId: string; role: string; roleIndex: string }>(
      `SELECT ${q('orgId')}, ${q('userId')}, ${q('role')}, ${q('roleIndex')} FROM ${q('Membership')}`,
    );
    expect(rows).toHaveLength(pairs.length);
    for (const r of rows) {
      expect(r.role).toMatch(/^pce:v1:d2:/);
      expect(after.decrypt(r.role)).toBe(`role-${r.orgId}-${r.userId}`);
      expect(r.roleIndex).toBe(after.indexForWrite(`role-${r.orgId}-${r.userId}`));
    }
  });

  test('equality lookups find rows indexed under either index key while the rotation is half done', async () => {
    await seedUsers(conn, provider, keys.before, 100);
    const partial = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 10, maxBatches: 3, logger: silentLogger });
    expect(partial.updated).toBe(30);
    expect(partial.complete).toBe(false);
    const rows = await rawUsers(conn);
    const underNew = rows.filter((r) => r.emailIndex!.startsWith('i2:')).map((r) => Number(r.id.slice(1)));
    const underOld = rows.filter((r) => r.emailIndex!.startsWith('i1:')).map((r) => Number(r.id.slice(1)));
    expect(underNew).toHaveLength(30);
    expect(underOld).toHaveLength(70);

    const app = h.extend({ keys: keys.after });
    for (const i of [underNew[0]!, underNew[29]!, underOld[0]!, underOld[69]!]) {
      expect((await app.user.findFirst({ where: { email: emailOf(i) } }))?.id).toBe(userId(i));
      // emailIndex is @unique: findUnique by the index field takes the plaintext and tries one index key per attempt.
      expect((await app.user.findUnique({ where: { emailIndex: emailOf(i) } }))?.id).toBe(userId(i));
    }
    const both = await app.user.findMany({ where: { email: { in: [emailOf(underNew[1]!), emailOf(underOld[1]!)] } }, orderBy: { id: 'asc' } });
    expect(both.map((u) => u.id).sort()).toEqual([userId(underNew[1]!), userId(underOld[1]!)].sort());

    // The rerun resumes from the checkpoint and finishes the other 70.
    const rest = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 10, logger: silentLogger });
    expect(rest.models[0]!.start).toBe('joined');
    expect(rest.updated).toBe(70);
    expectUsersIntact(provider, keys.after, await rawUsers(conn), 100);
  });

  test('recomputes indexes when only the index key changed', async () => {
    await seedUsers(conn, provider, keys.before, 50);
    const dataUnchanged = (await rawUsers(conn)).map((r) => r.email);
    const indexOnly = rotation();
    // Same data key as before, new primary index key i2 next to i1: data values must not be rewritten.
    const keyring = localKeys({
      data: [{ id: 'd1', key: keysBytes(keys.envBefore.PCE_DATA_KEYS!) }],
      index: [{ id: 'i2', key: keysBytes(indexOnly.env.PCE_INDEX_KEYS!) }, { id: 'i1', key: keysBytes(keys.envBefore.PCE_INDEX_KEYS!) }],
    });
    const report = await rotate({ connection: conn, schema, keyring, model: 'User', field: 'email', batchSize: 16, logger: silentLogger });
    expect(report.updated).toBe(50);
    const rows = await rawUsers(conn);
    expect(rows.map((r) => r.email)).toEqual(dataUnchanged);
    for (const r of rows) expect(r.emailIndex).toMatch(/^i2:/);
    expectUsersIntact(provider, keyring, rows, 50);
  });

  test('a dry run writes nothing, not even the checkpoint table', async () => {
    await seedUsers(conn, provider, keys.before, 80);
    const before = await rawUsers(conn);
    const report = await rotate({ connection: conn, schema, keyring: keys.after, batchSize: 25, dryRun: true, logger: silentLogger });
    expect(report.dryRun).toBe(true);
    expect(report.updated).toBe(80);
    expect(await rawUsers(conn)).toEqual(before);
    await expect(conn.query(`SELECT 1 FROM ${conn.quote(CHECKPOINT_TABLE)}`)).rejects.toThrow();
  });

  test('reports undecryptable values by primary key, leaves those rows untouched, logs no plaintext', async () => {
    await seedUsers(conn, provider, keys.before, 30);
    const q = conn.quote;
    const stranger = localKeys({ data: [{ id: 'd0', key: randomKey() }], index: [{ id: 'i0', key: randomKey() }] });
    const foreign = codec(provider, stranger, 'User', 'name').encrypt('Secret Name 7');
    await conn.execute(`UPDATE ${q('User')} SET ${q('name')} = ${conn.placeholder(1)} WHERE ${q('id')} = ${conn.placeholder(2)}`, [foreign, userId(7)]);
    // A value of another field copied in: authentication fails (the field is bound into the AAD).
    const [u8] = await conn.query<{ email: string }>(`SELECT ${q('email')} FROM ${q('User')} WHERE ${q('id')} = ${conn.placeholder(1)}`, [userId(8)]);
    await conn.execute(`UPDATE ${q('User')} SET ${q('name')} = ${conn.placeholder(1)} WHERE ${q('id')} = ${conn.placeholder(2)}`, [u8!.email, userId(10)]);
    const beforeBad = (await rawUsers(conn)).filter((r) => r.id === userId(7) || r.id === userId(10));

    const audit = capturingLogger();
    const report = await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 8, logger: audit.logger });
    expect(report.failedCount).toBe(2);
    expect(report.failures).toEqual(
      expect.arrayContaining([
        { model: 'User', key: { id: userId(7) }, field: 'name', keyId: 'd0', reason: 'unknown-key' },
        { model: 'User', key: { id: userId(10) }, field: 'name', keyId: 'd1', reason: 'authentication-failed' },
      ]),
    );
    expect(report.updated).toBe(28);
    const after = await rawUsers(conn);
    expect(after.filter((r) => r.id === userId(7) || r.id === userId(10))).toEqual(beforeBad);
    expect(after.filter((r) => r.id !== userId(7) && r.id !== userId(10)).every((r) => r.email.startsWith('pce:v1:d2:'))).toBe(true);

    const events = audit.lines().map((l) => l.event);
    expect(events[0]).toBe('pce.migrate.start');
    expect(audit.lines()[0]).toMatchObject({ cryptoBackend: cryptoBackend().name });
    expect(events.filter((e) => e === 'pce.migrate.batch').length).toBeGreaterThanOrEqual(4);
    expect(events.filter((e) => e === 'pce.migrate.failure')).toHaveLength(2);
    expect(events[events.length - 1]).toBe('pce.migrate.end');
    const failure = audit.lines().find((l) => l.event === 'pce.migrate.failure' && l.row === `id=${userId(7)}`);
    expect(failure).toMatchObject({ model: 'User', field: 'name', keyId: 'd0', reason: 'unknown-key' });
    const text = audit.text();
    for (const secret of ['Secret Name', emailOf(8), nameOf(1), 'user1@']) expect(text).not.toContain(secret);
  });

  test('status counts values per key id, plaintext and nulls', async () => {
    await seedUsers(conn, provider, keys.before, 60);
    await rotate({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 10, maxBatches: 2, logger: silentLogger });
    const q = conn.quote;
    await conn.execute(`INSERT INTO ${q('LegacyContact')} (${q('email')}, ${q('notes')}) VALUES ('a@example.org', NULL), ('b@example.org', 'n'), (NULL, NULL)`);
    const status = await collectStatus(conn, schema, { model: 'User' });
    const email = status.find((s) => s.field === 'email')!;
    expect(email).toEqual({ model: 'User', field: 'email', byKey: { d1: 40, d2: 20 }, plaintext: 0, nulls: 0, indexByKey: { i1: 40, i2: 20 } });
    const name = status.find((s) => s.field === 'name')!;
    expect(name.nulls).toBe(20);
    expect((name.byKey.d1 ?? 0) + (name.byKey.d2 ?? 0)).toBe(40);
    expect(name.indexByKey).toEqual({});
    expect(status.find((s) => s.field === 'phone')).toMatchObject({ byKey: {}, plaintext: 0, nulls: 60 });

    const legacy = await collectStatus(conn, schema, { field: 'LegacyContact.email' });
    expect(legacy).toEqual([{ model: 'LegacyContact', field: 'email', byKey: {}, plaintext: 2, nulls: 1, indexByKey: {} }]);
    await encryptExisting({ connection: conn, schema, keyring: keys.after, model: 'LegacyContact', logger: silentLogger });
    expect(await collectStatus(conn, schema, { model: 'LegacyContact', field: 'email' })).toEqual([
      { model: 'LegacyContact', field: 'email', byKey: { d2: 2 }, plaintext: 0, nulls: 1, indexByKey: { i2: 2 } },
    ]);
  });

  test('rejects filters that match nothing, naming the model or field', async () => {
    await expect(rotate({ connection: conn, schema, keyring: keys.after, model: 'Nope', logger: silentLogger })).rejects.toThrow(/Nope: is not a model/);
    await expect(rotate({ connection: conn, schema, keyring: keys.after, model: 'User', field: 'nickname', logger: silentLogger })).rejects.toThrow(
      /User\.nickname: is not an @encrypted field/,
    );
  });
});

/** The base64 key of the first `id:base64` entry of a key list. */
function keysBytes(list: string): string {
  const first = list.split(',')[0]!;
  return first.slice(first.indexOf(':') + 1);
}
