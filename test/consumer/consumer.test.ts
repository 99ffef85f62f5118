import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { readmeBlock } from './readme';

/**
 * The package as a user gets it: `npm pack`, the tarball installed into fresh apps outside the
 * repository, the README's schema and code in them, `prisma generate` running the package's bin
 * as a generator, and a create/find/update round trip on the test PostgreSQL. A file missing from
 * `files`, a bin that does not start, or a generated module an app cannot import fails here.
 *
 * Installs are offline in effect: `--prefer-offline` with exactly the versions the repository's
 * `npm ci` installed (read from node_modules), so everything comes from npm's cache.
 */
const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'pce-consumer-'));
const drops: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(drops.map((d) => d()));
  rmSync(work, { recursive: true, force: true });
});
/** Each app installs on its own (tens of seconds); the two run side by side. */
const APP_TIMEOUT = 300_000;

const version = (pkg: string) => (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
const pinned = (...pkgs: string[]) => pkgs.map((p) => `${p}@${version(p)}`);
// @types/node is pinned for the JavaScript app too: protobufjs (under @google-cloud/kms) would otherwise want the newest.
const RUNTIME = ['@prisma/client', '@prisma/adapter-pg', 'pg', 'prisma', '@types/node'];

const baseEnv: NodeJS.ProcessEnv = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: join(ROOT, 'prisma', 'schema-engine-offline.sh'), PRISMA_HIDE_UPDATE_MESSAGE: '1', NO_UPDATE_NOTIFIER: '1' };
// The apps get their keys and database from each test only.
for (const v of ['PCE_KEYRING_FILE', 'PCE_KEYRING_JSON', 'PCE_DATA_KEYS', 'PCE_INDEX_KEYS', 'DATABASE_URL']) delete baseEnv[v];
// Nor may they be steered to a native build other than the one in the tarball (the sanitizer run sets these).
for (const v of ['PCE_CRYPTO_BACKEND', 'PRISMA_COLUMN_ENCRYPTION_PREBUILD', 'PREBUILDS_ONLY']) delete baseEnv[v];
// The package ships a linux-x64 (glibc) prebuild: there the installed package must compute natively.
const shipsPrebuild = process.platform === 'linux' && process.arch === 'x64';

async function sh(cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd, env: { ...baseEnv, ...env }, maxBuffer: 16 * 1024 * 1024 });
    return stdout + stderr;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}${err.stderr ?? ''}\n${err.message}`);
  }
}
/** An installed bin, found as npm scripts and npx find it: on PATH through the app's node_modules/.bin. */
const runBin = (cwd: string, [bin, ...args]: string[], env: NodeJS.ProcessEnv = {}) => {
  const binDir = join(cwd, 'node_modules', '.bin');
  return sh(cwd, join(binDir, bin!), args, { ...env, PATH: `${binDir}:${process.env.PATH}` });
};

let tarball: Promise<string> | undefined;
/** One tarball for all apps. dist/ is fresh (npm test builds first), so the prepack build is skipped. */
function pack(): Promise<string> {
  return (tarball ??= (async () => {
    const dest = join(work, 'pack');
    mkdirSync(dest);
    await sh(ROOT, 'npm', ['pack', '--ignore-scripts', '--pack-destination', dest]);
    return join(dest, readdirSync(dest).find((f) => f.endsWith('.tgz'))!);
  })());
}

/** A fresh app folder with its own package.json and the tarball installed. */
async function app(name: string, pkg: object, devDeps: string[]): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, ...pkg }, null, 2));
  await sh(dir, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', await pack(), ...pinned(...RUNTIME, ...devDeps)]);
  return dir;
}

const USER_TABLE = 'CREATE TABLE "User" (id text PRIMARY KEY, email text NOT NULL, "emailIndex" text UNIQUE, "birthPlace" text)';

interface AppDatabase {
  readonly url: string;
  /** The README model's rows (the quick start's User table). */
  rows(): Promise<Array<Record<string, string | null>>>;
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
}

/** A fresh database on the test server with the tables `ddl` creates (by default the README model's). */
async function database(ddl: readonly string[] = [USER_TABLE]): Promise<AppDatabase> {
  const admin = process.env.PCE_TEST_POSTGRES_ADMIN_URL!;
  const name = `pce_consumer_${Math.random().toString(16).slice(2, 10)}`;
  const a = new Client({ connectionString: admin });
  await a.connect();
  await a.query(`CREATE DATABASE "${name}"`);
  await a.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  const url = u.toString();
  const c = new Client({ connectionString: url });
  await c.connect();
  for (const statement of ddl) await c.query(statement);
  await c.end();
  drops.push(async () => {
    const d = new Client({ connectionString: admin });
    await d.connect();
    await d.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await d.end();
  });
  const query = async <T,>(sql: string): Promise<T[]> => {
    const r = new Client({ connectionString: url });
    await r.connect();
    try {
      return (await r.query(sql)).rows as T[];
    } finally {
      await r.end();
    }
  };
  return { url, query, rows: () => query('SELECT email, "emailIndex", "birthPlace" FROM "User"') };
}

/** What the README's snippets print, and what must be stored: ciphertext and a blind index, never the plaintext. */
async function expectRoundTrip(output: string, db: AppDatabase): Promise<void> {
  expect(output).toContain('Ada@Example.org London -> Paris');
  const rows = await db.rows();
  expect(rows).toHaveLength(1);
  expect(rows[0]!.email).toMatch(/^pce:v1:/);
  expect(rows[0]!.birthPlace).toMatch(/^pce:v1:/);
  expect(rows[0]!.emailIndex).toMatch(/^[A-Za-z0-9_-]+:[A-Za-z0-9_-]{43}$/);
  expect(JSON.stringify(rows)).not.toMatch(/ada@|Paris|London/i);
}

const schema = readmeBlock('schema');

/** The app's TypeScript options, as the README assumes them. */
const TSCONFIG = { compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: true, outDir: 'dist', rootDir: 'src' }, include: ['src'] };

/**
 * The README's per-person section in an installed app, in a folder of its own (`people/`, beside
 * the quick start's, sharing its node_modules): the quick start's generator and datasource blocks
 * with the section's subject models and the package's two tables, the tables created from the
 * SQL the tarball ships, `src/people.ts` (a generated-id person with nested records, a known
 * subject, one read of several records) and `src/forget.ts` (forget, then reinstate).
 */
async function peopleApp(dir: string, keyring: NodeJS.ProcessEnv): Promise<void> {
  const app = join(dir, 'people');
  mkdirSync(join(app, 'prisma'), { recursive: true });
  mkdirSync(join(app, 'src'));
  const blocks = schema.replace(/^model \w+ \{[\s\S]*?^\}\n?/gm, '');
  writeFileSync(join(app, 'prisma', 'schema.prisma'), `${blocks}\n${readmeBlock('subject-schema')}\n${readmeBlock('subject-tables')}`);
  writeFileSync(join(app, 'src', 'people.ts'), readmeBlock('subject-typescript'));
  writeFileSync(join(app, 'src', 'forget.ts'), readmeBlock('subject-forget'));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG));
  expect(await runBin(dir, ['prisma', 'generate', '--schema', join('people', 'prisma', 'schema.prisma')])).toContain('Generated prisma-column-encryption');
  await runBin(dir, ['tsc', '-p', 'people']);
  // The comment in people.ts: the keyring needs a wrap key too.
  await runBin(dir, ['prisma-column-encryption', 'keys', 'generate', '--local', '--purpose', 'wrap'], keyring);

  const shipped = readFileSync(join(dir, 'node_modules', 'prisma-column-encryption', 'sql', 'postgresql', 'subject_keys.sql'), 'utf8');
  const db = await database([
    'CREATE TABLE "Person" (id serial PRIMARY KEY, email text NOT NULL, "emailIndex" text UNIQUE, "birthDate" timestamp(3), "birthDateCipher" text)',
    'CREATE TABLE "PersonProfile" (id serial PRIMARY KEY, "personId" integer NOT NULL UNIQUE REFERENCES "Person"(id) ON DELETE CASCADE, bio text)',
    'CREATE TABLE "PersonReading" (id text PRIMARY KEY, "personId" integer NOT NULL REFERENCES "Person"(id) ON DELETE CASCADE, text text NOT NULL)',
    shipped,
  ]);
  const ledger = join(dir, 'erasures.jsonl');
  const env = { ...keyring, DATABASE_URL: db.url, PCE_ERASURE_LEDGER: ledger };
  const output = await sh(dir, process.execPath, [join('people', 'dist', 'people.js')], env);
  expect(output).toContain('ada@example.com: Mars rising');
  expect(output).toContain('ada@example.com: Venus trine Jupiter');
  const [person] = await db.query<{ id: number; email: string; birthDate: unknown; birthDateCipher: string }>('SELECT id, email, "birthDate", "birthDateCipher" FROM "Person"');
  const [key] = await db.query<{ key_id: string; subject_id: string; wrapped_key: string | null }>('SELECT key_id, subject_id, wrapped_key FROM pce_subject_keys');
  expect(key).toMatchObject({ subject_id: `Person:${person!.id}`, wrapped_key: expect.any(String) });
  expect(person!.email.startsWith(`pce:v2:s:s:${key!.key_id}:`)).toBe(true);
  expect(person!.birthDateCipher.startsWith(`pce:v2:t:s:${key!.key_id}:`)).toBe(true);
  expect(person!.birthDate).toBeNull();
  const rows = JSON.stringify([...(await db.query('SELECT * FROM "PersonProfile"')), ...(await db.query('SELECT * FROM "PersonReading"'))]);
  expect(rows).not.toMatch(/Analyst|Mars rising|Venus/);

  const forgot = await sh(dir, process.execPath, [join('people', 'dist', 'forget.js'), String(person!.id)], env);
  expect(JSON.parse(forgot.trim().split('\n').find((l) => l.startsWith('{'))!)).toEqual({ keysDestroyed: 1, alreadyErased: false, rowsUnindexed: { Person: 1 }, rowsOutsideSubjectKey: {} });
  expect(await db.query('SELECT subject_id, wrapped_key FROM pce_subject_keys')).toEqual([{ subject_id: null, wrapped_key: null }]);
  expect(await db.query('SELECT subject_id FROM pce_erasures')).toEqual([{ subject_id: `Person:${person!.id}` }]);
  await sh(dir, process.execPath, [join('people', 'dist', 'forget.js'), String(person!.id), '--reinstate'], env);
  expect(await db.query('SELECT subject_id FROM pce_erasures')).toEqual([]);
  expect(readFileSync(ledger, 'utf8').trim().split('\n').map((l) => Object.keys(JSON.parse(l) as object).sort())).toEqual([
    ['erasedAt', 'root', 'subjectId'],
    ['reinstatedAt', 'root', 'subjectId'],
  ]);
}

describe('the packed package in fresh apps', () => {
  test.concurrent('TypeScript on prisma-client, as CommonJS and as "type": "module" with nodenext: keys from `keys generate --local`; then the per-person section: subject models, forget, reinstate', async () => {
    const dir = await app('ts-app', {}, ['typescript']);
    const installed = join(dir, 'node_modules', 'prisma-column-encryption');
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toContain('MIT License');
    const pkgVersion = (JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string }).version;
    expect((await runBin(dir, ['prisma-column-encryption', '--version'])).trim()).toBe(pkgVersion);
    if (shipsPrebuild) {
      // The native backend loads from the tarball's prebuild: no build/ folder, no compiler, no install script ran.
      expect(readdirSync(installed)).not.toContain('build');
      const probe = [
        "const pce = require('prisma-column-encryption');",
        `const native = require(${JSON.stringify(join(installed, 'dist', 'crypto', 'native.js'))}).loadNativeCrypto();`,
        'process.stdout.write(JSON.stringify({ backend: pce.cryptoBackend(), loaded: native.loaded, path: native.path ?? native.reason }));',
      ].join('\n');
      const seen = JSON.parse(await sh(dir, process.execPath, ['-e', probe])) as { backend: unknown; loaded: boolean; path: string };
      expect(seen).toEqual({ backend: { name: 'native' }, loaded: true, path: join(installed, 'prebuilds', 'linux-x64', 'node.napi.glibc.node') });
      // Forced native: no fallback to hide a missing prebuild.
      expect(await sh(dir, process.execPath, ['-e', "process.stdout.write(require('prisma-column-encryption').cryptoBackend().name)"], { PCE_CRYPTO_BACKEND: 'native' })).toBe('native');
    }

    mkdirSync(join(dir, 'prisma'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'prisma', 'schema.prisma'), schema);
    writeFileSync(join(dir, 'src', 'main.ts'), readmeBlock('typescript'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    const keyring = { PCE_KEYRING_FILE: join(dir, 'keyring.json') };
    await runBin(dir, ['prisma-column-encryption', 'keys', 'generate', '--local', '--purpose', 'data'], keyring);
    await runBin(dir, ['prisma-column-encryption', 'keys', 'generate', '--local', '--purpose', 'index'], keyring);

    for (const type of [undefined, 'module']) {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, type }, null, 2));
      rmSync(join(dir, 'dist'), { recursive: true, force: true });
      expect(await runBin(dir, ['prisma', 'generate'])).toContain('Generated prisma-column-encryption');
      await runBin(dir, ['tsc', '-p', '.']);
      const db = await database();
      await expectRoundTrip(await sh(dir, process.execPath, ['dist/main.js'], { ...keyring, DATABASE_URL: db.url }), db);
    }
    // The per-person section, as ESM (the last "type" above).
    await peopleApp(dir, keyring);
  }, APP_TIMEOUT);

  test.concurrent('plain JavaScript, "type": "module", on prisma-client-js: keys from PCE_DATA_KEYS / PCE_INDEX_KEYS', async () => {
    const dir = await app('js-app', { type: 'module' }, []);
    mkdirSync(join(dir, 'prisma'));
    // The README's model and datasource under the README's prisma-client-js generator blocks.
    writeFileSync(join(dir, 'prisma', 'schema.prisma'), `${readmeBlock('javascript-generators')}\n${schema.replace(/^generator \w+ \{[\s\S]*?^\}\n/gm, '')}`);
    writeFileSync(join(dir, 'main.js'), readmeBlock('javascript'));
    expect(await runBin(dir, ['prisma', 'generate'])).toContain('Generated prisma-column-encryption');

    const db = await database();
    const key = () => require('node:crypto').randomBytes(32).toString('base64') as string;
    const output = await sh(dir, process.execPath, ['main.js'], { DATABASE_URL: db.url, PCE_DATA_KEYS: `d1:${key()}`, PCE_INDEX_KEYS: `i1:${key()}` });
    await expectRoundTrip(output, db);
    // CommonJS JavaScript loads the same generated module.
    const cjs = await sh(dir, process.execPath, ['-e', "process.stdout.write(Object.keys(require('./generated/encryption').encryptedFields.models.User.encrypted).join())"]);
    expect(cjs).toBe('email,birthPlace');
  }, APP_TIMEOUT);
});
