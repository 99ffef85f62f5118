import { createHash } from 'node:crypto';
import type { SqlConnection } from './connection';
import { decodeKey, encodeKey, type KeyTuple } from './keyCodec';

/**
 * The checkpoint table, created by the migrator on first use. It holds one row per job (chunk 0,
 * the header) and one row per chunk of a job: a primary-key range `(lower, upper]` with a cursor
 * inside it. Work is split between processes by locking chunk rows with `FOR UPDATE SKIP
 * LOCKED`; a chunk's progress is written in the same transaction as the rows it covers, so a
 * killed process loses nothing and repeats nothing.
 */
export const CHECKPOINT_TABLE = '_pce_migration_checkpoint';

/** A unit of work: one migration command over one model's fields under one pair of primary keys. */
export interface Job {
  readonly id: string;
  readonly description: string;
}

export function jobFor(description: string): Job {
  return { id: createHash('sha256').update(description).digest('hex'), description };
}

export interface Chunk {
  readonly chunk: number;
  readonly lower: KeyTuple | undefined;
  readonly upper: KeyTuple | undefined;
  readonly cursor: KeyTuple | undefined;
}

/** A chunk boundary from the chunking scan: rows up to and including `upper` (none: to the end). */
export interface ChunkBound {
  readonly upper: KeyTuple | undefined;
  readonly planned: number;
}

export type JobStart = 'created' | 'joined' | 'restarted';

export async function ensureCheckpointTable(conn: SqlConnection): Promise<void> {
  const q = conn.quote;
  const ddl =
    `CREATE TABLE IF NOT EXISTS ${q(CHECKPOINT_TABLE)} (` +
    `${q('job_id')} VARCHAR(64) NOT NULL, ${q('chunk')} INTEGER NOT NULL, ${q('state')} VARCHAR(16) NOT NULL, ` +
    `${q('lower_key')} TEXT NULL, ${q('upper_key')} TEXT NULL, ${q('cursor_key')} TEXT NULL, ` +
    `${q('planned_rows')} BIGINT NOT NULL DEFAULT 0, ${q('rows_scanned')} BIGINT NOT NULL DEFAULT 0, ` +
    `${q('rows_updated')} BIGINT NOT NULL DEFAULT 0, ${q('description')} TEXT NULL, ` +
    `${q('updated_at')} TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, ` +
    `PRIMARY KEY (${q('job_id')}, ${q('chunk')}))` +
    (conn.dialect === 'mysql' ? ' ENGINE=InnoDB' : '');
  try {
    await conn.execute(ddl);
  } catch (error) {
    // Two processes creating the table at once: PostgreSQL can report a duplicate for the loser.
    const exists = await conn
      .query(`SELECT 1 FROM ${q(CHECKPOINT_TABLE)} WHERE 1 = 0`)
      .then(() => true)
      .catch(() => false);
    if (!exists) throw error;
  }
}

/**
 * Starts or joins a job. The first process inserts the header and the chunks (from `bounds`) in
 * one transaction; processes arriving meanwhile wait on the header row and then join. A job found
 * finished is started over (a fresh pass finds only what changed since). Returns how it started
 * and the number of rows planned in chunks still pending.
 */
export async function openJob(conn: SqlConnection, job: Job, bounds: () => AsyncIterable<ChunkBound>): Promise<{ start: JobStart; pendingRows: number }> {
  const q = conn.quote;
  const t = q(CHECKPOINT_TABLE);
  const ph = (n: number) => conn.placeholder(n);
  return conn.transaction(async () => {
    const insert =
      conn.dialect === 'postgres'
        ? `INSERT INTO ${t} (job_id, chunk, state, description) VALUES ($1, 0, 'running', $2) ON CONFLICT DO NOTHING`
        : `INSERT IGNORE INTO ${t} (job_id, chunk, state, description) VALUES (?, 0, 'running', ?)`;
    let start: JobStart = 'created';
    if ((await conn.execute(insert, [job.id, job.description])) === 0) {
      const [header] = await conn.query<{ state: string }>(`SELECT state FROM ${t} WHERE job_id = ${ph(1)} AND chunk = 0 FOR UPDATE`, [job.id]);
      // A running job with no chunk left that left rows to the next run (its process stopped
      // right after its last chunk): joining would do nothing, so it is started over instead.
      // Without such rows it is joined: a process arriving late to a job its peers are finishing
      // must not restart it under them.
      const rejoin = header?.state === 'running' && ((await pendingChunks(conn, job)) > 0 || !(await rowsLeft(conn, job)));
      if (rejoin) return { start: 'joined' as const, pendingRows: await pendingRows(conn, job) };
      await conn.execute(`DELETE FROM ${t} WHERE job_id = ${ph(1)} AND chunk <> 0`, [job.id]);
      await conn.execute(`UPDATE ${t} SET state = 'running', updated_at = CURRENT_TIMESTAMP WHERE job_id = ${ph(1)} AND chunk = 0`, [job.id]);
      start = 'restarted';
    }
    let total = 0;
    let chunk = 0;
    let lower: KeyTuple | undefined;
    let pending: unknown[][] = [];
    const flush = async () => {
      if (pending.length === 0) return;
      let n = 0;
      const values = pending.map((r) => `(${r.map(() => ph(++n)).join(', ')})`).join(', ');
      await conn.execute(`INSERT INTO ${t} (job_id, chunk, state, lower_key, upper_key, planned_rows) VALUES ${values}`, pending.flat());
      pending = [];
    };
    for await (const b of bounds()) {
      chunk++;
      total += b.planned;
      pending.push([job.id, chunk, 'pending', lower ? encodeKey(lower) : null, b.upper ? encodeKey(b.upper) : null, b.planned]);
      lower = b.upper;
      if (pending.length >= 200) await flush();
    }
    await flush();
    return { start, pendingRows: total };
  });
}

async function pendingRows(conn: SqlConnection, job: Job): Promise<number> {
  const [row] = await conn.query<{ n: unknown }>(
    `SELECT COALESCE(SUM(planned_rows), 0) AS n FROM ${conn.quote(CHECKPOINT_TABLE)} WHERE job_id = ${conn.placeholder(1)} AND chunk > 0 AND state = 'pending'`,
    [job.id],
  );
  return Number(row?.n ?? 0);
}

/**
 * Locks one pending chunk for the current transaction, skipping chunks other processes hold.
 * Prefers chunks at or after `from`, so a process keeps moving forward instead of colliding with
 * the others at the start. Must run inside a transaction.
 */
export async function claimChunk(conn: SqlConnection, job: Job, from: number): Promise<Chunk | undefined> {
  const t = conn.quote(CHECKPOINT_TABLE);
  const ph = (n: number) => conn.placeholder(n);
  const pick = async (min: number) =>
    (
      await conn.query<{ chunk: number; lower_key: string | null; upper_key: string | null; cursor_key: string | null }>(
        `SELECT chunk, lower_key, upper_key, cursor_key FROM ${t} WHERE job_id = ${ph(1)} AND chunk >= ${ph(2)} AND state = 'pending' ` +
          `ORDER BY chunk LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [job.id, min],
      )
    )[0];
  const row = (from > 1 ? await pick(from) : undefined) ?? (await pick(1));
  if (!row) return undefined;
  return {
    chunk: Number(row.chunk),
    lower: row.lower_key === null ? undefined : decodeKey(row.lower_key),
    upper: row.upper_key === null ? undefined : decodeKey(row.upper_key),
    cursor: row.cursor_key === null ? undefined : decodeKey(row.cursor_key),
  };
}

/** Records a batch's progress on its chunk, in the batch's transaction. */
export async function advanceChunk(
  conn: SqlConnection,
  job: Job,
  chunk: number,
  progress: { cursor: KeyTuple | undefined; done: boolean; scanned: number; updated: number },
): Promise<void> {
  const ph = (n: number) => conn.placeholder(n);
  await conn.execute(
    `UPDATE ${conn.quote(CHECKPOINT_TABLE)} SET cursor_key = ${ph(1)}, state = ${ph(2)}, rows_scanned = rows_scanned + ${ph(3)}, ` +
      `rows_updated = rows_updated + ${ph(4)}, updated_at = CURRENT_TIMESTAMP WHERE job_id = ${ph(5)} AND chunk = ${ph(6)}`,
    [progress.cursor ? encodeKey(progress.cursor) : null, progress.done ? 'done' : 'pending', progress.scanned, progress.updated, job.id, chunk],
  );
}

/** Chunks of the job not done yet, including those other processes hold right now. */
export async function pendingChunks(conn: SqlConnection, job: Job): Promise<number> {
  const [row] = await conn.query<{ n: unknown }>(
    `SELECT COUNT(*) AS n FROM ${conn.quote(CHECKPOINT_TABLE)} WHERE job_id = ${conn.placeholder(1)} AND chunk > 0 AND state = 'pending'`,
    [job.id],
  );
  return Number(row?.n ?? 0);
}

/** The marker row (chunk -1) saying some rows of the job were left to the next run. */
const CONFLICT_CHUNK = -1;

/**
 * Records, in a batch's transaction, that the batch left rows to the next run (rows the
 * application kept changing). The job then never counts as complete, and the next run starts it
 * over instead of joining it, so those rows are scanned again.
 */
export async function markConflict(conn: SqlConnection, job: Job): Promise<void> {
  const t = conn.quote(CHECKPOINT_TABLE);
  const insert =
    conn.dialect === 'postgres'
      ? `INSERT INTO ${t} (job_id, chunk, state) VALUES ($1, ${CONFLICT_CHUNK}, 'conflict') ON CONFLICT DO NOTHING`
      : `INSERT IGNORE INTO ${t} (job_id, chunk, state) VALUES (?, ${CONFLICT_CHUNK}, 'conflict')`;
  await conn.execute(insert, [job.id]);
}

/**
 * Marks the job finished when no chunk is pending (locked ones count: their holders finish them).
 * The header row is locked first, so the count and the update cannot interleave with a process
 * restarting the job (which holds the same lock while it writes new chunks). Returns the number
 * of chunks still pending (0 when the job is finished) and whether any batch of the job, in any
 * process, left rows to the next run: then the job is finished but not complete.
 */
export async function finishJob(conn: SqlConnection, job: Job): Promise<{ pending: number; rowsLeft: boolean }> {
  const t = conn.quote(CHECKPOINT_TABLE);
  const ph = (n: number) => conn.placeholder(n);
  return conn.transaction(async () => {
    await conn.query(`SELECT state FROM ${t} WHERE job_id = ${ph(1)} AND chunk = 0 FOR UPDATE`, [job.id]);
    const pending = await pendingChunks(conn, job);
    if (pending === 0) await conn.execute(`UPDATE ${t} SET state = 'finished', updated_at = CURRENT_TIMESTAMP WHERE job_id = ${ph(1)} AND chunk = 0`, [job.id]);
    return { pending, rowsLeft: await rowsLeft(conn, job) };
  });
}

async function rowsLeft(conn: SqlConnection, job: Job): Promise<boolean> {
  const t = conn.quote(CHECKPOINT_TABLE);
  return (await conn.query(`SELECT 1 AS one FROM ${t} WHERE job_id = ${conn.placeholder(1)} AND chunk = ${CONFLICT_CHUNK}`, [job.id])).length > 0;
}

/** The job description of the most recent rotate job for `model`, if the checkpoint table has one. */
export async function lastRotateJob(conn: SqlConnection, model: string): Promise<string | undefined> {
  const t = conn.quote(CHECKPOINT_TABLE);
  try {
    const rows = await conn.query<{ description: string | null }>(
      `SELECT description FROM ${t} WHERE chunk = 0 AND description LIKE ${conn.placeholder(1)} ORDER BY updated_at DESC LIMIT 1`,
      [`rotate ${model.replace(/[\\%_]/g, (c) => `\\${c}`)}(%`],
    );
    return rows[0]?.description ?? undefined;
  } catch {
    return undefined; // no checkpoint table yet (a dry run before any real run)
  }
}
