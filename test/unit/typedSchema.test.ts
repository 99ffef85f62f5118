import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { EncryptionSchema } from '../../src/schema';

/**
 * The generator's refusals for typed fields, checked on the data model Prisma hands generators
 * (Prisma's getDMMF), in one child process for all cases: faster than a `prisma generate` per
 * case (the end-to-end run is in test/generator), and getDMMF's WebAssembly does not load under
 * jest's VM modules.
 */

const user = (fields: string) => `model User {\n  id String @id\n${fields}\n}\n`;
const ROOT = join(__dirname, '..', '..');

type Outcome = { map: EncryptionSchema } | { error: string; name: string };

function buildAll(cases: ReadonlyArray<{ models: string; provider: string }>): Outcome[] {
  const script = `
    const { getDMMF } = require('@prisma/internals');
    const { buildEncryptionSchema } = require('./dist/generator/buildSchema');
    (async () => {
      const out = [];
      for (const c of JSON.parse(process.argv[1])) {
        const { datamodel } = await getDMMF({ datamodel: 'datasource db {\\n  provider = "' + c.provider + '"\\n}\\n' + c.models });
        try { out.push({ map: buildEncryptionSchema(datamodel, c.provider) }); } catch (e) { out.push({ error: e.message, name: e.name }); }
      }
      process.stdout.write(JSON.stringify(out));
    })();`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script, JSON.stringify(cases)], { cwd: ROOT, encoding: 'utf8' })) as Outcome[];
}

describe('typed fields in the generator', () => {
  const failures: Array<[string, string, RegExp, string?]> = [
    ['a required DateTime', user('  /// @encrypted(storage: bornCipher)\n  born DateTime\n  bornCipher String?'), /User\.born: must be optional \(DateTime\?\): its own column stays NULL/],
    ['a missing storage field', user('  /// @encrypted(storage: bornCipher)\n  born DateTime?'), /User\.born: storage field 'bornCipher' does not exist on the model/],
    ['a storage field of another type', user('  /// @encrypted(storage: bornCipher)\n  born DateTime?\n  bornCipher Int?'), /User\.born: storage field 'bornCipher' must be a scalar String \(found Int\)/],
    ['a required storage field', user('  /// @encrypted(storage: bornCipher)\n  born DateTime?\n  bornCipher String'), /User\.born: storage field 'bornCipher' must be optional \(String\?\)/],
    ['a MySQL storage field without @db.Text', user('  /// @encrypted(storage: bornCipher)\n  born DateTime?\n  bornCipher String?'), /User\.born: storage field 'bornCipher' on MySQL\/MariaDB, String maps to VARCHAR\(191\)/, 'mysql'],
    ['a storage field shared by two fields', user('  /// @encrypted(storage: c)\n  a Int?\n  /// @encrypted(storage: c)\n  b Int?\n  c String?'), /User\.b: storage field 'c' is already the storage of 'a'/],
    ['a storage field that is also the index', user('  /// @encrypted(storage: c, index: c)\n  a Int?\n  c String?'), /User\.a: index field 'c' is also its storage field/],
    ['storage on a String', user('  /// @encrypted(storage: c)\n  a String\n  c String?'), /User\.a: is a String, which holds its own ciphertext/],
    ['normalize on a typed field', user('  /// @encrypted(storage: c, index: i, normalize: [trim])\n  a Int?\n  c String?\n  i String?'), /User\.a: normalize applies to String fields only/],
    ['a time-of-day column', user('  /// @encrypted(storage: c)\n  a DateTime? @db.Time\n  c String?'), /User\.a: @db\.Time is not supported for an encrypted DateTime/],
    ['a list of Int', user('  /// @encrypted(storage: c)\n  a Int[]\n  c String?'), /User\.a: is a list \(Int\[\]\)/],
    ['an enum', user('  /// @encrypted(storage: c)\n  a Role?\n  c String?') + 'enum Role {\n  A\n  B\n}\n', /User\.a: has type Role, which cannot be encrypted/],
  ];

  const accepted = user(`  /// @encrypted(storage: c1, index: i1)
  a DateTime? @db.Date
  c1 String?
  i1 String?
  /// @encrypted(storage: c2)
  b Decimal?
  c2 String?
  /// @encrypted(storage: c3)
  d DateTime? @db.Timestamptz(6)
  c3 String?
  /// @encrypted(storage: c4)
  e Bytes?
  c4 String?`);
  const mariadbSeconds = user('  /// @encrypted(storage: c)\n  a DateTime? @db.DateTime(0)\n  c String? @db.Text\n  /// @encrypted(storage: c2)\n  b DateTime? @db.DateTime(3)\n  c2 String? @db.Text');
  let outcomes: Outcome[];
  beforeAll(() => {
    outcomes = buildAll([...failures.map(([, models, , provider]) => ({ models, provider: provider ?? 'postgresql' })), { models: accepted, provider: 'postgresql' }, { models: mariadbSeconds, provider: 'mysql' }]);
  });

  test.each(failures.map(([name, models, message], i) => [name, models, message, i] as const))('refuses %s with model, field and reason', (_name, _models, message, i) => {
    expect(outcomes[i]).toEqual({ name: 'ConfigurationError', error: expect.stringMatching(message) });
  });

  test('accepts every typed scalar with a storage field, and reads the column shape', () => {
    const schema = (outcomes[failures.length] as { map: EncryptionSchema }).map;
    expect(schema.models.User!.encrypted).toEqual({
      a: { index: 'i1', readMode: 'strict', type: 'DateTime', storage: 'c1', column: { precision: 'date' } },
      b: { readMode: 'strict', type: 'Decimal', storage: 'c2' },
      d: { readMode: 'strict', type: 'DateTime', storage: 'c3', column: { precision: 3 } },
      e: { readMode: 'strict', type: 'Bytes', storage: 'c4' },
    });
  });

  test('on MySQL/MariaDB a DateTime(n) below milliseconds truncates, as MariaDB does; PostgreSQL columns round', () => {
    const schema = (outcomes[failures.length + 1] as { map: EncryptionSchema }).map;
    expect(schema.models.User!.encrypted).toEqual({
      a: { readMode: 'strict', type: 'DateTime', storage: 'c', column: { precision: 0, excess: 'truncate' } },
      b: { readMode: 'strict', type: 'DateTime', storage: 'c2', column: { precision: 3 } },
    });
  });
});
