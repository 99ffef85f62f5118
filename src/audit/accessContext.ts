import { AsyncLocalStorage } from 'node:async_hooks';
import { ConfigurationError } from '../errors';

/**
 * Who is reading or writing encrypted data, and why: set by the application around the work it
 * does for a request or a job, read by the extension for each data-access audit event.
 */
export interface AuditContext {
  /** The user, service account or job on whose behalf the queries run (an id, not a name or e-mail when avoidable). */
  readonly actor: string;
  /** Why the data is accessed: a ticket, a feature, a lawful basis (`support-ticket-4711`, `billing`). */
  readonly purpose: string;
  /** Optional correlation id (request id, trace id). */
  readonly requestId?: string;
}

const storage = new AsyncLocalStorage<AuditContext>();
const MAX_LENGTH = 200;

/**
 * Runs `fn` with `context` as the audit context of every query it starts, across `await`s,
 * callbacks and interactive transactions (Node's AsyncLocalStorage). A promise (or an unstarted
 * Prisma query) that `fn` returns is started inside the context and returned as a promise. An inner call replaces the
 * outer context for its own duration. The context is copied and frozen; its strings go into audit
 * events as they are, so they must not carry secrets or personal data beyond an identifier.
 *
 * @example
 * await withAuditContext({ actor: `user:${session.userId}`, purpose: 'profile-page' }, () =>
 *   prisma.user.findUnique({ where: { email } }),
 * );
 */
export function withAuditContext<T>(context: AuditContext, fn: () => T): T {
  return storage.run(checkContext(context), () => {
    const result = fn();
    // A Prisma query is lazy: it runs when `then` is first called. `() => prisma.user.findMany()`
    // returns one unstarted, and awaiting it outside would run it outside the context; start it here.
    if (isThenable(result)) return new Promise((resolve, reject) => result.then(resolve, reject)) as T;
    return result;
  });
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** The audit context of the current async execution, if any. */
export function currentAuditContext(): AuditContext | undefined {
  return storage.getStore();
}

function checkContext(context: AuditContext): AuditContext {
  const text = (name: 'actor' | 'purpose' | 'requestId', optional: boolean): string | undefined => {
    const value: unknown = (context as unknown as Record<string, unknown> | null)?.[name];
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_LENGTH) {
      throw new ConfigurationError(undefined, undefined, `withAuditContext: ${name} must be a non-empty string of at most ${MAX_LENGTH} characters`);
    }
    return value;
  };
  const actor = text('actor', false)!;
  const purpose = text('purpose', false)!;
  const requestId = text('requestId', true);
  return Object.freeze(requestId === undefined ? { actor, purpose } : { actor, purpose, requestId });
}
