import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { EncryptionSchema } from '../../src/schema';

/**
 * The generator's model-level `@@encrypted(subject: <field>)`: refusals and the emitted
 * `subject` / `subjectLink` entries, checked on the data model Prisma hands generators (getDMMF
 * in one child process, as test/unit/typedSchema.test.ts does).
 */

const ROOT = join(__dirname, '..', '..');
type Outcome = { map: EncryptionSchema } | { error: string; name: string };

function buildAll(cases: readonly string[]): Outcome[] {
  const script = `
    const { getDMMF } = require('@prisma/internals');
    const { buildEncryptionSchema } = require('./dist/generator/buildSchema');
    (async () => {
      const out = [];
      for (const models of JSON.parse(process.argv[1])) {
        const { datamodel } = await getDMMF({ datamodel: 'datasource db {\\n  provider = "postgresql"\\n}\\n' + models });
        try { out.push({ map: buildEncryptionSchema(datamodel, 'postgresql') }); } catch (e) { out.push({ error: e.message, name: e.name }); }
      }
      process.stdout.write(JSON.stringify(out));
    })();`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script, JSON.stringify(cases)], { cwd: ROOT, encoding: 'utf8' })) as Outcome[];
}

const person = (doc: string, fields = '') => `${doc}\nmodel Person {\n  id Int @id @default(autoincrement())\n  /// @encrypted\n  name String?\n${fields}\n}\n`;

describe('@@encrypted(subject: ...) in the generator', () => {
  const failures: Array<[string, string, RegExp]> = [
    ['a missing subject field', person('/// @@encrypted(subject: ownerId)'), /^Person: @@encrypted: subject field 'ownerId' does not exist on model Person$/],
    ['an unknown option', person('/// @@encrypted(subject: id, tenant: id)'), /^Person: @@encrypted: unknown option 'tenant' \(known: subject\)$/],
    ['an option given twice', person('/// @@encrypted(subject: id, subject: id)'), /^Person: @@encrypted: option 'subject' given twice$/],
    ['no options', person('/// @@encrypted'), /^Person: @@encrypted: expected \(subject: <field>\)/],
    ['text after the parenthesis', person('/// @@encrypted(subject: id) please'), /^Person: @@encrypted: expected \(subject: <field>\) right after @@encrypted, and nothing after it/],
    ['an empty option list', person('/// @@encrypted()'), /^Person: @@encrypted: expected '<option>: <name>'/],
    ['a misspelt tag', person('/// @@encryted(subject: id)'), /^Person: @@encrypted: '@@encryted' looks like a misspelt @@encrypted/],
    ['an optional subject field', person('/// @@encrypted(subject: ownerId)', '  ownerId Int?'), /^Person\.ownerId: @@encrypted: the subject field must be required \(Int, not Int\?\)/],
    ['a subject field of type DateTime', person('/// @@encrypted(subject: born)', '  born DateTime'), /^Person\.born: @@encrypted: the subject field must be an Int, BigInt or String \(found DateTime\)/],
    ['a list subject field', person('/// @@encrypted(subject: ids)', '  ids Int[]'), /^Person\.ids: @@encrypted: the subject field must not be a list \(Int\[\]\)/],
    ['an encrypted subject field', person('/// @@encrypted(subject: email)', '  /// @encrypted\n  email String'), /^Person\.email: @@encrypted: the subject field must not be encrypted/],
    [
      'a relation as subject field',
      '/// @@encrypted(subject: owner)\nmodel Pet {\n  id Int @id\n  ownerId Int\n  owner Owner @relation(fields: [ownerId], references: [id])\n  /// @encrypted\n  name String\n}\nmodel Owner {\n  id Int @id\n  pets Pet[]\n}\n',
      /^Pet\.owner: @@encrypted: the subject field is a relation; name its scalar foreign key/,
    ],
    ['@@encrypted on a field', 'model Person {\n  id Int @id\n  /// @@encrypted(subject: id)\n  name String\n}\n', /^Person\.name: @@encrypted names a model's subject: put it on the model's \/\/\/ doc comment/],
  ];

  const accepted = `/// People.
/// @@encrypted(subject: id)
model Person {
  id Int @id @default(autoincrement())
  /// @encrypted
  name String?
  profile PersonProfile?
  readings PersonReading[]
  pets Pet[]
}
/// @@encrypted(subject: personId)
model PersonProfile {
  id Int @id @default(autoincrement())
  personId Int @unique @map("person_id")
  person Person @relation(fields: [personId], references: [id])
  /// @encrypted
  bio String?
  notes ProfileNote[]
}
/// Two links away from Person: its root is still Person.
/// @@encrypted(subject: personId)
model ProfileNote {
  id Int @id
  personId Int
  profile PersonProfile @relation(fields: [personId], references: [personId])
  /// @encrypted
  text String
}
/// @@encrypted(subject: personId)
model PersonReading {
  id String @id @default(cuid())
  personId Int
  person Person @relation(fields: [personId], references: [id])
  /// @encrypted
  text String
}
/// Same subject type but another foreign key: no link.
/// @@encrypted(subject: keeperId)
model Pet {
  id Int @id
  keeperId Int
  ownerId Int
  owner Person @relation(fields: [ownerId], references: [id])
  /// @encrypted
  name String
}
/// @@encrypted(subject: id)
model Client {
  id String @id @default(cuid())
  /// @encrypted
  note String?
}
model Plain {
  id Int @id
}
`;

  let outcomes: Outcome[];
  beforeAll(() => {
    outcomes = buildAll([...failures.map(([, models]) => models), accepted]);
  });

  test.each(failures.map(([name, models, message], i) => [name, models, message, i] as const))('refuses %s with model, field and reason', (_name, _models, message, i) => {
    expect(outcomes[i]).toEqual({ name: 'ConfigurationError', error: expect.stringMatching(message) });
  });

  test('emits the subject of each model and which relations carry it', () => {
    const { models } = (outcomes[failures.length] as { map: EncryptionSchema }).map;
    expect(models.Person!.subject).toEqual({ field: 'id', column: 'id', type: 'Int', root: 'Person' });
    expect(models.PersonProfile!.subject).toEqual({ field: 'personId', column: 'person_id', type: 'Int', root: 'Person' });
    expect(models.PersonReading!.subject).toMatchObject({ root: 'Person' });
    // keeperId is no foreign key to a subject: Pet's subjects are an id space of their own.
    expect(models.Pet!.subject).toEqual({ field: 'keeperId', column: 'keeperId', type: 'Int', root: 'Pet' });
    expect(models.Client!.subject).toEqual({ field: 'id', column: 'id', type: 'String', root: 'Client' });
    expect(models.Plain!.subject).toBeUndefined();
    expect(models.Person!.relations).toEqual({
      profile: { model: 'PersonProfile', list: false, subjectLink: 'parent' },
      readings: { model: 'PersonReading', list: true, subjectLink: 'parent' },
      // Pet's subject is keeperId, not the foreign key of this relation.
      pets: { model: 'Pet', list: true },
    });
    expect(models.PersonProfile!.relations).toEqual({ person: { model: 'Person', list: false, subjectLink: 'child' }, notes: { model: 'ProfileNote', list: true, subjectLink: 'parent' } });
    expect(models.ProfileNote!.subject).toMatchObject({ root: 'Person' });
    expect(models.ProfileNote!.relations).toEqual({ profile: { model: 'PersonProfile', list: false, subjectLink: 'child' } });
    expect(models.PersonReading!.relations).toEqual({ person: { model: 'Person', list: false, subjectLink: 'child' } });
    expect(models.Pet!.relations).toEqual({ owner: { model: 'Person', list: false } });
  });
});
