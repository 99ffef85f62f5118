import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import {
  ErasureLedger,
  forgetSubject,
  localKeys,
  reinstateSubject,
  replayErasures,
  SubjectErasedError,
  SubjectKeyStore,
  subjectRef,
  type SqlClient,
  type TransactionalClient,
} from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { FieldCodec } from '../../src/codec/fieldCodec';
import { tempDir } from '../keys/support';
import { cli, codec, indexesOf, pausingAfterFirstStatement, prismaProvider, readEmail, schemaFile, subjectFields, writePerson } from './subjectSupport';

/**
 * Erasure (issue 11): forget destroys a subject's key, nulls its blind indexes, records it in
 * the database and in the ledger file; replay re-applies the ledger after a restore; reinstate
 * makes an id usable again. Through the CLI where operators use it, on both databases.
 */
const b64 = () => randomBytes(32).toString('base64');
const keyring = localKeys({ data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }], wrap: [{ id: 'w1', key: b64() }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the erasure ledger file', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  test('appends owner-only JSON lines; a torn last line is skipped and reported, a bad line elsewhere is an error naming its number', async () => {
    const ledger = new ErasureLedger(dir.file('ledger.jsonl'));
    await expect(ledger.read()).rejects.toThrow('cannot read the erasure ledger');
    expect(await ledger.read({ allowMissing: true })).toEqual({ entries: [], tornLastLine: false });
    await ledger.append({ root: 'Client', subjectId: 'a', erasedAt: '2026-12-01T10:00:00.000Z' });
    await ledger.append({ root: 'Client', subjectId: 'a', reinstatedAt: '2026-12-01T11:00:00.000Z' });
    expect(statSync(ledger.path).mode & 0o777).toBe(0o600);
    expect(readFileSync(ledger.path, 'utf8')).toBe('{"root":"Client","subjectId":"a","erasedAt":"2026-12-01T10:00:00.000Z"}\n{"root":"Client","subjectId":"a","reinstatedAt":"2026-12-01T11:00:00.000Z"}\n');
    writeFileSync(ledger.path, '{"root":"Client","subjectId":"b","erasedAt":"2026', { flag: 'a' });
    expect(await ledger.read()).toEqual({
      entries: [{ root: 'Client', subjectId: 'a', erasedAt: '2026-12-01T10:00:00.000Z' }, { root: 'Client', subjectId: 'a', reinstatedAt: '2026-12-01T11:00:00.000Z' }],
      tornLastLine: true,
    });
    writeFileSync(ledger.path, '\n{"subjectId":"c","erasedAt":"2026-12-01T10:00:00.000Z"}\n', { flag: 'a' }); // no root
    await expect(ledger.read()).rejects.toThrow(/line 3 is not a ledger entry/);
  });
});

describe.each(providers())('forget, replay and reinstate on %s', (provider) => {
  let h: Harness;
  let store: SubjectKeyStore;
  const fields = subjectFields(provider);
  const dir = tempDir();
  const newStore = () => new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) });
  const tx = () => h.plain as unknown as TransactionalClient;
  const keyRow = async (keyId: string) =>
    (await h.sql<{ subject_id: string | null; wrap_key_id: string | null; wrapped_key: string | null; erased_at: unknown }>(`SELECT subject_id, wrap_key_id, wrapped_key, erased_at FROM pce_subject_keys WHERE key_id = $1`, [keyId]))[0];
  const erasures = async (ref: string) => (await h.sql(`SELECT subject_id FROM pce_erasures WHERE subject_id = $1`, [ref])).length;
  const person = (id: number) => subjectRef('Person', id);
  const client = (id: string) => subjectRef('Client', id);

  beforeAll(async () => {
    h = await createHarness(provider, { keys: keyring });
    store = newStore();
  });
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  test('forget <id> through the CLI: the key becomes a tombstone, the indexes go, other subjects stay readable, later writes are refused', async () => {
    const a = await writePerson(h, store, keyring, `a-${randomBytes(3).toString('hex')}@example.org`, 'Career');
    const b = await writePerson(h, store, keyring, `b-${randomBytes(3).toString('hex')}@example.org`, 'Career');
    const ledger = dir.file(`forget-${provider}.jsonl`);
    const env = { DATABASE_URL: h.db.url };
    const run = await cli(env, 'forget', String(a.id), '--model', 'Person', '--ledger', ledger, '--schema', schemaFile(provider));
    expect(run.error).toBeUndefined();
    expect(run.out).toContain('erased: 1 key destroyed');

    expect(await keyRow(a.keyId)).toEqual({ subject_id: null, wrap_key_id: null, wrapped_key: null, erased_at: expect.anything() });
    expect(await erasures(person(a.id))).toBe(1);
    const [line] = readFileSync(ledger, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line).toEqual({ root: 'Person', subjectId: String(a.id), erasedAt: expect.stringMatching(/^\d{4}-/) });
    // The audit event has counts only.
    const event = run.events.find((e) => e.event === 'pce.subject.erased')!;
    expect(Object.keys(event).filter((k) => !['level', 'time', 'pid', 'hostname', 'component', 'msg', 'event'].includes(k)).sort()).toEqual(['alreadyErased', 'keysDestroyed', 'ledger', 'models', 'rowsOutsideSubjectKey', 'rowsUnindexed']);

    expect(await readEmail(h, newStore(), keyring, a.id)).toBe('subject-erased');
    expect(await readEmail(h, newStore(), keyring, b.id)).toMatch(/^b-/);
    // This process's store had A's key cached: another process's erasure reaches it after the TTL; evict is immediate.
    store.evict(a.keyId);
    expect(await readEmail(h, store, keyring, a.id)).toBe('subject-erased');

    await expect(store.keyForSubject(h.plain, person(a.id))).rejects.toThrow(SubjectErasedError);
    const reserved = await store.reserve(h.plain);
    await expect(store.bind(h.plain, reserved.id, person(a.id))).rejects.toThrow(SubjectErasedError);
    // With several subject id spaces in the schema, the CLI needs to be told which.
    expect((await cli(env, 'forget', String(b.id), '--ledger', ledger, '--schema', schemaFile(provider))).error?.message).toContain('several subject id spaces (Client, Person)');

    // Forgetting again changes nothing and says so.
    const again = await cli(env, 'forget', String(a.id), '--model', 'Person', '--ledger', ledger, '--schema', schemaFile(provider), '--json');
    expect(JSON.parse(again.out)).toMatchObject({ keysDestroyed: 0, alreadyErased: true });
    expect(readFileSync(ledger, 'utf8').trim().split('\n')).toHaveLength(2);
    // Without a ledger the CLI refuses: an erasure that a restore could undo unnoticed is not offered.
    expect((await cli(env, 'forget', String(b.id), '--model', 'Person', '--schema', schemaFile(provider))).error?.message).toContain('--ledger');
    expect(await readEmail(h, newStore(), keyring, b.id)).toMatch(/^b-/);
  });

  test('forgetSubject nulls the blind indexes of every subject model for that subject only, and evicts the keys from the store it is given', async () => {
    const a = await writePerson(h, store, keyring, `c-${randomBytes(3).toString('hex')}@example.org`, 'Love');
    const b = await writePerson(h, store, keyring, `d-${randomBytes(3).toString('hex')}@example.org`, 'Love');
    expect(await readEmail(h, store, keyring, a.id)).toMatch(/^c-/); // cached in `store`
    const report = await forgetSubject(tx(), a.id, { fields, model: 'PersonReading', store, ledger: new ErasureLedger(dir.file(`api-${provider}.jsonl`)) });
    expect(report).toEqual({ keysDestroyed: 1, alreadyErased: false, rowsUnindexed: { Person: 1, PersonReading: 2 }, rowsOutsideSubjectKey: {} });
    expect(await indexesOf(h, a.id)).toEqual([null, null, null]);
    expect((await indexesOf(h, b.id)).every((i) => typeof i === 'string')).toBe(true);
    expect(await readEmail(h, store, keyring, a.id)).toBe('subject-erased');
    await expect(forgetSubject(tx(), b.id, { fields })).rejects.toThrow('several subject id spaces');
    await expect(forgetSubject(tx(), b.id, { fields, model: 'User' })).rejects.toThrow('User: is not a subject model');
    expect((await indexesOf(h, b.id)).every((i) => typeof i === 'string')).toBe(true);
  });

  test('forget reports, per model, the subject\'s rows still holding plaintext or shared-key values (erasure does not reach them), and the CLI warns', async () => {
    const p = await writePerson(h, store, keyring, `o-${randomBytes(3).toString('hex')}@example.org`, 'Love');
    const shared = new FieldCodec('PersonReading', 'text', fields.models.PersonReading!.encrypted.text!, keyring);
    const env = { DATABASE_URL: h.db.url };
    // A reading written before the model had a subject (shared key), and one inserted as plaintext past the extension.
    await h.plain.personReading.create({ data: { personId: p.id, text: shared.encrypt('an old reading') } });
    await h.plain.personReading.create({ data: { personId: p.id, text: 'plaintext reading' } });
    const other = await writePerson(h, store, keyring, `q-${randomBytes(3).toString('hex')}@example.org`, 'Love');
    await h.plain.personReading.create({ data: { personId: other.id, text: 'another person, plaintext' } });
    const ledger = dir.file(`outside-${provider}.jsonl`);
    const run = await cli(env, 'forget', String(p.id), '--model', 'Person', '--ledger', ledger, '--schema', schemaFile(provider), '--json');
    expect(JSON.parse(run.out)).toMatchObject({ keysDestroyed: 1, rowsOutsideSubjectKey: { PersonReading: 2 } });
    const text = await cli(env, 'forget', String(other.id), '--model', 'Person', '--ledger', ledger, '--schema', schemaFile(provider));
    expect(text.out).toContain('warning: PersonReading: 1 row of this subject still holds plaintext or shared-key values');
    expect(text.out).not.toContain('another person');
    // The audit event has the count, nothing else about the rows.
    expect(text.events.find((e) => e.event === 'pce.subject.erased')).toMatchObject({ rowsOutsideSubjectKey: 1 });
    // An id nobody holds is recorded, with a warning that nothing was found.
    const nobody = await cli(env, 'forget', '987654321', '--model', 'Person', '--ledger', ledger, '--schema', schemaFile(provider));
    expect(nobody.out).toContain('warning: no key and no row of this subject were found');
    expect(text.out).not.toContain('no key and no row');
    // A subject whose values are all under its key reports none.
    const clean = await writePerson(h, store, keyring, `r-${randomBytes(3).toString('hex')}@example.org`, 'Work');
    expect((await forgetSubject(tx(), clean.id, { fields, model: 'Person' })).rowsOutsideSubjectKey).toEqual({});
  });

  test('subjects are keyed per id space: forgetting Person n leaves the Client whose id is the text n', async () => {
    const p = await writePerson(h, store, keyring, `g-${randomBytes(3).toString('hex')}@example.org`, 'Work');
    const namesake = String(p.id);
    const key = await store.keyForSubject(h.plain, client(namesake));
    expect(key.id).not.toBe(p.keyId);
    const email = codec(keyring, 'Client', 'email', [key]);
    await h.plain.client.create({ data: { id: namesake, email: email.encrypt('namesake@example.org'), emailIndex: email.indexForWrite('namesake@example.org') } });
    expect(await forgetSubject(tx(), p.id, { fields, model: 'Person' })).toMatchObject({ keysDestroyed: 1, rowsUnindexed: { Person: 1, PersonReading: 2 } });
    expect((await keyRow(key.id))!.wrapped_key).not.toBeNull();
    expect((await h.sql<{ i: string | null }>(`SELECT ${h.q('emailIndex')} AS i FROM ${h.q('Client')} WHERE ${h.q('id')} = $1`, [namesake]))[0]!.i).not.toBeNull();
    expect((await newStore().keyForSubject(h.plain, client(namesake))).id).toBe(key.id);
    expect(await erasures(client(namesake))).toBe(0);
    // And the other way round.
    expect(await forgetSubject(tx(), namesake, { fields, model: 'Client' })).toMatchObject({ keysDestroyed: 1, rowsUnindexed: { Client: 1 } });
    expect(await erasures(client(namesake))).toBe(1);
  });

  test('a write racing an erasure is either erased with the rest or refused', async () => {
    // 1. The writer holds the key (shared lock) when forget starts: forget waits, then destroys it.
    const id = `race-${randomBytes(4).toString('hex')}`;
    const subject = client(id);
    await store.keyForSubject(h.plain, subject);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let writerKey = '';
    const writer = h.plain.$transaction(async (t) => {
      writerKey = (await newStore().keyForSubject(t as unknown as SqlClient, subject)).id;
      await held;
    }, { timeout: 30_000 });
    await sleep(200);
    let forgotten = false;
    const forget = forgetSubject(tx(), id, { fields, model: 'Client' }).then((r) => ((forgotten = true), r));
    await sleep(300);
    expect(forgotten).toBe(false); // waiting for the writer's lock
    release();
    await writer;
    expect((await forget).keysDestroyed).toBe(1);
    expect((await keyRow(writerKey))!.wrapped_key).toBeNull();

    // 2. A first write while forget holds its lock: it waits, then finds the subject erased, and leaves no key.
    const freshId = `race-${randomBytes(4).toString('hex')}`;
    const fresh = client(freshId);
    let paused = false;
    const slowForget = forgetSubject(pausingAfterFirstStatement(tx(), 500, () => (paused = true)), freshId, { fields, model: 'Client' });
    while (!paused) await sleep(5);
    const firstWrite = h.plain.$transaction((t) => newStore().keyForSubject(t as unknown as SqlClient, fresh), { timeout: 30_000 }).catch((e: unknown) => e);
    await slowForget;
    const outcome = await firstWrite;
    // The store runs in the caller's transaction here: on MariaDB its waiting INSERT IGNORE can instead
    // lose an InnoDB deadlock (1213) against forget's locks, and the caller's transaction is rolled back,
    // a refusal too. Through the extension such a write is retried in its own transaction (only
    // SubjectErasedError reaches the caller) or reported as WriteDeadlockError in the caller's: deadlock.test.ts.
    const deadlock = (outcome as { meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } }).meta?.driverAdapterError?.cause?.originalCode === '1213';
    expect(outcome instanceof SubjectErasedError || (provider === 'mysql' && deadlock)).toBe(true);
    expect(await h.sql(`SELECT key_id FROM pce_subject_keys WHERE subject_id = $1`, [fresh])).toEqual([]);
  });

  test('forget --replay after a restore destroys the restored keys again, records the erasures and nulls the indexes', async () => {
    const ledgerPath = dir.file(`replay-${provider}.jsonl`);
    const a = await writePerson(h, store, keyring, `e-${randomBytes(3).toString('hex')}@example.org`, 'Health');
    const b = await writePerson(h, store, keyring, `f-${randomBytes(3).toString('hex')}@example.org`, 'Health');
    // What a backup taken now holds of A.
    const keyBefore = (await h.sql<Record<string, unknown>>(`SELECT key_id, subject_id, wrap_key_id, wrapped_key FROM pce_subject_keys WHERE key_id = $1`, [a.keyId]))[0]!;
    const indexesBefore = await h.sql<{ id: unknown; i: string }>(`SELECT ${h.q('id')} AS id, ${h.q('topicIndex')} AS i FROM ${h.q('PersonReading')} WHERE ${h.q('personId')} = $1`, [a.id]);
    await forgetSubject(tx(), a.id, { fields, model: 'Person', ledger: new ErasureLedger(ledgerPath) });
    // "Restore": A's key row, its readings' indexes, and no erasure record, as in the backup.
    await h.sql(`UPDATE pce_subject_keys SET subject_id = $1, wrap_key_id = $2, wrapped_key = $3, erased_at = NULL WHERE key_id = $4`, [keyBefore.subject_id, keyBefore.wrap_key_id, keyBefore.wrapped_key, a.keyId]);
    for (const r of indexesBefore) await h.sql(`UPDATE ${h.q('PersonReading')} SET ${h.q('topicIndex')} = $1 WHERE ${h.q('id')} = $2`, [r.i, r.id]);
    await h.sql(`DELETE FROM pce_erasures WHERE subject_id = $1`, [person(a.id)]);
    expect(await readEmail(h, newStore(), keyring, a.id)).toMatch(/^e-/); // the restore brought A back

    const run = await cli({ DATABASE_URL: h.db.url }, 'forget', '--replay', '--ledger', ledgerPath, '--schema', schemaFile(provider), '--json');
    expect(run.error).toBeUndefined();
    expect(JSON.parse(run.out)).toMatchObject({ entries: 1, subjects: 1, keysDestroyed: 1, newlyRecorded: 1, reinstated: 0 });
    expect(await readEmail(h, newStore(), keyring, a.id)).toBe('subject-erased');
    expect(await readEmail(h, newStore(), keyring, b.id)).toMatch(/^f-/);
    expect(await erasures(person(a.id))).toBe(1);
    // The CLI builds its map from the schema file, the generator's subject map: the restored indexes are gone.
    expect((await indexesOf(h, a.id)).slice(1)).toEqual([null, null]);
    expect((await indexesOf(h, b.id)).every((i) => typeof i === 'string')).toBe(true);
    // Idempotent, through the API too.
    expect(await replayErasures(tx(), new ErasureLedger(ledgerPath), { fields })).toMatchObject({ keysDestroyed: 0, newlyRecorded: 0 });
    expect(await indexesOf(h, a.id)).toEqual([null, null, null]);
    expect((await indexesOf(h, b.id)).every((i) => typeof i === 'string')).toBe(true);
    expect(await replayErasures(tx(), new ErasureLedger(ledgerPath), { fields })).toMatchObject({ keysDestroyed: 0, newlyRecorded: 0 });
  });

  test('reinstateSubject makes an erased id usable again; a later replay keeps its new key and still destroys the old one', async () => {
    const ledger = new ErasureLedger(dir.file(`reinstate-${provider}.jsonl`));
    const id = `re-${randomBytes(4).toString('hex')}`;
    const subject = client(id);
    const old = await store.keyForSubject(h.plain, subject);
    const oldRow = (await h.sql<Record<string, unknown>>(`SELECT subject_id, wrap_key_id, wrapped_key FROM pce_subject_keys WHERE key_id = $1`, [old.id]))[0]!;
    await forgetSubject(tx(), id, { fields, model: 'Client', ledger });
    await sleep(10);
    expect(await reinstateSubject(tx(), id, { fields, model: 'Client', ledger })).toEqual({ wasErased: true });
    expect(await erasures(subject)).toBe(0);
    const renewed = await store.keyForSubject(h.plain, subject);
    expect(renewed.id).not.toBe(old.id);
    // The live database: replay keeps the new key.
    expect(await replayErasures(tx(), ledger, { fields })).toMatchObject({ keysDestroyed: 0, reinstated: 1 });
    expect((await keyRow(renewed.id))!.wrapped_key).not.toBeNull();
    // A backup from before the erasure: its old key goes, the id stays usable.
    await h.sql(`DELETE FROM pce_subject_keys WHERE key_id = $1`, [renewed.id]);
    await h.sql(`UPDATE pce_subject_keys SET subject_id = $1, wrap_key_id = $2, wrapped_key = $3, erased_at = NULL WHERE key_id = $4`, [oldRow.subject_id, oldRow.wrap_key_id, oldRow.wrapped_key, old.id]);
    expect(await replayErasures(tx(), ledger, { fields })).toMatchObject({ keysDestroyed: 1, reinstated: 1 });
    expect((await keyRow(old.id))!.wrapped_key).toBeNull();
    expect(await erasures(subject)).toBe(0);
    await newStore().keyForSubject(h.plain, subject);
  });
});
