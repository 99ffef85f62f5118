import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encryptedFields } from '../../generated/postgres/encryption';
import { FieldCodec } from '../../src/codec/fieldCodec';
import type { ChosenKey, KeyChoice } from '../../src/codec/keyChoice';
import { parseCiphertext } from '../../src/crypto/ciphertext';
import { KeyringError, localKeys, SubjectErasedError, SubjectKeyStore, type SqlClient, type SubjectKeyLookup } from '../../src';
import { newSubjectKey, rewrapSubjectKey, unwrapSubjectKey, wrapSubjectKey } from '../../src/subjects';
import { createHarness, providers, type Harness } from '../support/clients';

/**
 * The per-subject key store (issue 11): wrapping, race-free creation, reserve/bind, batched and
 * cached loading, against real databases. Values are written with FieldCodec under the store's
 * keys, so these tests do not depend on the extension.
 */
const b64 = () => randomBytes(32).toString('base64');
const keySpecs = { data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }] };
const w1 = { id: 'w1', key: b64() };
const w2 = { id: 'w2', key: b64() };
const keyring = localKeys({ ...keySpecs, wrap: [w1] });

const ids = (n: number) => Array.from({ length: n }, (_, i) => `subject-${i}-${randomBytes(3).toString('hex')}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Prisma client's raw SQL, counting the statements that reach the database. */
function counting(db: SqlClient): SqlClient & { queries: number } {
  const counter = {
    queries: 0,
    $queryRawUnsafe<T>(q: string, ...v: unknown[]) {
      counter.queries++;
      return db.$queryRawUnsafe<T>(q, ...v);
    },
    $executeRawUnsafe(q: string, ...v: unknown[]) {
      counter.queries++;
      return db.$executeRawUnsafe(q, ...v);
    },
  };
  return counter;
}

/** A KeyChoice writing under one subject key: what the extension does per row. */
function subjectChoice(key: ChosenKey): KeyChoice {
  return {
    forWrite: () => key,
    forRead: (scope, id) => (scope === 'subject' && id === key.id ? key : 'unknown-key'),
    indexKeys: (binding) => keyring.indexKeysFor(binding),
  };
}

describe('the shipped subject-key SQL', () => {
  test('is exactly what the test databases are migrated with, on both providers', () => {
    const root = join(__dirname, '..', '..');
    for (const [provider, folder] of [['postgres', 'postgresql'], ['mysql', 'mysql']] as const) {
      const shipped = readFileSync(join(root, 'sql', folder, 'subject_keys.sql'), 'utf8');
      const migration = readFileSync(join(root, 'prisma', provider, 'migrations', '20261202000000_subject_keys', 'migration.sql'), 'utf8');
      expect(shipped).toContain('CREATE TABLE');
      expect(migration.startsWith(shipped.trimEnd())).toBe(true);
    }
  });
});

describe('subject key wrapping (pure)', () => {
  const wrap = keyring.primaryWrap!.key;
  const other = localKeys({ ...keySpecs, wrap: [w2] }).primaryWrap!.key;

  test('a wrapped key unwraps to the same key only under its wrap key and its own key id', () => {
    const fresh = newSubjectKey(wrap);
    const back = unwrapSubjectKey(wrap, fresh.id, fresh.wrapped)!;
    expect(back.export().equals(fresh.key.export())).toBe(true);
    expect(unwrapSubjectKey(other, fresh.id, fresh.wrapped)).toBeUndefined();
    // Copied onto another row (another key id): the associated data no longer matches.
    expect(unwrapSubjectKey(wrap, newSubjectKey(wrap).id, fresh.wrapped)).toBeUndefined();
    const [nonce, sealed] = fresh.wrapped.split('.');
    const flipped = `${nonce}.${sealed!.slice(0, 5)}${sealed![5] === 'A' ? 'B' : 'A'}${sealed!.slice(6)}`;
    expect(unwrapSubjectKey(wrap, fresh.id, flipped)).toBeUndefined();
    expect(unwrapSubjectKey(wrap, fresh.id, 'not-wrapped')).toBeUndefined();
  });

  test('wrapping is randomised, and a rewrap moves a key to another wrap key without changing it', () => {
    const fresh = newSubjectKey(wrap);
    const bytes = fresh.key.export();
    expect(wrapSubjectKey(wrap, fresh.id, bytes)).not.toBe(wrapSubjectKey(wrap, fresh.id, bytes));
    const moved = rewrapSubjectKey(wrap, other, fresh.id, fresh.wrapped)!;
    expect(unwrapSubjectKey(wrap, fresh.id, moved)).toBeUndefined();
    expect(unwrapSubjectKey(other, fresh.id, moved)!.export().equals(bytes)).toBe(true);
    expect(rewrapSubjectKey(other, wrap, fresh.id, fresh.wrapped)).toBeUndefined();
  });
});

describe.each(providers())('subject key store on %s', (provider) => {
  let h: Harness;
  let store: SubjectKeyStore;
  const prismaProvider = provider === 'mysql' ? 'mysql' : 'postgresql';
  const keyRows = (where: string, params: unknown[] = []) =>
    h.sql<{ key_id: string; subject_id: string | null; wrap_key_id: string | null; wrapped_key: string | null; erased_at: unknown }>(
      `SELECT key_id, subject_id, wrap_key_id, wrapped_key, erased_at FROM pce_subject_keys WHERE ${where}`,
      params,
    );
  const newStore = (options: Partial<ConstructorParameters<typeof SubjectKeyStore>[0]> = {}) =>
    new SubjectKeyStore({ keys: keyring, provider: prismaProvider, ...options });

  beforeAll(async () => {
    h = await createHarness(provider, { keys: keyring });
    store = newStore();
  });
  afterAll(async () => {
    await h?.close();
  });

  test('the first write creates a key wrapped under the epoch; the table holds no key bytes', async () => {
    const [alice] = ids(1) as [string];
    const key = await store.keyForSubject(h.plain, alice);
    expect(key.scope).toBe('subject');
    expect(key.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect((await store.keyForSubject(h.plain, alice)).id).toBe(key.id);
    // Another process (an empty cache) gets the same key from the row.
    const again = await newStore().keyForSubject(h.plain, alice);
    expect(again.id).toBe(key.id);
    expect(again.key.export().equals(key.key.export())).toBe(true);

    const [row] = await keyRows('subject_id = $1', [alice]);
    expect(row).toMatchObject({ key_id: key.id, subject_id: alice, wrap_key_id: 'w1', erased_at: null });
    const bytes = key.key.export();
    const everything = JSON.stringify(await keyRows('1 = 1'));
    for (const form of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('base64').slice(0, 16)]) {
      expect(everything).not.toContain(form);
    }
    // Only the wrapped form is there, and it unwraps under w1 alone.
    expect(unwrapSubjectKey(keyring.wrapKey('w1')!.key, key.id, row!.wrapped_key!)!.export().equals(bytes)).toBe(true);
  });

  test('integer and string subject ids are stored as text; ids the table cannot hold exactly are refused', async () => {
    const n = 700_000 + Math.floor(Math.random() * 100_000);
    const key = await store.keyForSubject(h.plain, n);
    expect((await store.keyForSubject(h.plain, String(n))).id).toBe(key.id);
    expect((await store.keyForSubject(h.plain, BigInt(n))).id).toBe(key.id);
    await expect(store.keyForSubject(h.plain, 'x'.repeat(192))).rejects.toThrow('1 to 191 characters');
    await expect(store.keyForSubject(h.plain, '')).rejects.toThrow('1 to 191 characters');
    await expect(store.keyForSubject(h.plain, 1.5)).rejects.toThrow('string or an integer');
    // Case matters: 'abc' and 'ABC' are two subjects on both databases.
    const suffix = randomBytes(4).toString('hex');
    const lower = await store.keyForSubject(h.plain, `case-${suffix}`);
    const upper = await store.keyForSubject(h.plain, `CASE-${suffix}`);
    expect(upper.id).not.toBe(lower.id);
  });

  test('concurrent first writes for one subject, from separate processes, create exactly one key', async () => {
    for (const subject of ids(3)) {
      const results = await Promise.all(
        Array.from({ length: 6 }, () =>
          h.plain.$transaction(
            async (tx) => {
              const key = await newStore().keyForSubject(tx as unknown as SqlClient, subject);
              await sleep(30); // hold the transaction open so the others overlap it
              return key;
            },
            { timeout: 20_000, maxWait: 20_000 },
          ),
        ),
      );
      expect(new Set(results.map((k) => k.id)).size).toBe(1);
      expect(new Set(results.map((k) => k.key.export().toString('hex'))).size).toBe(1);
      expect(await keyRows('subject_id = $1', [subject])).toHaveLength(1);
    }
  });

  test('a key created in a transaction that rolls back is gone with it', async () => {
    const [subject] = ids(1) as [string];
    await expect(
      h.plain.$transaction(async (tx) => {
        await store.keyForSubject(tx as unknown as SqlClient, subject);
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(await keyRows('subject_id = $1', [subject])).toHaveLength(0);
  });

  test('an erased subject gets no key (and leaves no row) unless reuse is allowed', async () => {
    const [subject] = ids(1) as [string];
    await h.sql(`INSERT INTO pce_erasures (subject_id, erased_at) VALUES ($1, $2)`, [subject, new Date()]);
    const error = await store.keyForSubject(h.plain, subject).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SubjectErasedError);
    expect((error as Error).message).not.toContain(subject);
    expect(await keyRows('subject_id = $1', [subject])).toHaveLength(0);
    const reused = await store.keyForSubject(h.plain, subject, { allowReuse: true });
    expect(await keyRows('subject_id = $1', [subject])).toEqual([expect.objectContaining({ key_id: reused.id })]);
  });

  test('reserve gives a pending key; bind gives it its subject once, never to an erased or taken subject', async () => {
    const [subject, taken, erased] = ids(3) as [string, string, string];
    const key = await store.reserve(h.plain);
    expect(await keyRows('key_id = $1', [key.id])).toEqual([expect.objectContaining({ subject_id: null, wrap_key_id: 'w1' })]);
    await store.bind(h.plain, key.id, subject);
    expect((await keyRows('key_id = $1', [key.id]))[0]!.subject_id).toBe(subject);
    expect((await newStore().keyForSubject(h.plain, subject)).id).toBe(key.id);
    await expect(store.bind(h.plain, key.id, subject)).rejects.toThrow(KeyringError);

    await store.keyForSubject(h.plain, taken);
    const second = await store.reserve(h.plain);
    await expect(store.bind(h.plain, second.id, taken)).rejects.toThrow(); // the unique subject_id
    expect((await keyRows('key_id = $1', [second.id]))[0]!.subject_id).toBeNull();

    await h.sql(`INSERT INTO pce_erasures (subject_id, erased_at) VALUES ($1, $2)`, [erased, new Date()]);
    await expect(store.bind(h.plain, second.id, erased)).rejects.toThrow(SubjectErasedError);
    await store.bind(h.plain, second.id, erased, { allowReuse: true });
  });

  test('load reads the keys of a whole result in one query per 1000 ids, then from the cache', async () => {
    // 1200 keys as the store writes them, inserted in bulk (creation is tested above).
    const created = new Map<string, ChosenKey>();
    const wrap = keyring.primaryWrap!.key;
    const fresh = ids(1200).map((subject) => ({ subject, ...newSubjectKey(wrap) }));
    for (let i = 0; i < fresh.length; i += 300) {
      const part = fresh.slice(i, i + 300);
      await h.sql(
        `INSERT INTO pce_subject_keys (key_id, subject_id, wrap_key_id, wrapped_key) VALUES ${part.map((_, j) => `($${4 * j + 1}, $${4 * j + 2}, $${4 * j + 3}, $${4 * j + 4})`).join(', ')}`,
        part.flatMap((k) => [k.id, k.subject, 'w1', k.wrapped]),
      );
    }
    for (const k of fresh) created.set(k.id, { scope: 'subject', id: k.id, key: k.key });
    const reader = newStore();
    const db = counting(h.plain as unknown as SqlClient);
    const unknown = 'AAAAAAAAAAAAAAAAAAAAAA';
    const found = await reader.load(db, [...created.keys(), unknown, ...[...created.keys()].slice(0, 10)]);
    expect(db.queries).toBe(2);
    expect(found.get(unknown)).toBe('unknown-key');
    for (const [id, key] of created) expect((found.get(id) as ChosenKey).key.export().equals(key.key.export())).toBe(true);
    await reader.load(db, [...created.keys()]);
    expect(db.queries).toBe(2);
  });

  test('load tells erased, unknown, retired and tampered keys apart', async () => {
    const [a, b, c, d] = ids(4) as [string, string, string, string];
    const keys = await Promise.all([a, b, c, d].map((s) => store.keyForSubject(h.plain, s)));
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = NULL, wrap_key_id = NULL, subject_id = NULL, erased_at = $1 WHERE key_id = $2`, [new Date(), keys[0]!.id]);
    const fresh = newStore();
    const first = await fresh.load(h.plain, keys.map((k) => k.id));
    expect(first.get(keys[0]!.id)).toBe('subject-erased');
    expect(typeof first.get(keys[1]!.id)).toBe('object');
    // The same rows read with keyrings that lack w1: destroyed (unknown) or retired.
    const noW1 = localKeys({ ...keySpecs, wrap: [w2] });
    const destroyed = new SubjectKeyStore({ keys: noW1, provider: prismaProvider });
    expect((await destroyed.load(h.plain, [keys[1]!.id])).get(keys[1]!.id)).toBe('unknown-key');
    const retired = new SubjectKeyStore({ keys: Object.assign(Object.create(noW1) as typeof noW1, { isRetired: (id: string) => id === 'w1' }), provider: prismaProvider });
    expect((await retired.load(h.plain, [keys[1]!.id])).get(keys[1]!.id)).toBe('retired-key');
    // A wrapped key copied from another row does not unwrap for this one.
    const [other] = await keyRows('key_id = $1', [keys[3]!.id]);
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = $1 WHERE key_id = $2`, [other!.wrapped_key, keys[2]!.id]);
    expect((await newStore().load(h.plain, [keys[2]!.id])).get(keys[2]!.id)).toBe('authentication-failed');
    await expect(newStore().keyForSubject(h.plain, c)).rejects.toThrow(KeyringError);
  });

  test('the cache is bounded in size and lifetime, and evict drops one key', async () => {
    const keys = await Promise.all(ids(3).map((s) => store.keyForSubject(h.plain, s)));
    const small = newStore({ cache: { max: 2, ttlMs: 200 } });
    const db = counting(h.plain as unknown as SqlClient);
    for (const k of keys) await small.load(db, [k.id]);
    expect(db.queries).toBe(3);
    await small.load(db, [keys[1]!.id, keys[2]!.id]);
    expect(db.queries).toBe(3); // the two most recent are cached
    await small.load(db, [keys[0]!.id]);
    expect(db.queries).toBe(4); // the oldest was pushed out
    small.evict(keys[0]!.id);
    await small.load(db, [keys[0]!.id]);
    expect(db.queries).toBe(5);
    await sleep(300);
    await small.load(db, [keys[0]!.id]);
    expect(db.queries).toBe(6); // expired
  });

  test('values under a subject key are v2 scope s at rest and decrypt only with that key', async () => {
    const [subject] = ids(1) as [string];
    const key = await store.keyForSubject(h.plain, subject);
    const codec = new FieldCodec('Person', 'email', encryptedFields.models.Person!.encrypted.email!, keyring, { keys: subjectChoice(key) });
    const email = `${subject}@example.org`;
    const person = await h.plain.person.create({ data: { email: codec.encrypt(email), emailIndex: codec.indexForWrite(email) } });
    const [raw] = await h.sql<{ email: string }>(`SELECT ${h.q('email')} FROM ${h.q('Person')} WHERE ${h.q('id')} = $1`, [person.id]);
    expect(raw!.email).not.toContain(email);
    const parsed = parseCiphertext(raw!.email);
    expect(parsed).toMatchObject({ kind: 'ciphertext', value: { version: 'v2', scope: 'subject', keyId: key.id } });
    // A reader loads the key by the id in the envelope and decrypts.
    const loaded = (await newStore().load(h.plain, [key.id])).get(key.id) as SubjectKeyLookup;
    const reader = new FieldCodec('Person', 'email', encryptedFields.models.Person!.encrypted.email!, keyring, { keys: subjectChoice(loaded as ChosenKey) });
    expect(reader.decrypt(raw!.email)).toBe(email);
    // The shared keyring's keys do not open it.
    const shared = new FieldCodec('Person', 'email', encryptedFields.models.Person!.encrypted.email!, keyring, () => undefined);
    expect(() => shared.decrypt(raw!.email)).toThrow('cannot decrypt');
  });

  test('a keyring without a wrap key cannot create subject keys', async () => {
    const none = new SubjectKeyStore({ keys: localKeys(keySpecs), provider: prismaProvider });
    await expect(none.keyForSubject(h.plain, ids(1)[0]!)).rejects.toThrow('keys generate --purpose wrap');
    await expect(none.reserve(h.plain)).rejects.toThrow(KeyringError);
  });
});
