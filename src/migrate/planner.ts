import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { KeyChoice } from '../codec/keyChoice';
import type { PfeKeyLookup } from '../codec/pfe';
import type { DataKey } from '../keys/keyring';
import { FieldCodec } from '../codec/fieldCodec';
import type { FieldIndexKey, Keyring } from '../keys/keyring';
import { decryptAhead, planRow, type MigrationMode, type PlannedField, type PrimaryKeyIds, type RowPlan, type Decrypted, type PlanInput } from './plan';
import type { FieldTarget } from './scope';

/**
 * Plans batches of rows (decrypt, re-encrypt, re-index): on the calling thread, or on a pool of
 * worker threads so the crypto of several batches runs on several cores while the main thread
 * talks to the database. Both run the same {@link planRow} with the same {@link FieldCodec}s.
 */

/**
 * A subject-keyed model's keys for one batch (see subjectBatch.ts): `read` decrypts any value of
 * the batch, `rows[i]` reads the same and writes under row i's subject key.
 */
export interface BatchKeys {
  readonly read: KeyChoice;
  readonly rows: readonly KeyChoice[];
}

export interface BatchPlanner {
  /**
   * Plans rows given as their value, index and typed-column cells (in field-target order), and
   * for a subject-keyed model the batch's keys (only the inline planner takes them).
   */
  plan(rows: readonly PlanInput[], keys?: BatchKeys): Promise<RowPlan[]>;
  close(): Promise<void>;
}

export interface PlannerSetup {
  readonly mode: MigrationMode;
  readonly model: string;
  readonly fields: readonly FieldTarget[];
  readonly primary: PrimaryKeyIds;
  /** rotate --reindex: recompute every blind index. */
  readonly reindex?: boolean;
}

/** Codecs for the fields of one model, bound to a keyring. */
export function plannedFields(setup: PlannerSetup, keyring: Keyring, legacyKeys?: PfeKeyLookup): PlannedField[] {
  // Failures are reported per row by the migrator; the codec's own callback has nothing to add.
  return setup.fields.map((f) => ({
    codec: new FieldCodec(setup.model, f.field, f.spec, keyring, { legacyKeys }),
    column: f.column,
    ...(f.indexColumn ? { indexColumn: f.indexColumn } : {}),
    ...(f.typedColumn ? { typedColumn: f.typedColumn } : {}),
  }));
}

/**
 * Plans every row of a batch; pure apart from fresh nonces. Runs on whichever thread calls it.
 * Each field's values are decrypted for the whole batch first (one native call per key where the
 * backend has a batch path), then each row is planned with its plaintexts at hand.
 */
export function planRows(
  setup: Pick<PlannerSetup, 'mode' | 'primary' | 'reindex'>,
  fields: readonly PlannedField[],
  rows: readonly PlanInput[],
  keys?: BatchKeys,
): RowPlan[] {
  const options = { reindex: setup.reindex === true };
  const ahead = fields.map((f, i) => decryptAhead(setup.mode, f, i, rows, setup.primary, options, keys?.read));
  // One row's decrypted-ahead plaintexts, per field; planRow reads it and keeps nothing.
  const decrypted = new Array<Decrypted | undefined>(fields.length);
  return rows.map((row, i) => {
    for (let f = 0; f < ahead.length; f++) decrypted[f] = ahead[f]?.[i];
    return planRow(setup.mode, fields, row, setup.primary, options, decrypted, keys?.rows[i]);
  });
}

/** Plans on the calling thread; the only planner that holds legacy keys (they never go to worker threads). */
export function inlinePlanner(setup: PlannerSetup, keyring: Keyring, legacyKeys?: PfeKeyLookup): BatchPlanner {
  const fields = plannedFields(setup, keyring, legacyKeys);
  return {
    plan: async (rows, keys) => planRows(setup, fields, rows, keys),
    close: async () => undefined,
  };
}

/**
 * What a worker thread needs to act as the keyring for these fields: KeyObjects (which
 * postMessage clones between threads) for every data key and the derived index keys of each
 * field. Never plain key bytes.
 */
export interface KeyringSnapshot {
  readonly primaryData: DataKey;
  readonly primaryIndexKeyId: string;
  readonly dataKeys: readonly DataKey[];
  readonly indexKeys: Readonly<Record<string, readonly FieldIndexKey[]>>;
}

export function snapshotKeyring(keyring: Keyring, setup: PlannerSetup): KeyringSnapshot {
  const dataKeys = keyring
    .describe()
    .filter((k) => k.purpose === 'data')
    .map((k) => keyring.dataKey(k.id))
    .filter((k): k is DataKey => k !== undefined);
  const indexKeys: Record<string, readonly FieldIndexKey[]> = {};
  for (const f of setup.fields) {
    const binding = `${setup.model}.${f.field}`;
    indexKeys[binding] = keyring.indexKeysFor(binding);
  }
  return { primaryData: keyring.primaryData, primaryIndexKeyId: keyring.primaryIndexKeyId, dataKeys, indexKeys };
}

/**
 * The keyring surface FieldCodec uses, served from a snapshot. Kept to exactly the members
 * FieldCodec calls, so a change there shows up as a type error here.
 */
export function keyringFromSnapshot(snapshot: KeyringSnapshot): Keyring {
  const data = new Map(snapshot.dataKeys.map((k) => [k.id, k]));
  const view: Pick<Keyring, 'primaryData' | 'primaryIndexKeyId' | 'dataKey' | 'indexKeysFor'> = {
    primaryData: snapshot.primaryData,
    primaryIndexKeyId: snapshot.primaryIndexKeyId,
    dataKey: (id) => data.get(id),
    indexKeysFor: (binding) => {
      const keys = snapshot.indexKeys[binding];
      if (!keys) throw new Error(`no index keys for ${binding} in the worker's keyring snapshot`);
      return keys;
    },
  };
  return view as Keyring;
}

export interface WorkerInit {
  readonly setup: PlannerSetup;
  readonly keys: KeyringSnapshot;
}

export type WorkerRequest = { readonly id: number; readonly rows: readonly PlanInput[] };
export type WorkerResponse = { readonly id: number; readonly rows: RowPlan[] } | { readonly id: number; readonly error: string };

/** The compiled worker script; absent when running from TypeScript sources (tests), where planning stays inline. */
export function workerScript(): string | undefined {
  const file = join(__dirname, 'planWorker.js');
  return existsSync(file) ? file : undefined;
}

/**
 * A pool of `threads` worker threads, each holding its own codecs. Batches go to an idle thread,
 * or wait for one. Falls back to inline planning when the compiled worker script is missing.
 * A thread that fails or exits breaks the pool: every batch waiting on it, and every later one,
 * is rejected, so a run never hangs on a thread that is gone.
 */
export function threadPlanner(setup: PlannerSetup, keyring: Keyring, threads: number, script: string | undefined = workerScript()): BatchPlanner {
  if (!script || threads < 1) return inlinePlanner(setup, keyring);
  const init: WorkerInit = { setup, keys: snapshotKeyring(keyring, setup) };
  const idle: Worker[] = [];
  const waiting: Array<{ resolve: (w: Worker) => void; reject: (e: Error) => void }> = [];
  const pending = new Map<number, { resolve: (rows: RowPlan[]) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let broken: Error | undefined;
  let closing = false;
  const breakPool = (error: Error) => {
    broken ??= error;
    for (const p of pending.values()) p.reject(broken);
    pending.clear();
    for (const w of waiting.splice(0)) w.reject(broken);
  };
  const workers = Array.from({ length: threads }, () => {
    const w = new Worker(script, { workerData: init });
    w.on('message', (msg: WorkerResponse) => {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if ('error' in msg) p?.reject(new Error(msg.error));
      else p?.resolve(msg.rows);
      release(w);
    });
    w.on('error', (e) => breakPool(e));
    w.on('exit', (code) => {
      if (!closing) breakPool(new Error(`a planner worker thread exited (code ${code})`));
    });
    idle.push(w);
    return w;
  });
  const release = (w: Worker) => {
    const next = waiting.shift();
    if (next) next.resolve(w);
    else idle.push(w);
  };
  const acquire = () =>
    new Promise<Worker>((resolve, reject) => {
      if (broken) reject(broken);
      else if (idle.length > 0) resolve(idle.pop()!);
      else waiting.push({ resolve, reject });
    });
  return {
    async plan(rows, keys) {
      // Subject keys stay on the thread that loaded them (the migrator plans subject models inline).
      if (keys) throw new Error('subject-keyed models are planned on the calling thread, not in worker threads');
      if (broken) throw broken;
      const w = await acquire();
      const id = nextId++;
      return new Promise<RowPlan[]>((resolve, reject) => {
        if (broken) return reject(broken);
        pending.set(id, { resolve, reject });
        // Only the cells go to the thread, not the rows' keys.
        const cells = rows.map((r): PlanInput => ({ values: r.values, indexes: r.indexes, ...(r.typed ? { typed: r.typed } : {}) }));
        w.postMessage({ id, rows: cells } satisfies WorkerRequest);
      });
    },
    async close() {
      closing = true;
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
