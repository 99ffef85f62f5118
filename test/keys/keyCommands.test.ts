import { Command } from 'commander';
import { execFile } from 'node:child_process';
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KeyCommandDeps } from '../../src/cli/keyCommands';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import { DecryptionError } from '../../src/errors';
import { loadKeyring } from '../../src/keys/loadKeyring';
import { createHarness, type Harness } from '../support/clients';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, FAST_RETRY, tempDir } from './support';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const SCHEMA = join(ROOT, 'prisma', 'postgres', 'schema.prisma');

/**
 * The `keys` CLI end to end: a program goes from no keys to KMS-wrapped keys, rotates the
 * primary, re-wraps after a KMS key rotation, and retires the old key after re-encryption,
 * against the local KMS server and a real PostgreSQL database.
 */
describe('prisma-column-encryption keys (CLI, local KMS, PostgreSQL)', () => {
  let kms: FakeKms;
  let kmsKey: string;
  let h: Harness;
  const dir = tempDir();
  const keyring = dir.file('keyring.json');
  const log = captureLogger();

  beforeAll(async () => {
    kms = await FakeKms.start();
    kmsKey = kms.createKey('app', 'pce-keys');
  });
  afterAll(async () => {
    await h?.close();
    await kms.close();
    dir.remove();
  });

  /** Runs `prisma-column-encryption <args>` in-process and returns what it printed. */
  async function cli(...args: string[]): Promise<string> {
    let out = '';
    const deps: Partial<KeyCommandDeps> = {
      env: { PCE_KEYRING_FILE: keyring, ...(h ? { DATABASE_URL: h.db.url } : {}) },
      write: (t) => void (out += t),
      logger: log.logger,
      gcpKms: { clientOptions: kms.clientOptions() },
      retry: FAST_RETRY,
    };
    const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (t) => void (out += t) });
    registerKeyCommands(program, deps);
    await program.parseAsync(['node', 'prisma-column-encryption', ...args]);
    return out;
  }
  const json = async <T>(...args: string[]) => JSON.parse(await cli(...args, '--json')) as T;
  const loadRing = () => loadKeyring({ file: keyring, gcpKms: { clientOptions: kms.clientOptions() }, retry: FAST_RETRY });
  const events = (name: string) => log.events().filter((e) => e.event === `pce.${name}`);

  test('from no keys to KMS-wrapped keys, key rotation, re-wrap and retirement', async () => {
    // 1. Generate the first data and index keys, wrapped by the KMS key.
    const gen = await cli('keys', 'generate', '--purpose', 'data', '--kms-key', kmsKey, '--id', 'd1');
    expect(gen).toMatch(new RegExp(`^generated data key d1 \\(gcp-kms, ${kmsKey}/cryptoKeyVersions/1\\), fingerprint [0-9a-f]{16}, status primary\\n`));
    expect(gen).toContain('primary data key: (none) -> d1');
    const idx = await json<{ key: Record<string, unknown>; primaryChange: unknown }>('keys', 'generate', '--purpose', 'index', '--kms-key', kmsKey, '--id', 'i1');
    expect(idx.key).toMatchObject({ id: 'i1', purpose: 'index', status: 'primary', source: 'gcp-kms', kmsKeyName: kmsKey, kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/1` });
    expect(idx.primaryChange).toEqual({ purpose: 'index', to: 'i1' });
    const file = JSON.parse(readFileSync(keyring, 'utf8')) as { keys: Array<Record<string, unknown>> };
    expect(file.keys.map((k) => [k.id, k.source, typeof k.wrappedKey, k.key])).toEqual([
      ['d1', 'gcp-kms', 'string', undefined],
      ['i1', 'gcp-kms', 'string', undefined],
    ]);

    // 2. The application loads the keyring once; queries make no KMS call.
    const calls = kms.calls.decrypt;
    h = await createHarness('postgres', { keys: await loadRing() });
    expect(kms.calls.decrypt).toBe(calls + 2);
    const ada = await h.prisma.user.create({ data: { email: 'ada@example.org', name: 'Ada' } });
    await h.prisma.user.create({ data: { email: 'bob@example.org', name: 'Bob', phone: '+1 555' } });
    expect((await h.prisma.user.findFirst({ where: { email: 'ada@example.org' } }))?.name).toBe('Ada');
    expect(kms.calls.decrypt).toBe(calls + 2);
    const [raw] = await h.sql(`SELECT email, "emailIndex" FROM "User" WHERE id = $1`, [ada.id]);
    expect(String(raw!.email)).toMatch(/^pce:v1:d1:/);
    expect(String(raw!.emailIndex)).toMatch(/^i1:/);

    // 3. A new primary data key; the old one cannot be retired while values use it.
    const d2 = await cli('keys', 'generate', '--purpose', 'data', '--kms-key', kmsKey, '--id', 'd2', '--primary');
    expect(d2).toContain('primary data key: d1 -> d2');
    await expect(cli('keys', 'retire', 'd2')).rejects.toThrow("key 'd2': is the primary data key: promote another key first");
    await expect(cli('keys', 'retire', 'd1', '--schema', SCHEMA)).rejects.toThrow(
      "key 'd1': is still used by 5 stored encrypted values (User.email: 2, User.name: 2, User.phone: 1); re-encrypt them",
    );
    let refusedJson = '';
    await cli('keys', 'retire', 'd1', '--schema', SCHEMA, '--json').catch((e: Error) => void (refusedJson = e.message));
    expect(refusedJson).toContain('still used by 5');
    expect(events('key.retire_refused').map((e) => [e.keyId, e.values])).toContainEqual(['d1', 5]);

    // 4. The KMS key is rotated; re-wrap moves every wrapped key to the new version.
    kms.rotate(kmsKey);
    const rewrap = await cli('keys', 'rewrap');
    expect(rewrap).toBe('d1: pce-keys v1 -> pce-keys v2\ni1: pce-keys v1 -> pce-keys v2\nd2: pce-keys v1 -> pce-keys v2\nre-wrapped 3 keys\n');
    const listed = await json<{ keys: Array<Record<string, unknown>> }>('keys', 'list');
    expect(listed.keys.map((k) => [k.id, k.status, k.kmsKeyVersion])).toEqual([
      ['d1', 'active', `${kmsKey}/cryptoKeyVersions/2`],
      ['i1', 'primary', `${kmsKey}/cryptoKeyVersions/2`],
      ['d2', 'primary', `${kmsKey}/cryptoKeyVersions/2`],
    ]);
    for (const k of listed.keys) expect(Object.keys(k)).not.toEqual(expect.arrayContaining(['key']));
    expect(JSON.stringify(listed)).not.toContain('wrappedKey');
    // Version 1 can now be disabled: loading no longer needs it.
    kms.disableVersion(`${kmsKey}/cryptoKeyVersions/1`);

    // 5. Re-encrypt under d2 with the migrator's `rotate` (the built executable), then retire d1.
    const rotated = await run(process.execPath, [BIN, 'rotate', '--schema', SCHEMA, '--database-url', h.db.url, '--keyring', keyring, '--json', '--quiet'], {
      env: { ...process.env, PCE_KMS_ENDPOINT: `127.0.0.1:${kms.port}`, PCE_LOG_LEVEL: 'warn' },
    });
    expect(JSON.parse(rotated.stdout)).toMatchObject({ updated: 2, failedCount: 0 });
    expect((await h.sql(`SELECT email FROM "User"`)).every((r) => String(r.email).startsWith('pce:v1:d2:'))).toBe(true);
    const retired = await json<Record<string, unknown>>('keys', 'retire', 'd1', '--schema', SCHEMA);
    expect(retired).toEqual({ retired: true, changed: true, keyId: 'd1', values: 0, fields: [] });
    expect(await cli('keys', 'retire', 'd1')).toBe('d1 is already retired\n');
    // The CLI's usage check and the migrator agree on what is left: nothing under d1.
    await expect(cli('keys', 'retire', 'd2', '--schema', SCHEMA)).rejects.toThrow('is the primary data key');

    // 6. The application starts without d1; everything still reads, and d1 values would be refused.
    const after = await loadRing();
    expect(after.describe().map((k) => k.id)).toEqual(['i1', 'd2']);
    const fresh = h.extend({ keys: after });
    expect((await fresh.user.findFirst({ where: { email: 'bob@example.org' } }))?.phone).toBe('+1 555');

    // 7. The human listing: one row per key, a KMS key line, no key material.
    const table = await cli('keys', 'list');
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+PURPOSE\s+STATUS\s+SOURCE\s+FINGERPRINT\s+KMS KEY VERSION\s+CREATED$/);
    expect(lines[1]).toMatch(/^d1\s+data\s+retired\s+gcp-kms\s+[0-9a-f]{16}\s+pce-keys v2\s+\d{4}-\d\d-\d\d$/);
    expect(lines.at(-1)).toBe(`KMS key: ${kmsKey}`);

    // 8. Audit trail of the lifecycle.
    expect(events('key.generated').map((e) => e.keyId)).toEqual(['d1', 'i1', 'd2']);
    expect(events('key.primary_changed').map((e) => [e.purpose, e.from, e.to])).toEqual([
      ['data', undefined, 'd1'],
      ['index', undefined, 'i1'],
      ['data', 'd1', 'd2'],
    ]);
    expect(events('key.rewrapped')).toEqual([expect.objectContaining({ count: 3, kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/2` })]);
    expect(events('key.retired').map((e) => e.keyId)).toEqual(['d1']);
  });

  test('promote switches the primary and reports a no-op', async () => {
    await cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i2');
    expect(await cli('keys', 'promote', 'i2')).toBe('primary index key: i1 -> i2\n');
    expect(await json('keys', 'promote', 'i2')).toEqual({ changed: false, purpose: 'index', from: 'i2', to: 'i2' });
    await expect(cli('keys', 'promote', 'zz')).rejects.toThrow("key 'zz': is not in the keyring");
    // An index key is in use while blind indexes carry its prefix.
    await expect(cli('keys', 'retire', 'i1', '--schema', SCHEMA)).rejects.toThrow(
      "key 'i1': is still used by 3 stored blind indexes (User.email: 2, User.phone: 1)",
    );
  });

  test('argument errors say what to give', async () => {
    await expect(cli('keys', 'generate', '--purpose', 'data')).rejects.toThrow('give --kms-key <name> (or set PCE_KMS_KEY), or --local');
    await expect(cli('keys', 'generate', '--purpose', 'data', '--local', '--kms-key', kmsKey)).rejects.toThrow('not both');
    await expect(cli('keys', 'generate', '--purpose', 'both', '--local')).rejects.toThrow(/Allowed choices are data, index/);
    await expect(cli('keys', 'list', '--keyring', dir.file('missing.json'))).rejects.toThrow('does not exist');
    await expect(cli('keys', 'generate', '--purpose', 'data', '--local', '--keyring', dir.file('no/such/dir.json'))).rejects.toThrow(
      'cannot lock keyring file',
    );
  });

  test('while another run holds the keyring lock, changes are refused instead of overwriting', async () => {
    writeFileSync(`${keyring}.lock`, '1');
    try {
      await expect(cli('keys', 'promote', 'i1')).rejects.toThrow(`keyring file ${keyring} is locked by another run`);
    } finally {
      unlinkSync(`${keyring}.lock`);
    }
    expect(await cli('keys', 'promote', 'i1')).toBe('primary index key: i2 -> i1\n');
  });

  test('a KMS failure during generate leaves the keyring file unchanged', async () => {
    const before = readFileSync(keyring, 'utf8');
    kms.deny(kmsKey);
    await expect(cli('keys', 'generate', '--purpose', 'data', '--kms-key', kmsKey, '--id', 'd3')).rejects.toThrow(
      /^key 'd3': cannot wrap with gcp-kms key .*: permission denied \(PERMISSION_DENIED\)/,
    );
    kms.reset();
    expect(readFileSync(keyring, 'utf8')).toBe(before);
  });

  test('decrypting a value whose key is not in the keyring names model, field and key id', async () => {
    const ring = await loadRing();
    const app = h.extend({ keys: ring });
    const [row] = await h.sql<{ id: string }>(`SELECT id FROM "User" LIMIT 1`);
    // Re-label a stored value with a key id the ring does not hold (as after a premature retire).
    await h.sql(`UPDATE "User" SET name = replace(name, 'pce:v1:d2:', 'pce:v1:d1:') WHERE id = $1`, [row!.id]);
    const error = await app.user.findUnique({ where: { id: row!.id } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error).toMatchObject({ model: 'User', field: 'name', keyId: 'd1', reason: 'unknown-key' });
    expect((error as Error).message).toBe("User.name: cannot decrypt (key id 'd1'): no key with this id is in the keyring");
  });
});
