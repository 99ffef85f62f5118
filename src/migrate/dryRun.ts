import { keysFor, planBatch, type RowFailure } from './batch';
import { keyColumnTypes } from './batchUpdate';
import { chunkBounds } from './chunkScan';
import type { KeyTuple } from './keyCodec';
import type { ModelMigrationReport } from './migrationOptions';
import { describeTarget, plannerFor, recordFailure, stopped, type ModelTotals, type RunContext } from './runContext';
import type { BatchPlanner } from './planner';
import type { ModelTarget } from './scope';
import { readBatch } from './sql';

/** A dry run: the same chunks, reads and plan as a real run, without transactions, locks or writes. */
export async function dryRunModel(ctx: RunContext, target: ModelTarget): Promise<ModelMigrationReport> {
  const planner = plannerFor(ctx, target);
  try {
    return await dryRunModelWith(ctx, target, planner);
  } finally {
    await planner.close();
  }
}

async function dryRunModelWith(ctx: RunContext, target: ModelTarget, planner: BatchPlanner): Promise<ModelMigrationReport> {
  // The same refusals as a real run's (a key the batch update could not match rows by), before any read.
  await keyColumnTypes(ctx.conn, target);
  const base = { command: ctx.mode, model: target.model, fields: describeTarget(target), worker: ctx.worker, dryRun: true };
  ctx.audit.migration('start', { ...base, batchSize: ctx.batchSize, dataKey: ctx.primary.dataKey, indexKey: ctx.primary.indexKey });
  const totals: ModelTotals = { batches: 0, scanned: 0, updated: 0, casMisses: 0, conflicts: 0, failed: 0 };
  let lower: KeyTuple | undefined;
  let complete = false;
  // Chunk by chunk, as a real run reads its batches: each read is bounded on both sides by keys,
  // so the database walks the primary key rather than scanning and sorting the rest of the table.
  for await (const { upper } of chunkBounds(ctx, target)) {
    if (stopped(ctx)) break;
    const rows = await readBatch(ctx.conn, target, { ...(lower ? { after: lower } : {}), ...(upper ? { atMost: upper } : {}), filter: ctx.filter });
    const failed = new Map<string, RowFailure[]>();
    const writes = await planBatch(target, planner, rows, failed, keysFor(ctx, ctx.conn, target));
    ctx.batches++;
    totals.batches++;
    totals.scanned += rows.length;
    totals.updated += writes.length;
    for (const list of failed.values()) {
      totals.failed += list.length;
      for (const f of list) recordFailure(ctx, base, f);
    }
    ctx.options.onProgress?.({ command: ctx.mode, model: target.model, phase: 'batch', total: 0, scanned: totals.scanned, updated: totals.updated });
    if (!upper) complete = true;
    lower = upper;
    // Before the scan looks for the next chunk's bound, which can mean reading many keys.
    if (stopped(ctx)) break;
  }
  ctx.audit.migration('end', { ...base, complete, batches: totals.batches, scanned: totals.scanned, wouldUpdate: totals.updated, failed: totals.failed });
  return { model: target.model, fields: target.fields.map((f) => f.field), start: 'dry-run', ...totals, complete };
}
