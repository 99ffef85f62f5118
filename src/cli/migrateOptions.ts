import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { cryptoBackend, type CryptoBackendName } from '../codec/backendChoice';
import { ALLOW_INSECURE_FLAG, type CommonCliOptions } from './cliContext';

/* The options of the migration commands, their parsers and defaults. */

/** What every migration command takes: which model or field, and how to print. */
export interface ScopeOptions {
  readonly model?: string;
  readonly field?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** `rotate`, `encrypt-existing`, `convert-pfe`. */
export interface RunOptions extends CommonCliOptions, ScopeOptions {
  readonly batchSize: number;
  readonly concurrency: number;
  readonly threads?: number;
  readonly dryRun?: boolean;
  readonly pause?: number;
  readonly maxBatches?: number;
  readonly reindex?: boolean;
  readonly lockTimeout?: number;
}

/** `verify`. */
export interface VerifyCliOptions extends CommonCliOptions, ScopeOptions {
  readonly batchSize: number;
  readonly maxFailures: number;
}

/**
 * Crypto worker threads when `--threads` is not given. On node:crypto, one per batch in flight, up
 * to the cores there are (none on a single core). On the native backend none: its crypto costs
 * less than handing the values to a thread and back (1.9 s against 3.4 s of CPU per 100k rows
 * rotated, in `npm run bench:rotate`).
 */
export function defaultThreads(concurrency: number, backend: CryptoBackendName = cryptoBackend().name): number {
  const cores = availableParallelism();
  return backend === 'native' || cores <= 1 ? 0 : Math.min(concurrency, cores);
}

/** The options every migration command has: where the schema, database and keys are, the scope, the output. */
export function commonOptions(cmd: Command): Command {
  return cmd
    .option('--schema <path>', 'Prisma schema file or folder (default: as Prisma finds it)')
    .option('--config <path>', 'prisma.config.ts to read the schema path and datasource URL from')
    .option('--database-url <url>', 'database to connect to (default: DATABASE_URL)')
    .option('--keyring <file>', 'keyring file (default: PCE_KEYRING_FILE, PCE_KEYRING_JSON or PCE_DATA_KEYS/PCE_INDEX_KEYS)')
    .option('--audit-log <file>', 'append audit events (JSON lines) to this file instead of stderr')
    .option('--model <name>', 'only this model')
    .option('--field <name>', 'only this field (name, or Model.field)')
    .option('--json', 'print the result as JSON on stdout')
    .option('--quiet', 'no progress output')
    .option(...ALLOW_INSECURE_FLAG);
}
