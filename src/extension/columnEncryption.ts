import { Extensions, type DefaultArgs } from '@prisma/client/runtime/client';
import type { Logger } from 'pino';
import { currentAuditContext } from '../audit/accessContext';
import { createAuditLog, type AuditLog } from '../audit/auditLog';
import { backendInfo, backendNamed, defaultBackend, type CryptoBackendName } from '../codec/backendChoice';
import { Keyring } from '../keys/keyring';
import type { PfeLegacyKeys } from '../keys/pfeKeys';
import { UnsupportedQueryError } from '../errors';
import type { EncryptionSchema } from '../schema';
import { DEFAULT_SHAPE, decryptResult, type ReadShape } from './decryptResult';
import { redactPrismaError } from './redactError';
import { tlsGate, type RawQueryClient } from './tlsGate';
import { rewriteArgs } from './rewriteArgs';
import { buildRuntimeSchema, type RuntimeModel, type RuntimeSchema } from './runtimeSchema';
import { clientFor, delegateOf, inOwnTransaction, transactionOf, type QueryClient, type Transaction } from './transactionScope';
import { dialectOf, findDuplicate, lockWrites, type Dialect } from './uniqueGuard';
import { type Obj, type UniqueLookup, WalkContext } from './walkContext';

/** Options of {@link columnEncryption}. */
export interface ColumnEncryptionOptions {
  /** The `encryptedFields` map from the module the generator wrote. */
  readonly fields: EncryptionSchema;
  /**
   * A keyring, a promise of one (KMS unwrapping is asynchronous), or a function returning such a
   * promise. With a function, a failed load (KMS unreachable) is retried on the next query instead
   * of failing every query until the process restarts.
   */
  readonly keys: Keyring | Promise<Keyring> | (() => Promise<Keyring>);
  /** Your pino logger for audit events; a JSON logger on stderr by default. */
  readonly logger?: Logger;
  /**
   * The data-access trail: one `pce.data.access` event per query that reads, writes or searches
   * encrypted fields, naming the fields, the row count and the {@link withAuditContext} actor and
   * purpose (never values). `true` logs through `logger`; `{ logger }` sends the trail to a logger
   * of its own, such as one writing a tamper-evident chain (`openAuditChain`).
   */
  readonly accessLog?: boolean | { readonly logger: Logger };
  /**
   * Before the first query, check that the database session is encrypted with TLS 1.2 or later
   * (PostgreSQL: `pg_stat_ssl` for the session; MySQL/MariaDB: `Ssl_version`), log the negotiated
   * version (`pce.tls.checked`), and otherwise refuse every model query with an
   * `InsecureConnectionError`. Checked once per client: the pool opens every connection from the
   * same settings.
   */
  readonly requireTls?: boolean;
  /**
   * `native` (OpenSSL through the bundled module) or `node` (node:crypto) for this client; by
   * default the process's choice ({@link cryptoBackend}, `PCE_CRYPTO_BACKEND`). Same bytes either way.
   */
  readonly cryptoBackend?: CryptoBackendName;
  /**
   * prisma-field-encryption's keys ({@link pfeLegacyKeys}), decrypt-only, while its values are
   * converted: fields annotated `legacy: pfe` then read its format and find rows by its old hash.
   * Never used for writing; other fields never consult it.
   */
  readonly legacyKeys?: PfeLegacyKeys;
}

/**
 * What `columnEncryption()` returns: pass it to `prisma.$extends`. It adds no methods or result
 * fields, so the extended client keeps the exact types of the base client.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ColumnEncryptionExtension = (client: any) => { $extends: { extArgs: DefaultArgs } };

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

/**
 * The Prisma Client extension: encrypts annotated fields on write, decrypts them on read, and
 * rewrites equality filters into blind-index lookups.
 *
 * Throws a ConfigurationError at once when `fields` is not a generated map (with a keyring given
 * directly). While keys are loading, queries wait; if loading fails, queries fail with its error.
 *
 * @example
 * const prisma = new PrismaClient({ adapter }).$extends(
 *   columnEncryption({ fields: encryptedFields, keys: localKeysFromEnv() }),
 * );
 */
export function columnEncryption(options: ColumnEncryptionOptions): ColumnEncryptionExtension {
  const audit = createAuditLog(options.logger);
  const access = options.accessLog === true ? audit : options.accessLog ? createAuditLog(options.accessLog.logger) : undefined;
  const gate = options.requireTls ? () => tlsGate(options.fields?.provider === 'mysql' ? 'mysql' : 'postgres', audit) : undefined;
  // Chosen now, so a backend that cannot be used fails here rather than on the first query.
  const backend = options.cryptoBackend ? backendNamed(options.cryptoBackend) : defaultBackend();
  const bind = (keyring: Keyring): RuntimeSchema => {
    const schema = buildRuntimeSchema(options.fields, keyring, (e) => audit.decryptFailure(e.model, e.field, e.keyId, e.reason), backend, options.legacyKeys);
    audit.keysLoaded(keyring.describe(), backendInfo(backend));
    return schema;
  };
  const keys = options.keys;
  if (keys instanceof Keyring) {
    const ready = Promise.resolve(bind(keys));
    return defineWith(audit, access, gate, options.fields?.provider ?? '', () => ready);
  }
  const load = typeof keys === 'function' ? keys : () => keys;
  let runtime: Promise<RuntimeSchema> | undefined;
  // Start loading now so start-up failures surface early. A failed attempt is not kept, so with a
  // loader function a transient KMS error does not break the client for good.
  const attempt = (): Promise<RuntimeSchema> =>
    (runtime ??= load()
      .then(bind)
      .catch((error: unknown) => {
        runtime = undefined;
        throw error;
      }));
  attempt().catch(() => undefined);
  return defineWith(audit, access, gate, options.fields?.provider ?? '', attempt);
}

function defineWith(
  audit: AuditLog,
  access: AuditLog | undefined,
  gate: (() => (client: RawQueryClient, itx?: string) => Promise<void>) | undefined,
  provider: string,
  load: () => Promise<RuntimeSchema>,
): ColumnEncryptionExtension {
  const dialect = dialectOf(provider);
  // defineExtension's own return type cannot be named in declarations; the cast states what it is.
  return Extensions.defineExtension((client) => {
    // One TLS verdict per client the extension is applied to.
    const checkTls = gate?.();
    return client.$extends({
      name: 'prisma-column-encryption',
      query: {
        $allModels: {
          async $allOperations(params) {
            const { model, operation, args, query } = params;
            if (checkTls) {
              // Inside an interactive transaction the check runs on the transaction's own connection.
              const tx = transactionOf(params);
              const itx = tx?.kind === 'itx' ? tx : undefined;
              await checkTls(itx ? (clientFor(client as unknown as QueryClient, itx) as RawQueryClient) : (client as unknown as RawQueryClient), itx?.id);
            }
            return runOperation({
              schema: await load(),
              audit,
              access,
              dialect,
              modelName: model,
              operation,
              args: args as Obj | undefined,
              query: query as Operation['query'],
              params,
              // The client below this extension: for the extension's own lookups and checks.
              base: client as unknown as QueryClient,
            });
          },
        },
      },
    });
  }) as unknown as ColumnEncryptionExtension;
}

interface Operation {
  readonly schema: RuntimeSchema;
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
  readonly base: QueryClient;
}

async function runOperation(op: Operation): Promise<unknown> {
  const model = op.schema.get(op.modelName);
  if (!model || !model.holdsEncrypted) return op.query(op.args);
  const ctx = new WalkContext(op.schema, op.operation, (e, name) => op.audit.refusedQuery(e.model, e.field, e.operator, name));
  ctx.onDecryptFailure = (e) => op.audit.decryptFailure(e.model, e.field, e.keyId, e.reason);
  const rewritten = rewriteArgs(ctx, model, op.operation, op.args);
  const tx = transactionOf(op.params);
  let result: unknown;
  try {
    result = ctx.uniqueWrites.length > 0 ? await guardedWrite(op, ctx, rewritten, tx) : await plainRun(op, ctx, rewritten, tx);
  } catch (error) {
    // The database was searched (or written to) all the same: *OrThrow finding nothing, a constraint.
    if (op.access) logAccess(op.access, op, ctx, undefined, true);
    throw redactPrismaError(error, ctx.secrets);
  }
  if (RETURNS_RECORDS.has(op.operation)) {
    const at = atDataPath(ctx, model, fluentDataPath(op.params));
    decryptResult(ctx, at.model, result, at.shape);
  }
  op.audit.queryStats(op.modelName, op.operation, ctx.stats);
  if (op.access) logAccess(op.access, op, ctx, result);
  return result;
}

const rowsOf = (operation: string, result: unknown): { rows?: number } => {
  const rows = rowCount(operation, result);
  return rows === undefined ? {} : { rows };
};

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

async function plainRun(op: Operation, ctx: WalkContext, rewritten: Obj | undefined, tx: Transaction | undefined): Promise<unknown> {
  if (ctx.uniqueLookups.length > 0) await resolveUniqueLookups(ctx.uniqueLookups, clientFor(op.base, tx));
  return op.query(rewritten);
}

/** Guarded writes in one transaction, one at a time: their savepoints and locks must not interleave. */
const guardedQueues = new Map<string, Promise<unknown>>();

/**
 * A write of a unique index value while several index keys are loaded (see uniqueGuard.ts): lock,
 * write, check, in the caller's interactive transaction (the write undone to a savepoint when
 * refused, so the caller's transaction can go on as after a constraint error on MySQL), or in a
 * transaction of its own.
 */
async function guardedWrite(op: Operation, ctx: WalkContext, rewritten: Obj | undefined, tx: Transaction | undefined): Promise<unknown> {
  const first = ctx.uniqueWrites[0]!;
  if (!op.dialect) ctx.refuse(first.model, first.indexField, op.operation, `uniqueness during an index-key rotation is only checked on PostgreSQL and MySQL/MariaDB`);
  if (tx?.kind === 'batch') {
    ctx.refuse(first.model, first.indexField, `${op.operation} in $transaction([...])`, 'while several index keys are loaded, a unique index value is checked in the write\'s transaction, which a batch does not give; use an interactive transaction');
  }
  const dialect = op.dialect!;
  const run = async (client: QueryClient, id: string, savepoint: boolean): Promise<unknown> => {
    const locks = await lockWrites(client, dialect, ctx.uniqueWrites);
    try {
      if (ctx.uniqueLookups.length > 0) await resolveUniqueLookups(ctx.uniqueLookups, client);
      if (savepoint) await client.$executeRawUnsafe('SAVEPOINT pce_unique');
      // In a transaction of its own, the operation is sent into it; in the caller's it already is.
      const internal = savepoint ? undefined : { ...(op.params as { __internalParams?: object }).__internalParams, transaction: { kind: 'itx', id } };
      const result = await op.query(rewritten, internal);
      const duplicate = await findDuplicate(client, dialect, op.schema, ctx.uniqueWrites);
      if (savepoint) await client.$executeRawUnsafe(duplicate ? 'ROLLBACK TO SAVEPOINT pce_unique' : 'RELEASE SAVEPOINT pce_unique');
      if (duplicate) throw duplicate;
      return result;
    } finally {
      await locks.release();
    }
  };
  if (tx?.kind !== 'itx') return inOwnTransaction(op.base, (client, id) => run(client, id, false));
  const previous = guardedQueues.get(tx.id) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => run(clientFor(op.base, tx), tx.id, true));
  guardedQueues.set(tx.id, mine);
  try {
    return await mine;
  } finally {
    if (guardedQueues.get(tx.id) === mine) guardedQueues.delete(tx.id);
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
async function resolveUniqueLookups(lookups: readonly UniqueLookup[], client: QueryClient): Promise<void> {
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

