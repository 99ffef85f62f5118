import { describeKey, encodeKey, type KeyTuple } from './keyCodec';
import { planColumns, storedCells, type ValueFailure } from './plan';
import type { BatchKeys, BatchPlanner } from './planner';
import type { SqlConnection } from './connection';
import type { Chunk } from './checkpoint';
import type { ModelTarget } from './scope';
import type { SubjectBatchKeys } from './subjectBatch';
import { updateRows, type RowWrite } from './batchUpdate';
import { readBatch, type RowFilter, type StoredRow } from './sql';

/**
 * One batch of a migration: read the rows of a chunk that need work, plan them, write them with
 * compare-and-set (falling back to row by row on a unique collision), and re-read the rows the
 * application changed meanwhile.
 */

/** A value that could not be migrated, named by model, primary key and field, never by content. */
export interface RowFailure extends ValueFailure {
  readonly model: string;
  readonly key: Record<string, string | number | boolean | null>;
}

/** Re-reads of a batch's range after compare-and-set misses, before leaving rows to the next run. */
const CAS_ROUNDS = 3;
/** Upper bound on parameter bytes in one UPDATE (MySQL's max_allowed_packet is often 16 MiB). */
const STATEMENT_BYTES = 4 * 1024 * 1024;

/** What a batch reads: how many rows, and which. */
export interface BatchScan {
  readonly batchSize: number;
  readonly filter: RowFilter;
  /** Where subject-keyed models' keys come from (present when the run has such a model). */
  readonly subjects?: SubjectBatchKeys;
}

/** The keys a batch's rows are planned with: none for shared-key models. */
export type KeysFor = (rows: readonly StoredRow[]) => Promise<BatchKeys>;

/** {@link KeysFor} of a target on a connection (the batch's transaction), or undefined for a shared-key model. */
export function keysFor(scan: Pick<BatchScan, 'subjects'>, conn: SqlConnection, target: ModelTarget): KeysFor | undefined {
  const subjects = scan.subjects;
  return target.subject && subjects ? (rows) => subjects.forRows(conn, target, rows) : undefined;
}

export interface BatchResult {
  readonly scanned: number;
  readonly updated: number;
  readonly casMisses: number;
  readonly conflicts: number;
  readonly failures: readonly RowFailure[];
  readonly cursor: KeyTuple | undefined;
  readonly done: boolean;
}

/**
 * One batch inside its chunk's transaction: read the next rows that need work, plan them, write
 * them with compare-and-set, and re-read the range for rows the application changed meanwhile.
 */
export async function migrateBatch(
  scan: BatchScan,
  conn: SqlConnection,
  target: ModelTarget,
  planner: BatchPlanner,
  keyTypes: readonly string[],
  chunk: Chunk,
): Promise<BatchResult> {
  const guarded = new Set(target.fields.flatMap((f) => (f.typedColumn ? [f.column, f.typedColumn] : [f.column])));
  const after = chunk.cursor ?? chunk.lower;
  const range = { ...(after ? { after } : {}), ...(chunk.upper ? { atMost: chunk.upper } : {}), filter: scan.filter };
  let rows = await readBatch(conn, target, { ...range, limit: scan.batchSize });
  const scanned = rows.length;
  const last = rows.length > 0 ? rows[rows.length - 1]!.key : chunk.cursor;
  const failed = new Map<string, RowFailure[]>();
  const refuse = (w: RowWrite) => failed.set(encodeKey(w.key), [indexConflict(target, w)]);
  let updated = 0;
  let casMisses = 0;
  let conflicts = 0;
  const keys = keysFor(scan, conn, target);
  for (let round = 1; ; round++) {
    const writes = await planBatch(target, planner, rows, failed, keys);
    if (writes.length === 0) break;
    const { written, refused } = await writeInStatements(conn, target, keyTypes, writes, guarded, refuse);
    updated += written;
    const missed = writes.length - written - refused;
    if (missed === 0) break;
    casMisses += missed;
    if (round === CAS_ROUNDS) {
      conflicts = missed;
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
    done: scanned < scan.batchSize || (chunk.upper !== undefined && last !== undefined && encodeKey(last) === encodeKey(chunk.upper)),
  };
}

/**
 * Plans the rows not already known to fail; records new failures in `failed` (by encoded key).
 * `keys`: a subject-keyed model's, fetched for exactly the rows planned.
 */
export async function planBatch(target: ModelTarget, planner: BatchPlanner, rows: readonly StoredRow[], failed: Map<string, RowFailure[]>, keys?: KeysFor): Promise<RowWrite[]> {
  const todo = failed.size === 0 ? rows : rows.filter((r) => !failed.has(encodeKey(r.key)));
  const plans = await planner.plan(todo, keys && todo.length > 0 ? await keys(todo) : undefined);
  const writes: RowWrite[] = [];
  plans.forEach((plan, i) => {
    const row = todo[i]!;
    if (plan.failures.length > 0) {
      const key = describeKey(target.primaryKey, row.key);
      failed.set(encodeKey(row.key), plan.failures.map((f) => ({ ...f, model: target.model, key })));
    } else if (plan.next) {
      writes.push({ key: row.key, old: storedCells(target.fields, row), next: plan.next });
    }
  });
  return writes;
}

/**
 * A row whose new blind index collides with another row's under a unique constraint (two
 * plaintexts that normalise alike): reported against the indexed fields the write changes.
 */
function indexConflict(target: ModelTarget, w: RowWrite): RowFailure {
  const changed = new Set(planColumns(target.fields).filter((_, j) => w.old[j] !== w.next[j]));
  const fields = target.fields.filter((f) => f.indexColumn !== undefined && changed.has(f.indexColumn)).map((f) => f.field);
  return { model: target.model, key: describeKey(target.primaryKey, w.key), field: fields.join(',') || target.fields[0]!.field, keyId: undefined, reason: 'index-conflict' };
}

/**
 * Writes a batch in statements of bounded size, so long values never exceed packet limits. A
 * statement that hits a unique constraint is undone to its savepoint and its rows are written one
 * by one; the rows that still collide are passed to `refuse` and left as they are, and the batch
 * goes on. Returns the rows written and the rows refused.
 */
async function writeInStatements(
  conn: SqlConnection,
  target: ModelTarget,
  keyTypes: readonly string[],
  writes: readonly RowWrite[],
  guarded: ReadonlySet<string>,
  refuse: (w: RowWrite) => void,
): Promise<{ written: number; refused: number }> {
  let written = 0;
  let refused = 0;
  const columns = planColumns(target.fields);
  const attempt = async (group: readonly RowWrite[]): Promise<boolean> => {
    await conn.execute('SAVEPOINT pce_write');
    try {
      written += await updateRows(conn, target, keyTypes, columns, group, guarded);
      return true;
    } catch (error) {
      if (!conn.isUniqueViolation(error)) throw error;
      await conn.execute('ROLLBACK TO SAVEPOINT pce_write');
      return false;
    }
  };
  const write = async (group: readonly RowWrite[]) => {
    if (group.length === 0 || (await attempt(group))) return;
    for (const w of group) {
      if (group.length > 1 && (await attempt([w]))) continue;
      refuse(w);
      refused++;
    }
  };
  let group: RowWrite[] = [];
  let bytes = 0;
  for (const w of writes) {
    const size = textLength(w.old) + textLength(w.next) + 64;
    if (group.length > 0 && bytes + size > STATEMENT_BYTES) {
      await write(group);
      group = [];
      bytes = 0;
    }
    group.push(w);
    bytes += size;
  }
  await write(group);
  return { written, refused };
}

function textLength(cells: ReadonlyArray<string | null>): number {
  let n = 0;
  for (const c of cells) n += c?.length ?? 0;
  return n;
}
