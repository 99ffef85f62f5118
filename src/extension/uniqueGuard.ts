import { createHash } from 'node:crypto';
import { PrismaClientKnownRequestError } from '@prisma/client/runtime/client';
import { UnsupportedQueryError } from '../errors';
import type { RuntimeSchema } from './runtimeSchema';
import { delegateOf, type QueryClient } from './transactionScope';
import type { Obj, UniqueWrite } from './walkContext';

/**
 * Uniqueness of blind indexes while several index keys are loaded.
 *
 * A `@unique` index field holds `<keyId>:<hmac>`. During an index-key rotation one value has a
 * different hash under each key, so a row written under the new key never collides with a row
 * of the same value still under the old one: the constraint cannot see the duplicate. Every
 * write of such a value therefore runs, inside one transaction, as
 *
 *   1. take a lock named after the value's candidate hashes (sorted, so every instance with the
 *      same keys loaded takes the same lock whichever key it writes under),
 *   2. run the write,
 *   3. read the rows holding any candidate hash; two of them with equal values in the rest of a
 *      unique constraint are a duplicate: roll the write back and throw Prisma's P2002 error.
 *
 * Checking after the write covers every shape alike (creates, updates of the row itself, the
 * branch an upsert or connectOrCreate takes, nested writes at any depth) without predicting
 * which row a write touches. The lock orders concurrent writers of one value, so the second one
 * sees the first one's row. On PostgreSQL the lock is `pg_advisory_xact_lock` (held to commit)
 * and the check a plain read, which needs READ COMMITTED. MySQL/MariaDB's `GET_LOCK` belongs to
 * the session, so it is released after the check, and the check is a locking read, which waits
 * for a writer that has not committed yet and then sees its row. With one index key loaded none
 * of this runs: the constraint does the work.
 */

/** Lock names are a hash of the candidate set: the same on every instance, and no index value in a log line. */
function lockDigest(write: UniqueWrite): Buffer {
  return createHash('sha256')
    .update(`pce-unique\0${write.model}.${write.indexField}\0${[...write.hashes].sort().join('\0')}`)
    .digest();
}

export type Dialect = 'postgres' | 'mysql';

export function dialectOf(provider: string): Dialect | undefined {
  if (provider === 'postgresql' || provider === 'cockroachdb') return 'postgres';
  if (provider === 'mysql') return 'mysql';
  return undefined;
}

/** Writes of distinct values, in lock order (so two operations never wait on each other's locks crosswise). */
function distinctWrites(writes: readonly UniqueWrite[]): Array<{ write: UniqueWrite; digest: Buffer }> {
  const seen = new Map<string, { write: UniqueWrite; digest: Buffer }>();
  for (const write of writes) {
    const digest = lockDigest(write);
    seen.set(digest.toString('hex'), { write, digest });
  }
  return [...seen.values()].sort((a, b) => Buffer.compare(a.digest, b.digest));
}

/** Locks taken for one operation; `release` gives back what the session holds (MySQL). */
export interface HeldLocks {
  release(): Promise<void>;
}

/**
 * Takes the locks for `writes` in `tx`. On PostgreSQL refuses a caller's transaction that is not
 * READ COMMITTED: its snapshot would hide a row another writer committed while this one waited.
 */
export async function lockWrites(tx: QueryClient, dialect: Dialect, writes: readonly UniqueWrite[]): Promise<HeldLocks> {
  const ordered = distinctWrites(writes);
  if (dialect === 'postgres') {
    for (const { write, digest } of ordered) {
      const rows = (await tx.$queryRawUnsafe(
        `SELECT current_setting('transaction_isolation') AS iso, pg_advisory_xact_lock($1::bigint)::text AS locked`,
        digest.readBigInt64BE(0).toString(),
      )) as Array<{ iso: string }>;
      if (rows[0]?.iso !== 'read committed') {
        throw new UnsupportedQueryError(write.model, write.indexField, `unique write in a ${rows[0]?.iso ?? 'non read committed'} transaction`, 'while several index keys are loaded, uniqueness is checked by the extension, which needs READ COMMITTED to see rows other transactions committed meanwhile; use the default isolation level');
      }
    }
    return { release: async () => undefined };
  }
  const names: string[] = [];
  const release = async () => {
    for (const name of names.splice(0)) await tx.$queryRawUnsafe('SELECT RELEASE_LOCK(?) AS released', name).catch(() => undefined);
  };
  try {
    for (const { write, digest } of ordered) {
      const name = `pce:${digest.toString('base64url').slice(0, 40)}`;
      // The same wait the constraint would give a duplicate insert against an uncommitted row.
      const rows = (await tx.$queryRawUnsafe('SELECT GET_LOCK(?, @@innodb_lock_wait_timeout) AS got', name)) as Array<{ got: unknown }>;
      if (Number(rows[0]?.got) !== 1) {
        throw new PrismaClientKnownRequestError(`Timed out waiting for the uniqueness lock of ${write.model}.${write.indexField}`, { code: 'P2034', clientVersion: clientVersionOf(tx) });
      }
      names.push(name);
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}

/** Checks every written value after the write; returns the P2002 error to throw, if any. */
export async function findDuplicate(tx: QueryClient, dialect: Dialect, schema: RuntimeSchema, writes: readonly UniqueWrite[]): Promise<PrismaClientKnownRequestError | undefined> {
  for (const { write } of distinctWrites(writes)) {
    const others = [...new Set(write.constraints.flat())].filter((f) => f !== write.indexField);
    const holders = await readHolders(tx, dialect, schema, write, others);
    for (const fields of write.constraints) {
      const rest = fields.filter((f) => f !== write.indexField);
      const seen = new Set<string>();
      for (const row of holders) {
        // NULLs never collide in a unique constraint (PostgreSQL and MySQL alike).
        if (rest.some((f) => row[f] === null || row[f] === undefined)) continue;
        const key = rest.map((f) => `${typeof row[f]}:${String(row[f] instanceof Date ? (row[f] as Date).toISOString() : row[f])}`).join('\0');
        if (seen.has(key)) return duplicateError(tx, write.model, fields);
        seen.add(key);
      }
    }
  }
  return undefined;
}

/** Rows holding any candidate hash of the value, with the other fields of its unique constraints. */
async function readHolders(tx: QueryClient, dialect: Dialect, schema: RuntimeSchema, write: UniqueWrite, others: readonly string[]): Promise<Obj[]> {
  if (dialect === 'postgres') {
    const select: Obj = { [write.indexField]: true };
    for (const f of others) select[f] = true;
    return delegateOf(tx, write.model).findMany({ where: { [write.indexField]: { in: [...write.hashes] } }, select });
  }
  const spec = schema.get(write.model)!.spec;
  const column = (f: string) => `\`${(spec.columns[f] ?? f).replace(/`/g, '``')}\``;
  const fields = [write.indexField, ...others];
  const sql =
    `SELECT ${fields.map((f, i) => `${column(f)} AS \`f${i}\``).join(', ')} FROM \`${spec.dbName.replace(/`/g, '``')}\` ` +
    `WHERE ${column(write.indexField)} IN (${write.hashes.map(() => '?').join(', ')}) LOCK IN SHARE MODE`;
  const rows = (await tx.$queryRawUnsafe(sql, ...write.hashes)) as Obj[];
  return rows.map((r) => Object.fromEntries(fields.map((f, i) => [f, r[`f${i}`]])));
}

/**
 * The error Prisma gives for a unique violation through a driver adapter: code P2002, the model
 * name and the constraint's fields in `meta` (as `target` too, where Prisma 5 code looks for it).
 * The message names fields only, never a value.
 */
function duplicateError(tx: QueryClient, model: string, fields: readonly string[]): PrismaClientKnownRequestError {
  return new PrismaClientKnownRequestError(`Unique constraint failed on the fields: (${fields.map((f) => `\`${f}\``).join(',')})`, {
    code: 'P2002',
    clientVersion: clientVersionOf(tx),
    meta: {
      modelName: model,
      target: [...fields],
      driverAdapterError: { name: 'DriverAdapterError', cause: { kind: 'UniqueConstraintViolation', constraint: { fields: [...fields] } } },
    },
  });
}

function clientVersionOf(client: QueryClient): string {
  const version = (client as unknown as { _clientVersion?: unknown })._clientVersion;
  return typeof version === 'string' ? version : 'unknown';
}
