import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAuditLog } from '../audit/auditLog';
import { cryptoBackend } from '../codec/backendChoice';
import { ConfigurationError, KeyringError } from '../errors';
import { advanceChunk, claimChunk, ensureCheckpointTable, finishJob, jobFor, markConflict, openJob, pendingChunks } from './checkpoint';
import { chunkBounds } from './chunkScan';
import type { SqlConnection } from './connection';
import { migrateBatch } from './batch';
import { keyColumnTypes } from './batchUpdate';
import { dryRunModel } from './dryRun';
import { convertPfeFilter, encryptExistingFilter, reindexFilter, rotateFilter } from './filters';
import type { MigrationOptions, MigrationProgress, MigrationReport, ModelMigrationReport } from './migrationOptions';
import { databaseErrorCode, MigrationError } from './migrationError';
import type { MigrationMode } from './plan';
import type { BatchPlanner } from './planner';
import { assertWritable } from './readOnly';
import { describeTarget, plannerFor, recordFailure, stopped, type ModelTotals, type RunContext } from './runContext';
import { resolveScope, type ModelTarget } from './scope';
import { staleKeyringWarning } from './staleKeyring';
import { SubjectBatchKeys } from './subjectBatch';

export type { MigrationMode } from './plan';
export type { RowFailure } from './batch';
export type { MigrationOptions, MigrationProgress, MigrationReport, ModelMigrationReport } from './migrationOptions';

/**
 * Re-encrypts every value not under the primary data key and recomputes every blind index not
 * under the primary index key. Safe to run while the application writes (compare-and-set per
 * row), resumable after a crash (checkpoint table), and several processes may run it at once.
 * In a subject-keyed model a value under its subject's key stays as it is (`keys rotate-epoch`
 * re-wraps the key, not the data) and only its index is rotated; a shared-key value is moved
 * under its row's subject key (created if the subject has none; an erased subject's row is
 * reported as `subject-erased` and left as it is).
 *
 * @example
 * const connection = await openConnection(process.env.DATABASE_URL!);
 * const report = await rotate({ connection, schema: encryptedFields, keyring: await loadKeyring() });
 */
export function rotate(options: MigrationOptions): Promise<MigrationReport> {
  return runMigration('rotate', options);
}

/**
 * Encrypts legacy plaintext in annotated columns and fills missing blind indexes. Same guarantees
 * as {@link rotate}. In a subject-keyed model plaintext and shared-key values go under their
 * row's subject key (created if the subject has none, in the batch's transaction); a row of an
 * erased subject is reported (`subject-erased`) and left as it is, plaintext included, as is a
 * row whose subject field is NULL (`no-subject`).
 */
export function encryptExisting(options: MigrationOptions): Promise<MigrationReport> {
  return runMigration('encrypt-existing', options);
}

/**
 * Rewrites every prisma-field-encryption value of the fields marked `legacy: pfe` as this
 * library's envelope (with its associated data) under the primary data key, and recomputes their
 * blind indexes from the plaintext, replacing the old SHA-256 hashes. Same guarantees as
 * {@link rotate}: compare-and-set per row, resumable, idempotent. Needs `legacyKeys`.
 *
 * @example
 * const report = await convertPfe({ connection, schema: encryptedFields, keyring: await loadKeyring(), legacyKeys: pfeLegacyKeys() });
 */
export function convertPfe(options: MigrationOptions): Promise<MigrationReport> {
  if (!options.legacyKeys) throw new ConfigurationError(undefined, undefined, 'convert-pfe needs legacyKeys (pfeLegacyKeys()) to read the old values');
  return runMigration('convert-pfe', options);
}

/** Fields marked `legacy: pfe` only: convert-pfe touches nothing else. */
function legacyTargets(targets: readonly ModelTarget[]): ModelTarget[] {
  const out = targets.map((t) => ({ ...t, fields: t.fields.filter((f) => f.spec.legacy?.format === 'pfe') })).filter((t) => t.fields.length > 0);
  if (out.length === 0) throw new ConfigurationError(undefined, undefined, 'no field in scope is marked legacy: pfe (add legacy: pfe to the @encrypted annotations of the fields prisma-field-encryption wrote)');
  return out;
}

/** Attempts per batch transaction when the database reports a deadlock or serialization failure. */
const TRANSACTION_ATTEMPTS = 5;
/** Attempts when a batch timed out waiting for a row lock: each attempt already waited the lock timeout. */
const LOCK_TIMEOUT_ATTEMPTS = 2;
/** How often a process whose chunks are all taken checks on the chunks other processes hold. */
const PEER_POLL_MS = 200;
const DEFAULT_LOCK_TIMEOUT_MS = 2000;

async function runMigration(mode: MigrationMode, options: MigrationOptions): Promise<MigrationReport> {
  const started = Date.now();
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const scope = resolveScope(options.schema, options);
  const targets = mode === 'convert-pfe' ? legacyTargets(scope) : scope;
  const primary = { dataKey: options.keyring.primaryData.id, indexKey: options.keyring.primaryIndexKeyId };
  if (options.reindex && mode !== 'rotate') throw new ConfigurationError(undefined, undefined, 'reindex is an option of rotate');
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  if (!(lockTimeoutMs > 0)) throw new RangeError('lockTimeoutMs must be positive');
  const dataKeyIds = options.keyring.describe().filter((k) => k.purpose === 'data').map((k) => k.id);
  const concurrency = options.dryRun ? 1 : (options.concurrency ?? 1);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a positive integer');
  if (concurrency > 1 && !options.connect) throw new ConfigurationError(undefined, undefined, 'concurrency above 1 needs a connect() function for the extra connections');
  const subjectModel = targets.some((t) => t.subject);
  const ctx: RunContext = {
    mode,
    options,
    conn: options.connection,
    audit: createAuditLog(options.logger),
    worker: options.worker ?? `${hostname()}:${process.pid}`,
    batchSize,
    primary,
    filter:
      mode === 'convert-pfe'
        ? convertPfeFilter
        : mode === 'encrypt-existing'
        ? encryptExistingFilter(dataKeyIds)
        : options.reindex
          ? reindexFilter(primary.dataKey, primary.indexKey)
          : rotateFilter(primary.dataKey, primary.indexKey),
    failures: [],
    warnings: [],
    lockTimeoutMs,
    // Keys of a batch's subjects stay cached for the next batches (each batch's transaction still locks what it uses).
    ...(subjectModel ? { subjects: new SubjectBatchKeys(options.keyring, options.schema.provider, mode, options.dryRun === true, 2 * batchSize * concurrency) } : {}),
    failedCount: 0,
    batches: 0,
  };
  const models: ModelMigrationReport[] = [];
  const extra: SqlConnection[] = [];
  try {
    if (!options.dryRun && targets.length > 0) {
      await assertWritable(ctx.conn);
      await ensureCheckpointTable(ctx.conn);
    }
    if (mode === 'rotate') {
      for (const target of targets) {
        const warning = await staleKeyringWarning(ctx.conn, options.keyring, primary, target, options.logger);
        if (warning) ctx.warnings.push(warning);
      }
    }
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
    warnings: ctx.warnings,
    durationMs: Date.now() - started,
  };
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
  const job = jobFor(`${mode} ${target.model}(${describeTarget(target)}) data=${ctx.primary.dataKey} index=${ctx.primary.indexKey}${ctx.options.reindex ? ' reindex' : ''}`);
  const base = { command: mode, model: target.model, fields: describeTarget(target), job: job.id.slice(0, 16), worker: ctx.worker };
  const { start, pendingRows } = await openJob(conn, job, () => chunkBounds(ctx, target));
  audit.migration('start', { ...base, start, pendingRows, batchSize: ctx.batchSize, concurrency: workers.length, dataKey: ctx.primary.dataKey, indexKey: ctx.primary.indexKey, cryptoBackend: cryptoBackend().name });
  const totals: ModelTotals = { batches: 0, scanned: 0, updated: 0, casMisses: 0, conflicts: 0, failed: 0 };
  const progress = (phase: MigrationProgress['phase']) =>
    ctx.options.onProgress?.({ command: mode, model: target.model, phase, total: pendingRows, scanned: totals.scanned, updated: totals.updated });
  progress('start');
  const startedAt = Date.now();

  // Each worker claims chunks on its own connection: one's crypto overlaps another's database round trip.
  // The first worker to fail halts the others, and the run ends only when every worker has
  // stopped: nothing keeps writing after the caller has been told the run failed.
  const halt = new AbortController();
  const halted = () => halt.signal.aborted || stopped(ctx);
  const work = async (worker: SqlConnection, slot: number): Promise<void> => {
    let next = 1 + slot;
    for (;;) {
      if (halted()) return;
      ctx.batches++; // reserved before the batch, so several workers never overshoot maxBatches
      const t0 = Date.now();
      let chunkNo: number | undefined;
      const result = await inTransaction(ctx, worker, target, () => chunkNo, async () => {
        const chunk = await claimChunk(worker, job, next);
        if (!chunk) return undefined;
        chunkNo = chunk.chunk;
        const batch = await migrateBatch(ctx, worker, target, planner, keyTypes, chunk);
        await advanceChunk(worker, job, chunk.chunk, { cursor: batch.cursor, done: batch.done, scanned: batch.scanned, updated: batch.updated });
        if (batch.conflicts > 0) await markConflict(worker, job);
        return batch;
      });
      if (!result) {
        ctx.batches--;
        // Every chunk left is held by someone: wait for them, and take over any whose holder dies.
        if ((await pendingChunks(worker, job)) === 0) return;
        await sleep(PEER_POLL_MS, undefined, { signal: halt.signal }).catch(() => undefined);
        continue;
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
  let failure: { error: unknown } | undefined;
  const onStop = () => halt.abort();
  ctx.options.signal?.addEventListener('abort', onStop);
  try {
    await Promise.allSettled(
      workers.map((w, slot) =>
        work(w, slot).catch((error: unknown) => {
          failure ??= { error };
          halt.abort();
        }),
      ),
    );
  } finally {
    ctx.options.signal?.removeEventListener('abort', onStop);
  }
  if (failure) throw failure.error;
  // Finished even with rows left to the next run, so that run starts over and scans them again;
  // complete only when nothing is left, in this process or any other that worked on the job.
  let complete = false;
  if (!stopped(ctx)) {
    const finish = await finishJob(conn, job);
    complete = totals.conflicts === 0 && finish.pending === 0 && !finish.rowsLeft;
  }
  audit.migration('end', { ...base, complete, batches: totals.batches, scanned: totals.scanned, updated: totals.updated, casMisses: totals.casMisses, conflicts: totals.conflicts, failed: totals.failed, ms: Date.now() - startedAt });
  progress('end');
  return { model: target.model, fields: target.fields.map((f) => f.field), start, ...totals, complete };
}

const isLockTimeout = (error: unknown) => ['55P03', '1205', 'ER_LOCK_WAIT_TIMEOUT'].includes(databaseErrorCode(error) ?? '') || (error as { errno?: unknown } | null)?.errno === 1205;

/** Runs one batch transaction, retrying it on deadlocks and lock timeouts; any other failure rolls back and stops the run. */
async function inTransaction<T>(ctx: RunContext, conn: SqlConnection, target: ModelTarget, chunk: () => number | undefined, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await conn.transaction(fn, { lockTimeoutMs: ctx.lockTimeoutMs });
    } catch (error) {
      const attempts = isLockTimeout(error) ? LOCK_TIMEOUT_ATTEMPTS : TRANSACTION_ATTEMPTS;
      if (conn.isTransient(error) && attempt < attempts) {
        await sleep(20 * attempt + Math.random() * 30);
        continue;
      }
      const code = databaseErrorCode(error);
      ctx.audit.migration('failure', { command: ctx.mode, model: target.model, chunk: chunk(), worker: ctx.worker, reason: 'batch-failed', errorCode: code, attempts: attempt });
      // The batch is rolled back either way; the package's own configuration errors (a subject key
      // that needs a wrap key the keyring lacks) say what to fix, and name no value.
      if (error instanceof ConfigurationError || error instanceof KeyringError) throw error;
      throw new MigrationError(ctx.mode, target.model, chunk(), code, { cause: error, lockTimeout: isLockTimeout(error) });
    }
  }
}

