import { ConfigurationError } from '../errors';
import type { Obj } from './walkContext';

/**
 * Where the extension's own queries (unique lookups, uniqueness checks) run for one operation:
 * in the caller's interactive transaction when the operation is part of one, so they see its
 * uncommitted writes and need no second connection, otherwise on the base client.
 *
 * Prisma tells a query extension about the transaction only in its internal request parameters
 * (`__internalParams.transaction`), and a client bound to that transaction is made with its
 * internal `_createItxClient`, the same call `$transaction` itself uses. Neither is in Prisma's
 * public types; test/integration/uniqueRotation.test.ts fails if an upgrade changes them.
 */

/** A Prisma client (the base one, or one bound to a transaction), seen through what the extension calls. */
export interface QueryClient {
  $queryRawUnsafe(sql: string, ...params: unknown[]): Promise<unknown>;
  $executeRawUnsafe(sql: string, ...params: unknown[]): Promise<number>;
  $transaction<T>(fn: (tx: QueryClient) => Promise<T>, options?: { isolationLevel?: string }): Promise<T>;
  readonly [delegate: string]: unknown;
}

export type Transaction = { readonly kind: 'itx'; readonly id: string } | { readonly kind: 'batch' };

/** The transaction an operation runs in, from Prisma's internal request parameters. */
export function transactionOf(params: object): Transaction | undefined {
  const tx = (params as { __internalParams?: { transaction?: { kind?: unknown; id?: unknown } } }).__internalParams?.transaction;
  if (!tx) return undefined;
  if (tx.kind === 'itx' && typeof tx.id === 'string') return { kind: 'itx', id: tx.id };
  if (tx.kind === 'batch') return { kind: 'batch' };
  return undefined;
}

/** The client whose queries run in `tx` (interactive) or outside any transaction (none, batch). */
export function clientFor(base: QueryClient, tx: Transaction | undefined): QueryClient {
  if (tx?.kind !== 'itx') return base;
  const create = (base as unknown as { _createItxClient?: (tx: object) => QueryClient })._createItxClient;
  if (typeof create !== 'function') {
    throw new ConfigurationError(undefined, undefined, 'this Prisma version has no internal _createItxClient: queries inside interactive transactions cannot be rewritten safely');
  }
  return create.call(base, { kind: 'itx', id: tx.id });
}

const SCOPE = Symbol.for('prisma.client.transaction.scope_context');

/**
 * Runs `fn` in a new READ COMMITTED interactive transaction of the base client, passing the
 * transaction-bound client and its id (to hand to the operation's own `query`).
 */
export function inOwnTransaction<T>(base: QueryClient, fn: (tx: QueryClient, id: string) => Promise<T>): Promise<T> {
  return base.$transaction(
    async (tx) => {
      const id = (tx as unknown as Record<symbol, { txId?: unknown } | undefined>)[SCOPE]?.txId;
      if (typeof id !== 'string') throw new ConfigurationError(undefined, undefined, 'this Prisma version does not expose the interactive transaction id the extension needs');
      return fn(tx, id);
    },
    { isolationLevel: 'ReadCommitted' },
  );
}

/** A model delegate (`user`) of a client, by model name. */
export function delegateOf(client: QueryClient, model: string): { findFirst(args: Obj): Promise<Obj | null>; findUnique(args: Obj): Promise<Obj | null>; findMany(args: Obj): Promise<Obj[]> } {
  return client[model.charAt(0).toLowerCase() + model.slice(1)] as never;
}
