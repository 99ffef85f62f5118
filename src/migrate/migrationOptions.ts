import type { Logger } from 'pino';
import type { Keyring } from '../keys/keyring';
import type { PfeLegacyKeys } from '../keys/pfeKeys';
import type { EncryptionSchema } from '../schema';
import type { RowFailure } from './batch';
import type { JobStart } from './checkpoint';
import type { SqlConnection } from './connection';
import type { MigrationMode } from './plan';
import type { ScopeFilter } from './scope';

/** The options and reports of `rotate`, `encryptExisting` and `convertPfe` (migrator.ts). */

/** Options shared by `rotate` and `encryptExisting`. */
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
  /**
   * rotate only: recompute every blind index, also those under the primary index key, and write
   * the ones that differ. For after a change to a field's `normalize` list.
   */
  readonly reindex?: boolean;
  /**
   * Longest wait for a row lock the application holds, per statement of a batch. A batch that
   * times out is rolled back and retried, then the run stops with a MigrationError. Default 2000.
   */
  readonly lockTimeoutMs?: number;
  /**
   * convert-pfe only: prisma-field-encryption's keys, to read the values being converted. Used
   * to decrypt only; planning then stays on the calling thread (`threads` is ignored).
   */
  readonly legacyKeys?: PfeLegacyKeys;
}

/** Progress of a running migration, as passed to the `onProgress` callback. */
export interface MigrationProgress {
  readonly command: MigrationMode;
  readonly model: string;
  readonly phase: 'start' | 'batch' | 'end';
  /** Rows this process expects to look at for the model (an estimate when others share the work). */
  readonly total: number;
  readonly scanned: number;
  readonly updated: number;
}

/** What a migration did for one model: rows scanned, updated, failed and conflicting. */
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
  /** True when no work is left for the model: false when stopped early or when rows were left to the next run (conflicts). */
  readonly complete: boolean;
}

/** The result of `rotate` or `encryptExisting`: per-model counts, failures by primary key, and whether the run completed. */
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
  /** True when every model is complete: nothing stopped the run and no rows were left to the next run. */
  readonly complete: boolean;
  /** Things worth a look that did not stop the run (such as a keyring that looks out of date). */
  readonly warnings: readonly string[];
  readonly durationMs: number;
}
