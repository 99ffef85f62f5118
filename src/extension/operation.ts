import { currentAuditContext } from '../audit/accessContext';
import type { AuditLog } from '../audit/auditLog';
import type { KeyringView } from '../codec/keyChoice';
import type { Keyring } from '../keys/keyring';
import { UnsupportedQueryError } from '../errors';
import { retryingDeadlocks } from './deadlock';
import { DEFAULT_SHAPE, decryptResult, type ReadShape } from './decryptResult';
import { redactPrismaError } from './redactError';
import { rewriteArgs } from './rewriteArgs';
import type { RuntimeModel, RuntimeSchema } from './runtimeSchema';
import { planSubjects, type SubjectPlan } from './subjectPlan';
import { readKeysFor } from './subjectRead';
import type { SubjectKeySource } from './subjectStore';
import { dryRunKeys, runSubjectWrite } from './subjectWrite';
import { clientFor, transactionOf, type QueryClient, type Transaction } from './transactionScope';
import type { Dialect } from './uniqueGuard';
import { type Obj, WalkContext } from './walkContext';
import { inWriteScope, resolveUniqueLookups, sendChecked } from './writeTransaction';

/** The keyring-bound state every operation of one client uses. */
export interface Runtime {
  readonly schema: RuntimeSchema;
  readonly keyring: KeyringView & Pick<Keyring, 'primaryWrap'>;
  /** Present when the map has a subject-keyed model. */
  readonly subjects?: { readonly store: SubjectKeySource; readonly allowReuse: boolean };
}

/** One top-level model operation as the extension's query hook receives it. */
export interface Operation {
  readonly runtime: Runtime;
  readonly audit: AuditLog;
  /** Where data-access events go; `undefined` when the trail is off. */
  readonly access: AuditLog | undefined;
  readonly dialect: Dialect | undefined;
  readonly modelName: string;
  readonly operation: string;
  readonly args: Obj | undefined;
  /** Prisma's next step; the second argument overrides its internal request parameters (here: the transaction). */
  readonly query: (args: Obj | undefined, internal?: object) => Promise<unknown>;
  /** The callback's parameters as Prisma passed them, internal ones included. */
  readonly params: object;
  /** The client below this extension: for the extension's own lookups and checks. */
  readonly base: QueryClient;
}

/** Operations whose results contain records of the model (others return counts or aggregates). */
const RETURNS_RECORDS = new Set([
  'findUnique',
  'findUniqueOrThrow',
  'findFirst',
  'findFirstOrThrow',
  'findMany',
  'create',
  'createManyAndReturn',
  'update',
  'updateManyAndReturn',
  'upsert',
  'delete',
]);

/** Rewrites, runs and decrypts one operation. */
export async function runOperation(op: Operation): Promise<unknown> {
  const { schema, subjects } = op.runtime;
  const model = schema.get(op.modelName);
  if (!model || !model.holdsEncrypted) return op.query(op.args);
  let ctx = newContext(op);
  const plan = subjects ? planSubjects(ctx, model, op.operation, op.args) : undefined;
  if (plan) {
    // A validation pass with a throwaway key: every refusal comes before any SQL is sent.
    dryRunKeys(plan, op.runtime.keyring);
    ctx.subjectPlan = plan;
  }
  const rewritten = rewriteArgs(ctx, model, op.operation, op.args);
  const tx = transactionOf(op.params);
  const checked = ctx;
  let result: unknown;
  try {
    if (plan) {
      // Each run (a deadlock's retry included) starts from a fresh context: what the last one collected was rolled back.
      result = await retryingDeadlocks(model.name, tx, () => subjectWrite(op, model, plan, checked, (ctx = newContext(op)), tx, rewritten));
    } else if (ctx.uniqueWrites.length > 0) {
      result = await guardedWrite(op, ctx, rewritten, tx);
    } else {
      if (ctx.uniqueLookups.length > 0) await resolveUniqueLookups(ctx.uniqueLookups, clientFor(op.base, tx));
      result = await op.query(rewritten);
    }
    if (subjects && !plan && model.reachesSubject && RETURNS_RECORDS.has(op.operation)) {
      // A batch transaction has no client of its own: keys committed before it are read outside it.
      // A delete has happened by now: an erased subject's values in its record read as null rather
      // than failing, which would report a committed delete as failed.
      ctx.readKeys = await readKeysFor(subjects.store, clientFor(op.base, tx?.kind === 'itx' ? tx : undefined), op.runtime.keyring, result, op.operation === 'delete');
    }
  } catch (error) {
    // The database was searched (or written to) all the same: *OrThrow finding nothing, a constraint.
    if (op.access) logAccess(op.access, op, ctx, undefined, true);
    throw redactPrismaError(error, new Set([...checked.secrets, ...ctx.secrets]));
  }
  if (RETURNS_RECORDS.has(op.operation)) {
    const at = atDataPath(ctx, model, fluentDataPath(op.params));
    decryptResult(ctx, at.model, result, at.shape);
  }
  op.audit.queryStats(op.modelName, op.operation, ctx.stats);
  if (op.access) logAccess(op.access, op, ctx, result);
  return result;
}

function newContext(op: Operation): WalkContext {
  const ctx = new WalkContext(op.runtime.schema, op.operation, (e, name) => op.audit.refusedQuery(e.model, e.field, e.operator, name));
  ctx.onDecryptFailure = (e) => op.audit.decryptFailure(e.model, e.field, e.keyId, e.reason);
  return ctx;
}

/**
 * A write of subject-keyed values: in the caller's interactive transaction or one of its own, so
 * a key created for the write commits or rolls back with it. The result's subject keys are loaded
 * in the same transaction (a key created by it is not visible outside before commit).
 */
async function subjectWrite(op: Operation, model: RuntimeModel, plan: SubjectPlan, checked: WalkContext, ctx: WalkContext, tx: Transaction | undefined, rewritten: Obj | undefined): Promise<unknown> {
  const { subjects, keyring, schema } = op.runtime;
  // The keyring has a wrap key: a client over subject models without one is refused when it is made (subjectStoreFor).
  const slot = plan.all.find((s) => s.needed)!;
  if (tx?.kind === 'batch') {
    ctx.refuse(slot.model.name, slot.model.spec.subject!.field, `${op.operation} in $transaction([...])`, "a subject's key is found or created in the write's own transaction, which a batch does not give; use an interactive transaction");
  }
  if (checked.uniqueWrites.length > 0 && !op.dialect) {
    const first = checked.uniqueWrites[0]!;
    ctx.refuse(first.model, first.indexField, op.operation, 'uniqueness during an index-key rotation is only checked on PostgreSQL and MySQL/MariaDB');
  }
  return inWriteScope(op, tx, async (scope) => {
    const result = await runSubjectWrite(
      { scope, store: subjects!.store, keyring, schema, dialect: op.dialect, model, operation: op.operation, args: op.args!, plan, allowReuse: subjects!.allowReuse, where: rewritten?.where, checked },
      ctx,
    );
    if (RETURNS_RECORDS.has(op.operation)) ctx.readKeys = await readKeysFor(subjects!.store, scope.client, keyring, result);
    return result;
  });
}

/**
 * A write of a unique index value while several index keys are loaded (see uniqueGuard.ts): lock,
 * write, check, in the caller's interactive transaction or in a transaction of its own.
 */
async function guardedWrite(op: Operation, ctx: WalkContext, rewritten: Obj | undefined, tx: Transaction | undefined): Promise<unknown> {
  const first = ctx.uniqueWrites[0]!;
  if (!op.dialect) ctx.refuse(first.model, first.indexField, op.operation, `uniqueness during an index-key rotation is only checked on PostgreSQL and MySQL/MariaDB`);
  if (tx?.kind === 'batch') {
    ctx.refuse(first.model, first.indexField, `${op.operation} in $transaction([...])`, 'while several index keys are loaded, a unique index value is checked in the write\'s transaction, which a batch does not give; use an interactive transaction');
  }
  return inWriteScope(op, tx, (scope) => sendChecked(scope, ctx, op.dialect, op.runtime.schema, rewritten));
}

/** One data-access event for a query that touched encrypted fields (or deleted rows of a model holding them). */
function logAccess(access: AuditLog, op: Operation, ctx: WalkContext, result: unknown, failed = false): void {
  const { read, written, searched } = ctx.fields;
  if (read.size === 0 && written.size === 0 && searched.size === 0 && !op.operation.startsWith('delete')) return;
  const context = currentAuditContext();
  access.dataAccess({
    model: op.modelName,
    operation: op.operation,
    read: [...read],
    written: [...written],
    searched: [...searched],
    ...rowsOf(op.operation, result),
    actor: context?.actor ?? null,
    purpose: context?.purpose ?? null,
    requestId: context?.requestId ?? null,
    ...(failed ? { failed: true as const } : {}),
  });
}

const rowsOf = (operation: string, result: unknown): { rows?: number } => {
  const rows = rowCount(operation, result);
  return rows === undefined ? {} : { rows };
};

/**
 * Rows the query returned, changed or counted; `undefined` when the result does not say (an
 * `aggregate` or `groupBy` without `_count._all`, a `count` of fields only): better no number
 * than a made-up one.
 */
function rowCount(operation: string, result: unknown): number | undefined {
  if (result === null || result === undefined) return 0;
  if (operation === 'count') return typeof result === 'number' ? result : countAll(result);
  if (operation === 'aggregate') return countAll((result as Obj)._count);
  if (operation === 'groupBy') {
    // Each group's _count._all is the rows in that group; groups themselves are not rows.
    let total = 0;
    for (const group of result as Obj[]) {
      const n = countAll(group._count);
      if (n === undefined) return undefined;
      total += n;
    }
    return total;
  }
  if (Array.isArray(result)) return result.length;
  if (typeof result === 'number') return result;
  const count = (result as { count?: unknown }).count;
  return typeof count === 'number' && Object.keys(result).length === 1 ? count : 1;
}

/** `_count: true` gives a number, `_count: { _all: true }` an object with `_all`. */
function countAll(count: unknown): number | undefined {
  if (typeof count === 'number') return count;
  const all = (count as { _all?: unknown } | null | undefined)?._all;
  return typeof all === 'number' ? all : undefined;
}

/**
 * The fluent API (`prisma.user.findUnique(...).readings()`) runs the parent operation with the
 * relation selected, and Prisma unwraps the relation before the extension sees the result. Prisma
 * passes where it unwrapped (`['select', 'readings', ...]`) only in its internal parameters, which
 * are not part of the typed callback signature; without them the result is the operation's own.
 */
function fluentDataPath(params: object): readonly string[] {
  const dataPath = (params as { __internalParams?: { dataPath?: unknown } }).__internalParams?.dataPath;
  return Array.isArray(dataPath) && dataPath.every((s) => typeof s === 'string') ? dataPath : [];
}

/** The model whose records sit at `dataPath` (pairs of select/include and a relation field), and the selection there. */
function atDataPath(ctx: WalkContext, model: RuntimeModel, dataPath: readonly string[]): { model: RuntimeModel; shape: ReadShape } {
  let current = model;
  let shape = ctx.readShape;
  for (let i = 1; i < dataPath.length; i += 2) {
    shape = shape.nested.get(dataPath[i]!) ?? DEFAULT_SHAPE;
    const relation = current.relations.get(dataPath[i]!);
    if (!relation) {
      throw new UnsupportedQueryError(current.name, dataPath[i]!, 'fluent API', 'the result path does not follow a relation of the model; re-run prisma generate');
    }
    current = ctx.model(relation.model);
  }
  return { model: current, shape };
}
