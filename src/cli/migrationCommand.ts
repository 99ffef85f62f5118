import { pfeLegacyKeys } from '../keys/pfeKeys';
import { convertPfe, encryptExisting, rotate, type MigrationMode } from '../migrate/migrator';
import { openConnection } from '../migrate/openConnection';
import { cliKeyring, connectionOptions } from './cliContext';
import { interruptible } from './interruptible';
import { EXIT_FAILED, EXIT_INCOMPLETE, EXIT_INTERRUPTED } from './migrateExitCodes';
import { defaultThreads, type RunOptions } from './migrateOptions';
import { formatMigrationReport, printJson } from './migrateOutput';
import { withSession } from './migrateSession';

/** `rotate`, `encrypt-existing` or `convert-pfe`: runs the migrator, prints its report, sets the exit code. */
export async function runMigrationCommand(mode: MigrationMode, options: RunOptions): Promise<void> {
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
