import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DMMF } from '@prisma/generator-helper';
import { getDMMF } from '@prisma/internals';
import { buildEncryptionSchema } from '../../src/generator/buildSchema';
import { convertPfeSchema } from '../../src/generator/convertPfeSchema';

const ROOT = join(__dirname, '..', '..');
const pfeSchema = readFileSync(join(ROOT, 'test', 'pfe', 'schema.prisma'), 'utf8');

/** The `///` lines of one model, trimmed. */
function docLines(schema: string, model: string): string[] {
  const body = schema.slice(schema.indexOf(`model ${model} {`));
  return body
    .slice(0, body.indexOf('\n}'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('///'));
}

async function encryptedOf(schema: string, provider = 'postgresql') {
  const dmmf = await getDMMF({ datamodel: schema });
  return buildEncryptionSchema(dmmf.datamodel as unknown as DMMF.Datamodel, provider).models;
}

const model = (fields: string, provider = 'postgresql') => `datasource db {\n  provider = "${provider}"\n}\nmodel M {\n  id Int @id\n${fields}\n}\n`;

describe('convert-pfe-schema', () => {
  test("gives the annotations this project's own schema uses for the table prisma-field-encryption wrote", async () => {
    const { text, notes } = convertPfeSchema(pfeSchema);
    expect(docLines(text, 'PfeAccount')).toEqual(docLines(readFileSync(join(ROOT, 'prisma', 'postgres', 'schema.prisma'), 'utf8'), 'PfeAccount'));
    expect(notes.some((n) => n.startsWith('PfeAccount.phoneHash: the hash of phone is salted (salt from PFE_TEST_PHONE_SALT)') && n.includes('This library needs no salt'))).toBe(true);
    expect(notes.some((n) => n.startsWith('PfeAccount.emailHash: keep the @encryption:hash line'))).toBe(true);
    // Our generator accepts the result, with the old hash recipes attached.
    const models = await encryptedOf(text);
    expect(models.PfeAccount!.encrypted.phone!.legacy).toEqual({
      format: 'pfe',
      hash: { algorithm: 'sha256', normalize: ['spaces', 'diacritics'], inputEncoding: 'utf8', outputEncoding: 'hex', saltEnv: 'PFE_TEST_PHONE_SALT' },
    });
  });

  test('a second run changes nothing', () => {
    const once = convertPfeSchema(pfeSchema).text;
    expect(convertPfeSchema(once)).toMatchObject({ text: once, changes: 0 });
  });

  test('says plainly what has no equivalent: readonly, cursor, salts in the annotation, column types, index field shape', () => {
    const { text, notes } = convertPfeSchema(
      model(
        `  /// @encryption:cursor
  cursor Int @unique
  /// Contact address. @encrypted?mode=readonly
  e String
  /// @encryption:hash(e)?normalize=uppercase&normalize=lowercase&salt=abc
  h String @unique
  /// @encrypted?strict
  f String
  /// @encryption:hash(plain)
  plainHash String?
  plain String?`,
        'mysql',
      ),
    );
    expect(text).not.toContain('@encryption:cursor');
    expect(text).toContain('  /// Contact address.\n  /// @encrypted(index: h, normalize: [lowercase, uppercase], readMode: passthrough, legacy: pfe)\n  e String');
    expect(text).toContain('  /// @encrypted(legacy: pfe)\n  f String');
    const say = (start: string, part: string) => expect(notes.some((n) => n.startsWith(start) && n.includes(part))).toBe(true);
    say('M.cursor: @encryption:cursor has no equivalent', 'the line is removed');
    say('M.e: mode=readonly has no equivalent', 'run encrypt-existing');
    say('M.e: on MySQL/MariaDB', 'String @db.Text');
    say('M.h: the hash of e is salted (salt in the annotation)', 'needs no salt');
    say('M.h: a blind index field must be optional', 'String?');
    say('M.h: normalize has both lowercase and uppercase', 'upper case');
    say('M.plainHash: @encryption:hash(plain) hashes a field that is not encrypted', 'remove the line');
  });

  test('--finish drops legacy: pfe and the hash lines once the conversion has run', async () => {
    const switching = convertPfeSchema(pfeSchema).text;
    const { text } = convertPfeSchema(switching, { finish: true });
    expect(docLines(text, 'PfeAccount')).toEqual([
      '/// @encrypted(index: emailHash, normalize: [lowercase, trim])',
      '/// @encrypted',
      '/// @encrypted(index: phoneHash, normalize: [removeWhitespace, stripDiacritics])',
    ]);
    const models = await encryptedOf(text);
    expect(Object.values(models.PfeAccount!.encrypted).every((f) => f.legacy === undefined)).toBe(true);
  });

  test('the CLI prints, or with --write rewrites in place, and sends the notes to stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pce-pfe-'));
    try {
      const file = join(dir, 'schema.prisma');
      writeFileSync(file, pfeSchema);
      const run = (...args: string[]) => promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), 'convert-pfe-schema', '--schema', file, ...args]);
      const printed = await run();
      expect(printed.stdout).toBe(convertPfeSchema(pfeSchema).text);
      expect(printed.stderr).toContain('note: PfeAccount.phoneHash: the hash of phone is salted');
      expect(readFileSync(file, 'utf8')).toBe(pfeSchema);
      await run('--write');
      expect(readFileSync(file, 'utf8')).toBe(printed.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
