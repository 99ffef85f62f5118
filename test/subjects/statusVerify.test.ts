import { forgetSubject, loadKeyring, SubjectKeyStore, type Keyring, type TransactionalClient } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { tempDir } from '../keys/support';
import { runCli } from '../migrate/migrateSupport';
import { cli, prismaProvider, schemaFile, subjectFields, writePerson } from './subjectSupport';

/**
 * `status` and `verify` on subject models (issue 11): status counts subject keys per wrap key
 * (live, pending, erased) and values under subject keys; verify decrypts those values with their
 * subjects' keys, counts erased ones apart, unwraps every subject key and reports the ones that fail.
 */
jest.setTimeout(240_000);

describe.each(providers())('status and verify with subject keys on %s', (provider) => {
  const dir = tempDir();
  let h: Harness;
  let file: string;
  let keyring: Keyring;

  beforeAll(async () => {
    file = dir.file('keyring.json');
    for (const purpose of ['data', 'index', 'wrap']) await cli({ PCE_KEYRING_FILE: file }, 'keys', 'generate', '--purpose', purpose, '--local');
    keyring = await loadKeyring({ file });
    h = await createHarness(provider, { keys: keyring });
  });
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  test('status counts subject keys and their values; verify passes, erased values apart, then finds a stale index and a swapped key', async () => {
    const store = new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) });
    const people = [];
    for (let i = 0; i < 3; i++) people.push(await writePerson(h, store, keyring, `v${i}-${provider}@example.org`, 'Career'));
    await store.reserve(h.plain);
    await forgetSubject(h.plain as unknown as TransactionalClient, people[0]!.id, { fields: subjectFields(provider), model: 'Person' });
    const env = { DATABASE_URL: h.db.url, PCE_KEYRING_FILE: file };
    const args = ['--schema', schemaFile(provider), '--json', '--quiet'];
    const wrapId = keyring.primaryWrap!.id;

    const status = await runCli(['status', ...args], env);
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as { subjectKeys: unknown; fields: Array<{ model: string; field: string; byKey: Record<string, number> }> };
    expect(s.subjectKeys).toEqual({ byWrapKey: { [wrapId]: { live: 2, pending: 1 } }, live: 2, pending: 1, erased: 1 });
    expect(s.fields.find((f) => f.model === 'Person' && f.field === 'email')!.byKey).toEqual({ '(subject-keys)': 3 });
    const human = await runCli(['status', '--schema', schemaFile(provider), '--quiet'], env);
    expect(human.stdout).toContain(`subject keys: 2 live, 1 pending (wrap keys ${wrapId}*=3), 1 erased`);

    const ok = await runCli(['verify', ...args], env);
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as { ok: boolean; subjectKeys: unknown; models: Array<{ model: string; erased: number; failed: number; values: number }> };
    expect(report.ok).toBe(true);
    expect(report.subjectKeys).toEqual({ checked: 3, failed: 0 });
    expect(report.models.find((m) => m.model === 'Person')).toMatchObject({ values: 6, erased: 2, failed: 0 });
    expect(report.models.find((m) => m.model === 'PersonReading')).toMatchObject({ erased: 4, failed: 0 });

    // A restored backup without `forget --replay`: the erased person's index is back.
    await h.sql(`UPDATE ${h.q('Person')} SET ${h.q('emailIndex')} = $1 WHERE ${h.q('id')} = $2`, ['i-0:stale', people[0]!.id]);
    // A wrapped key copied onto another subject's row does not unwrap there.
    const [donor] = await h.sql<{ wrapped_key: string }>(`SELECT wrapped_key FROM pce_subject_keys WHERE key_id = $1`, [people[1]!.keyId]);
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = $1 WHERE key_id = $2`, [donor!.wrapped_key, people[2]!.keyId]);
    const bad = await runCli(['verify', ...args], env);
    expect(bad.code).toBe(1);
    const failures = (JSON.parse(bad.stdout) as { failures: Array<{ model: string; field: string; problem: string }> }).failures;
    expect(failures).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ model: 'Person', field: 'email', problem: 'erased-subject-index' }),
        expect.objectContaining({ model: 'Person', field: 'email', problem: 'authentication-failed' }),
        expect.objectContaining({ model: 'PceSubjectKey', field: 'wrappedKey', problem: 'authentication-failed' }),
      ]),
    );
    expect(bad.stdout).not.toContain(donor!.wrapped_key);
  });
});
