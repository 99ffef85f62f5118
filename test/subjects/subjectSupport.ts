import { Command } from 'commander';
import { join } from 'node:path';
import { encryptedFields as pgFields } from '../../generated/postgres/encryption';
import { encryptedFields as myFields } from '../../generated/mysql/encryption';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import { registerSubjectCommands } from '../../src/cli/subjectCommands';
import { FieldCodec } from '../../src/codec/fieldCodec';
import type { ChosenKey, KeyChoice } from '../../src/codec/keyChoice';
import { parseCiphertext } from '../../src/crypto/ciphertext';
import { subjectRef, type Keyring, type SqlClient, type SubjectKeyStore, type TransactionalClient } from '../../src';
import type { EncryptionSchema } from '../../src/schema';
import type { Harness } from '../support/clients';
import type { Provider } from '../support/databases';
import { captureLogger } from '../keys/support';

export const ROOT = join(__dirname, '..', '..');
export const schemaFile = (provider: Provider) => join(ROOT, 'prisma', provider, 'schema.prisma');
export const prismaProvider = (provider: Provider) => (provider === 'mysql' ? 'mysql' : 'postgresql');

const SUBJECTS = {
  Person: { field: 'id', column: 'id', type: 'Int', root: 'Person' },
  PersonProfile: { field: 'personId', column: 'personId', type: 'Int', root: 'Person' },
  PersonReading: { field: 'personId', column: 'personId', type: 'Int', root: 'Person' },
  Client: { field: 'id', column: 'id', type: 'String', root: 'Client' },
} as const;

/**
 * The generated map with the test models' subjects. The generator emits them once it reads
 * `@@encrypted(subject: ...)`; until then the tests add them, so the store side is tested alone.
 */
export function subjectFields(provider: Provider): EncryptionSchema {
  const fields = (provider === 'mysql' ? myFields : pgFields) as unknown as EncryptionSchema;
  const models = Object.fromEntries(
    Object.entries(fields.models).map(([name, spec]) => {
      const subject = SUBJECTS[name as keyof typeof SUBJECTS];
      return [name, subject && !(spec as { subject?: unknown }).subject ? { ...spec, subject } : spec];
    }),
  );
  return { ...fields, models };
}

/** A KeyChoice writing and reading under the given subject keys: what the extension does per row. */
export function subjectChoice(keyring: Keyring, keys: Iterable<ChosenKey>): KeyChoice {
  const byId = new Map([...keys].map((k) => [k.id, k]));
  const first = [...byId.values()][0];
  return {
    forWrite: () => first!,
    forRead: (scope, id) => (scope === 'subject' ? (byId.get(id) ?? 'unknown-key') : 'unknown-key'),
    indexKeys: (binding) => keyring.indexKeysFor(binding),
  };
}

export function codec(keyring: Keyring, model: string, field: string, keys: Iterable<ChosenKey>): FieldCodec {
  const spec = pgFields.models[model as keyof typeof pgFields.models]!.encrypted as Record<string, never>;
  return new FieldCodec(model, field, spec[field]!, keyring, { keys: subjectChoice(keyring, keys) });
}

/**
 * Writes a person and two readings under a fresh subject key, the way the extension does for a
 * database-generated id: reserve a key, insert, bind the key to the id, in one transaction.
 */
export async function writePerson(h: Harness, store: SubjectKeyStore, keyring: Keyring, email: string, topic: string): Promise<{ id: number; keyId: string }> {
  return h.plain.$transaction(async (tx) => {
    const db = tx as unknown as SqlClient;
    const key = await store.reserve(db);
    const c = (model: string, field: string) => codec(keyring, model, field, [key]);
    const person = await tx.person.create({
      data: { email: c('Person', 'email').encrypt(email), emailIndex: c('Person', 'email').indexForWrite(email), name: c('Person', 'name').encrypt(`name of ${email}`) },
    });
    await store.bind(db, key.id, subjectRef('Person', person.id));
    for (const text of ['first reading', 'second reading']) {
      await tx.personReading.create({
        data: { personId: person.id, text: c('PersonReading', 'text').encrypt(text), topic: c('PersonReading', 'topic').encrypt(topic), topicIndex: c('PersonReading', 'topic').indexForWrite(topic) },
      });
    }
    return { id: person.id, keyId: key.id };
  });
}

/** A person's email as a reader sees it: decrypted with the key its envelope names, or why not. */
export async function readEmail(h: Harness, store: SubjectKeyStore, keyring: Keyring, id: number): Promise<string> {
  const [row] = await h.sql<{ email: string }>(`SELECT ${h.q('email')} FROM ${h.q('Person')} WHERE ${h.q('id')} = $1`, [id]);
  const parsed = parseCiphertext(row!.email);
  if (parsed.kind !== 'ciphertext') throw new Error('not ciphertext');
  const found = (await store.load(h.plain, [parsed.value.keyId])).get(parsed.value.keyId)!;
  if (typeof found === 'string') return found;
  return codec(keyring, 'Person', 'email', [found]).decrypt(row!.email) as string;
}

/** The blind indexes stored for a person and their readings. */
export async function indexesOf(h: Harness, id: number): Promise<Array<string | null>> {
  const person = await h.sql<{ i: string | null }>(`SELECT ${h.q('emailIndex')} AS i FROM ${h.q('Person')} WHERE ${h.q('id')} = $1`, [id]);
  const readings = await h.sql<{ i: string | null }>(`SELECT ${h.q('topicIndex')} AS i FROM ${h.q('PersonReading')} WHERE ${h.q('personId')} = $1`, [id]);
  return [...person, ...readings].map((r) => r.i);
}

/** Runs the CLI in-process: stdout, the error if it failed, and the audit events. */
export async function cli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ out: string; error: Error | undefined; events: Array<Record<string, unknown>>; log: string }> {
  let out = '';
  const log = captureLogger();
  const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (t) => void (out += t) });
  registerKeyCommands(program, { env, write: (t) => void (out += t), logger: log.logger });
  registerSubjectCommands(program, { env, write: (t) => void (out += t), logger: log.logger });
  const error = await program.parseAsync(['node', 'prisma-column-encryption', ...args]).then(
    () => undefined,
    (e: Error) => e,
  );
  return { out, error, events: log.events(), log: log.text() };
}

/** A client whose transactions stop for `ms` after their first statement: to hold a lock at a known point. */
export function pausingAfterFirstStatement(client: TransactionalClient, ms: number, onPaused?: () => void): TransactionalClient {
  return {
    $queryRawUnsafe: (q, ...v) => client.$queryRawUnsafe(q, ...v),
    $executeRawUnsafe: (q, ...v) => client.$executeRawUnsafe(q, ...v),
    $transaction: (run, options) =>
      client.$transaction(async (tx) => {
        let first = true;
        const pause = async () => {
          if (!first) return;
          first = false;
          onPaused?.();
          await new Promise((r) => setTimeout(r, ms));
        };
        const wrapped: SqlClient = {
          $queryRawUnsafe: async <T>(q: string, ...v: unknown[]) => {
            const r = await tx.$queryRawUnsafe<T>(q, ...v);
            await pause();
            return r;
          },
          $executeRawUnsafe: async (q: string, ...v: unknown[]) => {
            const r = await tx.$executeRawUnsafe(q, ...v);
            await pause();
            return r;
          },
        };
        return run(wrapped);
      }, options),
  };
}
