import { Extensions, type DefaultArgs } from '@prisma/client/runtime/client';
import type { Logger } from 'pino';
import { createAuditLog, type AuditLog } from '../audit/auditLog';
import type { Keyring } from '../keys/keyring';
import { UnsupportedQueryError } from '../errors';
import type { EncryptionSchema } from '../schema';
import { decryptResult } from './decryptResult';
import { rewriteArgs } from './rewriteArgs';
import { buildRuntimeSchema, type RuntimeModel, type RuntimeSchema } from './runtimeSchema';
import { type Obj, WalkContext } from './walkContext';

export interface ColumnEncryptionOptions {
  /** The `encryptedFields` map from the module the generator wrote. */
  readonly fields: EncryptionSchema;
  /** A keyring, or a promise of one (KMS unwrapping is asynchronous). */
  readonly keys: Keyring | Promise<Keyring>;
  /** Your pino logger for audit events; a JSON logger on stderr by default. */
  readonly logger?: Logger;
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
/** Unique operations that may be retried with an older index key during an index rotation. */
const RETRY_ON_MISS = new Set(['findUnique', 'findUniqueOrThrow', 'update', 'delete']);

/**
 * The Prisma Client extension: encrypts annotated fields on write, decrypts them on read, and
 * rewrites equality filters into blind-index lookups.
 *
 * @example
 * const prisma = new PrismaClient({ adapter }).$extends(
 *   columnEncryption({ fields: encryptedFields, keys: localKeysFromEnv() }),
 * );
 */
export function columnEncryption(options: ColumnEncryptionOptions): ColumnEncryptionExtension {
  const audit = createAuditLog(options.logger);
  let runtime: Promise<{ schema: RuntimeSchema; indexKeyCount: number }> | undefined;
  const load = () =>
    (runtime ??= Promise.resolve(options.keys).then((keyring) => {
      audit.keysLoaded(keyring.describe());
      const schema = buildRuntimeSchema(options.fields, keyring, (e) => audit.decryptFailure(e.model, e.field, e.keyId, e.reason));
      return { schema, indexKeyCount: keyring.describe().filter((k) => k.purpose === 'index').length };
    }));
  // Surface key-loading failures early instead of at the first query, without an unhandled rejection.
  if (!isKeyring(options.keys)) load().catch(() => undefined);
  else void load();

  // defineExtension's own return type cannot be named in declarations; the cast states what it is.
  return Extensions.defineExtension({
    name: 'prisma-column-encryption',
    query: {
      $allModels: {
        async $allOperations(params) {
          const { model, operation, args, query } = params;
          const { schema, indexKeyCount } = await load();
          const dataPath = fluentDataPath(params);
          return runOperation(schema, indexKeyCount, audit, model, operation, args as Obj | undefined, query as (a: Obj | undefined) => Promise<unknown>, dataPath);
        },
      },
    },
  }) as unknown as ColumnEncryptionExtension;
}

async function runOperation(
  schema: RuntimeSchema,
  indexKeyCount: number,
  audit: AuditLog,
  modelName: string,
  operation: string,
  args: Obj | undefined,
  query: (args: Obj | undefined) => Promise<unknown>,
  dataPath: readonly string[] = [],
): Promise<unknown> {
  const model = schema.get(modelName);
  if (!model || !model.holdsEncrypted) return query(args);
  const ctx = new WalkContext(schema, operation, (e, op) => audit.refusedQuery(e.model, e.field, e.operator, op));
  let result: unknown;
  for (;;) {
    const rewritten = rewriteArgs(ctx, model, operation, args);
    const canRetry = RETRY_ON_MISS.has(operation) && ctx.usedUniqueIndex && ctx.uniqueAttempt + 1 < indexKeyCount;
    try {
      result = await query(rewritten);
    } catch (error) {
      if (canRetry && isNotFound(error)) {
        ctx.uniqueAttempt++;
        continue;
      }
      throw error;
    }
    if (result === null && canRetry) {
      ctx.uniqueAttempt++;
      continue;
    }
    break;
  }
  if (RETURNS_RECORDS.has(operation)) decryptResult(ctx, modelAtDataPath(ctx, model, dataPath), result);
  audit.queryStats(modelName, operation, ctx.stats);
  return result;
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

/** The model whose records sit at `dataPath` (pairs of select/include and a relation field). */
function modelAtDataPath(ctx: WalkContext, model: RuntimeModel, dataPath: readonly string[]): RuntimeModel {
  let current = model;
  for (let i = 1; i < dataPath.length; i += 2) {
    const relation = current.relations.get(dataPath[i]!);
    if (!relation) {
      throw new UnsupportedQueryError(current.name, dataPath[i]!, 'fluent API', 'the result path does not follow a relation of the model; re-run prisma generate');
    }
    current = ctx.model(relation.model);
  }
  return current;
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2025';
}

function isKeyring(keys: Keyring | Promise<Keyring>): keys is Keyring {
  return typeof (keys as Promise<Keyring>).then !== 'function';
}
