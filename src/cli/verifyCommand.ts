import { verify } from '../migrate/verify';
import { cliKeyring } from './cliContext';
import { interruptible } from './interruptible';
import { EXIT_FAILED, EXIT_INTERRUPTED } from './migrateExitCodes';
import type { VerifyCliOptions } from './migrateOptions';
import { formatVerifyReport, printJson } from './migrateOutput';
import { withSession } from './migrateSession';

/** `verify`: decrypts every value and checks every blind index, prints the report, sets the exit code. */
export async function runVerify(options: VerifyCliOptions): Promise<void> {
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
