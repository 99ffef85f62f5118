import { Extensions, type DefaultArgs } from '@prisma/client/runtime/client';
import type { Logger } from 'pino';
import { createAuditLog, type AuditLog } from '../audit/auditLog';
import { backendInfo, backendNamed, defaultBackend, type CryptoBackendName } from '../codec/backendChoice';
import { Keyring } from '../keys/keyring';
import type { PfeLegacyKeys } from '../keys/pfeKeys';
import type { EncryptionSchema } from '../schema';
import { runOperation, type Operation, type Runtime } from './operation';
import { tlsGate, type RawQueryClient } from './tlsGate';
import { buildRuntimeSchema } from './runtimeSchema';
import { subjectStoreFor } from './subjectStore';
import type { SubjectKeyStore } from '../subjects';
import { clientFor, transactionOf, type QueryClient } from './transactionScope';
import { dialectOf } from './uniqueGuard';
import type { Obj } from './walkContext';

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
  /**
   * Models annotated `/// @@encrypted(subject: <field>)`: what a read of a value whose subject was
   * erased (forgotten) gives. `'error'` (default): a DecryptionError with reason `subject-erased`;
   * `'null'`: `null` for that field, so lists of records keep working after an erasure.
   */
  readonly onErasedSubject?: 'error' | 'null';
  /**
   * Writes for an erased subject are refused with a SubjectErasedError; `true` lets them create a
   * new key for the id (an explicit reuse, e.g. when ids are recycled on purpose). Default false.
   */
  readonly allowSubjectReuse?: boolean;
  /**
   * The subject key store (`new SubjectKeyStore({ keys, provider })`): pass the same one to
   * `forgetSubject`, so an erasure evicts the key from this client's cache at once. By default
   * the client makes its own (unwrapped keys cached: at most 10 000, for 5 minutes each).
   */
  readonly subjectKeyStore?: SubjectKeyStore;
}

/**
 * What `columnEncryption()` returns: pass it to `prisma.$extends`. It adds no methods or result
 * fields, so the extended client keeps the exact types of the base client.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ColumnEncryptionExtension = (client: any) => { $extends: { extArgs: DefaultArgs } };

/**
 * The Prisma Client extension: encrypts annotated fields on write, decrypts them on read, and
 * rewrites equality filters into blind-index lookups.
 *
 * Throws a ConfigurationError at once (with a keyring given directly) when `fields` is not a
 * generated map, or when it has models under per-subject keys (`@@encrypted(subject: ...)`) and
 * the keyring has no wrap key. With a promise or a loader the same checks run once the keyring
 * has loaded, and fail the load. While keys are loading, queries wait; if loading fails, queries
 * fail with its error.
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
  const bind = (keyring: Keyring): Runtime => {
    const erasedAsNull = options.onErasedSubject === 'null';
    const schema = buildRuntimeSchema(options.fields, keyring, (e) => audit.decryptFailure(e.model, e.field, e.keyId, e.reason), backend, options.legacyKeys, erasedAsNull);
    const store = subjectStoreFor(options.fields, keyring, backend, options.subjectKeyStore);
    audit.keysLoaded(keyring.describe(), backendInfo(backend));
    return { schema, keyring, ...(store ? { subjects: { store, allowReuse: options.allowSubjectReuse === true } } : {}) };
  };
  const keys = options.keys;
  if (keys instanceof Keyring) {
    const ready = Promise.resolve(bind(keys));
    return defineWith(audit, access, gate, options.fields?.provider ?? '', () => ready);
  }
  const load = typeof keys === 'function' ? keys : () => keys;
  let runtime: Promise<Runtime> | undefined;
  // Start loading now so start-up failures surface early. A failed attempt is not kept, so with a
  // loader function a transient KMS error does not break the client for good.
  const attempt = (): Promise<Runtime> =>
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
  load: () => Promise<Runtime>,
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
              runtime: await load(),
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
