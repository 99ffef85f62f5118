import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FakeKms } from '../kms/fakeKms';
import { tempDir } from './support';

const run = promisify(execFile);
const BIN = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

/**
 * The installed executable (`npm run build` output, as `npm test` builds it first): commands,
 * environment variables, exit codes and the audit log on stderr.
 */
describe('prisma-column-encryption keys (built executable)', () => {
  let kms: FakeKms;
  const dir = tempDir();

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error('dist/cli/main.js is missing: run `npm run build` (npm test does)');
    kms = await FakeKms.start();
  });
  afterAll(async () => {
    await kms.close();
    dir.remove();
  });

  const env = (file: string) => ({ ...process.env, PCE_KEYRING_FILE: file, PCE_KMS_ENDPOINT: `127.0.0.1:${kms.port}`, PCE_LOG_LEVEL: 'info' });
  const keys = (file: string, ...args: string[]) => run(process.execPath, [BIN, 'keys', ...args], { env: env(file) });

  test('generate through PCE_KMS_ENDPOINT and PCE_KMS_KEY, list as JSON, audit on stderr', async () => {
    const file = dir.file('bin.json');
    const kmsKey = kms.createKey('bin', 'k');
    const gen = await run(process.execPath, [BIN, 'keys', 'generate', '--purpose', 'data', '--id', 'd1'], { env: { ...env(file), PCE_KMS_KEY: kmsKey } });
    expect(gen.stdout).toContain(`generated data key d1 (gcp-kms, ${kmsKey}/cryptoKeyVersions/1)`);
    expect(JSON.parse(gen.stderr.trim().split('\n')[0]!)).toMatchObject({ event: 'pce.key.generated', keyId: 'd1', source: 'gcp-kms' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { stdout } = await keys(file, 'list', '--json');
    expect(JSON.parse(stdout)).toEqual({
      keys: [expect.objectContaining({ id: 'd1', status: 'primary', source: 'gcp-kms', kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/1`, protectionLevel: 'SOFTWARE' })],
      policy: null,
    });
  });

  test('--audit-log sends the audit events to a file, leaving stderr empty; --version', async () => {
    const file = dir.file('audit-keyring.json');
    const log = dir.file('audit.log');
    const gen = await keys(file, 'generate', '--local', '--purpose', 'data', '--id', 'd1', '--audit-log', log);
    expect(gen.stdout).toContain('generated data key d1');
    expect(gen.stderr).toBe('');
    expect(readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l).event)).toEqual(['pce.key.generated', 'pce.key.primary_changed']);
    const { stdout } = await run(process.execPath, [BIN, '--version']);
    expect(stdout.trim()).toBe(JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
  });

  test('a failure exits 1 with the typed message on stderr', async () => {
    const file = dir.file('fail.json');
    const missing = 'projects/pce-test/locations/global/keyRings/bin/cryptoKeys/missing';
    const error = (await keys(file, 'generate', '--purpose', 'data', '--kms-key', missing).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(error.code).toBe(1);
    expect(error.stderr).toContain(`key 'd-`);
    expect(error.stderr).toContain(`cannot wrap with gcp-kms key ${missing}: the KMS key does not exist (NOT_FOUND)`);
    expect(existsSync(file)).toBe(false);
  });

  test('with --json a failure prints { error } on stdout for scripts, and the message on stderr', async () => {
    const file = dir.file('json-fail.json');
    const error = (await keys(file, 'promote', 'nope', '--json').catch((e: unknown) => e)) as { code: number; stdout: string; stderr: string };
    expect(error.code).toBe(1);
    expect(error.stderr).toContain(`keyring file ${file} does not exist`);
    expect(JSON.parse(error.stdout)).toEqual({ error: { code: 'PCE_KEYRING', keyId: null, failure: null, message: expect.stringContaining('does not exist') } });
  });

  test('no Google credentials with a remote (TLS) endpoint: a typed error and exit code 1, not a crash', async () => {
    const file = dir.file('no-creds.json');
    const home = dir.file('home');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      CLOUDSDK_CONFIG: home,
      // Not on Google Cloud: do not look for a metadata server.
      METADATA_SERVER_DETECTION: 'none',
      PCE_KEYRING_FILE: file,
      PCE_KMS_ENDPOINT: 'kms.example.invalid:443',
      PCE_KMS_KEY: 'projects/p/locations/global/keyRings/r/cryptoKeys/k',
    };
    const error = (await run(process.execPath, [BIN, 'keys', 'generate', '--purpose', 'data', '--id', 'd1', '--json'], { env }).catch((e: unknown) => e)) as {
      code: number;
      stdout: string;
      stderr: string;
    };
    expect(error.code).toBe(1);
    expect(JSON.parse(error.stdout).error).toMatchObject({ code: 'PCE_KEYRING', keyId: 'd1', failure: 'unauthenticated' });
    expect(error.stderr).toContain("key 'd1': cannot wrap with gcp-kms key projects/p/locations/global/keyRings/r/cryptoKeys/k: no valid credentials");
    expect(error.stderr).toContain('"event":"pce.kms.failed"');
    expect(error.stderr).not.toMatch(/Could not load the default credentials|Node\.js v\d/);
    expect(existsSync(file)).toBe(false);
  });
});
