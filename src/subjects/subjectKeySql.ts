/**
 * The SQL of the package-owned subject-key tables, for PostgreSQL and MySQL/MariaDB. Every
 * statement is a text with positional parameters (`$1` or `?`) and its values, run through a
 * Prisma client's `$queryRawUnsafe` / `$executeRawUnsafe`, so it joins the caller's transaction.
 *
 *   pce_subject_keys(key_id, subject_id, wrap_key_id, wrapped_key, created_at, erased_at)
 *   pce_erasures(subject_id, erased_at)
 *
 * Locking, which is what makes first writes and erasure race-free:
 * - a writer inserts the subject's key row if none exists (`ON CONFLICT DO NOTHING` /
 *   `INSERT IGNORE`: a concurrent insert of the same subject waits for the first to commit), then
 *   reads it with a shared lock;
 * - erasure inserts the same row if none exists, then locks it exclusively before it tombstones
 *   it, so it waits for every writer holding the key, and every later writer finds it erased.
 */

/** Which SQL dialect: from the Prisma schema's provider. */
export type SubjectKeyDialect = 'postgres' | 'mysql';

/** One statement ready for `$queryRawUnsafe(text, ...values)`. */
export interface Statement {
  readonly text: string;
  readonly values: readonly unknown[];
}

/** A row of pce_subject_keys as the store reads it. */
export interface SubjectKeyRow {
  readonly key_id: string;
  readonly subject_id: string | null;
  readonly wrap_key_id: string | null;
  readonly wrapped_key: string | null;
}

/** The SQL dialect of a Prisma provider name (`postgresql`, `mysql`, ...). */
export function dialectOf(provider: string): SubjectKeyDialect {
  if (provider === 'postgresql' || provider === 'postgres' || provider === 'cockroachdb') return 'postgres';
  if (provider === 'mysql') return 'mysql';
  throw new Error(`subject keys support PostgreSQL and MySQL/MariaDB, not ${provider}`);
}

export const KEYS_TABLE = 'pce_subject_keys';
export const ERASURES_TABLE = 'pce_erasures';
const COLUMNS = 'key_id, subject_id, wrap_key_id, wrapped_key';

/** Statements of one dialect. Identifiers of application tables are quoted here, never taken raw. */
export class SubjectKeySql {
  constructor(readonly dialect: SubjectKeyDialect) {}

  /** Quotes an identifier (table or column name from the generated schema map). */
  quote(identifier: string): string {
    return this.dialect === 'postgres' ? `"${identifier.replace(/"/g, '""')}"` : `\`${identifier.replace(/`/g, '``')}\``;
  }

  private p(n: number): string {
    return this.dialect === 'postgres' ? `$${n}` : '?';
  }

  private get shareLock(): string {
    // MariaDB has no FOR SHARE; LOCK IN SHARE MODE works on MySQL 8 and MariaDB.
    return this.dialect === 'postgres' ? 'FOR SHARE' : 'LOCK IN SHARE MODE';
  }

  /** The subject's key row, read with a shared lock (a concurrent erasure waits for this transaction). */
  keyOfSubject(subjectId: string, lock: 'share' | 'update' | 'none'): Statement {
    const suffix = lock === 'share' ? ` ${this.shareLock}` : lock === 'update' ? ' FOR UPDATE' : '';
    return { text: `SELECT ${COLUMNS} FROM ${KEYS_TABLE} WHERE subject_id = ${this.p(1)}${suffix}`, values: [subjectId] };
  }

  /** Inserts a key row unless the subject already has one (then nothing happens and 0 rows are affected). */
  insertKey(keyId: string, subjectId: string | null, wrapKeyId: string | null, wrapped: string | null, createdAt: Date): Statement {
    const values = [keyId, subjectId, wrapKeyId, wrapped, createdAt];
    const list = `(${COLUMNS}, created_at) VALUES (${values.map((_, i) => this.p(i + 1)).join(', ')})`;
    // INSERT IGNORE would also turn errors such as truncation into warnings: the store checks
    // lengths before it gets here, so only the duplicate subject is ever ignored.
    return this.dialect === 'postgres'
      ? { text: `INSERT INTO ${KEYS_TABLE} ${list} ON CONFLICT DO NOTHING`, values }
      : { text: `INSERT IGNORE INTO ${KEYS_TABLE} ${list}`, values };
  }

  deleteKey(keyId: string): Statement {
    return { text: `DELETE FROM ${KEYS_TABLE} WHERE key_id = ${this.p(1)}`, values: [keyId] };
  }

  /** Deletes a pending (reserved, never bound) key; affects 0 rows for a bound key or a tombstone. */
  deletePending(keyId: string): Statement {
    return { text: `DELETE FROM ${KEYS_TABLE} WHERE key_id = ${this.p(1)} AND subject_id IS NULL AND wrapped_key IS NOT NULL`, values: [keyId] };
  }

  /** Binds a pending (reserved) key to its subject; affects 0 rows unless the key is pending. */
  bind(keyId: string, subjectId: string): Statement {
    return {
      text: `UPDATE ${KEYS_TABLE} SET subject_id = ${this.p(1)} WHERE key_id = ${this.p(2)} AND subject_id IS NULL AND wrapped_key IS NOT NULL`,
      values: [subjectId, keyId],
    };
  }

  /** Undoes {@link bind}: the key is pending again. */
  unbind(keyId: string): Statement {
    return { text: `UPDATE ${KEYS_TABLE} SET subject_id = NULL WHERE key_id = ${this.p(1)}`, values: [keyId] };
  }

  /** The erasure record of a subject, read with a shared lock so the newest committed state counts (MySQL's REPEATABLE READ). */
  erasureOf(subjectId: string): Statement {
    return { text: `SELECT subject_id FROM ${ERASURES_TABLE} WHERE subject_id = ${this.p(1)} ${this.shareLock}`, values: [subjectId] };
  }

  insertErasure(subjectId: string, erasedAt: Date): Statement {
    const values = [subjectId, erasedAt];
    return this.dialect === 'postgres'
      ? { text: `INSERT INTO ${ERASURES_TABLE} (subject_id, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, values }
      : { text: `INSERT IGNORE INTO ${ERASURES_TABLE} (subject_id, erased_at) VALUES (?, ?)`, values };
  }

  deleteErasure(subjectId: string): Statement {
    return { text: `DELETE FROM ${ERASURES_TABLE} WHERE subject_id = ${this.p(1)}`, values: [subjectId] };
  }

  /**
   * Every key row with one of these ids (one chunk: the caller keeps it at or below 1000 ids);
   * `share`: locked shared, as a writer holds its key (a concurrent erasure waits).
   */
  keysById(keyIds: readonly string[], lock: 'share' | 'none' = 'none'): Statement {
    return { text: `SELECT ${COLUMNS} FROM ${KEYS_TABLE} WHERE key_id IN (${this.list(keyIds.length)})${lock === 'share' ? ` ${this.shareLock}` : ''}`, values: [...keyIds] };
  }

  /** The key rows of these subjects (one chunk of at most 1000), locked shared or not, as {@link keyOfSubject}. */
  keysOfSubjects(subjectIds: readonly string[], lock: 'share' | 'none'): Statement {
    return { text: `SELECT ${COLUMNS} FROM ${KEYS_TABLE} WHERE subject_id IN (${this.list(subjectIds.length)})${lock === 'share' ? ` ${this.shareLock}` : ''}`, values: [...subjectIds] };
  }

  /** Which of these subjects (one chunk of at most 1000) are recorded as erased; no lock (a dry run's view). */
  erasuresOf(subjectIds: readonly string[]): Statement {
    return { text: `SELECT subject_id FROM ${ERASURES_TABLE} WHERE subject_id IN (${this.list(subjectIds.length)})`, values: [...subjectIds] };
  }

  private list(n: number): string {
    return Array.from({ length: n }, (_, i) => this.p(i + 1)).join(', ');
  }

  /**
   * Turns a subject's key rows into tombstones: the wrapped key, its wrap key and the subject id
   * go, the row (and so the key id) stays, so a value under it reads as erased rather than unknown.
   * `createdUpTo` limits it to keys that existed at an erasure being replayed.
   */
  tombstone(subjectId: string, erasedAt: Date, createdUpTo?: Date): Statement {
    const base = `UPDATE ${KEYS_TABLE} SET wrapped_key = NULL, wrap_key_id = NULL, subject_id = NULL, erased_at = ${this.p(1)} WHERE subject_id = ${this.p(2)}`;
    return createdUpTo === undefined
      ? { text: base, values: [erasedAt, subjectId] }
      : { text: `${base} AND created_at <= ${this.p(3)}`, values: [erasedAt, subjectId, createdUpTo] };
  }

  /** Key rows per wrap key and state, for status, verify and keys retire. */
  counts(): Statement {
    return {
      text:
        `SELECT wrap_key_id, ` +
        `CASE WHEN wrapped_key IS NULL THEN 'erased' WHEN subject_id IS NULL THEN 'pending' ELSE 'live' END AS state, ` +
        `COUNT(*) AS n FROM ${KEYS_TABLE} GROUP BY wrap_key_id, CASE WHEN wrapped_key IS NULL THEN 'erased' WHEN subject_id IS NULL THEN 'pending' ELSE 'live' END`,
      values: [],
    };
  }

  /** The next batch of keys with a wrapped key not wrapped under `wrapKeyId`, in key id order after `after`. */
  keysNotUnder(wrapKeyId: string, after: string, limit: number): Statement {
    return {
      text: `SELECT ${COLUMNS} FROM ${KEYS_TABLE} WHERE wrapped_key IS NOT NULL AND (wrap_key_id IS NULL OR wrap_key_id <> ${this.p(1)}) AND key_id > ${this.p(2)} ORDER BY key_id LIMIT ${Math.floor(limit)}`,
      values: [wrapKeyId, after],
    };
  }

  /** Every key with a wrapped key, in key id order after `after` (verify). */
  wrappedKeys(after: string, limit: number): Statement {
    return {
      text: `SELECT ${COLUMNS} FROM ${KEYS_TABLE} WHERE wrapped_key IS NOT NULL AND key_id > ${this.p(1)} ORDER BY key_id LIMIT ${Math.floor(limit)}`,
      values: [after],
    };
  }

  /** Replaces one key's wrapping, only if it is still what was read (a concurrent erasure wins). */
  rewrap(keyId: string, fromWrapKeyId: string, wrapped: string, toWrapKeyId: string): Statement {
    return {
      text: `UPDATE ${KEYS_TABLE} SET wrapped_key = ${this.p(1)}, wrap_key_id = ${this.p(2)} WHERE key_id = ${this.p(3)} AND wrap_key_id = ${this.p(4)} AND wrapped_key IS NOT NULL`,
      values: [wrapped, toWrapKeyId, keyId, fromWrapKeyId],
    };
  }
}
