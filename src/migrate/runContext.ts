import type { AuditLog } from '../audit/auditLog';
import type { RowFailure } from './batch';
import type { SqlConnection } from './connection';
import { formatKey } from './keyCodec';
import type { MigrationOptions } from './migrationOptions';
import type { MigrationMode, PrimaryKeyIds } from './plan';
import { inlinePlanner, threadPlanner, type BatchPlanner } from './planner';
import type { ModelTarget } from './scope';
import type { RowFilter } from './sql';
import type { SubjectBatchKeys } from './subjectBatch';

/** What every part of one migration run shares: its options, connection, audit log and running counts. */
export interface RunContext {
  readonly mode: MigrationMode;
  readonly options: MigrationOptions;
  readonly conn: SqlConnection;
  readonly audit: AuditLog;
  readonly worker: string;
  readonly batchSize: number;
  readonly primary: PrimaryKeyIds;
  readonly filter: RowFilter;
  readonly failures: RowFailure[];
  readonly warnings: string[];
  readonly lockTimeoutMs: number;
  /** Present when a model in scope is subject-keyed: where its batches' keys come from. */
  readonly subjects?: SubjectBatchKeys;
  failedCount: number;
  batches: number;
}

/** True once the run is to stop between batches (aborted, or `maxBatches` reached). */
export function stopped(ctx: RunContext): boolean {
  return ctx.options.signal?.aborted === true || (ctx.options.maxBatches !== undefined && ctx.batches >= ctx.options.maxBatches);
}

/** Running counts of one model's migration. */
export interface ModelTotals {
  batches: number;
  scanned: number;
  updated: number;
  casMisses: number;
  conflicts: number;
  failed: number;
}

/** The fields of a target as audit events and job names list them. */
export function describeTarget(target: ModelTarget): string {
  return target.fields.map((f) => f.field).join(',');
}

/** The planner of a target: worker threads when asked for, inline for convert-pfe and subject-keyed models. */
export function plannerFor(ctx: RunContext, target: ModelTarget): BatchPlanner {
  const setup = { mode: ctx.mode, model: target.model, fields: target.fields, primary: ctx.primary, reindex: ctx.options.reindex === true };
  const threads = ctx.options.threads ?? 0;
  if (ctx.mode === 'convert-pfe') return inlinePlanner(setup, ctx.options.keyring, ctx.options.legacyKeys);
  // Subject-keyed models are planned on this thread: their keys are per batch, fetched (and
  // locked, or created) inside the batch's transaction, and so never leave the process's one key
  // store for a worker thread's copy. Keys would otherwise be cloned into every batch message.
  if (target.subject) return inlinePlanner(setup, ctx.options.keyring);
  return threads > 0 ? threadPlanner(setup, ctx.options.keyring, threads) : inlinePlanner(setup, ctx.options.keyring);
}

export type AuditBase = Readonly<Record<string, string | number | boolean | undefined>>;

/** Counts a failed value, keeps it for the report (up to the limit) and audit-logs it by key, field and reason. */
export function recordFailure(ctx: RunContext, base: AuditBase, f: RowFailure): void {
  ctx.failedCount++;
  if (ctx.failures.length < (ctx.options.maxReportedFailures ?? 1000)) ctx.failures.push(f);
  ctx.audit.migration('failure', { ...base, row: formatKey(Object.keys(f.key), Object.values(f.key)), field: f.field, keyId: f.keyId, reason: f.reason });
}
