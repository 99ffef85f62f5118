import { loadKeyring, type EncryptionSchema, type Keyring } from '../../src';
import type { FieldCodec } from '../../src/codec/fieldCodec';
import type { SqlConnection } from '../../src/migrate/connection';
import { tempDir } from '../keys/support';
import { createHarness, type Harness } from '../support/clients';
import type { Provider } from '../support/databases';
import { cli, schemaFile, subjectFields } from '../subjects/subjectSupport';
import { codec, connect, runCli, type CliResult } from './migrateSupport';

/** What the migrator's subject-model tests share (`subjects.test.ts`, `subjectRaces.test.ts`). */

/** The parts of a migration report (CLI `--json`) the tests read. */
export interface Report {
  updated: number;
  failedCount: number;
  casMisses: number;
  failures: Array<{ model: string; key: Record<string, unknown>; field: string; reason: string }>;
}

export const PEOPLE = 9;
export const emailOf = (i: number) => `  Person${i}@Example.ORG `;
export const birthOf = (i: number) => new Date(Date.UTC(1980 + i, 0, 2, 3, 4, 5));
/** Plaintext as a legacy writer stored it (DateTime as the column's text). */
const birthText = (i: number) => `${1980 + i}-01-02 03:04:05.000`;

/** A fresh database per test, a keyring file with data key d1, index key i1 and wrap key w1, and the CLI's environment for both. */
export interface SubjectFixture {
  readonly provider: Provider;
  readonly fields: EncryptionSchema;
  readonly h: Harness;
  readonly conn: SqlConnection;
  readonly file: string;
  readonly keyring: Keyring;
  readonly env: Record<string, string>;
}

/** Registers the hooks that open and close a {@link SubjectFixture} around each test; read it inside tests. */
export function useSubjectFixture(provider: Provider): SubjectFixture {
  const dir = tempDir();
  let n = 0;
  const current: { -readonly [K in keyof SubjectFixture]?: SubjectFixture[K] } = { provider, fields: subjectFields(provider) };
  beforeEach(async () => {
    const file = dir.file(`keyring-${n++}.json`);
    for (const [purpose, id] of [['data', 'd1'], ['index', 'i1'], ['wrap', 'w1']] as const) await cli({ PCE_KEYRING_FILE: file }, 'keys', 'generate', '--purpose', purpose, '--id', id, '--local');
    const keyring = await loadKeyring({ file });
    const h = await createHarness(provider, { keys: keyring });
    Object.assign(current, { file, keyring, h, conn: await connect(h.db.url), env: { DATABASE_URL: h.db.url, PCE_KEYRING_FILE: file } });
  });
  afterEach(async () => {
    await current.conn?.close();
    await current.h?.close();
  });
  afterAll(() => dir.remove());
  return new Proxy(current, {
    get(target, key: keyof SubjectFixture) {
      const value = target[key];
      if (value === undefined) throw new Error(`the subject fixture's ${String(key)} is read outside a test`);
      return value;
    },
  }) as SubjectFixture;
}

const quote = (f: SubjectFixture) => (id: string) => f.h.q(id);

/** A shared-key codec for a field of the test schema (what values looked like before the model had a subject). */
export function sharedCodec(f: SubjectFixture, model: string, field: string): FieldCodec {
  return codec(f.provider, f.keyring, model, field);
}

/** Runs a migration command through the built executable with `--json`. */
export async function runJson(f: SubjectFixture, command: string, ...more: string[]): Promise<{ result: CliResult; report: Report }> {
  const result = await runCli([command, '--schema', schemaFile(f.provider), '--json', '--quiet', ...more], f.env);
  return { result, report: JSON.parse(result.stdout || '{}') as Report };
}

function rows(f: SubjectFixture, table: string, columns: string[]): Promise<Array<Record<string, unknown>>> {
  const q = quote(f);
  return f.h.sql<Record<string, unknown>>(`SELECT ${columns.map(q).join(', ')} FROM ${q(table)} ORDER BY ${q('id')}`);
}

export const people = (f: SubjectFixture) => rows(f, 'Person', ['id', 'email', 'emailIndex', 'name', 'birthDateCipher']);
export const readings = (f: SubjectFixture) => rows(f, 'PersonReading', ['id', 'personId', 'text', 'topic', 'topicIndex']);
export const clients = (f: SubjectFixture) => rows(f, 'Client', ['id', 'email', 'emailIndex', 'name']);

/** Subject (`Person:1`) -> its live key id. */
export async function subjectKeys(f: SubjectFixture): Promise<Map<string, string>> {
  const found = await f.h.sql<{ key_id: string; subject_id: string }>(`SELECT key_id, subject_id FROM pce_subject_keys WHERE subject_id IS NOT NULL AND wrapped_key IS NOT NULL`);
  return new Map(found.map((r) => [r.subject_id, r.key_id]));
}

/**
 * Legacy rows written with SQL: people whose id % 3 is 0 under the shared key (v1, and v2 for
 * the DateTime), the others in plaintext (birth date in its own column); two readings each, one
 * of each kind; clients (String subject ids), one of each kind.
 */
export async function seedLegacy(f: SubjectFixture): Promise<void> {
  const q = quote(f);
  const [email, name, birth] = ['email', 'name', 'birthDate'].map((field) => sharedCodec(f, 'Person', field)) as [FieldCodec, FieldCodec, FieldCodec];
  for (let i = 1; i <= PEOPLE; i++) {
    const cells =
      i % 3 === 0
        ? [email.encrypt(emailOf(i)), email.indexForWrite(emailOf(i)), name.encrypt(`Name ${i}`), null, birth.encrypt(birthOf(i))]
        : [emailOf(i), null, i % 3 === 1 ? `Name ${i}` : null, i % 3 === 1 ? birthText(i) : null, null];
    await f.h.sql(`INSERT INTO ${q('Person')} (${['id', 'email', 'emailIndex', 'name', 'birthDate', 'birthDateCipher'].map(q).join(', ')}) VALUES ($1, $2, $3, $4, $5, $6)`, [i, ...cells]);
  }
  const text = sharedCodec(f, 'PersonReading', 'text');
  const topic = sharedCodec(f, 'PersonReading', 'topic');
  for (let i = 1; i <= PEOPLE; i++) {
    await f.h.sql(`INSERT INTO ${q('PersonReading')} (${['id', 'personId', 'text', 'topic', 'topicIndex'].map(q).join(', ')}) VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)`, [
      `r${i}a`, i, `reading ${i}a`, ' Career', null,
      `r${i}b`, i, text.encrypt(`reading ${i}b`), topic.encrypt(' Career'), topic.indexForWrite(' Career'),
    ]);
  }
  const cEmail = sharedCodec(f, 'Client', 'email');
  await f.h.sql(`INSERT INTO ${q('Client')} (${['id', 'email', 'emailIndex', 'name'].map(q).join(', ')}) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)`, [
    'c-plain', 'Plain@Client.ORG', null, 'plain client',
    'c-shared', cEmail.encrypt('Shared@Client.ORG'), cEmail.indexForWrite('Shared@Client.ORG'), sharedCodec(f, 'Client', 'name').encrypt('shared client'),
  ]);
}

/** Every stored value (of people only, or of every subject model) is an envelope under the key of its row's own subject, except for `skip`ped subjects. */
export async function expectUnderSubjectKeys(f: SubjectFixture, options: { skip?: (subject: string) => boolean; onlyPeople?: boolean } = {}): Promise<void> {
  const keys = await subjectKeys(f);
  const check = (subject: string, tag: string, value: unknown) => {
    if (value === null || options.skip?.(subject)) return;
    expect(keys.get(subject)).toBeDefined();
    expect(String(value).startsWith(`pce:v2:${tag}:s:${keys.get(subject)}:`)).toBe(true);
  };
  for (const p of await people(f)) for (const [c, tag] of [['email', 's'], ['name', 's'], ['birthDateCipher', 't']] as const) check(`Person:${p.id}`, tag, p[c]);
  if (options.onlyPeople) return;
  for (const r of await readings(f)) for (const c of ['text', 'topic']) check(`Person:${r.personId}`, 's', r[c]);
  for (const c of await clients(f)) for (const col of ['email', 'name']) check(`Client:${c.id}`, 's', c[col]);
}
