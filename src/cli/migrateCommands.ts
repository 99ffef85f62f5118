import { availableParallelism } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger } from 'pino';
import type { Keyring } from '../keys/keyring';
import { pfeLegacyKeys } from '../keys/pfeKeys';
import { convertPfe, encryptExisting, rotate, type MigrationMode, type MigrationReport } from '../migrate/migrator';
import { createProgressDisplay, type ProgressDisplay } from '../migrate/progress';
import { collectStatus, type FieldStatus } from '../migrate/status';
import { verify, type VerifyReport } from '../migrate/verify';
import type { SqlConnection } from '../migrate/connection';
import { openConnection } from '../migrate/openConnection';
import { formatKey } from '../migrate/keyCodec';
import { sqlClientOf } from '../migrate/sqlClientOf';
import { hasSubjectKeyTable, subjectKeyCounts, type SubjectKeyCounts } from '../subjects/subjectKeyCounts';
import type { EncryptionSchema } from '../schema';
import { envValue } from '../keys/envValue';
import { readKeyringFile } from '../keys/keyringFile';
import { keyAges, type KeyAge } from '../keys/rotationPolicy';
import { ageText } from './keyOutput';
import { ALLOW_INSECURE_FLAG, cliKeyring, cliLogger, connectionOptions, databaseLabel, databaseUrl, loadEncryptionSchema, type CommonCliOptions } from './cliContext';

/**
 * Exit codes of the migration commands: 0 done; 1 values failed (or verify found problems), or
 * an error; 3 stopped before the work was done (`--max-batches`, rows left after concurrent
 * changes): rerun to continue; 130 interrupted by Ctrl-C / SIGTERM.
 */
export const EXIT_FAILED = 1;
export const EXIT_INCOMPLETE = 3;
export const EXIT_INTERRUPTED = 130;

interface ScopeOptions {
  readonly model?: string;
  readonly field?: string;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

interface RunOptions extends CommonCliOptions, ScopeOptions {
  readonly batchSize: number;
  readonly concurrency: number;
  readonly threads?: number;
  readonly dryRun?: boolean;
  readonly pause?: number;
  readonly maxBatches?: number;
  readonly reindex?: boolean;
  readonly lockTimeout?: number;
}

interface VerifyCliOptions extends CommonCliOptions, ScopeOptions {
  readonly batchSize: number;
  readonly maxFailures: number;
}

/** One crypto thread per batch in flight, up to the cores there are; none on a single core. */
function defaultThreads(concurrency: number): number {
  const cores = availableParallelism();
  return cores > 1 ? Math.min(concurrency, cores) : 0;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function commonOptions(cmd: Command): Command {
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

/** What a command read: shown first in its output, so a wrong database or schema is noticed. */
interface Scanned {
  /** `host[:port]/database`: never user or password. */
  readonly database: string;
  readonly schema: string;
}

interface Session {
  readonly schema: EncryptionSchema;
  readonly scanned: Scanned;
  readonly conn: SqlConnection;
  readonly url: string;
  readonly display: ProgressDisplay;
  readonly logger: Logger;
}

/** Loads the schema, opens the database, runs `fn`, and always closes what it opened. */
async function withSession<T>(options: CommonCliOptions & ScopeOptions, fn: (s: Session) => Promise<T>): Promise<T> {
  const display = createProgressDisplay({ quiet: options.quiet === true });
  const logger = cliLogger(options, (line) => display.log(line));
  try {
    const loaded = await loadEncryptionSchema(options);
    const url = databaseUrl(options, loaded);
    const conn = await openConnection(url, connectionOptions(options, logger));
    try {
      const scanned = { database: databaseLabel(url), schema: loaded.schemaPath };
      if (!options.json) process.stdout.write(`${scannedLine(scanned)}\n`);
      return await fn({ schema: loaded.schema, scanned, conn, url, display, logger });
    } finally {
      await conn.close().catch(() => undefined);
    }
  } finally {
    display.stop();
    logger.flush?.();
  }
}

/** First Ctrl-C: finish the current batch and stop (the checkpoint keeps the rest). Second: exit now. */
function interruptible(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    process.stderr.write('\nstopping after the current batch (Ctrl-C again to exit now)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function scannedLine(s: Scanned): string {
  return `database ${s.database}, schema ${s.schema}`;
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function runMigrationCommand(mode: MigrationMode, options: RunOptions): Promise<void> {
  const stop = interruptible();
  try {
    const { report, scanned } = await withSession(options, async ({ schema, scanned, conn, url, display, logger }) => {
      const keyring = await cliKeyring(options, logger);
      const run = { rotate, 'encrypt-existing': encryptExisting, 'convert-pfe': convertPfe }[mode];
      const report = await run({
        // prisma-field-encryption's own variables, read only by the command that needs them.
        ...(mode === 'convert-pfe' ? { legacyKeys: pfeLegacyKeys() } : {}),
        connection: conn,
        concurrency: options.concurrency,
        connect: () => openConnection(url, connectionOptions(options, logger)),
        threads: options.threads ?? defaultThreads(options.concurrency),
        schema,
        keyring,
        ...(options.model ? { model: options.model } : {}),
        ...(options.field ? { field: options.field } : {}),
        batchSize: options.batchSize,
        dryRun: options.dryRun === true,
        logger,
        signal: stop.signal,
        ...(options.pause ? { pauseMs: options.pause } : {}),
        ...(options.maxBatches ? { maxBatches: options.maxBatches } : {}),
        ...(options.reindex ? { reindex: true } : {}),
        ...(options.lockTimeout !== undefined ? { lockTimeoutMs: options.lockTimeout } : {}),
        onProgress: (e) => {
          const label = `${mode}${options.dryRun ? ' (dry run)' : ''} ${e.model}`;
          display.update(label, e.scanned, e.total, `${e.updated} ${options.dryRun ? 'would write' : 'written'}`);
          if (e.phase === 'end') display.end(label);
        },
      });
      return { report, scanned };
    });
    for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
    if (options.json) printJson({ ...report, scanned });
    else process.stdout.write(formatMigrationReport(report));
    process.exitCode = stop.signal.aborted ? EXIT_INTERRUPTED : report.failedCount > 0 ? EXIT_FAILED : report.complete ? 0 : EXIT_INCOMPLETE;
  } finally {
    stop.dispose();
  }
}

function formatMigrationReport(r: MigrationReport): string {
  const verb = r.dryRun ? 'would write' : 'written';
  const lines = [
    `${r.command}${r.dryRun ? ' (dry run)' : ''}: ${r.updated} rows ${verb}, ${r.scanned} rows needed work, ` +
      `${r.conflicts} left to the next run after concurrent changes, ${r.failedCount} values failed (${(r.durationMs / 1000).toFixed(1)} s)`,
  ];
  for (const m of r.models) {
    const state = m.complete ? 'complete' : m.conflicts > 0 ? 'not complete (rows kept changing: rerun to take them)' : 'not complete (stopped early: rerun to continue)';
    lines.push(`  ${m.model} [${m.fields.join(', ')}]: ${m.scanned} needed work, ${m.updated} ${verb}, ${m.conflicts} conflicts, ${m.failed} failed; ${state}`);
  }
  for (const f of r.failures) {
    lines.push(`  failed: ${f.model} ${keyText(f.key)} ${f.field}: ${f.reason}${f.keyId ? ` (key ${f.keyId})` : ''}`);
  }
  if (r.failures.length < r.failedCount) lines.push(`  ... and ${r.failedCount - r.failures.length} more (see the audit log)`);
  return `${lines.join('\n')}\n`;
}

function keyText(key: Record<string, string | number | boolean | null>): string {
  return formatKey(Object.keys(key), Object.values(key));
}

async function runStatus(options: CommonCliOptions & ScopeOptions): Promise<void> {
  const { fields, primary, note, scanned, subjectKeys, primaryWrap } = await withSession({ ...options, quiet: true }, async ({ schema, scanned, conn, logger }) => {
    let keyring: Keyring | undefined;
    let keyNote: string | undefined;
    try {
      keyring = await cliKeyring(options, logger);
    } catch (error) {
      keyNote = `primary keys not marked: ${(error as Error).message}`;
    }
    const statuses = await collectStatus(conn, schema, { ...(options.model ? { model: options.model } : {}), ...(options.field ? { field: options.field } : {}) });
    // The key table is reported when status covers the whole schema, not one model or field.
    const whole = !options.model && !options.field;
    const subjectKeys = whole && hasSubjectKeyTable(schema) ? await subjectKeyCounts(sqlClientOf(conn), schema.provider) : undefined;
    return {
      fields: statuses,
      subjectKeys,
      primaryWrap: keyring?.primaryWrap?.id,
      primary: keyring ? { dataKey: keyring.primaryData.id, indexKey: keyring.primaryIndexKeyId } : undefined,
      note: keyNote,
      scanned,
    };
  });
  const ages = await keyringAges(options);
  if (options.json) {
    printJson({ fields, ...(primary ? { primary } : {}), ...(subjectKeys ? { subjectKeys } : {}), ...(ages ? { keyAges: ages } : {}), scanned });
    return;
  }
  if (note) process.stderr.write(`${note}\n`);
  process.stdout.write(formatStatus(fields, primary));
  if (subjectKeys) process.stdout.write(`${subjectKeyLine(subjectKeys, primaryWrap)}\n`);
  if (ages) process.stdout.write(`${ages.map((a) => `key ${a.id} (${a.primary ? 'primary ' : ''}${a.purpose}): ${ageText(a)}`).join('\n')}\n`);
}

/** Key ages against the rotation policy, when the keys come from a keyring file. */
async function keyringAges(options: CommonCliOptions): Promise<KeyAge[] | undefined> {
  const file = options.keyring ?? envValue(process.env.PCE_KEYRING_FILE);
  if (!file) return undefined;
  const doc = await readKeyringFile(file).catch(() => undefined);
  return doc ? keyAges(doc.keys.filter((k) => k.status !== 'retired'), doc.policy, new Date()) : undefined;
}

function formatStatus(fields: readonly FieldStatus[], primary: { dataKey: string; indexKey: string } | undefined): string {
  const counts = (byKey: Record<string, number>, primaryId: string | undefined) =>
    Object.entries(byKey)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, n]) => `${id}${id === primaryId ? '*' : ''}=${n}`)
      .join(' ') || '-';
  const lines = fields.map(
    (f) =>
      `${`${f.model}.${f.field}`.padEnd(28)} keys: ${counts(f.byKey, primary?.dataKey).padEnd(24)} plaintext: ${String(f.plaintext).padEnd(6)} ` +
      `null: ${String(f.nulls).padEnd(6)} index keys: ${counts(f.indexByKey, primary?.indexKey)}`,
  );
  if (primary) lines.push(`(* primary: data key ${primary.dataKey}, index key ${primary.indexKey})`);
  return `${lines.join('\n')}\n`;
}

/** `subject keys: 12 live, 1 pending (wrap keys w2*=13), 3 erased` */
function subjectKeyLine(c: SubjectKeyCounts, primaryWrap: string | undefined): string {
  const byWrap = Object.entries(c.byWrapKey)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, n]) => `${id}${id === primaryWrap ? '*' : ''}=${n.live + n.pending}`)
    .join(' ');
  return `subject keys: ${c.live} live, ${c.pending} pending${byWrap ? ` (wrap keys ${byWrap})` : ''}, ${c.erased} erased`;
}

async function runVerify(options: VerifyCliOptions): Promise<void> {
  const stop = interruptible();
  try {
    const { report, scanned } = await withSession(options, async ({ schema, scanned, conn, display, logger }) => {
      const keyring = await cliKeyring(options, logger);
      const report = await verify({
        connection: conn,
        schema,
        keyring,
        ...(options.model ? { model: options.model } : {}),
        ...(options.field ? { field: options.field } : {}),
        batchSize: options.batchSize,
        logger,
        signal: stop.signal,
        maxReportedFailures: options.maxFailures,
        onProgress: (e) => display.update(`verify ${e.model}`, e.scanned, e.total, `${e.scanned} checked`),
      });
      return { report, scanned };
    });
    if (options.json) printJson({ ...report, scanned });
    else process.stdout.write(formatVerifyReport(report));
    process.exitCode = stop.signal.aborted ? EXIT_INTERRUPTED : report.ok ? 0 : EXIT_FAILED;
  } finally {
    stop.dispose();
  }
}

function formatVerifyReport(r: VerifyReport): string {
  const lines = [`verify: ${r.ok ? 'OK' : 'FAILED'}: ${r.rows} rows, ${r.values} values, ${r.failedCount} failed (${(r.durationMs / 1000).toFixed(1)} s)`];
  for (const m of r.models) {
    lines.push(`  ${m.model} [${m.fields.join(', ')}]: ${m.rows} rows, ${m.values} values, ${m.plaintext} plaintext (passthrough), ${m.erased ? `${m.erased} of erased subjects, ` : ''}${m.failed} failed`);
  }
  if (r.subjectKeys) lines.push(`  subject keys: ${r.subjectKeys.checked} unwrapped, ${r.subjectKeys.failed} failed`);
  for (const f of r.failures) lines.push(`  failed: ${f.model} ${keyText(f.key)} ${f.field}: ${f.problem}${f.keyId ? ` (key ${f.keyId})` : ''}`);
  if (r.failures.length < r.failedCount) lines.push(`  ... and ${r.failedCount - r.failures.length} more (see the audit log)`);
  if (!r.complete) lines.push('  interrupted: not every row was checked');
  return `${lines.join('\n')}\n`;
}

/** `rotate`, `encrypt-existing`, `status`, `verify` (issue 6). */
export function registerMigrateCommands(program: Command): void {
  const migration = (name: MigrationMode, description: string): Command =>
    commonOptions(program.command(name).description(description))
      .option('--batch-size <n>', 'rows per batch and transaction', positiveInt, 500)
      .option('--concurrency <n>', 'batches in flight in this process, each on its own connection', positiveInt, 2)
      .option('--threads <n>', 'worker threads for encryption (default: one per batch in flight, up to the cores; 0: none)', nonNegativeInt)
      .option('--dry-run', 'read and plan, write nothing')
      .option('--pause <ms>', 'pause between batches, to spare a busy database', nonNegativeInt)
      .option('--max-batches <n>', 'stop after this many batches (rerun to continue; exit code 3)', positiveInt)
      .option('--lock-timeout <ms>', 'longest wait for a row lock the application holds, per statement', positiveInt, 2000);
  migration('rotate', 'Re-encrypt values not under the primary data key and recompute blind indexes not under the primary index key')
    .option('--reindex', 'recompute every blind index and write those that differ (after a change to normalize)')
    .action((opts: RunOptions) => runMigrationCommand('rotate', opts));
  migration('encrypt-existing', 'Encrypt legacy plaintext in annotated columns and fill their blind indexes').action((opts: RunOptions) =>
    runMigrationCommand('encrypt-existing', opts),
  );

  migration(
    'convert-pfe',
    'Rewrite prisma-field-encryption values (fields marked legacy: pfe) as this library\'s envelope and replace their SHA-256 hashes with blind indexes; ' +
      'reads its keys from PRISMA_FIELD_ENCRYPTION_KEY and PRISMA_FIELD_DECRYPTION_KEYS',
  ).action((opts: RunOptions) => runMigrationCommand('convert-pfe', opts));

  commonOptions(program.command('status').description('Count values per key id, plaintext and nulls for each annotated field (with keys, the primary ones are marked)'))
    .action((opts: CommonCliOptions & ScopeOptions) => runStatus(opts));

  commonOptions(program.command('verify').description('Decrypt every value and check every blind index; exit code 1 when any fails'))
    .option('--batch-size <n>', 'rows read per query', positiveInt, 1000)
    .option('--max-failures <n>', 'failures listed in the report (all are counted and logged)', positiveInt, 1000)
    .action((opts: VerifyCliOptions) => runVerify(opts));
}
