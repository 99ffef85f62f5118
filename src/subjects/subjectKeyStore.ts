import { LRUCache } from 'lru-cache';
import type { ChosenKey } from '../codec/keyChoice';
import type { CryptoBackend } from '../codec/backend';
import { defaultBackend } from '../codec/backendChoice';
import { KeyringError, SubjectErasedError } from '../errors';
import type { Keyring } from '../keys/keyring';
import { execute, rows, type SqlClient } from './sqlClient';
import { dialectOf, SubjectKeySql, type SubjectKeyRow } from './subjectKeySql';
import { newSubjectKey, unwrapSubjectKey } from './subjectKeyWrap';
import { subjectIdText, type SubjectId } from './subjectRef';

export { MAX_SUBJECT_ID_LENGTH, subjectIdText, subjectRef, type SubjectId } from './subjectRef';

/**
 * What {@link SubjectKeyStore.load} found for one key id: the key, or why there is none.
 * `subject-erased`: the key row is a tombstone (the subject was forgotten); `unknown-key`: no such
 * row, or its wrap key is not in the keyring (destroyed: the state of an old backup after its
 * epoch is gone); `retired-key`: its wrap key is retired in the keyring file;
 * `authentication-failed`: the wrapped key does not unwrap (tampered, or copied from another row).
 */
export type SubjectKeyLookup = ChosenKey | 'subject-erased' | 'unknown-key' | 'retired-key' | 'authentication-failed';

/** The keyring parts the store uses. */
export type WrapKeys = Pick<Keyring, 'primaryWrap' | 'wrapKey'> & Partial<Pick<Keyring, 'isRetired'>>;

export interface SubjectKeyStoreOptions {
  /** The keyring: its primary wrap key wraps new subject keys; any of its wrap keys unwraps. */
  readonly keys: WrapKeys;
  /** The Prisma schema's provider (`encryptedFields.provider`): `postgresql` or `mysql`. */
  readonly provider: string;
  /** Unwrapped keys kept in memory: at most `max` keys (default 10 000), each for `ttlMs` (default 5 minutes). */
  readonly cache?: { readonly max?: number; readonly ttlMs?: number };
  /** Computes the key wrapping; the process's backend by default (native where it loads). */
  readonly backend?: CryptoBackend;
  /** The clock for `created_at` (tests move it). */
  readonly now?: () => Date;
}

/** Per call: whether an erased subject may get a new key (an explicit reuse of its id). */
export interface SubjectWriteOptions {
  readonly allowReuse?: boolean;
}

/** Largest IN list of one key read. */
const LOAD_CHUNK = 1000;

/**
 * Every store of this process, so that an erasure drops the destroyed keys from all of them at
 * once ({@link SubjectKeyStore.evictEverywhere}), not only from a store passed to forgetSubject:
 * within one process a forgotten subject is unreadable as soon as the erasure commits.
 */
const liveStores = new Set<WeakRef<SubjectKeyStore>>();
const forgetStore = new FinalizationRegistry<WeakRef<SubjectKeyStore>>((ref) => liveStores.delete(ref));

/**
 * Per-subject data keys, stored wrapped in `pce_subject_keys`. Every method takes the Prisma
 * client to run its SQL on (the base client, or the transaction client of the caller's
 * transaction), so key creation commits or rolls back with the values written under the key.
 *
 * Unwrapped keys are cached by key id in a bounded LRU with a lifetime (key bytes never change:
 * an epoch rotation re-wraps the same bytes). Another process's erasure reaches this cache only
 * when the entry expires: that lifetime is how long a forgotten subject stays readable elsewhere.
 */
export class SubjectKeyStore {
  readonly sql: SubjectKeySql;
  private readonly cache: LRUCache<string, ChosenKey>;
  /**
   * Key ids erased while this process ran: never cached again, so a key load that read the live
   * row just before the erasure committed cannot put the key back after the eviction. Kept as
   * long as a cache entry lives; a load that starts later reads the tombstone anyway.
   */
  private readonly erased: LRUCache<string, true>;
  private readonly keys: WrapKeys;
  private readonly backend: CryptoBackend;
  private readonly now: () => Date;

  constructor(options: SubjectKeyStoreOptions) {
    this.keys = options.keys;
    this.sql = new SubjectKeySql(dialectOf(options.provider));
    this.backend = options.backend ?? defaultBackend();
    this.now = options.now ?? (() => new Date());
    this.cache = new LRUCache({ max: options.cache?.max ?? 10_000, ttl: options.cache?.ttlMs ?? 5 * 60_000 });
    this.erased = new LRUCache({ max: options.cache?.max ?? 10_000, ttl: options.cache?.ttlMs ?? 5 * 60_000 });
    const ref = new WeakRef(this);
    liveStores.add(ref);
    forgetStore.register(this, ref);
  }

  /** Drops these (destroyed) keys from every store of this process; erasure calls it after its commit. */
  static evictEverywhere(keyIds: Iterable<string>): void {
    const ids = [...keyIds];
    if (ids.length === 0) return;
    for (const ref of liveStores) for (const id of ids) ref.deref()?.evict(id);
  }

  /** Caches a key unless it was erased while this process ran. */
  private remember(chosen: ChosenKey): void {
    if (!this.erased.has(chosen.id)) this.cache.set(chosen.id, chosen);
  }

  /** The primary wrap key, or a KeyringError saying how to make one. */
  private epoch() {
    const wrap = this.keys.primaryWrap;
    if (!wrap) throw new KeyringError(undefined, 'the keyring has no wrap key, which per-subject keys need (prisma-column-encryption keys generate --purpose wrap)');
    return wrap;
  }

  /**
   * The key of a known subject, created on its first write. Two concurrent first writes create
   * one key row: the second insert waits for the first and is ignored, then both read the one
   * row. The row is read with a shared lock, so `forgetSubject` (which locks it exclusively)
   * either waits for this transaction or has already tombstoned it. An erased subject gets
   * {@link SubjectErasedError} unless `allowReuse`; nothing is left behind then.
   */
  async keyForSubject(db: SqlClient, subjectId: SubjectId, options: SubjectWriteOptions = {}): Promise<ChosenKey> {
    const subject = subjectIdText(subjectId);
    const { sql } = this;
    // MySQL: a locking read of a row that does not exist takes a gap lock, and two first writers
    // holding one would deadlock on their inserts. A plain read decides whether to lock at all.
    const existing = sql.dialect === 'mysql' && !(await rows<SubjectKeyRow>(db, sql.keyOfSubject(subject, 'none')))[0] ? undefined : await this.lockedRow(db, subject);
    if (existing) return this.fromRow(existing);
    const wrap = this.epoch();
    const fresh = newSubjectKey(wrap.key, this.backend);
    const inserted = (await execute(db, sql.insertKey(fresh.id, subject, wrap.id, fresh.wrapped, this.now()))) > 0;
    if (!options.allowReuse && (await rows(db, sql.erasureOf(subject))).length > 0) {
      if (inserted) await execute(db, sql.deleteKey(fresh.id));
      throw new SubjectErasedError();
    }
    if (inserted) {
      const chosen: ChosenKey = { scope: 'subject', id: fresh.id, key: fresh.key };
      this.remember(chosen);
      return chosen;
    }
    // Another transaction created it first (and has committed: the insert waited for it).
    const theirs = await this.lockedRow(db, subject);
    if (!theirs) throw new SubjectErasedError(); // tombstoned between our insert and this read
    return this.fromRow(theirs);
  }

  private async lockedRow(db: SqlClient, subject: string): Promise<SubjectKeyRow | undefined> {
    return (await rows<SubjectKeyRow>(db, this.sql.keyOfSubject(subject, 'share'))).find((r) => r.wrapped_key !== null);
  }

  /**
   * A fresh pending key (no subject yet), for a row whose subject id the database generates
   * (autoincrement): insert the row with values under this key, then {@link bind} it to the id
   * the insert produced, in the same transaction.
   */
  async reserve(db: SqlClient): Promise<ChosenKey> {
    const wrap = this.epoch();
    const fresh = newSubjectKey(wrap.key, this.backend);
    await execute(db, this.sql.insertKey(fresh.id, null, wrap.id, fresh.wrapped, this.now()));
    const chosen: ChosenKey = { scope: 'subject', id: fresh.id, key: fresh.key };
    this.remember(chosen);
    return chosen;
  }

  /**
   * Binds a reserved key to its subject. Refused when the key is not pending, when the subject
   * already has a key (a unique violation from the database), and when the subject was erased
   * (ids can come back: MySQL may reuse AUTO_INCREMENT values) unless `allowReuse`.
   *
   * The key is bound first and the erasure looked up after: the bound row is what an erasure of
   * the subject locks, so one running now waits for this transaction (and then destroys the key),
   * or has committed and is found here (the key is left pending again and the bind refused).
   */
  async bind(db: SqlClient, keyId: string, subjectId: SubjectId, options: SubjectWriteOptions = {}): Promise<void> {
    const subject = subjectIdText(subjectId);
    const bound = await execute(db, this.sql.bind(keyId, subject));
    if (bound !== 1) throw new KeyringError(keyId, 'is not a pending subject key (reserve one in the same transaction before binding it)');
    if (!options.allowReuse && (await rows(db, this.sql.erasureOf(subject))).length > 0) {
      await execute(db, this.sql.unbind(keyId));
      throw new SubjectErasedError();
    }
  }

  /**
   * Deletes reserved keys that were not bound (the write that reserved them did not need them:
   * an upsert whose row existed), in the same transaction, so no pending key is left behind.
   * A key that is bound, or a tombstone, is left as it is.
   */
  async release(db: SqlClient, keyIds: Iterable<string>): Promise<void> {
    for (const id of keyIds) {
      await execute(db, this.sql.deletePending(id));
      this.cache.delete(id);
    }
  }

  /**
   * The keys of the given key ids, in one SQL read per 1000 ids not already cached (a result's
   * keys are found together, never one query per row), unwrapped and cached.
   */
  async load(db: SqlClient, keyIds: Iterable<string>): Promise<ReadonlyMap<string, SubjectKeyLookup>> {
    const out = new Map<string, SubjectKeyLookup>();
    const missing: string[] = [];
    for (const id of new Set(keyIds)) {
      const cached = this.cache.get(id);
      if (cached) out.set(id, cached);
      else missing.push(id);
    }
    for (let i = 0; i < missing.length; i += LOAD_CHUNK) {
      const chunk = missing.slice(i, i + LOAD_CHUNK);
      for (const row of await rows<SubjectKeyRow>(db, this.sql.keysById(chunk))) out.set(row.key_id, this.lookupRow(row));
    }
    for (const id of missing) if (!out.has(id)) out.set(id, 'unknown-key');
    return out;
  }

  /**
   * The keys of the given key ids read with a shared lock in the caller's transaction, never from
   * the cache alone: a concurrent erasure waits for the transaction, or has already tombstoned the
   * key (`subject-erased`). For the migrator, which writes blind indexes computed with these keys
   * (an index written for an erased subject would undo part of its erasure). Run it in READ
   * COMMITTED on MySQL/MariaDB (the migrator's transactions are), where a locking read of an id
   * that does not exist takes no gap lock.
   */
  async lockKeys(db: SqlClient, keyIds: Iterable<string>): Promise<ReadonlyMap<string, SubjectKeyLookup>> {
    const ids = [...new Set(keyIds)];
    const out = new Map<string, SubjectKeyLookup>();
    for (let i = 0; i < ids.length; i += LOAD_CHUNK) {
      for (const row of await rows<SubjectKeyRow>(db, this.sql.keysById(ids.slice(i, i + LOAD_CHUNK), 'share'))) out.set(row.key_id, this.liveOrLookup(row));
    }
    for (const id of ids) if (!out.has(id)) out.set(id, 'unknown-key');
    return out;
  }

  /**
   * The write keys of many subjects ({@link subjectRef} texts) in the caller's transaction: one
   * read (1000 subjects per statement) for those that have a key, locked shared as
   * {@link keyForSubject} locks it, then {@link keyForSubject} for each of the others in subject
   * order (creating its key; `subject-erased` for an erased one). Keys created in order keep two
   * such batches from deadlocking on each other's new keys. With `create: false` (a dry run)
   * nothing is locked or written: a subject without a key is absent from the result.
   */
  async keysForSubjects(db: SqlClient, subjects: Iterable<string>, options: SubjectWriteOptions & { readonly create: boolean }): Promise<ReadonlyMap<string, SubjectKeyLookup>> {
    const wanted = [...new Set(subjects)].sort();
    const out = new Map<string, SubjectKeyLookup>();
    const { sql } = this;
    for (let i = 0; i < wanted.length; i += LOAD_CHUNK) {
      const chunk = wanted.slice(i, i + LOAD_CHUNK);
      // As keyForSubject: MySQL locks only rows a plain read found, so missing ones take no gap locks.
      const lock = options.create && sql.dialect === 'postgres' ? 'share' : 'none';
      let found = (await rows<SubjectKeyRow>(db, sql.keysOfSubjects(chunk, lock))).filter((r) => r.wrapped_key !== null && r.subject_id !== null);
      if (options.create && sql.dialect === 'mysql' && found.length > 0) {
        found = (await rows<SubjectKeyRow>(db, sql.keysOfSubjects(found.map((r) => r.subject_id!), 'share'))).filter((r) => r.wrapped_key !== null && r.subject_id !== null);
      }
      for (const row of found) out.set(row.subject_id!, this.liveOrLookup(row));
    }
    const rest = wanted.filter((s) => !out.has(s));
    if (!options.create) {
      for (let i = 0; i < rest.length; i += LOAD_CHUNK) {
        for (const r of await rows<{ subject_id: string }>(db, sql.erasuresOf(rest.slice(i, i + LOAD_CHUNK)))) out.set(r.subject_id, 'subject-erased');
      }
      return out;
    }
    for (const subject of rest) {
      try {
        out.set(subject, await this.keyForSubject(db, subject, options));
      } catch (error) {
        if (!(error instanceof SubjectErasedError)) throw error;
        out.set(subject, 'subject-erased');
      }
    }
    return out;
  }

  /** A key row read just now: its cached key when it is live and cached (saves the unwrap), else as {@link lookupRow}. */
  private liveOrLookup(row: SubjectKeyRow): SubjectKeyLookup {
    if (row.wrapped_key === null) return 'subject-erased';
    return this.cache.get(row.key_id) ?? this.lookupRow(row);
  }

  /** Forgets a destroyed key's unwrapped copy, for good (erasure calls it; other processes wait for the lifetime). */
  evict(keyId: string): void {
    this.erased.set(keyId, true);
    this.cache.delete(keyId);
  }

  /** Forgets every cached key of this process. */
  clear(): void {
    this.cache.clear();
  }

  private lookupRow(row: SubjectKeyRow): SubjectKeyLookup {
    if (row.wrapped_key === null || row.wrap_key_id === null) return 'subject-erased';
    const wrap = this.keys.wrapKey(row.wrap_key_id);
    if (!wrap) return this.keys.isRetired?.(row.wrap_key_id) ? 'retired-key' : 'unknown-key';
    const key = unwrapSubjectKey(wrap.key, row.key_id, row.wrapped_key, this.backend);
    if (!key) return 'authentication-failed';
    const chosen: ChosenKey = { scope: 'subject', id: row.key_id, key };
    this.remember(chosen);
    return chosen;
  }

  /** A live row's key for writing: anything but a usable key is an error here, never a silent new key. */
  private fromRow(row: SubjectKeyRow): ChosenKey {
    const cached = this.cache.get(row.key_id);
    if (cached) return cached;
    const found = this.lookupRow(row);
    if (typeof found !== 'string') return found;
    throw new KeyringError(
      row.key_id,
      found === 'authentication-failed'
        ? 'subject key does not unwrap under its wrap key (tampered, or copied from another row)'
        : `subject key is wrapped under wrap key '${row.wrap_key_id}', which the keyring does not hold (${found === 'retired-key' ? 'retired: reactivate it, then keys rotate-epoch' : 'load it, then keys rotate-epoch'})`,
    );
  }
}
