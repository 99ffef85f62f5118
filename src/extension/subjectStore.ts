import type { ChosenKey, LoadedSubjectKey } from '../codec/keyChoice';
import type { CryptoBackend } from '../codec/backend';
import { ConfigurationError } from '../errors';
import type { Keyring } from '../keys/keyring';
import type { EncryptionSchema } from '../schema';
import { SubjectKeyStore, subjectRef as storeSubjectRef, type SqlClient } from '../subjects';
import type { QueryClient } from './transactionScope';

/**
 * What the extension uses of the subject key store (src/subjects, `SubjectKeyStore`): declared
 * here so the query walkers depend on the shape, not on the store's SQL.
 */
export interface SubjectKeySource {
  /** The key of a known subject of `root`'s id space, created on its first write; SubjectErasedError for an erased one unless `allowReuse`. */
  keyForSubject(db: QueryClient, root: string, subjectId: string, options?: { readonly allowReuse?: boolean }): Promise<ChosenKey>;
  /** A pending key for a row whose subject id the database generates during the write. */
  reserve(db: QueryClient): Promise<ChosenKey>;
  /** Binds a reserved key to the id the write produced (same transaction). */
  bind(db: QueryClient, keyId: string, root: string, subjectId: string, options?: { readonly allowReuse?: boolean }): Promise<void>;
  /** Deletes reserved keys the write did not bind (same transaction), so no pending key is left behind. */
  release(db: QueryClient, keyIds: readonly string[]): Promise<void>;
  /** The keys of the given ids in one read (through the store's cache). */
  load(db: QueryClient, keyIds: Iterable<string>): Promise<ReadonlyMap<string, LoadedSubjectKey>>;
}

/**
 * The store a client uses when none is given: one over the keyring's wrap keys when the map has
 * a subject-keyed model, else none. A keyring without a wrap key is refused here, when the client
 * is made ({@link requireWrapKey}).
 */
export function subjectStoreFor(fields: EncryptionSchema, keyring: Keyring, backend: CryptoBackend, given?: SubjectKeyStore): SubjectKeySource | undefined {
  const models = subjectModels(fields);
  if (models.length === 0) return undefined;
  requireWrapKey(keyring, models);
  const store = given ?? new SubjectKeyStore({ keys: keyring, provider: fields.provider, backend });
  // A Prisma client (or its transaction client) is the store's SqlClient; only the declared types differ.
  const sql = (db: QueryClient) => db as unknown as SqlClient;
  return {
    keyForSubject: (db, root, subjectId, options) => store.keyForSubject(sql(db), subjectRef(root, subjectId), options),
    reserve: (db) => store.reserve(sql(db)),
    bind: (db, keyId, root, subjectId, options) => store.bind(sql(db), keyId, subjectRef(root, subjectId), options),
    release: (db, keyIds) => store.release(sql(db), keyIds),
    load: (db, keyIds) => store.load(sql(db), keyIds),
  };
}

/** The subject as the store keys it: its id space (root) and id, `Person:42` (the store's `subjectRef`). */
function subjectRef(root: string, subjectId: string): string {
  return storeSubjectRef(root, subjectId);
}

/** The map's models whose encrypted values are under per-subject keys (`@@encrypted(subject: ...)`). */
export function subjectModels(fields: EncryptionSchema): string[] {
  return Object.entries(fields?.models ?? {})
    .filter(([, m]) => m.subject && Object.keys(m.encrypted).length > 0)
    .map(([name]) => name);
}

/**
 * A keyring without a wrap key cannot create or read subject keys, so a client over a schema with
 * subject models is refused when it is made (with a keyring given directly, `columnEncryption()`
 * throws; with a promise or a loader, loading fails with this error), rather than on the first
 * subject write after a deploy has gone out.
 */
export function requireWrapKey(keyring: Pick<Keyring, 'primaryWrap'>, models: readonly string[]): void {
  if (keyring.primaryWrap) return;
  const named = models.length === 1 ? `model ${models[0]} is` : `models ${models.join(', ')} are`;
  throw new ConfigurationError(
    models.length === 1 ? models[0] : undefined,
    undefined,
    `the keyring has no wrap key, and the schema's ${named} encrypted under per-subject keys (@@encrypted(subject: ...)), which need one: ` +
      'add a wrap key to the keyring (prisma-column-encryption keys generate --purpose wrap; in development PCE_WRAP_KEYS=id:base64, or localKeys({ data, index, wrap }) in code)',
  );
}
