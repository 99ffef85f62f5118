import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { createAuditLog, type AuditLog } from '../audit/auditLog';
import { ConfigurationError } from '../errors';
import type { Keyring } from '../keys/keyring';
import type { EncryptionSchema } from '../schema';
import { advanceChunk, claimChunk, ensureCheckpointTable, finishJob, jobFor, openJob, type Chunk, type ChunkBound, type Job, type JobStart } from './checkpoint';
import type { SqlConnection } from './connection';
import { describeKey, encodeKey, formatKey, type KeyTuple } from './keyCodec';
import { databaseErrorCode, MigrationError } from './migrationError';
import type { MigrationMode, ValueFailure } from './plan';
import { inlinePlanner, threadPlanner, type BatchPlanner } from './planner';
import { resolveScope, type ModelTarget, type ScopeFilter } from './scope';
import { encryptExistingFilter, keyColumnTypes, readBatch, rotateFilter, updateRows, type RowFilter, type RowWrite, type StoredRow } from './sql';

export type { MigrationMode } from './plan';

/** Options shared by {@link rotate} and {@link encryptExisting}. */
export interface MigrationOptions extends ScopeFilter {
  /** An open connection (see `openConnection`). The caller closes it. */
  readonly connection: SqlConnection;
  /** The encryption map the generator emitted (`encryptedFields`). */
  readonly schema: EncryptionSchema;
  /** Holds the primary keys to write with and every key still found in stored values. */
  readonly keyring: Keyring;
  /** Rows per batch and per transaction. Default 500. */
  readonly batchSize?: number;
  /**
   * Batches this process runs at once, each on its own connection from `connect`, so encryption
   * in this process overlaps database work. Default 1 (only `connection` is used).
   */
  readonly concurrency?: number;
  /** Opens the extra connections `concurrency` needs; the migrator closes them. */
  readonly connect?: () => Promise<SqlConnection>;
  /**
   * Worker threads for decryption and re-encryption, so batches are planned on several cores.
   * Default 0: plan on the calling thread. Needs the compiled package (falls back to 0 otherwise).
   */
  readonly threads?: number;
  /** Read and plan everything, write nothing (not even the checkpoint). */
  readonly dryRun?: boolean;
  /** Receives the audit events (start, batch, end, failure). Default: JSON on stderr. */
  readonly logger?: Logger;
  /** Called after each batch, for progress display. */
  readonly onProgress?: (event: MigrationProgress) => void;
  /** Pause between batches, to spare a busy database. Default 0. */
  readonly pauseMs?: number;
  /** Stop after this many batches (the checkpoint keeps the rest for the next run). */
  readonly maxBatches?: number;
  /** Stops the run between batches. */
  readonly signal?: AbortSignal;
  /** Name of this process in audit events. Default `host:pid`. */
  readonly worker?: string;
  /** How many failed values the report lists (all are counted and logged). Default 1000. */
  readonly maxReportedFailures?: number;
}

export interface MigrationProgress {
  readonly command: MigrationMode;
  readonly model: string;
  readonly phase: 'start' | 'batch' | 'end';
  /** Rows this process expects to look at for the model (an estimate when others share the work). */
  readonly total: number;
  readonly scanned: number;
  readonly updated: number;
}

/** A value that could not be migrated, named by model, primary key and field, never by content. */
export interface RowFailure extends ValueFailure {
  readonly model: string;
  readonly key: Record<string, string | number | boolean | null>;
}

export interface ModelMigrationReport {
  readonly model: string;
  readonly fields: readonly string[];
  /** How this process came to the job: it created it, joined a running one, or restarted a finished one. */
  readonly start: JobStart | 'dry-run';
  readonly batches: number;
  /** Rows read that needed work at the time they were planned. */
  readonly scanned: number;
  /** Rows written (in a dry run: rows that would be written). */
  readonly updated: number;
  /** Rows the application changed between the migrator's read and write: re-read and planned again, never overwritten. */
  readonly casMisses: number;
  /** Rows the application changed under the migrator more often than it retried; the next run takes them. */
  readonly conflicts: number;
  readonly failed: number;
  /** True when no work is left for the model; false when stopped early or other processes still hold chunks. */
  readonly complete: boolean;
}

export interface MigrationReport {
  readonly command: MigrationMode;
  readonly dryRun: boolean;
  readonly models: readonly ModelMigrationReport[];
  readonly scanned: number;
  readonly updated: number;
  readonly casMisses: number;
  readonly conflicts: number;
  /** Number of values that could not be migrated (their rows were left untouched), across models. */
  readonly failedCount: number;
  /** The first `maxReportedFailures` of them. */
  readonly failures: readonly RowFailure[];
  readonly complete: boolean;
  readonly durationMs: number;
}

/**
 * Re-encrypts every value not under the primary data key and recomputes every blind index not
 * under the primary index key. Safe to run while the application writes (compare-and-set per
 * row), resumable after a crash (checkpoint table), and several processes may run it at once.
 *
 * @example
 * const connection = await openConnection(process.env.DATABASE_URL!);
 * const report = await rotate({ connection, schema: encryptedFields, keyring: await loadKeyring() });
 */
export function rotate(options: MigrationOptions): Promise<MigrationReport> {
  return runMigration('rotate', options);
}

/** Encrypts legacy plaintext in annotated columns and fills missing blind indexes. Same guarantees as {@link rotate}. */
export function encryptExisting(options: MigrationOptions): Promise<MigrationReport> {
  return runMigration('encrypt-existing', options);
}

/** Attempts per batch transaction when the database reports a deadlock or lock timeout. */
const TRANSACTION_ATTEMPTS = 5;
/** Re-reads of a batch's range after compare-and-set misses, before leaving rows to the next run. */
const CAS_ROUNDS = 3;
/** Upper bound on parameter bytes in one UPDATE (MySQL's max_allowed_packet is often 16 MiB). */
const STATEMENT_BYTES = 4 * 1024 * 1024;

interface RunContext {
  readonly mode: MigrationMode;
  readonly options: MigrationOptions;
  readonly conn: SqlConnection;
  readonly audit: AuditLog;
  readonly worker: string;
  readonly batchSize: number;
  readonly primary: { readonly dataKey: string; readonly indexKey: string };
  readonly filter: RowFilter;
  readonly failures: RowFailure[];
  failedCount: number;
  batches: number;
}

async function runMigration(mode: MigrationMode, options: MigrationOptions): Promise<MigrationReport> {
  const started = Date.now();
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const targets = resolveScope(options.schema, options);
  const primary = { dataKey: options.keyring.primaryData.id, indexKey: options.keyring.primaryIndexKeyId };
  const ctx: RunContext = {
    mode,
    options,
    conn: options.connection,
    audit: createAuditLog(options.logger),
    worker: options.worker ?? `${hostname()}:${process.pid}`,
    batchSize,
    primary,
    filter: mode === 'rotate' ? rotateFilter(primary.dataKey, primary.indexKey) : encryptExistingFilter(),
    failures: [],
    failedCount: 0,
    batches: 0,
  };
  const concurrency = options.dryRun ? 1 : (options.concurrency ?? 1);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  if (concurrency > 1 && !options.connect) throw new ConfigurationError(undefined, undefined, 'concurrency above 1 needs a connect() function for the extra connections');
  const models: ModelMigrationReport[] = [];
  const extra: SqlConnection[] = [];
  try {
    if (!options.dryRun && targets.length > 0) await ensureCheckpointTable(ctx.conn);
    for (let i = 1; i < concurrency && targets.length > 0; i++) extra.push(await options.connect!());
    for (const target of targets) {
      if (stopped(ctx)) break;
      models.push(options.dryRun ? await dryRunModel(ctx, target) : await migrateModel(ctx, target, [ctx.conn, ...extra]));
    }
  } finally {
    await Promise.all(extra.map((c) => c.close().catch(() => undefined)));
  }
  const sum = (k: 'scanned' | 'updated' | 'casMisses' | 'conflicts') => models.reduce((n, m) => n + m[k], 0);
  return {
    command: mode,
    dryRun: options.dryRun === true,
    models,
    scanned: sum('scanned'),
    updated: sum('updated'),
    casMisses: sum('casMisses'),
    conflicts: sum('conflicts'),
    failedCount: ctx.failedCount,
    failures: ctx.failures,
    complete: models.length === targets.length && models.every((m) => m.complete),
    durationMs: Date.now() - started,
  };
}

function stopped(ctx: RunContext): boolean {
  return ctx.options.signal?.aborted === true || (ctx.options.maxBatches !== undefined && ctx.batches >= ctx.options.maxBatches);
}

/** Chunk boundaries every `batchSize` rows that need work, from a keyset scan of primary keys only. */
async function* chunkBounds(ctx: RunContext, target: ModelTarget): AsyncIterable<ChunkBound> {
  const page = Math.max(ctx.batchSize, 5000);
  let after: KeyTuple | undefined;
  let count = 0;
  for (;;) {
    const rows = await readBatch(ctx.conn, target, { ...(after ? { after } : {}), limit: page, filter: ctx.filter, keysOnly: true });
    for (const row of rows) {
      if (++count === ctx.batchSize) {
        yield { upper: row.key, planned: count };
        count = 0;
      }
    }
    if (rows.length < page) break;
    after = rows[rows.length - 1]!.key;
  }
  // The last chunk is open-ended, so rows inserted at the end of the key space meanwhile are covered.
  yield { upper: undefined, planned: count };
}

interface BatchResult {
  readonly scanned: number;
  readonly updated: number;
  readonly casMisses: number;
  readonly conflicts: number;
  readonly failures: readonly RowFailure[];
  readonly cursor: KeyTuple | undefined;
  readonly done: boolean;
}

interface ModelTotals {
  batches: number;
  scanned: number;
  updated: number;
  casMisses: number;
  conflicts: number;
  failed: number;
}

function describeTarget(target: ModelTarget): string {
  return target.fields.map((f) => f.field).join(',');
}

function plannerFor(ctx: RunContext, target: ModelTarget): BatchPlanner {
  const setup = { mode: ctx.mode, model: target.model, fields: target.fields, primary: ctx.primary };
  const threads = ctx.options.threads ?? 0;
  return threads > 0 ? threadPlanner(setup, ctx.options.keyring, threads) : inlinePlanner(setup, ctx.options.keyring);
}

async function migrateModel(ctx: RunContext, target: ModelTarget, workers: readonly SqlConnection[]): Promise<ModelMigrationReport> {
  const planner = plannerFor(ctx, target);
  try {
    return await migrateModelWith(ctx, target, workers, planner);
  } finally {
    await planner.close();
  }
}

async function migrateModelWith(ctx: RunContext, target: ModelTarget, workers: readonly SqlConnection[], planner: BatchPlanner): Promise<ModelMigrationReport> {
  const { conn, audit, mode } = ctx;
  const keyTypes = await keyColumnTypes(conn, target);
  const job = jobFor(`${mode} ${target.model}(${describeTarget(target)}) data=${ctx.primary.dataKey} index=${ctx.primary.indexKey}`);
  const base = { command: mode, model: target.model, fields: describeTarget(target), job: job.id.slice(0, 16), worker: ctx.worker };
  const { start, pendingRows } = await openJob(conn, job, () => chunkBounds(ctx, target));
  audit.migration('start', { ...base, start, pendingRows, batchSize: ctx.batchSize, concurrency: workers.length, dataKey: ctx.primary.dataKey, indexKey: ctx.primary.indexKey });
  const totals: ModelTotals = { batches: 0, scanned: 0, updated: 0, casMisses: 0, conflicts: 0, failed: 0 };
  const progress = (phase: MigrationProgress['phase']) =>
    ctx.options.onProgress?.({ command: mode, model: target.model, phase, total: pendingRows, scanned: totals.scanned, updated: totals.updated });
  progress('start');
  const startedAt = Date.now();

  // Each worker claims chunks on its own connection: one's crypto overlaps another's database round trip.
  const work = async (worker: SqlConnection, slot: number): Promise<void> => {
    let next = 1 + slot;
    for (;;) {
      if (stopped(ctx)) return;
      ctx.batches++; // reserved before the batch, so several workers never overshoot maxBatches
      const t0 = Date.now();
      let chunkNo: number | undefined;
      const result = await inTransaction(ctx, worker, target, () => chunkNo, async () => {
        const chunk = await claimChunk(worker, job, next);
        if (!chunk) return undefined;
        chunkNo = chunk.chunk;
        const batch = await migrateBatch(ctx, worker, target, planner, keyTypes, chunk);
        await advanceChunk(worker, job, chunk.chunk, { cursor: batch.cursor, done: batch.done, scanned: batch.scanned, updated: batch.updated });
        return batch;
      });
      if (!result) {
        ctx.batches--;
        return;
      }
      next = chunkNo!;
      totals.batches++;
      totals.scanned += result.scanned;
      totals.updated += result.updated;
      totals.casMisses += result.casMisses;
      totals.conflicts += result.conflicts;
      totals.failed += result.failures.length;
      for (const f of result.failures) recordFailure(ctx, base, f);
      audit.migration('batch', {
        ...base,
        chunk: chunkNo,
        scanned: result.scanned,
        updated: result.updated,
        casMisses: result.casMisses,
        conflicts: result.conflicts,
        failed: result.failures.length,
        ms: Date.now() - t0,
      });
      progress('batch');
      if (ctx.options.pauseMs) await sleep(ctx.options.pauseMs);
    }
  };
  await Promise.all(workers.map(work));
  const complete = !stopped(ctx) && (await finishJob(conn, job)) === 0;
  audit.migration('end', { ...base, complete, batches: totals.batches, scanned: totals.scanned, updated: totals.updated, casMisses: totals.casMisses, conflicts: totals.conflicts, failed: totals.failed, ms: Date.now() - startedAt });
  progress('end');
  return { model: target.model, fields: target.fields.map((f) => f.field), start, ...totals, complete };
}

/** Runs one batch transaction, retrying it on deadlocks; any other failure rolls back and stops the run. */
async function inTransaction<T>(ctx: RunContext, conn: SqlConnection, target: ModelTarget, chunk: () => number | undefined, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await conn.transaction(fn);
    } catch (error) {
      if (conn.isTransient(error) && attempt < TRANSACTION_ATTEMPTS) {
        await sleep(20 * attempt + Math.random() * 30);
        continue;
      }
      const code = databaseErrorCode(error);
      ctx.audit.migration('failure', { command: ctx.mode, model: target.model, chunk: chunk(), worker: ctx.worker, reason: 'batch-failed', errorCode: code, attempts: attempt });
      throw new MigrationError(ctx.mode, target.model, chunk(), code, { cause: error });
    }
  }
}

type AuditBase = Readonly<Record<string, string | number | boolean | undefined>>;

function recordFailure(ctx: RunContext, base: AuditBase, f: RowFailure): void {
  ctx.failedCount++;
  if (ctx.failures.length < (ctx.options.maxReportedFailures ?? 1000)) ctx.failures.push(f);
  ctx.audit.migration('failure', { ...base, row: formatKey(Object.keys(f.key), Object.values(f.key)), field: f.field, keyId: f.keyId, reason: f.reason });
}

/**
 * One batch inside its chunk's transaction: read the next rows that need work, plan them, write
 * them with compare-and-set, and re-read the range for rows the application changed meanwhile.
 */
async function migrateBatch(
  ctx: RunContext,
  conn: SqlConnection,
  target: ModelTarget,
  planner: BatchPlanner,
  keyTypes: readonly string[],
  chunk: Chunk,
): Promise<BatchResult> {
  const guarded = new Set(target.fields.map((f) => f.column));
  const after = chunk.cursor ?? chunk.lower;
  const range = { ...(after ? { after } : {}), ...(chunk.upper ? { atMost: chunk.upper } : {}), filter: ctx.filter };
  let rows = await readBatch(conn, target, { ...range, limit: ctx.batchSize });
  const scanned = rows.length;
  const last = rows.length > 0 ? rows[rows.length - 1]!.key : chunk.cursor;
  const failed = new Map<string, RowFailure[]>();
  let updated = 0;
  let casMisses = 0;
  let conflicts = 0;
  for (let round = 1; ; round++) {
    const writes = await planBatch(target, planner, rows, failed);
    if (writes.length === 0) break;
    const written = await writeInStatements(conn, target, keyTypes, writes, guarded);
    updated += written;
    if (written === writes.length) break;
    casMisses += writes.length - written;
    if (round === CAS_ROUNDS) {
      conflicts = writes.length - written;
      break;
    }
    // Some rows changed since they were read: read the range again and plan what still needs work.
    rows = await readBatch(conn, target, { ...range, ...(last ? { atMost: last } : {}) });
  }
  return {
    scanned,
    updated,
    casMisses,
    conflicts,
    failures: [...failed.values()].flat(),
    cursor: last,
    // A full batch ending on the chunk's upper bound has finished the chunk too: no empty extra batch.
    done: scanned < ctx.batchSize || (chunk.upper !== undefined && last !== undefined && encodeKey(last) === encodeKey(chunk.upper)),
  };
}

/** Plans the rows not already known to fail; records new failures in `failed` (by encoded key). */
async function planBatch(target: ModelTarget, planner: BatchPlanner, rows: readonly StoredRow[], failed: Map<string, RowFailure[]>): Promise<RowWrite[]> {
  const todo = failed.size === 0 ? rows : rows.filter((r) => !failed.has(encodeKey(r.key)));
  const plans = await planner.plan(
    todo.map((r) => r.values),
    todo.map((r) => r.indexes),
  );
  const writes: RowWrite[] = [];
  plans.forEach((plan, i) => {
    const row = todo[i]!;
    if (plan.failures.length > 0) {
      const key = describeKey(target.primaryKey, row.key);
      failed.set(encodeKey(row.key), plan.failures.map((f) => ({ ...f, model: target.model, key })));
    } else if (plan.next) {
      writes.push(rowWrite(target, row, plan.next));
    }
  });
  return writes;
}

/** Old and new text per column, in the order planRow lists them: each field's value, then its index. */
function rowWrite(target: ModelTarget, row: StoredRow, next: ReadonlyArray<string | null>): RowWrite {
  const columns: Array<[string, string | null, string | null]> = [];
  let n = 0;
  target.fields.forEach((f, i) => {
    columns.push([f.column, (row.values[i] as string | null) ?? null, next[n++]!]);
    if (f.indexColumn) columns.push([f.indexColumn, (row.indexes[i] as string | null) ?? null, next[n++]!]);
  });
  return { key: row.key, columns };
}

/** Splits a batch's writes into statements of bounded size, so long values never exceed packet limits. */
async function writeInStatements(
  conn: SqlConnection,
  target: ModelTarget,
  keyTypes: readonly string[],
  writes: readonly RowWrite[],
  guarded: ReadonlySet<string>,
): Promise<number> {
  let written = 0;
  let group: RowWrite[] = [];
  let bytes = 0;
  for (const w of writes) {
    const size = w.columns.reduce((n, [, o, x]) => n + (o?.length ?? 0) + (x?.length ?? 0), 64);
    if (group.length > 0 && bytes + size > STATEMENT_BYTES) {
      written += await updateRows(conn, target, keyTypes, group, guarded);
      group = [];
      bytes = 0;
    }
    group.push(w);
    bytes += size;
  }
  return written + (await updateRows(conn, target, keyTypes, group, guarded));
}

/** A dry run: the same scan and plan without transactions, locks or writes. */
async function dryRunModel(ctx: RunContext, target: ModelTarget): Promise<ModelMigrationReport> {
  const planner = plannerFor(ctx, target);
  try {
    return await dryRunModelWith(ctx, target, planner);
  } finally {
    await planner.close();
  }
}

async function dryRunModelWith(ctx: RunContext, target: ModelTarget, planner: BatchPlanner): Promise<ModelMigrationReport> {
  const base = { command: ctx.mode, model: target.model, fields: describeTarget(target), worker: ctx.worker, dryRun: true };
  ctx.audit.migration('start', { ...base, batchSize: ctx.batchSize, dataKey: ctx.primary.dataKey, indexKey: ctx.primary.indexKey });
  const totals: ModelTotals = { batches: 0, scanned: 0, updated: 0, casMisses: 0, conflicts: 0, failed: 0 };
  let after: KeyTuple | undefined;
  let complete = false;
  for (;;) {
    if (stopped(ctx)) break;
    const rows = await readBatch(ctx.conn, target, { ...(after ? { after } : {}), limit: ctx.batchSize, filter: ctx.filter });
    const failed = new Map<string, RowFailure[]>();
    const writes = await planBatch(target, planner, rows, failed);
    ctx.batches++;
    totals.batches++;
    totals.scanned += rows.length;
    totals.updated += writes.length;
    for (const list of failed.values()) {
      totals.failed += list.length;
      for (const f of list) recordFailure(ctx, base, f);
    }
    ctx.options.onProgress?.({ command: ctx.mode, model: target.model, phase: 'batch', total: 0, scanned: totals.scanned, updated: totals.updated });
    if (rows.length < ctx.batchSize) {
      complete = true;
      break;
    }
    after = rows[rows.length - 1]!.key;
  }
  ctx.audit.migration('end', { ...base, complete, batches: totals.batches, scanned: totals.scanned, wouldUpdate: totals.updated, failed: totals.failed });
  return { model: target.model, fields: target.fields.map((f) => f.field), start: 'dry-run', ...totals, complete };
}

