import type { Logger } from 'pino';
import { createAuditLog, type AuditLog } from '../audit/auditLog';
import { KeyringError } from '../errors';
import { entryBytes, wrapperLookup, type UnwrapContext } from './entryBytes';
import { GcpKmsWrapper, type GcpKmsOptions } from './gcpKms';
import { Keyring } from './keyring';
import { isWrapped, parseKeyringDocument, readKeyringFile, type KeyringDocument } from './keyringFile';
import { KeySourceError } from './keySourceError';
import type { KeyWrappers } from './keyWrapper';
import { importKeyBytes, type KmsKind, type LoadedKey } from './keyMaterial';
import { localKeysFromEnv } from './local';
import { retryPolicy, type RetryPolicy } from './retry';

/** Where the CLI and applications find their keys, and how wrapped keys are unwrapped. */
export interface LoadKeyringOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Keyring file path. Default: env `PCE_KEYRING_FILE`. */
  readonly file?: string;
  /**
   * Wrappers by source. Default: a Google Cloud KMS wrapper built from `gcpKms` (or the
   * environment), created only when the keyring holds gcp-kms keys and closed after start-up.
   * Wrappers you pass stay open: you close them.
   */
  readonly wrappers?: KeyWrappers;
  /** Client or client options for the default Google Cloud KMS wrapper. */
  readonly gcpKms?: GcpKmsOptions;
  /** Retry and time limits for KMS calls (defaults: 10 s per attempt, 30 s overall). */
  readonly retry?: Partial<RetryPolicy>;
  /** Receives the `keys.unwrapped` and KMS retry/failure audit events. */
  readonly logger?: Logger;
}

/**
 * Loads the keyring an application or the CLI should use, from the first of:
 * 1. `options.file` or env `PCE_KEYRING_FILE`: a keyring file (see keyringFile.ts);
 * 2. env `PCE_KEYRING_JSON`: the same document inline, for platforms that inject config as env;
 * 3. env `PCE_DATA_KEYS` / `PCE_INDEX_KEYS`: local keys (development).
 *
 * Wrapped keys are unwrapped once, here, in parallel; retired keys are skipped. Afterwards no
 * KMS call is made. Any failure rejects with a {@link KeyringError} (a {@link KeySourceError}
 * for KMS failures) naming the key and what to check.
 *
 * @example
 * const prisma = new PrismaClient({ adapter }).$extends(
 *   columnEncryption({ fields: encryptedFields, keys: loadKeyring({ logger }), logger }),
 * );
 */
export async function loadKeyring(options: LoadKeyringOptions = {}): Promise<Keyring> {
  const env = options.env ?? process.env;
  const file = options.file ?? nonEmpty(env.PCE_KEYRING_FILE);
  let doc: KeyringDocument;
  if (file !== undefined) {
    doc = await readKeyringFile(file);
  } else if (nonEmpty(env.PCE_KEYRING_JSON) !== undefined) {
    doc = parseInline(env.PCE_KEYRING_JSON!);
  } else {
    return localKeysFromEnv(env);
  }
  return keyringFromDocument(doc, options);
}

/** Builds a Keyring from a parsed keyring document, unwrapping its non-retired keys once. */
export async function keyringFromDocument(
  doc: KeyringDocument,
  options: Omit<LoadKeyringOptions, 'file'> = {},
): Promise<Keyring> {
  const audit = options.logger ? createAuditLog(options.logger) : undefined;
  const live = doc.keys.filter((k) => k.status !== 'retired');
  const { wrappers, close } = defaultWrappers(options, live.filter(isWrapped).map((k) => k.source));
  const ctx: UnwrapContext = {
    wrappers: wrapperLookup(wrappers),
    retry: retryPolicy(options.retry),
    onRetry: (e, attempt, delay) => audit?.kmsRetry(e.keyId!, e.operation, e.failure, attempt, delay),
  };
  const started = Date.now();
  try {
    const settled = await Promise.allSettled(
      live.map(async (entry): Promise<LoadedKey> => {
        const source = isWrapped(entry)
          ? { kind: entry.source, kmsKeyName: entry.kmsKeyName, kmsKeyVersion: entry.kmsKeyVersion }
          : { kind: 'local' as const };
        return importKeyBytes(entry.id, entry.purpose, await entryBytes(entry, ctx), source);
      }),
    );
    // Report the first failure in file order, so the message is stable across runs.
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      reportFailure(audit, failed.reason);
      throw failed.reason;
    }
    const keys = settled.map((s) => (s as PromiseFulfilledResult<LoadedKey>).value);
    const primary = (purpose: string) => live.find((k) => k.purpose === purpose && k.status === 'primary')?.id;
    const keyring = new Keyring(keys, { primaryDataKey: primary('data'), primaryIndexKey: primary('index') });
    audit?.keysUnwrapped(keyring.describe(), doc.keys.length - live.length, Date.now() - started);
    return keyring;
  } finally {
    await close();
  }
}

function reportFailure(audit: AuditLog | undefined, error: unknown): void {
  if (audit && error instanceof KeySourceError) audit.kmsFailure(error.keyId!, error.operation, error.failure, error.attempts);
}

/**
 * The wrappers to use: the caller's, plus a GCP wrapper created here when gcp-kms keys need one.
 * Only wrappers created here are closed afterwards.
 */
export function defaultWrappers(
  options: Pick<LoadKeyringOptions, 'wrappers' | 'gcpKms' | 'env'>,
  needed: readonly KmsKind[],
): { wrappers: KeyWrappers; close: () => Promise<void> } {
  const given = options.wrappers ?? {};
  if (given['gcp-kms'] || !needed.includes('gcp-kms')) return { wrappers: given, close: async () => undefined };
  const gcp = new GcpKmsWrapper(options.gcpKms, options.env ?? process.env);
  return { wrappers: { ...given, 'gcp-kms': gcp }, close: () => gcp.close() };
}

function parseInline(text: string): KeyringDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyringError(undefined, 'PCE_KEYRING_JSON is not valid JSON');
  }
  return parseKeyringDocument(json, 'PCE_KEYRING_JSON');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
