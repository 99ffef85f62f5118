import { forgetSubject, loadKeyring, type TransactionalClient } from '../../src';
import { providers } from '../support/clients';
import { cli, schemaFile } from '../subjects/subjectSupport';
import { runCli } from './migrateSupport';
import { birthOf, clients, emailOf, expectUnderSubjectKeys, PEOPLE, people, readings, runJson, seedLegacy, sharedCodec, subjectKeys, useSubjectFixture } from './subjectMigrateSupport';

/**
 * The migrator on subject-keyed models (`@@encrypted(subject: ...)`, issue 11): `encrypt-existing`
 * moves plaintext and shared-key values under each row's subject key (creating it when the subject
 * has none), leaves a forgotten subject's rows and rows without a subject as they are and reports
 * them; `rotate` leaves values under subject keys byte for byte, rotates their blind indexes, and
 * never reports them as failures (before this, it tried to re-encrypt them with shared keys).
 * Races with the application and with `forget`: subjectRaces.test.ts.
 */
jest.setTimeout(300_000);

describe.each(providers())('the migrator on subject-keyed models on %s', (provider) => {
  const f = useSubjectFixture(provider);

  test('encrypt-existing moves plaintext and shared-key values under each subject key; status and verify agree; a rerun writes nothing', async () => {
    await seedLegacy(f);
    // Person 1 already has a key: the application wrote a reading for them after the switch.
    await f.h.prisma.personReading.create({ data: { id: 'r1-app', personId: 1, text: 'written by the app', topic: 'Career' } });
    const before = { people: await people(f), keys: await subjectKeys(f) };
    expect([...before.keys.keys()]).toEqual(['Person:1']);

    const dry = await runJson(f, 'encrypt-existing', '--dry-run');
    expect(dry.result.code).toBe(0);
    expect(dry.report.updated).toBe(PEOPLE + 2 * PEOPLE + 2);
    expect(await subjectKeys(f)).toEqual(before.keys); // no key created, nothing written
    expect(await people(f)).toEqual(before.people);

    const { result, report } = await runJson(f, 'encrypt-existing', '--batch-size', '4');
    expect(result.stderr).not.toMatch(/Person\d@Example|reading \d|Client\.ORG|written by the app/);
    expect(report.failures).toEqual([]);
    expect(result.code).toBe(0);
    expect(report.updated).toBe(PEOPLE + 2 * PEOPLE + 2);
    await expectUnderSubjectKeys(f);
    const keys = await subjectKeys(f);
    expect(keys.get('Person:1')).toBe(before.keys.get('Person:1')); // reused, not replaced
    expect(keys.size).toBe(PEOPLE + 2);

    // The application reads every value back, and finds the rows through their blind indexes.
    const found = await f.h.prisma.person.findMany({ orderBy: { id: 'asc' } });
    expect(found.map((p) => [p.email, p.name, p.birthDate?.toISOString() ?? null])).toEqual(
      Array.from({ length: PEOPLE }, (_, k) => k + 1).map((i) => [emailOf(i), i % 3 === 2 ? null : `Name ${i}`, i % 3 === 2 ? null : birthOf(i).toISOString()]),
    );
    expect((await f.h.prisma.person.findFirst({ where: { email: 'person4@example.org' } }))?.id).toBe(4);
    expect((await f.h.prisma.person.findFirst({ where: { email: 'person6@example.org' } }))?.id).toBe(6);
    const career = await f.h.prisma.personReading.findMany({ where: { topic: 'career' }, orderBy: { id: 'asc' } });
    expect(career.map((r) => r.text)).toEqual(expect.arrayContaining(['reading 2a', 'reading 2b', 'written by the app']));
    expect(career).toHaveLength(2 * PEOPLE + 1);
    expect((await f.h.prisma.client.findFirst({ where: { email: 'plain@client.org' } }))?.name).toBe('plain client');
    expect((await f.h.prisma.client.findFirst({ where: { email: 'shared@client.org' } }))?.name).toBe('shared client');

    const status = await runCli(['status', '--schema', schemaFile(f.provider), '--json', '--quiet'], f.env);
    const fieldStatus = (JSON.parse(status.stdout) as { fields: Array<{ model: string; field: string; byKey: Record<string, number>; plaintext: number }> }).fields;
    expect(fieldStatus.find((s) => s.model === 'Person' && s.field === 'email')).toMatchObject({ byKey: { '(subject-keys)': PEOPLE }, plaintext: 0 });
    expect(fieldStatus.find((s) => s.model === 'Person' && s.field === 'birthDate')).toMatchObject({ byKey: { '(subject-keys)': 6 }, plaintext: 0 });
    expect(fieldStatus.find((s) => s.model === 'PersonReading' && s.field === 'text')).toMatchObject({ byKey: { '(subject-keys)': 2 * PEOPLE + 1 }, plaintext: 0 });
    const verified = await runCli(['verify', '--schema', schemaFile(f.provider), '--json', '--quiet'], f.env);
    expect((JSON.parse(verified.stdout) as { ok: boolean }).ok).toBe(true);
    expect(verified.code).toBe(0);

    const after = { people: await people(f), readings: await readings(f), clients: await clients(f) };
    const again = await runJson(f, 'encrypt-existing');
    expect(again.result.code).toBe(0);
    expect(again.report.updated).toBe(0);
    expect({ people: await people(f), readings: await readings(f), clients: await clients(f) }).toEqual(after);
  });

  test('encrypt-existing reports and leaves the rows of a forgotten subject and rows without a subject', async () => {
    await seedLegacy(f);
    await forgetSubject(f.h.plain as unknown as TransactionalClient, 3, { fields: f.fields, model: 'Person' });
    await forgetSubject(f.h.plain as unknown as TransactionalClient, 4, { fields: f.fields, model: 'Person' });
    // A drifted column: the schema says required, the database holds a NULL subject.
    await f.h.sql(f.provider === 'postgres' ? `ALTER TABLE "PersonReading" ALTER COLUMN "personId" DROP NOT NULL` : 'ALTER TABLE `PersonReading` MODIFY `personId` INT NULL');
    await f.h.sql(`INSERT INTO ${f.h.q('PersonReading')} (${f.h.q('id')}, ${f.h.q('personId')}, ${f.h.q('text')}) VALUES ($1, NULL, $2)`, ['r-orphan', 'nobody reads this']);
    const erasedRows = async () => ({
      people: (await people(f)).filter((p) => p.id === 3 || p.id === 4),
      readings: (await readings(f)).filter((r) => r.personId === 3 || r.personId === 4 || r.personId === null),
    });
    const before = await erasedRows();

    const { result, report } = await runJson(f, 'encrypt-existing');
    expect(result.code).toBe(1);
    const failed = report.failures.map((f) => `${f.model}:${Object.values(f.key).join('/')}:${f.field}:${f.reason}`).sort();
    expect(failed).toEqual(
      [
        // Person 3 is under the shared key, Person 4 plaintext: neither moves under a destroyed key.
        'Person:3:birthDate:subject-erased', 'Person:3:email:subject-erased', 'Person:3:name:subject-erased',
        'Person:4:birthDate:subject-erased', 'Person:4:email:subject-erased', 'Person:4:name:subject-erased',
        'PersonReading:r-orphan:text:no-subject',
        'PersonReading:r3a:text:subject-erased', 'PersonReading:r3a:topic:subject-erased',
        'PersonReading:r3b:text:subject-erased', 'PersonReading:r3b:topic:subject-erased',
        'PersonReading:r4a:text:subject-erased', 'PersonReading:r4a:topic:subject-erased',
        'PersonReading:r4b:text:subject-erased', 'PersonReading:r4b:topic:subject-erased',
      ].sort(),
    );
    expect(await erasedRows()).toEqual(before);
    expect([...(await subjectKeys(f)).keys()].filter((s) => s === 'Person:3' || s === 'Person:4')).toEqual([]);
    // What forget does not reach: a value never moved under the subject key stays readable.
    expect(sharedCodec(f, 'Person', 'email').decrypt(String(before.people.find((p) => p.id === 3)!.email))).toBe(emailOf(3));
    await expectUnderSubjectKeys(f, { skip: (s) => s === 'Person:3' || s === 'Person:4' || s === 'Person:null' });
  });

  test('rotate leaves values under subject keys byte for byte, rotates their indexes, and moves shared-key values under the subject key', async () => {
    for (let i = 1; i <= 4; i++) {
      await f.h.prisma.person.create({ data: { id: i, email: emailOf(i), name: `Name ${i}`, birthDate: birthOf(i), readings: { create: [{ id: `r${i}`, text: `reading ${i}`, topic: ' Career' }] } } });
    }
    // A value written before the model had a subject, still under the shared key.
    const email = sharedCodec(f, 'Person', 'email');
    await f.h.sql(`INSERT INTO ${f.h.q('Person')} (${['id', 'email', 'emailIndex'].map(f.h.q).join(', ')}) VALUES ($1, $2, $3)`, [100, email.encrypt(emailOf(100)), email.indexForWrite(emailOf(100))]);
    const before = { people: await people(f), readings: await readings(f) };
    for (const [purpose, id] of [['data', 'd2'], ['index', 'i2']]) await cli({ PCE_KEYRING_FILE: f.file }, 'keys', 'generate', '--purpose', purpose!, '--id', id!, '--local', '--primary');

    const { result, report } = await runJson(f, 'rotate');
    expect(report.failures).toEqual([]);
    expect(result.code).toBe(0);
    expect(report.updated).toBe(4 + 4 + 1);
    const after = { people: await people(f), readings: await readings(f) };
    for (const [i, p] of after.people.entries()) {
      const old = before.people[i]!;
      expect(String(p.emailIndex).startsWith('i2:')).toBe(true);
      if (p.id === 100) continue;
      expect([p.email, p.name, p.birthDateCipher]).toEqual([old.email, old.name, old.birthDateCipher]);
    }
    for (const [i, r] of after.readings.entries()) {
      expect([r.text, r.topic]).toEqual([before.readings[i]!.text, before.readings[i]!.topic]);
      expect(String(r.topicIndex).startsWith('i2:')).toBe(true);
    }
    await expectUnderSubjectKeys(f);

    const app = f.h.extend({ keys: await loadKeyring({ file: f.file }) });
    expect((await app.person.findFirst({ where: { email: 'person3@example.org' } }))?.name).toBe('Name 3');
    expect((await app.person.findFirst({ where: { email: 'person100@example.org' } }))?.email).toBe(emailOf(100));
    expect(await app.personReading.count({ where: { topic: 'career' } })).toBe(4);
    const again = await runJson(f, 'rotate');
    expect([again.result.code, again.report.updated]).toEqual([0, 0]);
  });
});
