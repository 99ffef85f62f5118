import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Runs the real `prisma generate` with this package's generator (built into dist/ by pretest),
 * as a user's project would.
 */
const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'pce-gen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function generate(name: string, models: string, provider = 'postgresql', generatorLines = ''): Promise<{ ok: boolean; output: string; dir: string }> {
  const out = join(dir, name);
  const schema = join(dir, `${name}.prisma`);
  writeFileSync(
    schema,
    `generator encryption {\n  provider = "node ${join(ROOT, 'dist', 'cli', 'main.js')}"\n  output   = "${out}"\n${generatorLines}}\n` +
      `datasource db {\n  provider = "${provider}"\n}\n${models}`,
  );
  try {
    const { stdout, stderr } = await run(join(ROOT, 'node_modules', '.bin', 'prisma'), ['generate', '--schema', schema], {
      cwd: ROOT,
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: join(ROOT, 'prisma', 'schema-engine-offline.sh'), PRISMA_HIDE_UPDATE_MESSAGE: '1' },
    });
    return { ok: true, output: stdout + stderr, dir: out };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}`, dir: out };
  }
}

const user = (fields: string) => `model User {\n  id String @id\n${fields}\n}\n`;

describe('prisma generate with the encryption generator', () => {
  test('accepts @db.Text encrypted fields on MySQL', async () => {
    const result = await generate('mysql_ok', user('  /// @encrypted(index: emailIndex)\n  email String @db.Text\n  emailIndex String? @unique'), 'mysql');
    expect(result.output).toContain('Generated prisma-column-encryption');
  });

  test('emits a typed map from the annotations', async () => {
    const result = await generate(
      'ok',
      user(`  /// @encrypted(index: emailIndex, normalize: [trim, lowercase])
  email String
  emailIndex String? @unique
  /// Place of birth.
  /// @encrypted(readMode: passthrough)
  birthPlace String? @map("birth_place")
  plain String`) + 'model Post {\n  id Int @id\n  authorId String\n  author Author @relation(fields: [authorId], references: [id])\n}\nmodel Author {\n  id String @id\n  posts Post[]\n}\n',
    );
    expect(result.output).toContain('Generated prisma-column-encryption');
    // No prisma-client generator in this schema: JavaScript with declarations.
    expect(existsSync(join(result.dir, 'index.ts'))).toBe(false);
    const js = require(join(result.dir, 'index.js')) as { encryptedFields: { models: Record<string, unknown> } };
    expect(js.encryptedFields).toEqual(JSON.parse(readFileSync(join(result.dir, 'schema.json'), 'utf8')));
    const dts = readFileSync(join(result.dir, 'index.d.ts'), 'utf8');
    expect(dts).toContain('export declare const encryptedFields: {');
    expect(dts).toContain('readonly "normalize": readonly ["trim", "lowercase"];');
    expect(JSON.parse(readFileSync(join(result.dir, 'package.json'), 'utf8'))).toMatchObject({ type: 'commonjs', main: 'index.js', types: 'index.d.ts' });
    const map = JSON.parse(readFileSync(join(result.dir, 'schema.json'), 'utf8'));
    expect(map.models.User.encrypted).toEqual({
      email: { index: 'emailIndex', normalize: ['trim', 'lowercase'], readMode: 'strict' },
      birthPlace: { readMode: 'passthrough' },
    });
    expect(map.models.User.columns).toEqual({ birthPlace: 'birth_place' });
    expect(map.models.Author.relations).toEqual({ posts: { model: 'Post', list: true } });
    expect(map.models.Post.encrypted).toEqual({});
  });

  test('emits the type, storage field and column shape of typed fields', async () => {
    const result = await generate(
      'typed',
      user(`  /// @encrypted(storage: bornCipher, index: bornIndex)
  born DateTime? @db.Timestamp(0)
  bornCipher String?
  bornIndex String?
  /// @encrypted(storage: feeCipher)
  fee Decimal? @db.Decimal(10, 2)
  feeCipher String?
  /// @encrypted(storage: chartCipher)
  chart Json?
  chartCipher String?`),
    );
    expect(result.output).toContain('Generated prisma-column-encryption');
    const map = JSON.parse(readFileSync(join(result.dir, 'schema.json'), 'utf8'));
    expect(map.models.User.encrypted).toEqual({
      born: { index: 'bornIndex', readMode: 'strict', type: 'DateTime', storage: 'bornCipher', column: { precision: 0 } },
      fee: { readMode: 'strict', type: 'Decimal', storage: 'feeCipher', column: { digits: 10, scale: 2 } },
      chart: { readMode: 'strict', type: 'Json', storage: 'chartCipher' },
    });
  });

  test('language = "ts" writes one TypeScript module and removes the JavaScript files of an earlier run', async () => {
    const models = user('  /// @encrypted\n  email String');
    expect((await generate('lang', models)).ok).toBe(true);
    const result = await generate('lang', models, 'postgresql', '  language = "ts"\n');
    expect(result.ok).toBe(true);
    expect(readFileSync(join(result.dir, 'index.ts'), 'utf8')).toContain('export const encryptedFields = {');
    for (const f of ['index.js', 'index.d.ts', 'package.json']) expect(existsSync(join(result.dir, f))).toBe(false);
    expect((await generate('lang_bad', models, 'postgresql', '  language = "python"\n')).output).toContain('language must be one of "ts", "js"');
  });

  test("an output folder holding the app's own files: refused, nothing overwritten or removed", async () => {
    const out = join(dir, 'shared');
    mkdirSync(out);
    const mine = '{ "name": "my-app", "type": "module" }\n';
    writeFileSync(join(out, 'package.json'), mine);
    writeFileSync(join(out, 'index.ts'), 'export const app = 1;\n');
    const result = await generate('shared', user('  /// @encrypted\n  email String'));
    expect(result.ok).toBe(false);
    expect(result.output).toContain(`generator output ${out} holds a index.ts that prisma-column-encryption did not write`);
    expect(readFileSync(join(out, 'package.json'), 'utf8')).toBe(mine);
    expect(readFileSync(join(out, 'index.ts'), 'utf8')).toBe('export const app = 1;\n');
    expect(existsSync(join(out, 'index.js'))).toBe(false);
  });

  test('reports every problem of the schema in one run', async () => {
    const result = await generate(
      'many',
      user('  /// @encrypted\n  email String\n  /// @encrypted\n  name String?\n  /// @encrypted(indx: a)\n  other String @db.Text') +
        'model Post {\n  id String @id\n  /// @encrypted\n  age Int\n}\n',
      'mysql',
    );
    expect(result.ok).toBe(false);
    expect(result.output).toContain('4 problems in the schema:');
    expect(result.output).toMatch(/User\.email: on MySQL\/MariaDB, String maps to VARCHAR\(191\)/);
    expect(result.output).toMatch(/User\.name: on MySQL\/MariaDB, String maps to VARCHAR\(191\)/);
    expect(result.output).toContain("User.other: @encrypted: unknown option 'indx'");
    expect(result.output).toContain('Post.age: has type Int');
  });

  const failures: Array<[string, string, RegExp, string?]> = [
    ['MySQL String without @db.Text', user('  /// @encrypted\n  email String'), /User\.email: on MySQL\/MariaDB, String maps to VARCHAR\(191\), too short for ciphertext/, 'mysql'],
    ['MySQL @db.VarChar', user('  /// @encrypted\n  email String @db.VarChar(255)'), /User\.email: on MySQL\/MariaDB, String maps to @db\.VarChar/, 'mysql'],
    ['bounded PostgreSQL column', user('  /// @encrypted\n  email String @db.VarChar(100)'), /User\.email: is @db\.VarChar\(100\), which bounds the ciphertext length/],
    ['a too-short index column', user('  /// @encrypted(index: idx)\n  email String\n  idx String? @db.Char(44)'), /index field 'idx' is @db\.Char\(44\)/],
    ['unknown option', user('  /// @encrypted(indx: emailIndex)\n  email String\n  emailIndex String?'), /User\.email: @encrypted: unknown option 'indx'/],
    ['missing index field', user('  /// @encrypted(index: emailIndex)\n  email String'), /User\.email: index field 'emailIndex' does not exist on model User/],
    ['index field not a String', user('  /// @encrypted(index: emailIndex)\n  email String\n  emailIndex Int?'), /User\.email: index field 'emailIndex' must be a scalar String \(found Int\)/],
    ['index field a list', user('  /// @encrypted(index: emailIndex)\n  email String\n  emailIndex String[]'), /must be a scalar String \(found String\[\]\)/],
    ['index field required', user('  /// @encrypted(index: emailIndex)\n  email String\n  emailIndex String @unique'), /must be optional \(String\?\)/],
    ['an Int without storage', user('  /// @encrypted\n  age Int?'), /User\.age: has type Int: name a String field to hold its ciphertext, @encrypted\(storage: ageCipher\)/],
    ['same index twice', user('  /// @encrypted(index: idx)\n  a String\n  /// @encrypted(index: idx)\n  b String\n  idx String?'), /User\.b: index field 'idx' is already the index of 'a'/],
    ['@unique on the encrypted field', user('  /// @encrypted\n  email String @unique'), /User\.email: is @unique/],
    ['@default on the encrypted field', user('  /// @encrypted\n  email String @default("x")'), /User\.email: has a @default/],
    ['a capitalised tag', user('  /// @Encrypted\n  email String'), /User\.email: @encrypted: '@Encrypted' looks like a misspelt @encrypted/],
    ['a misspelt tag', user('  /// The address.\n  /// @encryted(index: emailIndex)\n  email String\n  emailIndex String?'), /User\.email: @encrypted: '@encryted' looks like a misspelt/],
    ['an @encrypt prefix', user('  /// @encrypt\n  email String'), /User\.email: @encrypted: '@encrypt' looks like a misspelt/],
    ['text after the closing parenthesis', user('  /// @encrypted(index: emailIndex) readMode: passthrough\n  email String\n  emailIndex String?'), /User\.email: @encrypted: unexpected text after '\)': 'readMode:'/],
    ['the tag on a model', '/// @encrypted\n' + user('  email String'), /User: '@encrypted' on a model annotates nothing/],
  ];

  test.concurrent.each(failures)('fails clearly on %s', async (name, models, message, provider) => {
    const result = await generate(name.replace(/\W+/g, '_'), models, provider);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(message);
  });

  test('warns about @encrypted in a // comment, which Prisma drops, and in a trailing comment', async () => {
    const result = await generate(
      'plain_comment',
      user('  // @encrypted\n  email String\n  name String // @encrypted(index: x)\n  url String @default("postgres://x // @encrypted")'),
    );
    expect(result.ok).toBe(true);
    const warnings = result.output.split('\n').filter((l) => l.includes('prisma-column-encryption: warning'));
    // The lines of the two // comments in the schema file as written (the quoted URL is not a comment).
    const lines = readFileSync(join(dir, 'plain_comment.prisma'), 'utf8').split('\n');
    const [first, second] = lines.flatMap((l, i) => (/\/\/ @encrypted/.test(l) && !l.includes('"') ? [i + 1] : []));
    expect(warnings).toEqual([
      expect.stringMatching(new RegExp(`plain_comment\\.prisma:${first}: '@encrypted' is in a // comment, which Prisma drops`)),
      expect.stringMatching(new RegExp(`plain_comment\\.prisma:${second}: '@encrypted' is in a // comment`)),
    ]);
    const map = JSON.parse(readFileSync(join(result.dir, 'schema.json'), 'utf8'));
    expect(map.models.User.encrypted).toEqual({});
  });
});
