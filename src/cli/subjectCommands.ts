import type { Command } from 'commander';
import type { Logger } from 'pino';
import { ConfigurationError } from '../errors';
import { envValue } from '../keys/envValue';
import { openConnection } from '../migrate/openConnection';
import { transactionalClientOf } from '../migrate/sqlClientOf';
import { ErasureLedger } from '../subjects/erasureLedger';
import { forgetSubject, replayErasures, type ForgetReport, type ReplayReport } from '../subjects/erasure';
import { rotateEpoch, type RotateEpochReport } from '../subjects/epoch';
import { hasSubjectKeyTable } from '../subjects/subjectKeyCounts';
import type { EncryptionSchema } from '../schema';
import { loadKeyring } from '../keys/loadKeyring';
import { ALLOW_INSECURE_FLAG, cliLogger, connectionOptions, databaseLabel, databaseUrl, loadEncryptionSchema, type CommonCliOptions } from './cliContext';

/** What the subject commands need from the outside world; tests replace parts of it. */
export interface SubjectCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  /** Human or JSON output (stdout by default). Audit events go to the logger. */
  readonly write: (text: string) => void;
  /** Audit events; by default JSON lines on stderr, or the `--audit-log` file. */
  readonly logger?: Logger;
}

interface Options extends CommonCliOptions {
  readonly json?: boolean;
}

function withDatabase(cmd: Command): Command {
  return cmd
    .option('--schema <path>', 'Prisma schema file or folder listing the subject models (default: as Prisma finds it)')
    .option('--config <path>', 'prisma.config.ts to read the schema path and datasource URL from')
    .option('--database-url <url>', 'database to connect to (default: DATABASE_URL)')
    .option('--audit-log <file>', 'append audit events (JSON lines) to this file instead of stderr')
    .option('--json', 'print the result as JSON on stdout')
    .option(...ALLOW_INSECURE_FLAG);
}

/** Loads the schema (which must hold the subject-key table), opens the database, runs `fn`, closes. */
async function session<T>(options: Options, deps: SubjectCommandDeps, fn: (s: { fields: EncryptionSchema; client: ReturnType<typeof transactionalClientOf>; logger: Logger; database: string }) => Promise<T>): Promise<T> {
  const logger = deps.logger ?? cliLogger(options, (line) => process.stderr.write(line));
  const loaded = await loadEncryptionSchema(options);
  if (!hasSubjectKeyTable(loaded.schema)) {
    throw new ConfigurationError(undefined, undefined, `the schema ${loaded.schemaPath} has no subject-key table (model PceSubjectKey with @@map("pce_subject_keys")): check --schema`);
  }
  const url = databaseUrl(options, loaded, deps.env);
  const conn = await openConnection(url, connectionOptions(options, logger));
  try {
    const database = databaseLabel(url);
    if (!options.json) deps.write(`database ${database}, schema ${loaded.schemaPath}\n`);
    return await fn({ fields: loaded.schema, client: transactionalClientOf(conn), logger, database });
  } finally {
    await conn.close().catch(() => undefined);
  }
}

function ledgerOf(options: { ledger?: string }, deps: SubjectCommandDeps): ErasureLedger {
  const path = options.ledger ?? envValue(deps.env.PCE_ERASURE_LEDGER);
  if (!path) throw new ConfigurationError(undefined, undefined, 'no erasure ledger: pass --ledger <file> (or set PCE_ERASURE_LEDGER), a file kept outside the database and its backups');
  return new ErasureLedger(path);
}

const sum = (counts: Readonly<Record<string, number>>) => Object.values(counts).reduce((n, m) => n + m, 0);

/** `forget <subjectId>` and `forget --replay` (issue 11). */
export function registerSubjectCommands(program: Command, overrides: Partial<SubjectCommandDeps> = {}): void {
  const deps: SubjectCommandDeps = { env: process.env, write: (t) => process.stdout.write(t), ...overrides };
  const emit = (opts: Options, json: object, lines: string[]) => deps.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${lines.join('\n')}\n`);
  withDatabase(
    program
      .command('forget')
      .description('Erase a subject (crypto-shredding): destroy its key, null its blind indexes, record it in the erasure ledger; with --replay, re-apply the whole ledger (after restoring a backup)')
      .argument('[subjectId]', 'the subject id, as stored in the model\'s subject field'),
  )
    .option('--ledger <file>', 'the erasure ledger, kept outside the database (default: env PCE_ERASURE_LEDGER)')
    .option('--replay', 'apply every erasure of the ledger again (after a restore, before the application serves traffic)')
    .option('--model <name>', "the subject's model (its id space); needed when the schema has several subject roots")
    .action(async (subjectId: string | undefined, opts: Options & { ledger?: string; replay?: boolean; model?: string }) => {
      const ledger = ledgerOf(opts, deps);
      if (opts.replay && subjectId !== undefined) throw new ConfigurationError(undefined, undefined, 'give either a subject id or --replay, not both');
      if (!opts.replay && subjectId === undefined) throw new ConfigurationError(undefined, undefined, 'give the subject id to forget (or --replay to re-apply the ledger)');
      await session(opts, deps, async ({ fields, client, logger, database }) => {
        if (opts.replay) {
          const report: ReplayReport = await replayErasures(client, ledger, { fields, logger });
          emit(opts, { database, ledger: ledger.path, ...report }, [
            `replayed ${report.entries} ledger entr${report.entries === 1 ? 'y' : 'ies'} (${report.subjects} subject${report.subjects === 1 ? '' : 's'}): ` +
              `${report.keysDestroyed} restored key${report.keysDestroyed === 1 ? '' : 's'} destroyed, ${report.newlyRecorded} erasure${report.newlyRecorded === 1 ? '' : 's'} recorded again, ` +
              `${report.rowsUnindexed} row${report.rowsUnindexed === 1 ? '' : 's'} unindexed, ${report.reinstated} reinstated`,
            ...(report.tornLastLine ? [`warning: the ledger's last line was incomplete (a crash while appending) and was skipped`] : []),
          ]);
          return;
        }
        const report: ForgetReport = await forgetSubject(client, subjectId!, { fields, ledger, logger, ...(opts.model ? { model: opts.model } : {}) });
        emit(opts, { database, ledger: ledger.path, ...report }, [
          report.alreadyErased && report.keysDestroyed === 0
            ? `already erased: nothing left to destroy (recorded in the ledger again)`
            : `erased: ${report.keysDestroyed} key${report.keysDestroyed === 1 ? '' : 's'} destroyed, ${sum(report.rowsUnindexed)} row${sum(report.rowsUnindexed) === 1 ? '' : 's'} unindexed, recorded in the ledger ${ledger.path}`,
          ...Object.entries(report.rowsUnindexed).map(([model, n]) => `  ${model}: ${n} row${n === 1 ? '' : 's'} unindexed`),
          ...(!report.alreadyErased && report.keysDestroyed === 0 && sum(report.rowsUnindexed) === 0
            ? [`warning: no key and no row of this subject were found: check the id and --model (the erasure is recorded all the same, so writes for this id are refused)`]
            : []),
          ...Object.entries(report.rowsOutsideSubjectKey).map(
            ([model, n]) => `warning: ${model}: ${n} row${n === 1 ? '' : 's'} of this subject still hold${n === 1 ? 's' : ''} plaintext or shared-key values (never moved under its key by encrypt-existing): erasure does not reach them, delete or overwrite them`,
          ),
          `backups still hold the subject's key wrapped under the epochs they were taken in: it is gone from them once those epochs' wrap keys are destroyed (keys rotate-epoch, then keys retire and keys destroy)`,
        ]);
      });
    });
}

/** `keys rotate-epoch`: re-wrap every live subject key under the primary wrap key. */
export function registerEpochCommand(keys: Command, overrides: Partial<SubjectCommandDeps> = {}): void {
  const deps: SubjectCommandDeps = { env: process.env, write: (t) => process.stdout.write(t), ...overrides };
  const emit = (opts: Options, json: object, lines: string[]) => deps.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${lines.join('\n')}\n`);
  withDatabase(keys.command('rotate-epoch').description('Re-wrap every subject key under the primary wrap key (the new epoch), in batches; then old wrap keys can be retired and destroyed'))
    .option('--keyring <file>', 'keyring file (default: env PCE_KEYRING_FILE)')
    .option('--batch-size <n>', 'keys re-wrapped per transaction', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new ConfigurationError(undefined, undefined, '--batch-size must be a positive integer');
      return n;
    }, 500)
    .action(async (opts: Options & { batchSize: number }) => {
      await session(opts, deps, async ({ fields, client, logger, database }) => {
        const keyring = await loadKeyring({ env: deps.env, ...(opts.keyring ? { file: opts.keyring } : {}), logger });
        const report: RotateEpochReport = await rotateEpoch(client, keyring, { fields, batchSize: opts.batchSize, logger });
        emit(opts, { database, ...report }, [
          `epoch ${report.wrapKeyId}: ${report.rewrapped} subject key${report.rewrapped === 1 ? '' : 's'} re-wrapped in ${report.batches} batch${report.batches === 1 ? '' : 'es'}` +
            (Object.keys(report.from).length > 0 ? ` (from ${Object.entries(report.from).map(([id, n]) => `${id}: ${n}`).join(', ')})` : ''),
          ...report.failed.slice(0, 20).map((f) => `  not re-wrapped: key ${f.keyId} under ${f.wrapKeyId ?? '(none)'}: ${f.reason}`),
          report.failed.length > 0
            ? `${report.failed.length} key${report.failed.length === 1 ? '' : 's'} still under old wrap keys: load those wrap keys and run again before retiring them`
            : `every live subject key is under ${report.wrapKeyId}: old wrap keys can be retired (keys retire <id>) and, once no backup taken before now is kept, destroyed (keys destroy <id>)`,
        ]);
        if (report.failed.length > 0) process.exitCode = 1;
      });
    });
}
