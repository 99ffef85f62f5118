import { loadKeyring, rotateEpoch, SubjectKeyStore, type Keyring, type TransactionalClient } from '../../src';
import { newSubjectKey } from '../../src/subjects';
import { createHarness, providers, type Harness } from '../support/clients';
import { tempDir } from '../keys/support';
import { cli, prismaProvider, readEmail, schemaFile, writePerson } from './subjectSupport';

/**
 * Epochs (issue 11): `keys rotate-epoch` re-wraps every live subject key under the primary wrap
 * key in batches; then the old wrap key can be retired, and keys still under it (an old backup's)
 * stay unreadable. Through the CLI, on both databases.
 */
describe.each(providers())('keys rotate-epoch on %s', (provider) => {
  const dir = tempDir();
  let h: Harness;
  let file: string;
  let keyring: Keyring;
  const wrapOf = async (keyId: string) => (await h.sql<{ w: string | null }>(`SELECT wrap_key_id AS w FROM pce_subject_keys WHERE key_id = $1`, [keyId]))[0]!.w;
  const newStore = (keys: Keyring) => new SubjectKeyStore({ keys, provider: prismaProvider(provider) });

  beforeAll(async () => {
    file = dir.file('keyring.json');
    for (const args of [['data'], ['index'], ['wrap', '--id', 'w-2026-11']]) await cli({ PCE_KEYRING_FILE: file }, 'keys', 'generate', '--purpose', args[0]!, '--local', ...args.slice(1));
    keyring = await loadKeyring({ file });
    h = await createHarness(provider, { keys: keyring });
  });
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  test('re-wraps live and pending keys in batches, leaves tombstones alone; then the old epoch retires and the data stays readable', async () => {
    const store = newStore(keyring);
    const people = [];
    for (let i = 0; i < 5; i++) people.push(await writePerson(h, store, keyring, `p${i}-${provider}@example.org`, 'Career'));
    const pending = await store.reserve(h.plain);
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = NULL, wrap_key_id = NULL, subject_id = NULL, erased_at = $1 WHERE key_id = $2`, [new Date(), people[4]!.keyId]);

    const env = { PCE_KEYRING_FILE: file, DATABASE_URL: h.db.url };
    await cli(env, 'keys', 'generate', '--purpose', 'wrap', '--local', '--id', 'w-2026-12', '--primary');
    // The retire is refused while the old epoch still wraps keys.
    expect((await cli(env, 'keys', 'retire', 'w-2026-11', '--schema', schemaFile(provider))).error?.message).toContain('keys rotate-epoch');

    const run = await cli(env, 'keys', 'rotate-epoch', '--schema', schemaFile(provider), '--batch-size', '2', '--json');
    expect(run.error).toBeUndefined();
    expect(JSON.parse(run.out)).toMatchObject({ wrapKeyId: 'w-2026-12', rewrapped: 5, from: { 'w-2026-11': 5 }, failed: [], batches: 3 });
    expect(run.events.find((e) => e.event === 'pce.subject.epoch_rotated')).toMatchObject({ wrapKeyId: 'w-2026-12', rewrapped: 5, failed: 0 });
    for (const p of people.slice(0, 4)) expect(await wrapOf(p.keyId)).toBe('w-2026-12');
    expect(await wrapOf(pending.id)).toBe('w-2026-12');
    expect(await wrapOf(people[4]!.keyId)).toBeNull();
    // Nothing left to do: a second run re-wraps nothing.
    expect(JSON.parse((await cli(env, 'keys', 'rotate-epoch', '--schema', schemaFile(provider), '--json')).out)).toMatchObject({ rewrapped: 0, batches: 1 });

    expect((await cli(env, 'keys', 'retire', 'w-2026-11', '--schema', schemaFile(provider))).error).toBeUndefined();
    const next = await loadKeyring({ file });
    expect(next.wrapKey('w-2026-11')).toBeUndefined();
    for (const p of people.slice(0, 4)) expect(await readEmail(h, newStore(next), next, p.id)).toMatch(/^p\d-/);
    expect(await readEmail(h, newStore(next), next, people[4]!.id)).toBe('subject-erased');
  });

  test('a key under a wrap key the keyring lacks is reported and left as it is (exit code 1); a failed batch changes nothing', async () => {
    const stray = newSubjectKey((await loadKeyring({ file })).primaryWrap!.key);
    await h.sql(`INSERT INTO pce_subject_keys (key_id, subject_id, wrap_key_id, wrapped_key) VALUES ($1, $2, $3, $4)`, [stray.id, `stray-${provider}`, 'w-elsewhere', stray.wrapped]);
    const env = { PCE_KEYRING_FILE: file, DATABASE_URL: h.db.url };
    await cli(env, 'keys', 'generate', '--purpose', 'wrap', '--local', '--id', 'w-2027-01', '--primary');
    const current = await loadKeyring({ file });
    const people = [await writePerson(h, newStore(current), current, `q-${provider}@example.org`, 'Love')];
    const before = process.exitCode;
    const run = await cli(env, 'keys', 'rotate-epoch', '--schema', schemaFile(provider), '--json');
    expect(process.exitCode).toBe(1);
    process.exitCode = before;
    const report = JSON.parse(run.out) as { failed: Array<{ keyId: string; wrapKeyId: string; reason: string }>; rewrapped: number };
    expect(report.failed).toEqual([{ keyId: stray.id, wrapKeyId: 'w-elsewhere', reason: 'unknown-key' }]);
    expect(await wrapOf(stray.id)).toBe('w-elsewhere');
    expect(await wrapOf(people[0]!.keyId)).toBe('w-2027-01');

    // A batch whose transaction fails rolls back: every key stays under its wrap key, readable.
    await cli(env, 'keys', 'generate', '--purpose', 'wrap', '--local', '--id', 'w-2027-02', '--primary');
    const latest = await loadKeyring({ file });
    const failing: TransactionalClient = {
      $queryRawUnsafe: (q, ...v) => h.plain.$queryRawUnsafe(q, ...v),
      $executeRawUnsafe: (q, ...v) => h.plain.$executeRawUnsafe(q, ...v),
      $transaction: (run) =>
        h.plain.$transaction(async (tx) => {
          await run(tx as never);
          throw new Error('connection lost before commit');
        }),
    };
    await expect(rotateEpoch(failing, latest, { fields: { provider: prismaProvider(provider) } })).rejects.toThrow('connection lost');
    expect(await wrapOf(people[0]!.keyId)).toBe('w-2027-01');
    expect(await readEmail(h, newStore(latest), latest, people[0]!.id)).toMatch(/^q-/);
  });
});
