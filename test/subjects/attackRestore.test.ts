import { randomBytes } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';
import { PrismaClient } from '../../generated/postgres/client/client';
import { encryptedFields } from '../../generated/postgres/encryption';
import { columnEncryption, ErasureLedger, forgetSubject, localKeys, replayErasures, SubjectErasedError, type TransactionalClient } from '../../src';
import { tempDir } from '../keys/support';
import { silentLogger } from '../support/clients';
import { createDatabase, type TestDatabase } from '../support/databases';

/**
 * A restored copy (`CREATE DATABASE .. TEMPLATE`, as backup.test.ts makes them) attacked the way a
 * careless operator would (issue 11, PostgreSQL): the application already serving, and writing for
 * the erased person, before `forget --replay`; a client whose cache read the person from the copy.
 * After the replay nothing of the person is readable or findable there, and writes are refused.
 */
const b64 = () => randomBytes(32).toString('base64');
const keyring = localKeys({ data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }], wrap: [{ id: 'w1', key: b64() }] });
const admin = () => process.env.PCE_TEST_POSTGRES_ADMIN_URL!;
const caught = (p: PromiseLike<unknown>) => Promise.resolve(p).then((v) => ({ value: v }), (e: unknown) => e);

async function copyOf(source: TestDatabase): Promise<TestDatabase> {
  const name = `pce_attack_copy_${randomBytes(4).toString('hex')}`;
  const a = new Client({ connectionString: admin() });
  await a.connect();
  await a.query(`CREATE DATABASE "${name}" TEMPLATE "${source.name}"`).finally(() => a.end());
  const url = new URL(source.url);
  url.pathname = `/${name}`;
  return { provider: 'postgres', url: url.toString(), name, drop: async () => {
    const d = new Client({ connectionString: admin() });
    await d.connect();
    await d.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => d.end());
  } };
}

function clients(db: TestDatabase) {
  const plain = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
  const app = plain.$extends(columnEncryption({ fields: encryptedFields, keys: keyring, logger: silentLogger }));
  return { plain, app, end: () => plain.$disconnect() };
}

describe('a restored copy attacked before and after forget --replay (PostgreSQL)', () => {
  const dir = tempDir();
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const d of databases) await d.drop();
    dir.remove();
  });

  test('writes made for the erased person before the replay, and a cache warmed on the copy, are erased by the replay', async () => {
    const live = await createDatabase('postgres', admin(), 'pce_attack_live');
    databases.push(live);
    let c = clients(live);
    const a = await c.app.person.create({ data: { email: 'a@restore.example', name: 'A', readings: { create: [{ text: 'a secret', topic: 'Restore' }] } } });
    const b = await c.app.person.create({ data: { email: 'b@restore.example', name: 'B', readings: { create: [{ text: 'b kept', topic: 'restore' }] } } });
    await c.end();
    const backup = await copyOf(live);
    databases.push(backup);

    const ledger = new ErasureLedger(dir.file('ledger.jsonl'));
    c = clients(live);
    await forgetSubject(c.plain as unknown as TransactionalClient, a.id, { fields: encryptedFields, model: 'Person', ledger, logger: silentLogger });
    await c.end();

    // Restored, and the application starts serving before anyone replays the ledger.
    const restored = await copyOf(backup);
    databases.push(restored);
    const r = clients(restored);
    expect((await r.app.person.findUnique({ where: { id: a.id } }))!.name).toBe('A'); // documented: a copy inside the window reads
    const early = await r.app.personReading.create({ data: { personId: a.id, text: 'written before the replay', topic: 'Early' } });
    await r.app.personProfile.create({ data: { personId: a.id, bio: 'profile before the replay' } });

    expect(await replayErasures(r.plain as unknown as TransactionalClient, ledger, { fields: encryptedFields, logger: silentLogger })).toMatchObject({ subjects: 1, keysDestroyed: 1, newlyRecorded: 1 });
    // The same client, its cache warm: erased at once, the early writes with the rest.
    for (const read of [
      () => r.app.person.findUnique({ where: { id: a.id } }),
      () => r.app.personReading.findUnique({ where: { id: early.id } }),
      () => r.app.personProfile.findUnique({ where: { personId: a.id } }),
      () => r.app.person.findUnique({ where: { id: a.id } }).readings(),
    ]) {
      expect(await caught(read())).toMatchObject({ reason: 'subject-erased' });
    }
    expect(await r.app.person.findFirst({ where: { email: 'a@restore.example' } })).toBeNull();
    expect((await r.app.personReading.findMany({ where: { topic: 'RESTORE' } })).map((x) => x.text)).toEqual(['b kept']);
    expect(await r.app.personReading.findFirst({ where: { topic: 'early' } })).toBeNull();
    expect(await caught(r.app.personReading.create({ data: { personId: a.id, text: 'after' } }))).toBeInstanceOf(SubjectErasedError);
    expect((await r.app.person.findUnique({ where: { id: b.id } }))!.name).toBe('B');
    await r.end();
  });
});
