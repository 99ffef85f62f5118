import { providers, silentLogger, type Harness } from '../support/clients';
import { verify } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { capturingLogger, closeFixture, codec, emailOf, nameOf, openFixture, schemaFor, seedUsers, userId, type Rotation } from './migrateSupport';

describe.each(providers())('verify on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const schema = schemaFor(provider);

  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider));
  });
  afterEach(() => closeFixture({ h, conn }));

  const set = async (id: string, column: string, value: string | null) => {
    const q = conn.quote;
    await conn.execute(`UPDATE ${q('User')} SET ${q(column)} = ${conn.placeholder(1)} WHERE ${q('id')} = ${conn.placeholder(2)}`, [value, id]);
  };
  const get = async (id: string, column: string) => {
    const q = conn.quote;
    const [row] = await conn.query<Record<string, string>>(`SELECT ${q(column)} AS v FROM ${q('User')} WHERE ${q('id')} = ${conn.placeholder(1)}`, [id]);
    return row!.v!;
  };

  test('passes a healthy table and reports each broken value by primary key and field, never by content', async () => {
    await seedUsers(conn, provider, keys.before, 40);
    const clean = await verify({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 7, logger: silentLogger });
    expect(clean).toMatchObject({ ok: true, rows: 40, failedCount: 0, complete: true });
    expect(clean.values).toBe(40 + 26); // every email, and the names of users not divisible by 3

    const email1 = await get(userId(1), 'email');
    // One character of the ciphertext flipped.
    await set(userId(1), 'email', `${email1.slice(0, -2)}${email1.at(-2) === 'A' ? 'B' : 'A'}${email1.slice(-1)}`);
    await set(userId(2), 'emailIndex', codec(provider, keys.before, 'User', 'email').indexForWrite('someone-else@example.org'));
    await set(userId(5), 'emailIndex', null);
    await set(userId(7), 'name', 'Plain Name In A Strict Column');
    await set(userId(8), 'name', (await get(userId(10), 'email')).replace('pce:v1:d1:', 'pce:v1:d9:'));
    await set(userId(11), 'emailIndex', 'i9:AAAA');

    const audit = capturingLogger();
    const report = await verify({ connection: conn, schema, keyring: keys.after, model: 'User', batchSize: 7, logger: audit.logger });
    expect(report.ok).toBe(false);
    expect(report.failedCount).toBe(6);
    expect(report.failures).toEqual([
      { model: 'User', key: { id: userId(1) }, field: 'email', problem: 'authentication-failed', keyId: 'd1' },
      { model: 'User', key: { id: userId(2) }, field: 'email', problem: 'index-mismatch', keyId: 'i1' },
      { model: 'User', key: { id: userId(5) }, field: 'email', problem: 'index-missing' },
      { model: 'User', key: { id: userId(7) }, field: 'name', problem: 'not-ciphertext' },
      { model: 'User', key: { id: userId(8) }, field: 'name', problem: 'unknown-key', keyId: 'd9' },
      { model: 'User', key: { id: userId(11) }, field: 'email', problem: 'index-unknown-key', keyId: 'i9' },
    ]);
    const log = audit.text();
    expect(log).toContain(`"row":"id=${userId(7)}"`);
    for (const secret of ['Plain Name', emailOf(1), emailOf(2), nameOf(8)]) expect(log).not.toContain(secret);
  });

  test('accepts legacy plaintext in passthrough fields but still checks its index', async () => {
    const q = conn.quote;
    await conn.execute(`INSERT INTO ${q('LegacyContact')} (${q('email')}, ${q('notes')}) VALUES ('legacy@example.org', 'old notes')`);
    const report = await verify({ connection: conn, schema, keyring: keys.after, model: 'LegacyContact', logger: silentLogger });
    // notes: accepted plaintext; email: plaintext too, but without the index lookups need.
    expect(report.models[0]).toMatchObject({ rows: 1, values: 2, plaintext: 1, failed: 1 });
    expect(report.failures).toEqual([{ model: 'LegacyContact', key: { id: expect.anything() }, field: 'email', problem: 'index-missing' }]);
  });
});
