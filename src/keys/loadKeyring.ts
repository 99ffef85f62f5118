import type { Logger } from 'pino';
import { createAuditLog } from '../audit/auditLog';
import { KeyringError } from '../errors';
import { entryBytes } from './entryBytes';
import type { GcpKmsOptions } from './gcpKms';
import { Keyring } from './keyring';
import { isWrapped, parseKeyringDocument, readKeyringFile, type KeyringDocument } from './keyringFile';
import type { KeyWrappers } from './keyWrapper';
import { importKeyBytes, type LoadedKey } from './keyMaterial';
import { envValue } from './envValue';
import { withKmsSession } from './kmsSession';
import { localKeysFromEnv } from './local';
import type { RetryPolicy } from './retry';
import { keyAges } from './rotationPolicy';

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
  /** Receives the `keys.unwrapped`, local-keys warning and KMS retry/failure audit events. */
  readonly logger?: Logger;
}

/**
 * Loads the keyring an application or the CLI should use, from the first of:
 * 1. `options.file` or env `PCE_KEYRING_FILE`: a keyring file (see keyringFile.ts);
 * 2. env `PCE_KEYRING_JSON`: the same document inline, for platforms that inject config as env;
 * 3. env `PCE_DATA_KEYS` / `PCE_INDEX_KEYS` (and `PCE_WRAP_KEYS` for subject keys): local keys (development).
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
  const file = options.file ?? envValue(env.PCE_KEYRING_FILE);
  let doc: KeyringDocument;
  let origin: string;
  if (file !== undefined) {
    doc = await readKeyringFile(file);
    origin = file;
  } else if (envValue(env.PCE_KEYRING_JSON) !== undefined) {
    doc = parseInline(env.PCE_KEYRING_JSON!);
    origin = 'PCE_KEYRING_JSON';
  } else if (envValue(env.PCE_DATA_KEYS) !== undefined || envValue(env.PCE_INDEX_KEYS) !== undefined) {
    return localKeysFromEnv(env);
  } else {
    throw new KeyringError(undefined, NO_KEY_SOURCE);
  }
  return keyringFromDocument(doc, { ...options, origin });
}

/**
 * Builds a Keyring from a parsed keyring document, unwrapping its non-retired keys once.
 * `origin` (file path or variable name) only labels the warning about local entries.
 */
export async function keyringFromDocument(
  doc: KeyringDocument,
  options: Omit<LoadKeyringOptions, 'file'> & { readonly origin?: string } = {},
): Promise<Keyring> {
  const audit = options.logger ? createAuditLog(options.logger) : undefined;
  const live = doc.keys.filter((k) => k.status !== 'retired');
  const local = live.filter((k) => !isWrapped(k));
  if (local.length > 0) audit?.localKeysInKeyring(options.origin ?? 'keyring document', local.map((k) => k.id));
  const started = Date.now();
  return withKmsSession(options, live.filter(isWrapped).map((k) => k.source), audit, async (ctx) => {
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
    if (failed) throw failed.reason;
    const keys = settled.map((s) => (s as PromiseFulfilledResult<LoadedKey>).value);
    const primary = (purpose: string) => live.find((k) => k.purpose === purpose && k.status === 'primary')?.id;
    const keyring = new Keyring(keys, {
      primaryDataKey: primary('data'),
      primaryIndexKey: primary('index'),
      primaryWrapKey: primary('wrap'),
      retiredKeyIds: doc.keys.filter((k) => k.status === 'retired').map((k) => k.id),
      createdAt: Object.fromEntries(doc.keys.map((k) => [k.id, k.createdAt])),
    });
    audit?.keysUnwrapped(keyring.describe(), doc.keys.length - live.length, Date.now() - started);
    for (const age of keyAges(live, doc.policy, new Date())) {
      if (age.state === 'overdue') audit?.rotationOverdue(age.id, age.purpose, age.ageDays, age.maxAgeDays!);
    }
    return keyring;
  });
}

/** Every source loadKeyring reads, so whoever meets this error sees all the ways to give keys. */
export const NO_KEY_SOURCE =
  'no encryption keys configured: set one of PCE_KEYRING_FILE (a keyring file, made by `prisma-column-encryption keys generate`), ' +
  'PCE_KEYRING_JSON (the same JSON document in the variable), or PCE_DATA_KEYS and PCE_INDEX_KEYS (local keys, id:base64,id:base64, primary first)';

function parseInline(text: string): KeyringDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyringError(undefined, 'PCE_KEYRING_JSON is not valid JSON');
  }
  return parseKeyringDocument(json, 'PCE_KEYRING_JSON');
}
