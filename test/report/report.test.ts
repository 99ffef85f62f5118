import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadKeyring } from '../../src';
import type { ComplianceReport } from '../../src/report/reportData';
import { createHarness, sharedKeyFields, type Harness } from '../support/clients';
import { tempDir } from '../keys/support';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const SCHEMA = join(ROOT, 'prisma', 'postgres', 'schema.prisma');

/** `report` through the built executable, on a database with rows, a finished rotate run and a keyring file with a policy. */
describe('prisma-column-encryption report', () => {
  let h: Harness;
  const dir = tempDir();
  const keyring = dir.file('keyring.json');
  const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], { env: { ...process.env, PCE_KEYRING_FILE: keyring, PCE_LOG_LEVEL: 'warn' } });

  beforeAll(async () => {
    await cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd1');
    await cli('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i1');
    await cli('keys', 'policy', '--data-max-age-days', '90');
    // Data and index keys only: the app uses the shared-key models.
    h = await createHarness('postgres', { keys: await loadKeyring({ file: keyring }), fields: sharedKeyFields('postgres') });
    await h.prisma.user.create({ data: { email: 'ada@example.org', name: 'Ada', phone: '+44 1' } });
    await h.prisma.user.create({ data: { email: 'bob@example.org' } });
    await cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd2', '--primary');
    await cli('rotate', '--schema', SCHEMA, '--database-url', h.db.url, '--quiet');
  }, 120000);
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  test('--json: fields, keys with age against policy, stored values, migrator runs, verify, TLS and limits, from the truth', async () => {
    const { stdout } = await cli('report', '--schema', SCHEMA, '--database-url', h.db.url, '--verify', '--json');
    const r = JSON.parse(stdout) as ComplianceReport;
    expect(r.fields).toContainEqual(expect.objectContaining({ model: 'User', field: 'email', index: 'emailIndex', normalize: ['nfkc', 'trim', 'lowercase'], readMode: 'strict', algorithm: expect.stringMatching(/^AES-256-GCM/) }));
    // Subject-keyed fields say so: a report calling them shared-key would misstate what erasure reaches.
    expect(r.fields).toContainEqual(expect.objectContaining({ model: 'User', field: 'email', keyScope: 'shared data key (keyring primary)' }));
    expect(r.fields).toContainEqual(expect.objectContaining({ model: 'PersonProfile', field: 'bio', keyScope: expect.stringMatching(/^per-person key \(Person ids, from personId\)/) }));
    expect(r.fields).toContainEqual(expect.objectContaining({ model: 'User', field: 'name', index: null, indexAlgorithm: null }));
    expect(r.fields).toContainEqual(expect.objectContaining({ model: 'LegacyContact', readMode: 'passthrough' }));
    expect(r.fields).toHaveLength(40); // every encrypted field of the test schema, PfeAccount's three, the typed NatalChart and LegacyBirth ones and the nine of the subject models included
    expect(r.keys.policy).toEqual({ data: { maxAgeDays: 90 } });
    expect(r.keys.entries.map((k) => [k.id, k.status, k.source, k.protectionLevel, k.rotation?.state])).toEqual([
      ['d1', 'active', 'local', null, 'not-primary'],
      ['i1', 'primary', 'local', null, 'no-policy'],
      ['d2', 'primary', 'local', null, 'ok'],
    ]);
    const email = r.storage.find((s) => s.model === 'User' && s.field === 'email')!;
    expect(email).toMatchObject({ byKey: { d2: 2 }, plaintext: 0, nulls: 0, indexByKey: { i1: 2 } });
    expect(r.migrations).toContainEqual(expect.objectContaining({ description: expect.stringMatching(/^rotate User\(.*data=d2/), state: 'finished' }));
    expect(r.verify).toEqual({ ok: true, rows: expect.any(Number), values: 4, failedCount: 0, complete: true });
    expect(r.database).toEqual({ label: expect.stringContaining(h.db.name), dialect: 'postgres', tls: { encrypted: false, version: null, cipher: null, ok: false, shortfall: 'no TLS' } });
    expect(r.limits.join(' ')).toMatch(/Lengths are visible.*Equality leaks.*Raw SQL/);
    expect(stdout).not.toMatch(/ada@example\.org|pce:v1|"key"/);
  });

  test('Markdown: the same facts as an auditor reads them', async () => {
    const { stdout } = await cli('report', '--schema', SCHEMA, '--database-url', h.db.url);
    expect(stdout).toMatch(/^# Column encryption: compliance report\n/);
    expect(stdout).toContain('| User | email | shared data key (keyring primary) | emailIndex | nfkc, trim, lowercase | refused (strict) |');
    expect(stdout).toMatch(/\| PersonProfile \| bio \| per-person key \(Person ids, from personId\)/);
    expect(stdout).toContain('| User | name | shared data key (keyring primary) | none (not searchable) | - | refused (strict) |');
    expect(stdout).toMatch(/\| d2 \| data \| primary \| local \| none: key stored in the clear \| \d{4}-\d\d-\d\d \| 0 days of 90: ok \|/);
    expect(stdout).toContain('Rotation policy: data keys at most 90 days primary.');
    expect(stdout).toContain('| User.email | d2: 2 | 0 | 0 | i1: 2 |');
    expect(stdout).toMatch(/\| rotate User\(.*\| finished \|/);
    expect(stdout).toContain('Verify: not run with this report');
    expect(stdout).toContain('Not encrypted (no TLS): does not meet (no TLS) the TLS 1.2 minimum.');
    expect(stdout).toContain('- Raw SQL ($queryRaw, $executeRaw, other clients) bypasses the extension');
  });
});
