import { ColumnEncryptionError } from '../errors';

/**
 * A migration batch failed and was rolled back: the rows it covered are as they were before it.
 * The message names the command, model and chunk and the driver's error code; the driver's own
 * message (which may quote stored values) stays in `cause` and is never logged.
 */
export class MigrationError extends ColumnEncryptionError {
  readonly code = 'PCE_MIGRATION';
  constructor(
    readonly command: string,
    readonly model: string,
    readonly chunk: number | undefined,
    readonly dbErrorCode: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      `${command} ${model}: batch${chunk !== undefined ? ` in chunk ${chunk}` : ''} failed and was rolled back` +
        `${dbErrorCode ? ` (database error ${dbErrorCode})` : ''}; rerun to resume from the checkpoint`,
      options,
    );
  }
}

/** The driver's error code (SQLSTATE on PostgreSQL, errno/code on MySQL) without its message. */
export function databaseErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; errno?: unknown; sqlState?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (typeof e.errno === 'number') return String(e.errno);
  return undefined;
}
