import { WriteDeadlockError } from '../errors';
import type { Transaction } from './transactionScope';

/**
 * Deadlocks of subject writes. A first write for a subject takes locks on the key table that a
 * concurrent `forgetSubject` of the same subject also takes, in another order on MySQL/MariaDB
 * (InnoDB's insert-intention and duplicate-key locks), and InnoDB then rolls one of them back.
 * A write in a transaction of the extension's own is run again: the retry sees the erasure
 * committed (SubjectErasedError) or commits before it. Inside the caller's interactive
 * transaction nothing can be retried (the database rolled the whole transaction back), so the
 * caller gets a {@link WriteDeadlockError} saying so.
 */

/** Runs of one write in a transaction of the extension's own, the first included. */
export const DEADLOCK_ATTEMPTS = 3;

/**
 * True for Prisma's report of a deadlock or write conflict from the database: its driver adapter
 * error is a `TransactionWriteConflict` (MySQL errno 1213; PostgreSQL 40P01 and 40001), whether
 * Prisma raised it as P2034 (a model query) or P2010 (a raw query). The extension's own P2034 for
 * a uniqueness-lock timeout carries no driver error and is not one.
 */
export function isDeadlock(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const meta = (error as { meta?: { driverAdapterError?: { cause?: { kind?: unknown } } } }).meta;
  return meta?.driverAdapterError?.cause?.kind === 'TransactionWriteConflict';
}

/**
 * Runs `write` (which must start a fresh attempt each call: its own transaction, its own context)
 * and retries it on a deadlock, up to {@link DEADLOCK_ATTEMPTS} runs, when the extension owns the
 * transaction; in the caller's interactive transaction a deadlock becomes a WriteDeadlockError at once.
 */
export async function retryingDeadlocks<T>(model: string, tx: Transaction | undefined, write: () => Promise<T>): Promise<T> {
  const inCallers = tx?.kind === 'itx';
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (!isDeadlock(error)) throw error;
      if (inCallers || attempt >= DEADLOCK_ATTEMPTS) throw new WriteDeadlockError(model, inCallers, attempt);
      // A short, jittered pause lets the winner finish before the next run takes its locks again.
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt + Math.random() * 40));
    }
  }
}
