import { encryptExisting, forgetSubject, loadKeyring, type Keyring, type TransactionalClient } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { tempDir } from '../keys/support';
import { createHarness, providers, silentLogger, type Harness } from '../support/clients';
import { cli, schemaFile, subjectFields } from '../subjects/subjectSupport';
import { codec, connect, holdAppWrite, runCli, type CliResult } from './migrateSupport';

/**
 * The migrator on subject-keyed models (`@@encrypted(subject: ...)`, issue 11): `encrypt-existing`
 * moves plaintext and shared-key values under each row's subject key (creating it when the subject
 * has none), leaves a forgotten subject's rows and rows without a subject as they are and reports
 * them; `rotate` leaves values under subject keys byte for byte, rotates their blind indexes, and
 * never reports them as failures (before this, it tried to re-encrypt them with shared keys).
 */
jest.setTimeout(300_000);

interface Report {
  updated: number;
  failedCount: number;
  casMisses: number;
  failures: Array<{ model: string; key: Record<string, unknown>; field: string; reason: string }>;
}

const PEOPLE = 9;
const emailOf = (i: number) => `  Person${i}@Example.ORG `;
const birthOf = (i: number) => new Date(Date.UTC(1980 + i, 0, 2, 3, 4, 5));
/** Plaintext as a legacy writer stored it (DateTime as the column's text). */
const birthText = (i: number) => `${1980 + i}-01-02 03:04:05.000`;

describe.each(providers())('the migrator on subject-keyed models on %s', (provider) => {
  const dir = tempDir();
  let h: Harness;
  let conn: SqlConnection;
  let file: string;
  let keyring: Keyring;
  let env: Record<string, string>;
  let n = 0;
  const fields = subjectFields(provider);

  beforeEach(async () => {
    file = dir.file(`keyring-${n++}.json`);
    for (const [purpose, id] of [['data', 'd1'], ['index', 'i1'], ['wrap', 'w1']] as const) await cli({ PCE_KEYRING_FILE: file }, 'keys', 'generate', '--purpose', purpose, '--id', id, '--local');
    keyring = await loadKeyring({ file });
    h = await createHarness(provider, { keys: keyring });
    conn = await connect(h.db.url);
    env = { DATABASE_URL: h.db.url, PCE_KEYRING_FILE: file };
  });
  afterEach(async () => {
    await conn?.close();
    await h?.close();
  });
  afterAll(() => dir.remove());

  const q = (id: string) => h.q(id);
  const shared = (model: string, field: string) => codec(provider, keyring, model, field);
  const run = async (command: string, ...more: string[]): Promise<{ result: CliResult; report: Report }> => {
    const result = await runCli([command, '--schema', schemaFile(provider), '--json', '--quiet', ...more], env);
    return { result, report: JSON.parse(result.stdout || '{}') as Report };
  };
  const rows = (table: string, columns: string[], order = 'id') => h.sql<Record<string, unknown>>(`SELECT ${columns.map(q).join(', ')} FROM ${q(table)} ORDER BY ${q(order)}`);
  const people = () => rows('Person', ['id', 'email', 'emailIndex', 'name', 'birthDateCipher']);
  const readings = () => rows('PersonReading', ['id', 'personId', 'text', 'topic', 'topicIndex']);
  const clients = () => rows('Client', ['id', 'email', 'emailIndex', 'name']);
  /** Subject (`Person:1`) -> its live key id. */
  const subjectKeys = async () => new Map((await h.sql<{ key_id: string; subject_id: string }>(`SELECT key_id, subject_id FROM pce_subject_keys WHERE subject_id IS NOT NULL AND wrapped_key IS NOT NULL`)).map((r) => [r.subject_id, r.key_id]));

  /**
   * Legacy rows written with SQL: people whose id % 3 is 0 under the shared key (v1, and v2 for
   * the DateTime), the others in plaintext (birth date in its own column); two readings each, one
   * of each kind; clients (String subject ids), one of each kind.
   */
  async function seedLegacy(): Promise<void> {
    const email = shared('Person', 'email');
    const name = shared('Person', 'name');
    const birth = shared('Person', 'birthDate');
    for (let i = 1; i <= PEOPLE; i++) {
      const cells = i % 3 === 0 ? [email.encrypt(emailOf(i)), email.indexForWrite(emailOf(i)), name.encrypt(`Name ${i}`), null, birth.encrypt(birthOf(i))] : [emailOf(i), null, i % 3 === 1 ? `Name ${i}` : null, i % 3 === 1 ? birthText(i) : null, null];
      await h.sql(`INSERT INTO ${q('Person')} (${['id', 'email', 'emailIndex', 'name', 'birthDate', 'birthDateCipher'].map(q).join(', ')}) VALUES ($1, $2, $3, $4, $5, $6)`, [i, ...cells]);
    }
    const text = shared('PersonReading', 'text');
    const topic = shared('PersonReading', 'topic');
    for (let i = 1; i <= PEOPLE; i++) {
      await h.sql(`INSERT INTO ${q('PersonReading')} (${['id', 'personId', 'text', 'topic', 'topicIndex'].map(q).join(', ')}) VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)`, [
        `r${i}a`, i, `reading ${i}a`, ' Career', null,
        `r${i}b`, i, text.encrypt(`reading ${i}b`), topic.encrypt(' Career'), topic.indexForWrite(' Career'),
      ]);
    }
    const cEmail = shared('Client', 'email');
    await h.sql(`INSERT INTO ${q('Client')} (${['id', 'email', 'emailIndex', 'name'].map(q).join(', ')}) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)`, [
      'c-plain', 'Plain@Client.ORG', null, 'plain client',
      'c-shared', cEmail.encrypt('Shared@Client.ORG'), cEmail.indexForWrite('Shared@Client.ORG'), shared('Client', 'name').encrypt('shared client'),
    ]);
  }

  /** Every stored value of the rows is an envelope under the key of the row's own subject. */
  async function expectUnderSubjectKeys(skip: (subject: string) => boolean = () => false): Promise<void> {
    const keys = await subjectKeys();
    const check = (subject: string, tag: string, value: unknown) => {
      if (value === null || skip(subject)) return;
      expect(keys.get(subject)).toBeDefined();
      expect(String(value).startsWith(`pce:v2:${tag}:s:${keys.get(subject)}:`)).toBe(true);
    };
    for (const p of await people()) for (const [c, tag] of [['email', 's'], ['name', 's'], ['birthDateCipher', 't']] as const) check(`Person:${p.id}`, tag, p[c]);
    for (const r of await readings()) for (const c of ['text', 'topic']) check(`Person:${r.personId}`, 's', r[c]);
    for (const c of await clients()) for (const col of ['email', 'name']) check(`Client:${c.id}`, 's', c[col]);
  }

  test('encrypt-existing moves plaintext and shared-key values under each subject key; status and verify agree; a rerun writes nothing', async () => {
    await seedLegacy();
    // Person 1 already has a key: the application wrote a reading for them after the switch.
    await h.prisma.personReading.create({ data: { id: 'r1-app', personId: 1, text: 'written by the app', topic: 'Career' } });
    const before = { people: await people(), keys: await subjectKeys() };
    expect([...before.keys.keys()]).toEqual(['Person:1']);

    const dry = await run('encrypt-existing', '--dry-run');
    expect(dry.result.code).toBe(0);
    expect(dry.report.updated).toBe(PEOPLE + 2 * PEOPLE + 2);
    expect(await subjectKeys()).toEqual(before.keys); // no key created, nothing written
    expect(await people()).toEqual(before.people);

    const { result, report } = await run('encrypt-existing', '--batch-size', '4');
    expect(result.stderr).not.toMatch(/Person\d@Example|reading \d|Client\.ORG|written by the app/);
    expect(report.failures).toEqual([]);
    expect(result.code).toBe(0);
    expect(report.updated).toBe(PEOPLE + 2 * PEOPLE + 2);
    await expectUnderSubjectKeys();
    const keys = await subjectKeys();
    expect(keys.get('Person:1')).toBe(before.keys.get('Person:1')); // reused, not replaced
    expect(keys.size).toBe(PEOPLE + 2);

    // The application reads every value back, and finds the rows through their blind indexes.
    const found = await h.prisma.person.findMany({ orderBy: { id: 'asc' } });
    expect(found.map((p) => [p.email, p.name, p.birthDate?.toISOString() ?? null])).toEqual(
      Array.from({ length: PEOPLE }, (_, k) => k + 1).map((i) => [emailOf(i), i % 3 === 2 ? null : `Name ${i}`, i % 3 === 2 ? null : birthOf(i).toISOString()]),
    );
    expect((await h.prisma.person.findFirst({ where: { email: 'person4@example.org' } }))?.id).toBe(4);
    expect((await h.prisma.person.findFirst({ where: { email: 'person6@example.org' } }))?.id).toBe(6);
    const career = await h.prisma.personReading.findMany({ where: { topic: 'career' }, orderBy: { id: 'asc' } });
    expect(career.map((r) => r.text)).toEqual(expect.arrayContaining(['reading 2a', 'reading 2b', 'written by the app']));
    expect(career).toHaveLength(2 * PEOPLE + 1);
    expect((await h.prisma.client.findFirst({ where: { email: 'plain@client.org' } }))?.name).toBe('plain client');
    expect((await h.prisma.client.findFirst({ where: { email: 'shared@client.org' } }))?.name).toBe('shared client');

    const status = await runCli(['status', '--schema', schemaFile(provider), '--json', '--quiet'], env);
    const fieldStatus = (JSON.parse(status.stdout) as { fields: Array<{ model: string; field: string; byKey: Record<string, number>; plaintext: number }> }).fields;
    expect(fieldStatus.find((f) => f.model === 'Person' && f.field === 'email')).toMatchObject({ byKey: { '(subject-keys)': PEOPLE }, plaintext: 0 });
    expect(fieldStatus.find((f) => f.model === 'Person' && f.field === 'birthDate')).toMatchObject({ byKey: { '(subject-keys)': 6 }, plaintext: 0 });
    expect(fieldStatus.find((f) => f.model === 'PersonReading' && f.field === 'text')).toMatchObject({ byKey: { '(subject-keys)': 2 * PEOPLE + 1 }, plaintext: 0 });
    const verified = await runCli(['verify', '--schema', schemaFile(provider), '--json', '--quiet'], env);
    expect((JSON.parse(verified.stdout) as { ok: boolean }).ok).toBe(true);
    expect(verified.code).toBe(0);

    const after = { people: await people(), readings: await readings(), clients: await clients() };
    const again = await run('encrypt-existing');
    expect(again.result.code).toBe(0);
    expect(again.report.updated).toBe(0);
    expect({ people: await people(), readings: await readings(), clients: await clients() }).toEqual(after);
  });

  test('encrypt-existing reports and leaves the rows of a forgotten subject and rows without a subject', async () => {
    await seedLegacy();
    await forgetSubject(h.plain as unknown as TransactionalClient, 3, { fields, model: 'Person' });
    await forgetSubject(h.plain as unknown as TransactionalClient, 4, { fields, model: 'Person' });
    // A drifted column: the schema says required, the database holds a NULL subject.
    await h.sql(provider === 'postgres' ? `ALTER TABLE "PersonReading" ALTER COLUMN "personId" DROP NOT NULL` : 'ALTER TABLE `PersonReading` MODIFY `personId` INT NULL');
    await h.sql(`INSERT INTO ${q('PersonReading')} (${q('id')}, ${q('personId')}, ${q('text')}) VALUES ($1, NULL, $2)`, ['r-orphan', 'nobody reads this']);
    const erasedRows = async () => ({
      people: (await people()).filter((p) => p.id === 3 || p.id === 4),
      readings: (await readings()).filter((r) => r.personId === 3 || r.personId === 4 || r.personId === null),
    });
    const before = await erasedRows();

    const { result, report } = await run('encrypt-existing');
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
    expect([...(await subjectKeys()).keys()].filter((s) => s === 'Person:3' || s === 'Person:4')).toEqual([]);
    // What forget does not reach: a value never moved under the subject key stays readable.
    expect(shared('Person', 'email').decrypt(String(before.people.find((p) => p.id === 3)!.email))).toBe(emailOf(3));
    await expectUnderSubjectKeys((s) => s === 'Person:3' || s === 'Person:4' || s === 'Person:null');
  });

  test('rotate leaves values under subject keys byte for byte, rotates their indexes, and moves shared-key values under the subject key', async () => {
    for (let i = 1; i <= 4; i++) {
      await h.prisma.person.create({ data: { id: i, email: emailOf(i), name: `Name ${i}`, birthDate: birthOf(i), readings: { create: [{ id: `r${i}`, text: `reading ${i}`, topic: ' Career' }] } } });
    }
    // A value written before the model had a subject, still under the shared key.
    const email = shared('Person', 'email');
    await h.sql(`INSERT INTO ${q('Person')} (${['id', 'email', 'emailIndex'].map(q).join(', ')}) VALUES ($1, $2, $3)`, [100, email.encrypt(emailOf(100)), email.indexForWrite(emailOf(100))]);
    const before = { people: await people(), readings: await readings() };
    for (const [purpose, id] of [['data', 'd2'], ['index', 'i2']]) await cli({ PCE_KEYRING_FILE: file }, 'keys', 'generate', '--purpose', purpose!, '--id', id!, '--local', '--primary');

    const { result, report } = await run('rotate');
    expect(report.failures).toEqual([]);
    expect(result.code).toBe(0);
    expect(report.updated).toBe(4 + 4 + 1);
    const after = { people: await people(), readings: await readings() };
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
    await expectUnderSubjectKeys();

    const app = h.extend({ keys: await loadKeyring({ file }) });
    expect((await app.person.findFirst({ where: { email: 'person3@example.org' } }))?.name).toBe('Name 3');
    expect((await app.person.findFirst({ where: { email: 'person100@example.org' } }))?.email).toBe(emailOf(100));
    expect(await app.personReading.count({ where: { topic: 'career' } })).toBe(4);
    const again = await run('rotate');
    expect([again.result.code, again.report.updated]).toEqual([0, 0]);
  });

  test('an application write racing encrypt-existing on the same row is kept, under the subject key', async () => {
    await seedLegacy();
    const write = { table: 'Person', column: 'name', id: 4, value: 'Written During Migration' };
    const report = await holdAppWrite(h.db.url, write, () => encryptExisting({ connection: conn, schema: fields, keyring, batchSize: 3, lockTimeoutMs: 60_000, logger: silentLogger }));
    expect(report.failedCount).toBe(0);
    expect(report.casMisses).toBeGreaterThanOrEqual(1);
    await expectUnderSubjectKeys();
    expect((await h.prisma.person.findUnique({ where: { id: 4 } }))?.name).toBe('Written During Migration');
    expect((await h.prisma.person.findMany({ orderBy: { id: 'asc' } })).map((p) => p.email)).toEqual(Array.from({ length: PEOPLE }, (_, k) => emailOf(k + 1)));
  });
});
