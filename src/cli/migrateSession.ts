import type { Logger } from 'pino';
import { createProgressDisplay, type ProgressDisplay } from '../migrate/progress';
import { openConnection } from '../migrate/openConnection';
import type { SqlConnection } from '../migrate/connection';
import type { EncryptionSchema } from '../schema';
import { cliLogger, connectionOptions, databaseLabel, databaseUrl, loadEncryptionSchema, type CommonCliOptions } from './cliContext';
import { scannedLine, type Scanned } from './migrateOutput';
import type { ScopeOptions } from './migrateOptions';

/** What a migration command works with while its database connection is open. */
export interface Session {
  readonly schema: EncryptionSchema;
  readonly scanned: Scanned;
  readonly conn: SqlConnection;
  readonly url: string;
  readonly display: ProgressDisplay;
  readonly logger: Logger;
}

/** Loads the schema, opens the database, runs `fn`, and always closes what it opened. */
export async function withSession<T>(options: CommonCliOptions & ScopeOptions, fn: (s: Session) => Promise<T>): Promise<T> {
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
