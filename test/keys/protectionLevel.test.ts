import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import type { ListOutput } from '../../src/cli/keyOutput';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, KMS_RETRY, tempDir } from './support';

/** `keys generate --protection-level` and the levels `keys list` shows, read from the (fake) Cloud KMS. */
describe('HSM protection level checks (local Cloud KMS)', () => {
  let kms: FakeKms;
  const dir = tempDir();
  beforeAll(async () => {
    kms = await FakeKms.start();
  });
  afterAll(async () => {
    await kms.close();
    dir.remove();
  });

  function cli(file: string) {
    return async (...args: string[]): Promise<{ out: string; error?: Error }> => {
      let out = '';
      const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined });
      registerKeyCommands(program, {
        env: { PCE_KEYRING_FILE: file },
        write: (t) => void (out += t),
        logger: captureLogger().logger,
        gcpKms: { clientOptions: kms.clientOptions() },
        retry: KMS_RETRY,
      });
      const error = await program.parseAsync(['node', 'x', ...args]).then(() => undefined, (e: Error) => e);
      return { out, ...(error ? { error } : {}) };
    };
  }
  const list = async (run: ReturnType<typeof cli>) => JSON.parse((await run('keys', 'list', '--json')).out) as ListOutput;

  test('a SOFTWARE key is refused before anything is wrapped or written', async () => {
    const file = dir.file('soft.json');
    const software = kms.createKey('app', 'soft');
    kms.reset();
    const { error } = await cli(file)('keys', 'generate', '--purpose', 'data', '--kms-key', software, '--protection-level', 'hsm', '--id', 'd9');
    expect(error?.message).toBe(`key 'd9': KMS key ${software} has protection level SOFTWARE, not HSM; nothing was written (use a KMS key created with --protection-level hsm)`);
    expect(kms.calls.encrypt).toBe(0);
    expect(existsSync(file)).toBe(false);
  });

  test('an HSM key is accepted; keys list --json shows each key protection level', async () => {
    const file = dir.file('hsm.json');
    const run = cli(file);
    const hsm = kms.createKey('app', 'hsm', 'HSM');
    expect((await run('keys', 'generate', '--purpose', 'data', '--kms-key', hsm, '--protection-level', 'hsm', '--id', 'd1')).error).toBeUndefined();
    await run('keys', 'generate', '--purpose', 'index', '--kms-key', kms.createKey('app', 'soft2'), '--id', 'i1');
    await run('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd0');
    expect((await list(run)).keys.map((k) => [k.id, k.protectionLevel])).toEqual([
      ['d1', 'HSM'],
      ['i1', 'SOFTWARE'],
      ['d0', null],
    ]);
    expect(JSON.parse(readFileSync(file, 'utf8')).keys[0].protectionLevel).toBe('HSM');
    expect((await run('keys', 'list')).out.split('\n')[1]).toMatch(/^d1\s+data\s+primary\s+gcp-kms\s+HSM\s/);
    expect((await run('keys', 'generate', '--purpose', 'data', '--local', '--protection-level', 'hsm')).error?.message).toMatch(/needs a KMS key/);
  });

  test('an HSM key whose primary version is software is refused; rewrap records the new version level', async () => {
    const file = dir.file('mixed.json');
    const run = cli(file);
    const key = kms.createKey('app', 'mixed', 'HSM');
    await run('keys', 'generate', '--purpose', 'data', '--kms-key', key, '--id', 'd1');
    kms.rotate(key, 'SOFTWARE');
    const refused = await run('keys', 'generate', '--purpose', 'data', '--kms-key', key, '--protection-level', 'hsm', '--id', 'd2');
    expect(refused.error?.message).toMatch(/has protection level SOFTWARE, not HSM; nothing was written/);
    expect((await list(run)).keys.map((k) => k.id)).toEqual(['d1']);
    await run('keys', 'rewrap');
    expect((await list(run)).keys.map((k) => [k.id, k.kmsKeyVersion, k.protectionLevel])).toEqual([['d1', `${key}/cryptoKeyVersions/2`, 'SOFTWARE']]);
  });
});
