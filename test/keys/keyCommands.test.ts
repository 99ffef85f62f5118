import { Command } from 'commander';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KeyCommandDeps } from '../../src/cli/keyCommands';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import type { ErrorOutput, GenerateOutput, ListOutput, PromoteOutput, ReactivateOutput, RetireOutput, RewrapOutput } from '../../src/cli/keyOutput';
import { encryptedFields } from '../../generated/postgres/encryption';
import { DecryptionError } from '../../src/errors';
import { loadKeyring } from '../../src/keys/loadKeyring';
import { createHarness, providers, sharedKeyFields, type Harness } from '../support/clients';
import { createDatabase, type Provider, type TestDatabase } from '../support/databases';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, KMS_RETRY, tempDir } from './support';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const SCHEMAS: Record<Provider, string> = {
  postgres: join(ROOT, 'prisma', 'postgres', 'schema.prisma'),
  mysql: join(ROOT, 'prisma', 'mysql', 'schema.prisma'),
};
const SCHEMA = SCHEMAS.postgres;
/** Encrypted fields in the test schema, counted from its generated map so a new test model does not change this test. */
const ENCRYPTED_FIELDS = Object.values(encryptedFields.models).reduce((n, m) => n + Object.keys(m.encrypted).length, 0);

/**
 * The `keys` CLI in-process, against the local KMS server and real databases. Each test has its
 * own keyring file (and database when it writes rows), so tests run alone or in any order.
 */
describe('prisma-column-encryption keys (CLI, local KMS, PostgreSQL)', () => {
  let kms: FakeKms;
  /** An empty migrated database: retire scans of it find every field and no values. */
  let emptyDb: TestDatabase;
  const harnesses: Harness[] = [];
  const dir = tempDir();

  beforeAll(async () => {
    kms = await FakeKms.start();
    emptyDb = await createDatabase('postgres', process.env.PCE_TEST_POSTGRES_ADMIN_URL!);
  });
  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.close()));
    await emptyDb?.drop();
    await kms.close();
    dir.remove();
  });
  beforeEach(() => kms.reset());

  const harness = async (provider: Provider, keys: Awaited<ReturnType<typeof loadKeyring>>) => {
    // The keyrings of these tests have data and index keys only: the app uses the shared-key models.
    const h = await createHarness(provider, { keys, fields: sharedKeyFields(provider) });
    harnesses.push(h);
    return h;
  };

  /** A keyring file and a KMS key of its own, the CLI over it, and what the CLI printed and logged. */
  function setup(name: string, databaseUrl?: () => string | undefined) {
    const keyring = dir.file(`${name}.json`);
    const kmsKey = kms.createKey('app', name);
    const log = captureLogger();
    /** Runs `prisma-column-encryption <args>` in-process: stdout, and the error if it failed. */
    async function exec(...args: string[]): Promise<{ out: string; error: Error | undefined }> {
      let out = '';
      const url = databaseUrl?.();
      const deps: Partial<KeyCommandDeps> = {
        env: { PCE_KEYRING_FILE: keyring, ...(url ? { DATABASE_URL: url } : {}) },
        write: (t) => void (out += t),
        logger: log.logger,
        gcpKms: { clientOptions: kms.clientOptions() },
        retry: KMS_RETRY,
      };
      const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (t) => void (out += t) });
      registerKeyCommands(program, deps);
      const error = await program.parseAsync(['node', 'prisma-column-encryption', ...args]).then(
        () => undefined,
        (e: Error) => e,
      );
      return { out, error };
    }
    const cli = async (...args: string[]) => {
      const { out, error } = await exec(...args);
      if (error) throw error;
      return out;
    };
    return {
      keyring,
      kmsKey,
      log,
      exec,
      cli,
      json: async <T>(...args: string[]) => JSON.parse(await cli(...args, '--json')) as T,
      /** A failing command with --json: the one JSON document it printed, and the error. */
      jsonFailure: async <T>(...args: string[]) => {
        const { out, error } = await exec(...args, '--json');
        expect(error).toBeDefined();
        return { doc: JSON.parse(out) as T, error: error! };
      },
      loadRing: () => loadKeyring({ file: keyring, gcpKms: { clientOptions: kms.clientOptions() }, retry: KMS_RETRY }),
      events: (name: string) => log.events().filter((e) => e.event === `pce.${name}`),
    };
  }

  test('from no keys to KMS-wrapped keys, key rotation, re-wrap and retirement', async () => {
    let h: Harness | undefined;
    const s = setup('pce-keys', () => h?.db.url);
    // 1. Generate the first data and index keys, wrapped by the KMS key.
    const gen = await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd1');
    expect(gen).toMatch(new RegExp(`^generated data key d1 \\(gcp-kms, ${s.kmsKey}/cryptoKeyVersions/1\\), fingerprint [0-9a-f]{16}, status primary\\n`));
    expect(gen).toContain('primary data key: (none) -> d1');
    const idx = await s.json<GenerateOutput>('keys', 'generate', '--purpose', 'index', '--kms-key', s.kmsKey, '--id', 'i1');
    expect(idx.key).toEqual({
      id: 'i1',
      purpose: 'index',
      status: 'primary',
      source: 'gcp-kms',
      fingerprint: expect.stringMatching(/^[0-9a-f]{16}$/),
      kmsKeyName: s.kmsKey,
      kmsKeyVersion: `${s.kmsKey}/cryptoKeyVersions/1`,
      protectionLevel: 'SOFTWARE',
      createdAt: expect.any(String),
      retiredAt: null,
      rewrappedAt: null,
    });
    expect(idx.primaryChange).toEqual({ purpose: 'index', from: null, to: 'i1' });
    const file = JSON.parse(readFileSync(s.keyring, 'utf8')) as { keys: Array<Record<string, unknown>> };
    expect(file.keys.map((k) => [k.id, k.source, typeof k.wrappedKey, k.key])).toEqual([
      ['d1', 'gcp-kms', 'string', undefined],
      ['i1', 'gcp-kms', 'string', undefined],
    ]);

    // 2. The application loads the keyring once; queries make no KMS call.
    const calls = kms.calls.decrypt;
    h = await harness('postgres', await s.loadRing());
    expect(kms.calls.decrypt).toBe(calls + 2);
    const ada = await h.prisma.user.create({ data: { email: 'ada@example.org', name: 'Ada' } });
    await h.prisma.user.create({ data: { email: 'bob@example.org', name: 'Bob', phone: '+1 555' } });
    expect((await h.prisma.user.findFirst({ where: { email: 'ada@example.org' } }))?.name).toBe('Ada');
    expect(kms.calls.decrypt).toBe(calls + 2);
    const [raw] = await h.sql(`SELECT email, "emailIndex" FROM "User" WHERE id = $1`, [ada.id]);
    expect(String(raw!.email)).toMatch(/^pce:v1:d1:/);
    expect(String(raw!.emailIndex)).toMatch(/^i1:/);

    // 3. A new primary data key; the old one cannot be retired while values use it.
    const d2 = await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd2', '--primary');
    expect(d2).toContain('primary data key: d1 -> d2');
    await expect(s.cli('keys', 'retire', 'd2')).rejects.toThrow("key 'd2': is the primary data key: promote another key first");
    const refused = await s.exec('keys', 'retire', 'd1', '--schema', SCHEMA);
    expect(refused.error?.message).toBe(
      "key 'd1': is still used by 5 stored encrypted values (User.email: 2, User.name: 2, User.phone: 1); re-encrypt them under the primary key first (prisma-column-encryption rotate), then retire",
    );
    // Human output says what was scanned, so a wrong database or schema shows.
    expect(refused.out).toBe(`scanned ${ENCRYPTED_FIELDS} encrypted fields (2 rows) in database ${new URL(h.db.url).host}/${h.db.name}, schema ${SCHEMA}\n`);
    const { doc: refusal } = await s.jsonFailure<RetireOutput>('keys', 'retire', 'd1', '--schema', SCHEMA);
    expect(refusal).toEqual({
      retired: false,
      changed: false,
      keyId: 'd1',
      values: 5,
      fields: [
        { model: 'User', field: 'email', values: 2 },
        { model: 'User', field: 'name', values: 2 },
        { model: 'User', field: 'phone', values: 1 },
      ],
      scanned: { database: `${new URL(h.db.url).host}/${h.db.name}`, schema: SCHEMA, fields: ENCRYPTED_FIELDS, rows: 2 },
      error: { code: 'PCE_KEYRING', keyId: 'd1', failure: 'key-in-use', message: refused.error!.message },
    });
    expect(s.events('key.retire_refused').map((e) => [e.keyId, e.values])).toContainEqual(['d1', 5]);

    // 4. The KMS key is rotated; re-wrap moves every wrapped key to the new version.
    kms.rotate(s.kmsKey);
    const rewrap = await s.cli('keys', 'rewrap');
    expect(rewrap).toBe('d1: pce-keys v1 -> pce-keys v2\ni1: pce-keys v1 -> pce-keys v2\nd2: pce-keys v1 -> pce-keys v2\nre-wrapped 3 keys\n');
    const listed = await s.json<ListOutput>('keys', 'list');
    expect(listed.keys.map((k) => [k.id, k.status, k.kmsKeyVersion, k.retiredAt, typeof k.rewrappedAt])).toEqual([
      ['d1', 'active', `${s.kmsKey}/cryptoKeyVersions/2`, null, 'string'],
      ['i1', 'primary', `${s.kmsKey}/cryptoKeyVersions/2`, null, 'string'],
      ['d2', 'primary', `${s.kmsKey}/cryptoKeyVersions/2`, null, 'string'],
    ]);
    expect(JSON.stringify(listed)).not.toMatch(/wrappedKey|"key"/);
    // Version 1 can now be disabled: loading no longer needs it.
    kms.disableVersion(`${s.kmsKey}/cryptoKeyVersions/1`);

    // 5. Re-encrypt under d2 with the migrator's `rotate` (the built executable), then retire d1.
    const rotated = await run(process.execPath, [BIN, 'rotate', '--schema', SCHEMA, '--database-url', h.db.url, '--keyring', s.keyring, '--json', '--quiet'], {
      env: { ...process.env, PCE_KMS_ENDPOINT: `127.0.0.1:${kms.port}`, PCE_LOG_LEVEL: 'warn' },
    });
    expect(JSON.parse(rotated.stdout)).toMatchObject({ updated: 2, failedCount: 0 });
    expect((await h.sql(`SELECT email FROM "User"`)).every((r) => String(r.email).startsWith('pce:v1:d2:'))).toBe(true);
    const retired = await s.json<RetireOutput>('keys', 'retire', 'd1', '--schema', SCHEMA);
    expect(retired).toEqual({
      retired: true,
      changed: true,
      keyId: 'd1',
      values: 0,
      fields: [],
      scanned: { database: expect.stringContaining(h.db.name), schema: SCHEMA, fields: ENCRYPTED_FIELDS, rows: 2 },
      error: null,
    });
    expect(await s.cli('keys', 'retire', 'd1')).toBe('d1 is already retired\n');
    expect(await s.json<RetireOutput>('keys', 'retire', 'd1')).toEqual({ retired: true, changed: false, keyId: 'd1', values: 0, fields: [], scanned: null, error: null });

    // 6. The application starts without d1; everything still reads.
    const after = await s.loadRing();
    expect(after.describe().map((k) => k.id)).toEqual(['i1', 'd2']);
    const fresh = h.extend({ keys: after });
    expect((await fresh.user.findFirst({ where: { email: 'bob@example.org' } }))?.phone).toBe('+1 555');

    // 7. The human listing: one row per key, a KMS key line, no key material.
    const lines = (await s.cli('keys', 'list')).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+PURPOSE\s+STATUS\s+SOURCE\s+PROTECTION\s+FINGERPRINT\s+KMS KEY VERSION\s+CREATED\s+AGE$/);
    expect(lines[1]).toMatch(/^d1\s+data\s+retired\s+gcp-kms\s+SOFTWARE\s+[0-9a-f]{16}\s+pce-keys v2\s+\d{4}-\d\d-\d\d\s+0d$/);
    expect(lines.at(-2)).toBe(`KMS key: ${s.kmsKey}`);
    expect(lines.at(-1)).toMatch(/^rotation policy: none/);

    // 8. Audit trail of the lifecycle.
    expect(s.events('key.generated').map((e) => e.keyId)).toEqual(['d1', 'i1', 'd2']);
    expect(s.events('key.primary_changed').map((e) => [e.purpose, e.from, e.to])).toEqual([
      ['data', undefined, 'd1'],
      ['index', undefined, 'i1'],
      ['data', 'd1', 'd2'],
    ]);
    expect(s.events('key.rewrapped')).toEqual([expect.objectContaining({ count: 3, kmsKeyVersion: `${s.kmsKey}/cryptoKeyVersions/2` })]);
    expect(s.events('key.retired').map((e) => e.keyId)).toEqual(['d1']);
  });

  describe.each(providers())('on %s', (provider) => {
    test('promote switches the primary; retiring an index key counts the blind indexes that carry its id', async () => {
      let h: Harness | undefined;
      const s = setup(`promote-${provider}`, () => h?.db.url);
      await s.cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd1');
      await s.cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i1');
      h = await harness(provider, await s.loadRing());
      await h.prisma.user.create({ data: { email: 'ada@example.org', name: 'Ada', phone: '+44 20 7946 0000' } });
      await h.prisma.user.create({ data: { email: 'bob@example.org', name: 'Bob' } });

      await s.cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i2');
      expect(await s.cli('keys', 'promote', 'i2')).toBe('primary index key: i1 -> i2\n');
      expect(await s.json<PromoteOutput>('keys', 'promote', 'i2')).toEqual({ changed: false, purpose: 'index', from: null, to: 'i2' });
      const { doc, error } = await s.jsonFailure<ErrorOutput>('keys', 'promote', 'zz');
      expect(error.message).toMatch(/^key 'zz': is not in the keyring/);
      expect(doc).toEqual({ error: { code: 'PCE_KEYRING', keyId: 'zz', failure: null, message: error.message } });
      await expect(s.cli('keys', 'retire', 'i1', '--schema', SCHEMAS[provider])).rejects.toThrow(
        "key 'i1': is still used by 3 stored blind indexes (User.email: 2, User.phone: 1)",
      );
    });
  });

  test('retire refuses when the scan finds no encrypted field (wrong schema), saying what it scanned', async () => {
    const s = setup('nothing', () => emptyDb.url);
    await s.cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd1');
    await s.cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd2');
    const plainSchema = dir.file('plain.prisma');
    writeFileSync(plainSchema, 'datasource db {\n  provider = "postgresql"\n}\n\nmodel Thing {\n  id   Int    @id\n  name String\n}\n');
    const before = readFileSync(s.keyring, 'utf8');
    const { out, error } = await s.exec('keys', 'retire', 'd2', '--schema', plainSchema);
    expect(error?.message).toMatch(/^key 'd2': was not retired: the database scan found no encrypted field to count\. Check --schema/);
    expect(out).toBe(`scanned 0 encrypted fields (0 rows) in database ${new URL(emptyDb.url).host}/${emptyDb.name}, schema ${plainSchema}\n`);
    const { doc } = await s.jsonFailure<RetireOutput>('keys', 'retire', 'd2', '--schema', plainSchema);
    expect(doc).toMatchObject({ retired: false, changed: false, values: 0, scanned: { fields: 0, rows: 0 }, error: { failure: 'nothing-scanned', keyId: 'd2' } });
    expect(readFileSync(s.keyring, 'utf8')).toBe(before);
  });

  test('reactivate undoes a retire', async () => {
    const s = setup('reactivate', () => emptyDb.url);
    await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd1');
    await s.cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i1');
    await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd2', '--primary');
    const retired = await s.cli('keys', 'retire', 'd1', '--schema', SCHEMA);
    expect(retired).toBe(
      `scanned ${ENCRYPTED_FIELDS} encrypted fields (0 rows) in database ${new URL(emptyDb.url).host}/${emptyDb.name}, schema ${SCHEMA}\n` +
        'retired data key d1: no stored value uses it; it is no longer loaded (undo with `keys reactivate d1`)\n',
    );
    expect((await s.loadRing()).dataKey('d1')).toBeUndefined();
    const decrypts = kms.calls.decrypt;
    expect(await s.json<ReactivateOutput>('keys', 'reactivate', 'd1')).toEqual({ changed: true, keyId: 'd1', purpose: 'data', status: 'active' });
    // It was unwrapped once to prove it still loads.
    expect(kms.calls.decrypt).toBe(decrypts + 1);
    expect((await s.loadRing()).dataKey('d1')).toBeDefined();
    expect(await s.cli('keys', 'reactivate', 'd1')).toBe('d1 is not retired (status active)\n');
    expect(s.events('key.reactivated').map((e) => e.keyId)).toEqual(['d1']);
  });

  test('while another run holds the keyring lock, changes are refused instead of overwriting', async () => {
    const s = setup('locked');
    await s.cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i1');
    await s.cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i2');
    writeFileSync(`${s.keyring}.lock`, JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() }));
    try {
      await expect(s.cli('keys', 'promote', 'i2')).rejects.toThrow(`keyring file ${s.keyring} is locked by another run (${s.keyring}.lock: pid ${process.pid} on ${hostname()}`);
    } finally {
      rmSync(`${s.keyring}.lock`);
    }
    expect(await s.cli('keys', 'promote', 'i2')).toBe('primary index key: i1 -> i2\n');
  });

  test('argument errors say what to give', async () => {
    const s = setup('args');
    await expect(s.cli('keys', 'generate', '--purpose', 'data')).rejects.toThrow('give --kms-key <name> (or set PCE_KMS_KEY), or --local');
    await expect(s.cli('keys', 'generate', '--purpose', 'data', '--local', '--kms-key', s.kmsKey)).rejects.toThrow('not both');
    await expect(s.cli('keys', 'generate', '--purpose', 'both', '--local')).rejects.toThrow(/Allowed choices are data, index/);
    await expect(s.cli('keys', 'list', '--keyring', dir.file('missing.json'))).rejects.toThrow('does not exist');
    await expect(s.cli('keys', 'generate', '--purpose', 'data', '--local', '--keyring', dir.file('no/such/dir.json'))).rejects.toThrow('cannot lock keyring file');
  });

  test('a KMS failure during generate leaves the keyring file unchanged; --json prints the error body', async () => {
    const s = setup('deny');
    await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd1');
    const before = readFileSync(s.keyring, 'utf8');
    kms.deny(s.kmsKey);
    await expect(s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd3')).rejects.toThrow(
      /^key 'd3': cannot wrap with gcp-kms key .*: permission denied \(PERMISSION_DENIED\)/,
    );
    const { doc, error } = await s.jsonFailure<ErrorOutput>('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd3');
    expect(doc).toEqual({ error: { code: 'PCE_KEYRING', keyId: 'd3', failure: 'permission-denied', message: error.message } });
    expect(readFileSync(s.keyring, 'utf8')).toBe(before);
  });

  test('rewrap writes nothing unless every key succeeds', async () => {
    const s = setup('rewrap-partial');
    const other = kms.createKey('app', 'other');
    await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd1');
    await s.cli('keys', 'generate', '--purpose', 'index', '--kms-key', other, '--id', 'i1');
    await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd2');
    kms.rotate(s.kmsKey);
    kms.rotate(other);
    const before = readFileSync(s.keyring, 'utf8');
    kms.deny(other);
    const { doc, error } = await s.jsonFailure<ErrorOutput>('keys', 'rewrap');
    expect(doc.error).toMatchObject({ keyId: 'i1', failure: 'permission-denied' });
    expect(error.message).toMatch(/^key 'i1': cannot unwrap/);
    // d1 had been re-wrapped in memory before i1 failed: none of it reached the file.
    expect(readFileSync(s.keyring, 'utf8')).toBe(before);
    kms.reset();
    expect((await s.json<RewrapOutput>('keys', 'rewrap')).rewrapped.map((r) => r.toVersion)).toEqual([
      `${s.kmsKey}/cryptoKeyVersions/2`,
      `${other}/cryptoKeyVersions/2`,
      `${s.kmsKey}/cryptoKeyVersions/2`,
    ]);
  });

  test('rewrap to a KMS key this identity may encrypt with but not decrypt with is refused before anything is written', async () => {
    const s = setup('rewrap-encrypt-only');
    const target = kms.createKey('app', 'encrypt-only');
    await s.cli('keys', 'generate', '--purpose', 'data', '--kms-key', s.kmsKey, '--id', 'd1');
    await s.cli('keys', 'generate', '--purpose', 'index', '--kms-key', s.kmsKey, '--id', 'i1');
    const before = readFileSync(s.keyring, 'utf8');
    kms.deny(target, 'decrypt');
    await expect(s.cli('keys', 'rewrap', '--kms-key', target)).rejects.toThrow(
      `key 'd1': cannot unwrap with gcp-kms key ${target}: permission denied (PERMISSION_DENIED)`,
    );
    expect(readFileSync(s.keyring, 'utf8')).toBe(before);
    await expect(s.loadRing()).resolves.toBeDefined();
  });

  test('decrypting a value whose key is unknown, or retired, names model, field and key id', async () => {
    let h: Harness | undefined;
    const s = setup('decrypt', () => h?.db.url ?? emptyDb.url);
    await s.cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd0');
    await s.cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i1');
    await s.cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd1', '--primary');
    await s.cli('keys', 'retire', 'd0', '--schema', SCHEMA);
    const ring = await s.loadRing();
    h = await harness('postgres', ring);
    const user = await h.prisma.user.create({ data: { email: 'ada@example.org', name: 'Ada' } });
    // Re-label stored values with a retired key id (as after a premature retire) and an unknown one.
    await h.sql(`UPDATE "User" SET name = replace(name, 'pce:v1:d1:', 'pce:v1:d0:'), email = replace(email, 'pce:v1:d1:', 'pce:v1:dz:') WHERE id = $1`, [user.id]);
    const retired = await h.prisma.user.findUnique({ where: { id: user.id }, select: { name: true } }).catch((e: unknown) => e);
    expect(retired).toBeInstanceOf(DecryptionError);
    expect(retired).toMatchObject({ model: 'User', field: 'name', keyId: 'd0', reason: 'retired-key' });
    expect((retired as Error).message).toBe(
      "User.name: cannot decrypt (key id 'd0'): this key is retired, so it is not loaded; reactivate it (prisma-column-encryption keys reactivate <id>), then re-encrypt (rotate)",
    );
    const unknown = await h.prisma.user.findUnique({ where: { id: user.id }, select: { email: true } }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ model: 'User', field: 'email', keyId: 'dz', reason: 'unknown-key' });
    expect((unknown as Error).message).toBe("User.email: cannot decrypt (key id 'dz'): no key with this id is in the keyring");
  });
});
