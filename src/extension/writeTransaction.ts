import type { RuntimeSchema } from './runtimeSchema';
import { clientFor, delegateOf, inOwnTransaction, type QueryClient, type Transaction } from './transactionScope';
import { findDuplicate, lockWrites, type Dialect } from './uniqueGuard';
import type { Obj, UniqueLookup, WalkContext } from './walkContext';

/**
 * The transaction a write runs in when the extension must do more than send it: check a unique
 * index value during an index-key rotation (uniqueGuard.ts), or find and bind subject keys
 * (subjectWrite.ts). Either the caller's interactive transaction, or one of its own.
 */
export interface WriteScope {
  /** A client bound to the transaction: the extension's own reads and writes go through it. */
  readonly client: QueryClient;
  /** Sends the operation itself (with rewritten arguments) into the transaction. */
  send(args: Obj | undefined): Promise<unknown>;
  /** True in the caller's transaction: a refused write is undone to a savepoint, not by rolling back. */
  readonly inCallers: boolean;
}

/** What running an operation in a write scope needs from the extension's operation. */
export interface ScopedOperation {
  readonly base: QueryClient;
  readonly params: object;
  readonly query: (args: Obj | undefined, internal?: object) => Promise<unknown>;
}

/** Writes in one caller transaction, one at a time: their savepoints and locks must not interleave. */
const queues = new Map<string, Promise<unknown>>();

/** Runs `body` in the caller's interactive transaction (queued behind its other scoped writes) or in a READ COMMITTED one of its own. */
export async function inWriteScope<T>(op: ScopedOperation, tx: Transaction | undefined, body: (scope: WriteScope) => Promise<T>): Promise<T> {
  if (tx?.kind !== 'itx') {
    return inOwnTransaction(op.base, (client, id) => {
      const internal = { ...(op.params as { __internalParams?: object }).__internalParams, transaction: { kind: 'itx', id } };
      return body({ client, send: (args) => op.query(args, internal), inCallers: false });
    });
  }
  const previous = queues.get(tx.id) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => body({ client: clientFor(op.base, tx), send: (args) => op.query(args), inCallers: true }));
  queues.set(tx.id, mine);
  try {
    return await mine;
  } finally {
    if (queues.get(tx.id) === mine) queues.delete(tx.id);
  }
}

/**
 * Sends the rewritten operation in `scope`: resolves unique lookups first and, for unique index
 * writes during a rotation, locks, writes and checks (the write undone to a savepoint in the
 * caller's transaction when refused, so it can go on as after a constraint error on MySQL).
 */
export async function sendChecked(scope: WriteScope, ctx: WalkContext, dialect: Dialect | undefined, schema: RuntimeSchema, args: Obj | undefined): Promise<unknown> {
  if (ctx.uniqueWrites.length === 0) {
    if (ctx.uniqueLookups.length > 0) await resolveUniqueLookups(ctx.uniqueLookups, scope.client);
    return scope.send(args);
  }
  const locks = await lockWrites(scope.client, dialect!, ctx.uniqueWrites);
  try {
    if (ctx.uniqueLookups.length > 0) await resolveUniqueLookups(ctx.uniqueLookups, scope.client);
    if (scope.inCallers) await scope.client.$executeRawUnsafe('SAVEPOINT pce_unique');
    const result = await scope.send(args);
    const duplicate = await findDuplicate(scope.client, dialect!, schema, ctx.uniqueWrites);
    if (scope.inCallers) await scope.client.$executeRawUnsafe(duplicate ? 'ROLLBACK TO SAVEPOINT pce_unique' : 'RELEASE SAVEPOINT pce_unique');
    if (duplicate) throw duplicate;
    return result;
  } finally {
    await locks.release();
  }
}

/**
 * While an index-key rotation is in progress a row may still hold its index under an older key.
 * A unique where (findUnique, update, upsert, connect, connectOrCreate, ...) must name the stored
 * value exactly, or it misses the row, or worse, upsert and connectOrCreate create a duplicate.
 * So the stored value is looked up among the candidates first, through `client`: in the
 * operation's interactive transaction when it has one, so a row that transaction wrote (or
 * deleted) is seen as the operation will see it. A compound unique is looked up with its other
 * fields, and lookups sharing one compound object are resolved together.
 */
export async function resolveUniqueLookups(lookups: readonly UniqueLookup[], client: QueryClient): Promise<void> {
  const byTarget = new Map<Obj, UniqueLookup[]>();
  for (const lookup of lookups) byTarget.set(lookup.target, [...(byTarget.get(lookup.target) ?? []), lookup]);
  await Promise.all(
    [...byTarget].map(async ([target, group]) => {
      const where: Obj = { ...target };
      const select: Obj = {};
      for (const lookup of group) {
        where[lookup.indexField] = { in: [...lookup.hashes] };
        select[lookup.indexField] = true;
      }
      const found = await delegateOf(client, group[0]!.model).findFirst({ where, select });
      for (const lookup of group) {
        const stored = found?.[lookup.indexField];
        if (typeof stored === 'string') target[lookup.indexField] = stored;
      }
    }),
  );
}
