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
  /** The keys of the given ids in one read (through the store's cache). */
  load(db: QueryClient, keyIds: readonly string[]): Promise<ReadonlyMap<string, LoadedSubjectKey>>;
}

/**
 * The store a client uses when none is given: one over the keyring's wrap keys when the map has
 * a subject-keyed model, else none.
 */
export function subjectStoreFor(fields: EncryptionSchema, keyring: Keyring, backend: CryptoBackend, given?: SubjectKeyStore): SubjectKeySource | undefined {
  if (!Object.values(fields?.models ?? {}).some((m) => m.subject && Object.keys(m.encrypted).length > 0)) return undefined;
  const store = given ?? new SubjectKeyStore({ keys: keyring, provider: fields.provider, backend });
  // A Prisma client (or its transaction client) is the store's SqlClient; only the declared types differ.
  const sql = (db: QueryClient) => db as unknown as SqlClient;
  return {
    keyForSubject: (db, root, subjectId, options) => store.keyForSubject(sql(db), subjectRef(root, subjectId), options),
    reserve: (db) => store.reserve(sql(db)),
    bind: (db, keyId, root, subjectId, options) => store.bind(sql(db), keyId, subjectRef(root, subjectId), options),
    load: (db, keyIds) => store.load(sql(db), keyIds),
  };
}

/** The subject as the store keys it: its id space (root) and id, `Person:42` (the store's `subjectRef`). */
function subjectRef(root: string, subjectId: string): string {
  return storeSubjectRef(root, subjectId);
}

/**
 * A keyring without a wrap key cannot create subject keys. It is refused on the first write of a
 * subject-keyed value, not at start-up, so a schema that gains a subject model does not stop
 * clients that never write one (reads of shared-key values keep working).
 */
export function requireWrapKey(keyring: Pick<Keyring, 'primaryWrap'>, model: string): void {
  if (!keyring.primaryWrap) {
    throw new ConfigurationError(model, undefined, 'the model is encrypted under per-subject keys (@@encrypted(subject: ...)), which need a wrap key in the keyring (prisma-column-encryption keys generate --purpose wrap, or PCE_WRAP_KEYS)');
  }
}
