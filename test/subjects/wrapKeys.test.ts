import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import { loadKeyring, localKeys, readKeyringFile } from '../../src';
import { localKeysFromEnv } from '../../src/keys/local';
import { join } from 'node:path';
import { KeyInUseError, SubjectKeyStore } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { captureLogger, tempDir } from '../keys/support';

const ROOT = join(__dirname, '..', '..');

/** The `wrap` key purpose (issue 11): key-encryption keys for per-subject keys; the primary is the epoch. */
const b64 = () => randomBytes(32).toString('base64');

async function keysCli(file: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined });
  registerKeyCommands(program, { env: { PCE_KEYRING_FILE: file, ...env }, write: (t) => void (out += t), logger: captureLogger().logger });
  await program.parseAsync(['node', 'prisma-column-encryption', 'keys', ...args]);
  return out;
}

describe('wrap keys', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  const keys = (file: string, ...args: string[]) => keysCli(file, {}, ...args);

  test('keys generate --purpose wrap adds a wrap key; the first is primary (the epoch) and loads as primaryWrap', async () => {
    const file = dir.file('wrap.json');
    await keys(file, 'generate', '--purpose', 'data', '--local');
    await keys(file, 'generate', '--purpose', 'index', '--local');
    const first = await keys(file, 'generate', '--purpose', 'wrap', '--local');
    expect(first).toMatch(/generated wrap key w-[0-9a-f]{6} \(local\)/);
    await keys(file, 'generate', '--purpose', 'wrap', '--local', '--id', 'epoch-2');
    const doc = await readKeyringFile(file);
    const wraps = doc.keys.filter((k) => k.purpose === 'wrap');
    expect(wraps.map((k) => k.status)).toEqual(['primary', 'active']);
    let keyring = await loadKeyring({ file });
    expect(keyring.primaryWrap?.id).toBe(wraps[0]!.id);
    expect(keyring.wrapKey('epoch-2')).toBeDefined();
    expect(keyring.dataKey('epoch-2')).toBeUndefined(); // a wrap key never encrypts values
    await keys(file, 'promote', 'epoch-2');
    keyring = await loadKeyring({ file });
    expect(keyring.primaryWrap?.id).toBe('epoch-2');
    expect(keyring.describe().filter((k) => k.primary).map((k) => k.purpose).sort()).toEqual(['data', 'index', 'wrap']);
    // The epoch schedule is a rotation policy of the wrap purpose.
    expect(await keys(file, 'policy', '--wrap-max-age-days', '30')).toContain('wrap keys at most 30 days primary');
    expect((await readKeyringFile(file)).policy).toEqual({ wrap: { maxAgeDays: 30 } });
  });

  test('a keyring without wrap keys is valid; local keys take them in code and from PCE_WRAP_KEYS', () => {
    const spec = { data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }] };
    expect(localKeys(spec).primaryWrap).toBeUndefined();
    const two = localKeys({ ...spec, wrap: [{ id: 'w1', key: b64() }, { id: 'w2', key: b64() }], primaryWrapKey: 'w2' });
    expect(two.primaryWrap?.id).toBe('w2');
    expect(two.wrapKey('w1')).toBeDefined();
    const env = { PCE_DATA_KEYS: `d1:${b64()}`, PCE_INDEX_KEYS: `i1:${b64()}`, PCE_WRAP_KEYS: `w9:${b64()},w8:${b64()}` };
    expect(localKeysFromEnv(env).primaryWrap?.id).toBe('w9');
    expect(localKeysFromEnv({ ...env, PCE_WRAP_KEYS: '' }).primaryWrap).toBeUndefined();
    // The same bytes as a data key are refused: each key has one job.
    const shared = b64();
    expect(() => localKeys({ data: [{ id: 'd1', key: shared }], index: spec.index, wrap: [{ id: 'w1', key: shared }] })).toThrow('same key bytes');
    expect(() => localKeys({ ...spec, wrap: [{ id: 'w1', key: b64() }], primaryWrapKey: 'nope' })).toThrow("primary wrap key");
  });
});

describe.each(providers())('keys retire of a wrap key on %s', (provider) => {
  const dir = tempDir();
  let h: Harness;
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  test('is refused while it wraps a live or pending subject key, and allowed once none is left under it', async () => {
    const file = dir.file('retire.json');
    for (const args of [['data'], ['index'], ['wrap', '--id', 'w-old'], ['wrap', '--id', 'w-new']]) {
      await keysCli(file, {}, 'generate', '--purpose', args[0]!, '--local', ...args.slice(1));
    }
    await keysCli(file, {}, 'promote', 'w-new');
    const keyring = await loadKeyring({ file });
    h = await createHarness(provider, { keys: keyring });
    const env = { DATABASE_URL: h.db.url };
    const schema = ['--schema', join(ROOT, 'prisma', provider, 'schema.prisma')];
    // A key wrapped under w-old: what an instance still on the old epoch wrote.
    const oldEpoch = await loadKeyring({ file });
    const store = new SubjectKeyStore({ keys: { primaryWrap: oldEpoch.wrapKey('w-old'), wrapKey: (id) => oldEpoch.wrapKey(id) }, provider: provider === 'mysql' ? 'mysql' : 'postgresql' });
    const live = await store.keyForSubject(h.plain, 'someone');
    const pending = await store.reserve(h.plain);

    const refused = await keysCli(file, env, 'retire', 'w-old', ...schema).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KeyInUseError);
    expect((refused as Error).message).toContain('still wraps 2 subject keys');
    expect((refused as Error).message).toContain('keys rotate-epoch');
    expect((await readKeyringFile(file)).keys.find((k) => k.id === 'w-old')!.status).toBe('active');

    await h.sql(`DELETE FROM pce_subject_keys WHERE key_id = $1`, [pending.id]);
    await expect(keysCli(file, env, 'retire', 'w-old', ...schema)).rejects.toThrow('still wraps 1 subject key that is not erased');
    // Erased (a tombstone): no longer needs any wrap key.
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = NULL, wrap_key_id = NULL, subject_id = NULL, erased_at = $1 WHERE key_id = $2`, [new Date(), live.id]);
    expect(await keysCli(file, env, 'retire', 'w-old', ...schema)).toContain('retired wrap key w-old');
    expect((await loadKeyring({ file })).wrapKey('w-old')).toBeUndefined();
  });
});
