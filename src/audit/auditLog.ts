import pino, { type Logger } from 'pino';
import type { DecryptionFailure } from '../errors';
import type { KeyInfo } from '../keys/keyring';
import type { TlsFinding } from '../tls/tlsPolicy';
import type { CryptoBackendInfo } from '../codec/backendChoice';

/**
 * Structured audit events. Every method takes only identifiers (model, field, key id, counts,
 * reasons): there is no parameter through which a value or key could reach a log line.
 */
export interface AuditLog {
  readonly logger: Logger;
  /** Keys ready, and which crypto backend computes with them (`native` or `node`, and why not native). */
  keysLoaded(keys: readonly KeyInfo[], backend?: CryptoBackendInfo): void;
  primaryChanged(purpose: string, from: string | undefined, to: string): void;
  keyRetired(keyId: string): void;
  /** A retired key was made active again (`keys reactivate`). */
  keyReactivated(keyId: string): void;
  /** A retired wrap key's entry was removed from the keyring file (`keys destroy`); the KMS key version that wrapped it, if any. */
  keyDestroyed(keyId: string, purpose: string, kmsKeyVersion: string | undefined): void;
  /** `keys destroy` refused: subject keys still wrapped under the key. */
  destroyRefused(keyId: string, values: number): void;
  /** A keyring file or PCE_KEYRING_JSON holds keys in the clear (`local` entries): fine for development only. */
  localKeysInKeyring(origin: string, keyIds: readonly string[]): void;
  keyGenerated(keyId: string, purpose: string, source: string): void;
  rewrapDone(count: number, kmsKeyVersion: string | undefined): void;
  /** Keys unwrapped from a keyring file at start-up (one KMS call per key, then none). */
  keysUnwrapped(keys: readonly KeyInfo[], retired: number, elapsedMs: number): void;
  keyRewrapped(keyId: string, fromVersion: string, toVersion: string): void;
  /** A transient key-management failure that will be retried. */
  kmsRetry(keyId: string, operation: string, failure: string, attempt: number, delayMs: number): void;
  /** A key could not be wrapped or unwrapped (after retries). */
  kmsFailure(keyId: string, operation: string, failure: string, attempts: number): void;
  /** `keys retire` refused: values still use the key. */
  retireRefused(keyId: string, values: number): void;
  decryptFailure(model: string, field: string, keyId: string | undefined, reason: DecryptionFailure): void;
  refusedQuery(model: string, field: string, operator: string, operation: string): void;
  queryStats(model: string, operation: string, stats: CryptoStats): void;
  migration(event: 'start' | 'batch' | 'end' | 'failure', details: Readonly<Record<string, string | number | boolean | undefined>>): void;
  /** How a database session is protected (`requireTls`, the migrator and the CLI). */
  tlsChecked(host: string | undefined, finding: TlsFinding, accepted: boolean): void;
  /** A primary key is past its rotation policy (warning, from `loadKeyring`). */
  rotationOverdue(keyId: string, purpose: string, ageDays: number, maxAgeDays: number): void;
  /** One query read or wrote encrypted fields (the data-access trail): names and counts only. */
  dataAccess(access: DataAccess): void;
}

/** What the data-access event records: which encrypted fields a query touched, for whom and why. */
export interface DataAccess {
  readonly model: string;
  readonly operation: string;
  /** `Model.field` of every encrypted field decrypted in the result (nested models included). */
  readonly read: readonly string[];
  /** `Model.field` of every encrypted field encrypted for the write. */
  readonly written: readonly string[];
  /** `Model.field` of every encrypted field the query looked up through its blind index. */
  readonly searched: readonly string[];
  /**
   * Records returned, rows changed for `*Many` writes, or rows counted (`count`, and `aggregate`
   * or `groupBy` with `_count._all`). Absent when the result does not tell: an `aggregate` or
   * `groupBy` without `_count._all`, or a `count` of fields only.
   */
  readonly rows?: number;
  /** From {@link withAuditContext}; `null` outside one. */
  readonly actor: string | null;
  readonly purpose: string | null;
  readonly requestId: string | null;
  /** Present when the query failed once sent (nothing found by `*OrThrow`, a constraint): `rows` is 0. */
  readonly failed?: true;
}

/** Per-query counters, logged at debug level only. */
export interface CryptoStats {
  encrypted: number;
  decrypted: number;
  indexed: number;
}

const EVENT_PREFIX = 'pce.';

/**
 * The logger of a library call given no `logger`: JSON lines on stderr at `warn` (PCE_LOG_LEVEL
 * changes it), secrets redacted as a second line of defence. A library should not print on every
 * start of an app: routine events (`pce.keys.loaded`, query counts) stay silent; what needs
 * attention (decryption failures, refused queries, keys in the clear, KMS retries) is printed.
 * The CLI logs at `info`: it is an operator's record of what changed.
 */
export function defaultLogger(): Logger {
  return pino(
    { name: 'prisma-column-encryption', level: process.env.PCE_LOG_LEVEL ?? 'warn', redact: ['*.key', '*.secret', '*.plaintext'] },
    pino.destination(2),
  );
}

/**
 * The audit log over a pino logger (yours, or {@link defaultLogger}). Events are tagged
 * `event: 'pce.<name>'` on a child logger with `component: 'prisma-column-encryption'`.
 */
export function createAuditLog(logger: Logger = defaultLogger()): AuditLog {
  const log = logger.child({ component: 'prisma-column-encryption' });
  const event = (name: string) => `${EVENT_PREFIX}${name}`;
  return {
    logger: log,
    keysLoaded: (keys, backend) =>
      log.info(
        {
          event: event('keys.loaded'),
          cryptoBackend: backend?.name,
          nativeUnavailable: backend?.nativeUnavailable,
          keys: keys.map((k) => ({
            id: k.id,
            purpose: k.purpose,
            primary: k.primary,
            source: k.source.kind,
            kmsKeyVersion: k.source.kind !== 'local' ? k.source.kmsKeyVersion : undefined,
            fingerprint: k.fingerprint,
          })),
        },
        'encryption keys loaded',
      ),
    keysUnwrapped: (keys, retired, elapsedMs) =>
      log.info(
        {
          event: event('keys.unwrapped'),
          keys: keys.map((k) => ({
            id: k.id,
            purpose: k.purpose,
            source: k.source.kind,
            kmsKeyName: k.source.kind !== 'local' ? k.source.kmsKeyName : undefined,
            kmsKeyVersion: k.source.kind !== 'local' ? k.source.kmsKeyVersion : undefined,
            fingerprint: k.fingerprint,
          })),
          retired,
          elapsedMs,
        },
        'keyring unwrapped',
      ),
    keyRewrapped: (keyId, fromVersion, toVersion) =>
      log.info({ event: event('key.rewrapped_one'), keyId, fromVersion, toVersion }, 'key re-wrapped'),
    kmsRetry: (keyId, operation, failure, attempt, delayMs) =>
      log.warn({ event: event('kms.retry'), keyId, operation, failure, attempt, delayMs }, 'key-management call failed, retrying'),
    kmsFailure: (keyId, operation, failure, attempts) =>
      log.error({ event: event('kms.failed'), keyId, operation, failure, attempts }, 'key-management call failed'),
    retireRefused: (keyId, values) => log.warn({ event: event('key.retire_refused'), keyId, values }, 'key still in use, not retired'),
    primaryChanged: (purpose, from, to) => log.info({ event: event('key.primary_changed'), purpose, from, to }, 'primary key changed'),
    keyRetired: (keyId) => log.info({ event: event('key.retired'), keyId }, 'key retired'),
    keyReactivated: (keyId) => log.info({ event: event('key.reactivated'), keyId }, 'retired key reactivated'),
    keyDestroyed: (keyId, purpose, kmsKeyVersion) => log.info({ event: event('key.destroyed'), keyId, purpose, kmsKeyVersion }, 'key destroyed: removed from the keyring file'),
    destroyRefused: (keyId, values) => log.warn({ event: event('key.destroy_refused'), keyId, values }, 'key still in use, not destroyed'),
    localKeysInKeyring: (origin, keyIds) =>
      log.warn({ event: event('keys.local_in_keyring'), origin, keyIds }, 'keyring holds keys in the clear (local entries): use a KMS in production'),
    keyGenerated: (keyId, purpose, source) => log.info({ event: event('key.generated'), keyId, purpose, source }, 'key generated'),
    rewrapDone: (count, kmsKeyVersion) => log.info({ event: event('key.rewrapped'), count, kmsKeyVersion }, 'keys re-wrapped'),
    decryptFailure: (model, field, keyId, reason) =>
      log.error({ event: event('decrypt.failed'), model, field, keyId, reason }, 'decryption failed'),
    refusedQuery: (model, field, operator, operation) =>
      log.warn({ event: event('query.refused'), model, field, operator, operation }, 'query refused'),
    queryStats: (model, operation, stats) => {
      if (log.isLevelEnabled('debug')) log.debug({ event: event('query.crypto'), model, operation, ...stats }, 'query crypto counts');
    },
    tlsChecked: (host, finding, accepted) =>
      log[accepted ? 'info' : 'error'](
        { event: event('tls.checked'), host, encrypted: finding.encrypted, version: finding.version, cipher: finding.cipher, accepted },
        accepted ? 'database connection checked' : 'database connection refused: not encrypted with TLS 1.2 or later',
      ),
    rotationOverdue: (keyId, purpose, ageDays, maxAgeDays) =>
      log.warn(
        { event: event('key.rotation_overdue'), keyId, purpose, ageDays, maxAgeDays },
        'primary key is past its rotation policy: run `prisma-column-encryption keys check` for the steps',
      ),
    dataAccess: (access) => log.info({ event: event('data.access'), ...access }, 'encrypted data accessed'),
    migration: (name, details) => {
      const level = name === 'failure' ? 'error' : 'info';
      log[level]({ event: event(`migrate.${name}`), ...details }, `migration ${name}`);
    },
  };
}
