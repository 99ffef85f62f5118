import { ColumnEncryptionError } from '../errors';

/**
 * What a MigrationError keeps of the driver's error: its code and the constraint it names. The
 * driver's message and detail can quote stored values (a duplicate entry, a failing row), so they
 * are dropped, and no logger or console that prints `cause` can show them.
 */
export interface DatabaseErrorSummary {
  readonly code?: string;
  readonly constraint?: string;
}

/**
 * A migration batch failed and was rolled back: the rows it covered are as they were before it.
 * The message names the command, model and chunk and the driver's error code, never the driver's
 * message.
 */
export class MigrationError extends ColumnEncryptionError {
  readonly code = 'PCE_MIGRATION';
  declare readonly cause: DatabaseErrorSummary | undefined;
  constructor(
    readonly command: string,
    readonly model: string,
    readonly chunk: number | undefined,
    readonly dbErrorCode: string | undefined,
    options?: { cause?: unknown; lockTimeout?: boolean },
  ) {
    super(
      `${command} ${model}: batch${chunk !== undefined ? ` in chunk ${chunk}` : ''} failed and was rolled back` +
        `${dbErrorCode ? ` (database error ${dbErrorCode})` : ''}` +
        (options?.lockTimeout
          ? '; it kept waiting for row locks the application holds (raise --lock-timeout, or rerun when the application is quieter)'
          : '; the checkpoint keeps every finished batch, so a rerun resumes once the cause is fixed'),
      options?.cause !== undefined ? { cause: summarizeDatabaseError(options.cause) } : undefined,
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

/** Code and constraint name only. MySQL names the key only inside its message: that part (an identifier) is kept. */
export function summarizeDatabaseError(error: unknown): DatabaseErrorSummary {
  const code = databaseErrorCode(error);
  const e = (typeof error === 'object' && error !== null ? error : {}) as { constraint?: unknown; message?: unknown };
  const constraint =
    typeof e.constraint === 'string' ? e.constraint : typeof e.message === 'string' ? /for key '([^']{1,128})'/.exec(e.message)?.[1] : undefined;
  return { ...(code ? { code } : {}), ...(constraint ? { constraint } : {}) };
}
