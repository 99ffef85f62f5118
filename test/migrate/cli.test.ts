import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHarness, providers, sharedKeyFields, type Harness } from '../support/clients';
import { databaseUrl, loadEncryptionSchema } from '../../src/cli/cliContext';
import { collectStatus } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { connect, emailOf, rawUsers, ROOT, rotation, runCli, schemaFor, schemaPath, seedUsers, startCli, userId, type Rotation } from './migrateSupport';

describe('the CLI finds the schema the way Prisma does', () => {
  let dir: string;
  const generated = (provider: string) => JSON.parse(readFileSync(join(ROOT, 'generated', provider, 'encryption', 'schema.json'), 'utf8')) as unknown;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pce-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('--schema: the encryption map is exactly the one the generator emitted', async () => {
    for (const provider of ['postgres', 'mysql'] as const) {
      const loaded = await loadEncryptionSchema({ schema: schemaPath(provider) }, dir);
      expect(loaded.schema).toEqual(generated(provider));
    }
  });

  test('prisma.config.ts: its schema path and datasource URL', async () => {
    mkdirSync(join(dir, 'db'));
    copyFileSync(schemaPath('postgres'), join(dir, 'db', 'app.prisma'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(
      join(dir, 'prisma.config.ts'),
      `import { defineConfig } from '@prisma/config';\nexport default defineConfig({ schema: 'db/app.prisma', datasource: { url: 'postgresql://config@127.0.0.1/db' } });\n`,
    );
    const loaded = await loadEncryptionSchema({}, dir);
    expect(loaded.schemaPath).toBe(join(dir, 'db', 'app.prisma'));
    expect(loaded.schema).toEqual(generated('postgres'));
    expect(databaseUrl({}, loaded, {})).toBe('postgresql://config@127.0.0.1/db');
    expect(databaseUrl({}, loaded, { DATABASE_URL: 'postgresql://env@127.0.0.1/db' })).toBe('postgresql://env@127.0.0.1/db');
    expect(databaseUrl({ databaseUrl: 'mysql://flag@127.0.0.1/db' }, loaded, { DATABASE_URL: 'x' })).toBe('mysql://flag@127.0.0.1/db');
  });

  test('package.json "prisma.schema", then ./prisma/schema.prisma', async () => {
    mkdirSync(join(dir, 'prisma'));
    copyFileSync(schemaPath('mysql'), join(dir, 'prisma', 'schema.prisma'));
    expect((await loadEncryptionSchema({}, dir)).schema).toEqual(generated('mysql'));
    mkdirSync(join(dir, 'elsewhere'));
    copyFileSync(schemaPath('postgres'), join(dir, 'elsewhere', 'main.prisma'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', prisma: { schema: 'elsewhere/main.prisma' } }));
    expect((await loadEncryptionSchema({}, dir)).schema).toEqual(generated('postgres'));
  });

  test('no schema anywhere: a configuration error that points at --schema; no URL: names DATABASE_URL', async () => {
    await expect(loadEncryptionSchema({}, dir)).rejects.toThrow(/cannot find the Prisma schema.*--schema/s);
    expect(() => databaseUrl({}, undefined, {})).toThrow(/DATABASE_URL/);
  });
});

describe.each(providers())('CLI commands on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const base = (command: string, ...more: string[]) => [command, '--schema', schemaPath(provider), ...more];
  const env = (k: Record<string, string> = keys.env) => ({ DATABASE_URL: h.db.url, ...k });

  beforeEach(async () => {
    keys = rotation();
    h = await createHarness(provider, { keys: keys.before, fields: sharedKeyFields(provider) }); // no wrap key: shared-key models only
    conn = await connect(h.db.url);
    await seedUsers(conn, provider, keys.before, 50);
  });
  afterEach(async () => {
    await conn?.close();
    await h?.close();
  });

  test('status --json, rotate --dry-run, rotate, then verify', async () => {
    const status = await runCli(base('status', '--json', '--model', 'User'), env());
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual({
      fields: await collectStatus(conn, schemaFor(provider), { model: 'User' }),
      primary: { dataKey: 'd2', indexKey: 'i2' },
      scanned: { database: `${new URL(h.db.url).host}/${h.db.name}`, schema: schemaPath(provider) },
    });
    // Every command that reads the database says first which database and schema it read.
    const scannedLine = `database ${new URL(h.db.url).host}/${h.db.name}, schema ${schemaPath(provider)}\n`;
    const statusText = await runCli(base('status', '--model', 'User', '--audit-log', join(tmpdir(), `pce-status-${h.db.name}.log`)), env());
    expect(statusText.code).toBe(0);
    expect(statusText.stdout.startsWith(scannedLine)).toBe(true);

    const before = await rawUsers(conn);
    const dry = await runCli(base('rotate', '--dry-run', '--model', 'User'), env());
    expect(dry.code).toBe(0);
    expect(dry.stdout.startsWith(scannedLine)).toBe(true);
    expect(dry.stdout).toMatch(/rotate \(dry run\): 50 rows would write/);
    expect(dry.stderr).toMatch(/^rotate \(dry run\) User: 50 rows, 50 would write, done in/m);
    expect(dry.stderr).not.toMatch(/\d+ written/);
    expect(await rawUsers(conn)).toEqual(before);

    const rotated = await runCli(base('rotate', '--batch-size', '8', '--field', 'User.email'), env());
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/rotate: 50 rows written/);
    // Not a terminal: plain progress lines and JSON audit events on stderr.
    expect(rotated.stderr).toMatch(/rotate User: \d+\/50 rows/);
    expect(rotated.stderr).toMatch(/^rotate User: 50\/50 rows, 100%, 50 written, done in/m);
    expect(rotated.stderr).toContain('"event":"pce.migrate.end"');
    const rows = await rawUsers(conn);
    expect(rows.every((r) => r.email.startsWith('pce:v1:d2:'))).toBe(true);
    // --field: names were not touched.
    expect(rows.map((r) => r.name)).toEqual(before.map((r) => r.name));

    const ok = await runCli(base('verify', '--model', 'User'), env());
    expect(ok.code).toBe(0);
    expect(ok.stdout.startsWith(scannedLine)).toBe(true);
    expect(ok.stdout).toMatch(/verify: OK: 50 rows/);
    expect(ok.stderr).toMatch(/^verify User: 50\/50 rows, 100%, 50 checked, done in/m);
    expect(ok.stderr).not.toContain('written');
  });

  test('verify exits 1 and names failing rows by primary key only', async () => {
    const q = conn.quote;
    await conn.execute(`UPDATE ${q('User')} SET ${q('name')} = ${q('email')} WHERE ${q('id')} = ${conn.placeholder(1)}`, [userId(4)]);
    const result = await runCli(base('verify', '--json', '--model', 'User'), env());
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { ok: boolean; failures: unknown[] };
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([{ model: 'User', key: { id: userId(4) }, field: 'name', problem: 'authentication-failed', keyId: 'd1' }]);
    for (const out of [result.stdout, result.stderr]) {
      expect(out).not.toContain(emailOf(4));
      expect(out).not.toContain('@example.org');
    }
    const text = await runCli(base('verify', '--model', 'User'), env());
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`failed: User id=${userId(4)} name: authentication-failed (key d1)`);
  });

  // Exit codes do not depend on the database: checked on PostgreSQL only, to keep the suite short.
  (provider === 'postgres' ? test : test.skip)('exit codes: 3 when stopped before the work is done, 130 when interrupted', async () => {
    const partial = await runCli(base('rotate', '--model', 'User', '--batch-size', '8', '--max-batches', '1'), env());
    expect(partial.code).toBe(3);
    expect(partial.stdout).toMatch(/not complete \(stopped early: rerun to continue\)/);

    const run = startCli(base('rotate', '--model', 'User', '--batch-size', '5', '--pause', '300', '--concurrency', '1'), env());
    let stderr = '';
    await new Promise<void>((resolve) =>
      run.child.stderr!.on('data', (d) => {
        stderr += String(d);
        if (stderr.includes('"event":"pce.migrate.batch"')) resolve();
      }),
    );
    run.child.kill('SIGINT');
    const interrupted = await run.done;
    expect(interrupted.code).toBe(130);
    expect(interrupted.stdout).toMatch(/not complete/);
  });

  test('errors name what is wrong: unknown model, missing keys', async () => {
    const unknown = await runCli(base('rotate', '--model', 'Nope'), env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('Nope: is not a model in the schema');
    const noKeys = await runCli(base('rotate', '--model', 'User'), { DATABASE_URL: h.db.url });
    expect(noKeys.code).toBe(1);
    expect(noKeys.stderr).toMatch(/PCE_DATA_KEYS/);
    const noUrl = await runCli(base('status'), keys.env);
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toMatch(/DATABASE_URL/);
  });
});

describe('MySQL URLs keep their TLS settings', () => {
  const url = process.env.MYSQL_URL;
  (url ? test : test.skip)('sslaccept=strict against a server without TLS fails instead of connecting in the clear', async () => {
    const secured = `${url!.replace(/\/$/, '')}/mysql?sslaccept=strict`;
    const outcome = await connect(secured).then(
      async (c) => {
        // A server with TLS: the session must really be encrypted.
        const [row] = await c.query<{ Value: string }>(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`);
        await c.close();
        return row?.Value ? 'encrypted' : 'plaintext';
      },
      () => 'refused',
    );
    expect(outcome).not.toBe('plaintext');
  });
});
