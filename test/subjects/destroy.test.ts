import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import type { DestroyOutput } from '../../src/cli/destroyCommand';
import { KeyDestroyRefusedError, KeyringError, loadKeyring, readKeyringFile, SubjectKeyStore, subjectRef } from '../../src';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, KMS_RETRY, tempDir } from '../keys/support';
import { createHarness, providers, type Harness } from '../support/clients';
import { prismaProvider, schemaFile } from './subjectSupport';

/**
 * `keys destroy <wrap key id>` (issue 11): the step that ends old backups, removing a retired
 * wrap key (an old epoch) from the keyring file, atomically, under the keyring lock. Refused for a
 * key that is not retired, for a data or index key, and while the database still has a live or
 * pending subject key under it. A KMS-wrapped entry's key version is named as the operator's step.
 */
describe.each(providers())('keys destroy on %s', (provider) => {
  const dir = tempDir();
  let h: Harness;
  let kms: FakeKms | undefined;
  beforeAll(async () => {
    kms = provider === 'postgres' ? await FakeKms.start() : undefined;
  });
  afterAll(async () => {
    await h?.close();
    await kms?.close();
    dir.remove();
  });

  /** The key commands in-process: stdout, the error if it failed, and the audit events. */
  async function keys(file: string, ...args: string[]) {
    let out = '';
    const log = captureLogger();
    const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (t) => void (out += t) });
    const env = { PCE_KEYRING_FILE: file, ...(h ? { DATABASE_URL: h.db.url } : {}) };
    registerKeyCommands(program, { env, write: (t) => void (out += t), logger: log.logger, ...(kms ? { gcpKms: { clientOptions: kms.clientOptions() }, retry: KMS_RETRY } : {}) });
    const error = await program.parseAsync(['node', 'prisma-column-encryption', 'keys', ...args]).then(() => undefined, (e: Error) => e);
    return { out, error, events: log.events() };
  }
  const schema = ['--schema', schemaFile(provider)];
  const ok = async (file: string, ...args: string[]) => {
    const run = await keys(file, ...args);
    expect(run.error).toBeUndefined();
    return run;
  };
  /** Runs a refused destroy: the file is byte for byte what it was. */
  async function refused(file: string, ...args: string[]) {
    const before = readFileSync(file, 'utf8');
    const run = await keys(file, 'destroy', ...args);
    expect(run.error).toBeDefined();
    expect(readFileSync(file, 'utf8')).toBe(before);
    return run;
  }

  test('refuses a key that is not retired, one that still wraps a live subject key, and data keys; then removes the retired wrap key and says what else must go', async () => {
    const file = dir.file('keyring.json');
    for (const args of [['data', '--id', 'd1'], ['index', '--id', 'i1'], ['wrap', '--id', 'w-old'], ['wrap', '--id', 'w-new']]) await ok(file, 'generate', '--purpose', args[0]!, '--local', ...args.slice(1));
    await ok(file, 'promote', 'w-new');
    const oldEpoch = await loadKeyring({ file });
    h = await createHarness(provider, { keys: oldEpoch });

    const active = await refused(file, 'w-old', ...schema);
    expect(active.error).toBeInstanceOf(KeyDestroyRefusedError);
    expect(active.error).toMatchObject({ refusal: 'not-retired', keyId: 'w-old', message: expect.stringContaining('retire it first (prisma-column-encryption keys retire w-old)') });
    expect((await refused(file, 'nope', ...schema)).error).toEqual(expect.objectContaining({ message: expect.stringContaining("key 'nope': is not in the keyring") }));
    await ok(file, 'retire', 'w-old', ...schema);

    // An instance still on the old epoch writes a key under w-old after the retire (or a restore brings one back).
    const stale = new SubjectKeyStore({ keys: { primaryWrap: oldEpoch.wrapKey('w-old'), wrapKey: (id) => oldEpoch.wrapKey(id) }, provider: prismaProvider(provider) });
    const live = await stale.keyForSubject(h.plain, subjectRef('Client', 'still-here'));
    const inUse = await refused(file, 'w-old', ...schema, '--json');
    expect(inUse.error).toMatchObject({ refusal: 'key-in-use', message: expect.stringMatching(/still wraps 1 subject key that is not erased.*keys reactivate w-old.*keys rotate-epoch/) });
    expect(JSON.parse(inUse.out)).toMatchObject({ destroyed: false, keyId: 'w-old', error: { failure: 'key-in-use', keyId: 'w-old' }, scanned: { fields: 1, rows: 1 } });
    expect(inUse.events.filter((e) => e.event === 'pce.key.destroy_refused')).toEqual([expect.objectContaining({ keyId: 'w-old', values: 1 })]);

    // Erased (a tombstone): nothing needs the wrap key any more.
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = NULL, wrap_key_id = NULL, subject_id = NULL, erased_at = $1 WHERE key_id = $2`, [new Date(), live.id]);
    const entriesBefore = (await readKeyringFile(file)).keys;
    const mode = statSync(file).mode;
    const done = await ok(file, 'destroy', 'w-old', ...schema);
    expect(done.out).toContain(`destroyed wrap key w-old: no live or pending subject key is under it; its entry is removed from ${file}`);
    expect(done.out).toMatch(/every other copy of this keyring file .* and every backup of it still holds the key: destroy those too/);
    expect(done.out).not.toContain('KMS key version');
    expect((await readKeyringFile(file)).keys).toEqual(entriesBefore.filter((k) => k.id !== 'w-old'));
    expect(statSync(file).mode).toBe(mode);
    expect(readdirSync(dirname(file)).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'))).toEqual([]);
    const event = done.events.find((e) => e.event === 'pce.key.destroyed')!;
    expect(Object.keys(event).filter((k) => !['level', 'time', 'pid', 'hostname', 'name', 'component', 'msg', 'event'].includes(k)).sort()).toEqual(['keyId', 'purpose']);
    expect(event).toMatchObject({ keyId: 'w-old', purpose: 'wrap' });
    expect((await loadKeyring({ file })).wrapKey('w-old')).toBeUndefined();
    expect((await refused(file, 'w-old', ...schema)).error).toBeInstanceOf(KeyringError);

    // A retired data key: refused, with what destroying it would take.
    await ok(file, 'generate', '--purpose', 'data', '--local', '--id', 'd2', '--primary');
    await ok(file, 'retire', 'd1', ...schema);
    const data = await refused(file, 'd1', ...schema);
    expect(data.error).toMatchObject({ refusal: 'not-a-wrap-key', message: expect.stringMatching(/^key 'd1': is a data key: keys destroy removes only wrap keys .* backups taken before it was rotated away/) });
  });

  (provider === 'postgres' ? test : test.skip)('a KMS-wrapped wrap key: the entry goes, and destroying its KMS key version is named as the operator\'s step', async () => {
    const file = dir.file('kms.json');
    const kmsKey = kms!.createKey('app', 'destroy');
    await ok(file, 'generate', '--purpose', 'data', '--local', '--id', 'd1');
    await ok(file, 'generate', '--purpose', 'index', '--kms-key', kmsKey, '--id', 'i1');
    await ok(file, 'generate', '--purpose', 'wrap', '--local', '--id', 'w-now');
    await ok(file, 'generate', '--purpose', 'wrap', '--kms-key', kmsKey, '--id', 'w-kms');
    await ok(file, 'retire', 'w-kms', ...schema);
    const version = (await readKeyringFile(file)).keys.find((k) => k.id === 'w-kms') as { kmsKeyVersion: string };
    const run = await ok(file, 'destroy', 'w-kms', ...schema, '--json');
    const out = JSON.parse(run.out) as DestroyOutput;
    expect(out).toMatchObject({ destroyed: true, keyId: 'w-kms', purpose: 'wrap', source: 'gcp-kms', kmsKeyVersion: version.kmsKeyVersion, sameKmsKeyVersion: ['i1'], keyring: file, error: null });
    expect(run.events.find((e) => e.event === 'pce.key.destroyed')).toMatchObject({ keyId: 'w-kms', kmsKeyVersion: version.kmsKeyVersion });
    expect((await readKeyringFile(file)).keys.map((k) => k.id)).toEqual(['d1', 'i1', 'w-now']);
    // The human lines, on a second retired KMS entry.
    await ok(file, 'generate', '--purpose', 'wrap', '--kms-key', kmsKey, '--id', 'w-kms2');
    await ok(file, 'retire', 'w-kms2', ...schema);
    const human = await ok(file, 'destroy', 'w-kms2', ...schema);
    expect(human.out).toMatch(new RegExp(`wrapped by KMS key version ${version.kmsKeyVersion.replace(/[/]/g, '\\/')}: while that version exists, an old copy of the keyring file can still be unwrapped`));
    expect(human.out).toContain('Destroying the version in the KMS is your step');
    expect(human.out).toContain('i1 still is, so run keys rewrap --skip-retired first');
  });
});
