import { createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { KeyringError } from '../errors';
import { entryBytes, type UnwrapContext } from './entryBytes';
import { isWrapped, type KeyEntry, type KeyringDocument, type WrappedKeyEntry } from './keyringFile';
import { describeUsage, type KeyUsage } from './keyUsage';
import { assertKeyId, fingerprintOf, generateKeyBytes, type KeyPurpose, type KmsKind } from './keyMaterial';
import type { CallLimits } from './keyWrapper';
import { withRetry } from './retry';

/**
 * Key lifecycle as functions from one keyring document to the next. Nothing here touches the
 * file system; the CLI reads, applies one operation and writes the result atomically, so a
 * failed operation leaves the file as it was.
 */

export interface LifecycleContext extends UnwrapContext {
  readonly now?: () => Date;
}

/** The primary key of a purpose changed; `from` is `null` when there was none. */
export interface PrimaryChange {
  readonly purpose: KeyPurpose;
  readonly from: string | null;
  readonly to: string;
}

export type NewKeySource = { readonly kind: 'local' } | { readonly kind: KmsKind; readonly kmsKeyName: string };

export interface GenerateRequest {
  readonly purpose: KeyPurpose;
  readonly source: NewKeySource;
  /** Default: `d-`, `i-` or `w-` and 6 random hex digits. */
  readonly id?: string;
  /** Make it the primary key. The first key of a purpose is primary regardless. */
  readonly primary?: boolean;
  /**
   * Refuse unless the KMS key (its primary version, and the version that wrapped the key) has
   * this protection level, e.g. `HSM`. Nothing is written when it does not.
   */
  readonly protectionLevel?: string;
}

/** `keys retire` refused: stored values still name the key. */
export class KeyInUseError extends KeyringError {
  constructor(readonly usage: KeyUsage) {
    super(
      usage.keyId,
      usage.purpose === 'wrap'
        ? `still wraps ${usage.values} subject key${usage.values === 1 ? '' : 's'} that ${usage.values === 1 ? 'is' : 'are'} not erased; re-wrap them under the primary wrap key first (prisma-column-encryption keys rotate-epoch), then retire`
        : `is still used by ${usage.values} stored ${usage.purpose === 'data' ? 'encrypted value' : 'blind index'}${usage.values === 1 ? '' : usage.purpose === 'data' ? 's' : 'es'} ` +
        `(${describeUsage(usage)}); re-encrypt them under the primary key first (prisma-column-encryption rotate), then retire`,
    );
  }
}

/** `keys retire` refused: the scan looked at no encrypted field, so "no value uses the key" proves nothing. */
export class NothingScannedError extends KeyringError {
  constructor(readonly usage: KeyUsage) {
    super(
      usage.keyId,
      usage.purpose === 'wrap'
        ? 'was not retired: the schema has no subject-key table (model PceSubjectKey, @@map("pce_subject_keys")) to count its wrapped keys in. Check --schema and the database URL'
        : 'was not retired: the database scan found no encrypted field to count. Check --schema (it must be the schema with the @encrypted annotations) and the database URL',
    );
  }
}

/**
 * Generates 32 random bytes and adds them as a new key: in the clear for `local`, otherwise
 * wrapped by the KMS and immediately unwrapped once to prove the identity running this can do
 * both (a key that can be wrapped but not unwrapped would be lost).
 */
export async function generateKey(
  doc: KeyringDocument,
  request: GenerateRequest,
  ctx: LifecycleContext,
): Promise<{ doc: KeyringDocument; entry: KeyEntry; primaryChange: PrimaryChange | undefined }> {
  const id = request.id ?? `${request.purpose.charAt(0)}-${randomBytes(3).toString('hex')}`;
  assertKeyId(id);
  if (doc.keys.some((k) => k.id === id)) throw new KeyringError(id, 'already exists in the keyring');
  const current = primaryOf(doc, request.purpose);
  const becomesPrimary = request.primary === true || current === undefined;
  const createdAt = (ctx.now?.() ?? new Date()).toISOString();
  const bytes = generateKeyBytes();
  try {
    const base = {
      id,
      purpose: request.purpose,
      status: becomesPrimary ? ('primary' as const) : ('active' as const),
      fingerprint: fingerprintOf(createSecretKey(bytes)),
      createdAt,
    };
    const entry: KeyEntry =
      request.source.kind === 'local'
        ? { ...base, source: 'local', key: bytes.toString('base64') }
        : await wrapChecked(bytes, { ...base, source: request.source.kind, kmsKeyName: request.source.kmsKeyName }, ctx, request.protectionLevel);
    const keys = doc.keys.map((k) => (becomesPrimary && k === current ? { ...k, status: 'active' as const } : k));
    return {
      doc: { ...doc, keys: [...keys, entry] },
      entry,
      primaryChange: becomesPrimary ? { purpose: request.purpose, from: current?.id ?? null, to: id } : undefined,
    };
  } finally {
    bytes.fill(0);
  }
}

/**
 * Wraps key bytes for an entry and unwraps the result once, through the same fingerprint check
 * start-up uses, before the entry is accepted. Wrapping alone proves only that the identity may
 * encrypt; a key it cannot unwrap again would be lost once the file is written.
 */
async function wrapChecked(
  bytes: Buffer,
  entry: Omit<WrappedKeyEntry, 'kmsKeyVersion' | 'wrappedKey'>,
  ctx: LifecycleContext,
  requiredLevel?: string,
): Promise<WrappedKeyEntry> {
  const target = { kmsKeyName: entry.kmsKeyName, keyId: entry.id, purpose: entry.purpose };
  const wrapper = ctx.wrappers(entry.source);
  const retried = <T>(call: (l: CallLimits) => Promise<T>) =>
    withRetry(call, ctx.retry, { subject: { keyId: entry.id, source: entry.source, kmsKeyName: entry.kmsKeyName, operation: 'wrap' }, onRetry: ctx.onRetry });
  const levelOf = wrapper.protectionLevel ? (name: string) => retried((l) => wrapper.protectionLevel!(name, target, l)) : undefined;
  const refuse = (name: string, level: string) =>
    new KeyringError(entry.id, `KMS key ${name} has protection level ${level}, not ${requiredLevel}; nothing was written (use a KMS key created with --protection-level ${(requiredLevel ?? '').toLowerCase()})`);
  if (requiredLevel !== undefined) {
    if (!levelOf) throw new KeyringError(entry.id, `the ${entry.source} key source cannot report protection levels, so --protection-level cannot be checked; nothing was written`);
    const level = await levelOf(entry.kmsKeyName);
    if (level !== requiredLevel) throw refuse(entry.kmsKeyName, level);
  }
  const { wrapped, kmsKeyVersion } = await retried((l) => wrapper.wrap(bytes, target, l));
  // The version that wrapped the key decides: the primary may have changed since the check above.
  const protectionLevel = levelOf ? await levelOf(kmsKeyVersion) : undefined;
  if (requiredLevel !== undefined && protectionLevel !== requiredLevel) throw refuse(kmsKeyVersion, protectionLevel ?? 'unknown');
  const { protectionLevel: _previous, ...rest } = entry;
  const next: WrappedKeyEntry = { ...rest, kmsKeyVersion, wrappedKey: wrapped.toString('base64'), ...(protectionLevel ? { protectionLevel } : {}) };
  const back = await entryBytes(next, ctx);
  const same = back.length === bytes.length && timingSafeEqual(back, bytes);
  back.fill(0);
  if (!same) throw new KeyringError(entry.id, 'the KMS returned different bytes when unwrapping the newly wrapped key; nothing was written');
  return next;
}

/** Makes a key the primary of its purpose; the previous primary stays active (still decrypts). */
export function promoteKey(doc: KeyringDocument, id: string): { doc: KeyringDocument; change: PrimaryChange | undefined } {
  const entry = find(doc, id);
  if (entry.status === 'retired') throw new KeyringError(id, 'is retired and cannot become primary (run `keys reactivate` first)');
  if (entry.status === 'primary') return { doc, change: undefined };
  const current = primaryOf(doc, entry.purpose);
  const keys = doc.keys.map((k): KeyEntry => {
    if (k === entry) return { ...k, status: 'primary' };
    if (k === current) return { ...k, status: 'active' };
    return k;
  });
  return { doc: { ...doc, keys }, change: { purpose: entry.purpose, from: current?.id ?? null, to: id } };
}

/**
 * Retires a key so it is no longer loaded. Refused for the primary key, while `usage` (from a
 * scan of the database) shows stored values that still need it, and when the scan covered no
 * encrypted field at all (wrong schema or database: zero would prove nothing).
 */
export function retireKey(doc: KeyringDocument, id: string, usage: KeyUsage, now = new Date()): { doc: KeyringDocument; changed: boolean } {
  const entry = checkRetirable(doc, id);
  if (!entry) return { doc, changed: false };
  if (usage.keyId !== id || usage.purpose !== entry.purpose) throw new KeyringError(id, 'usage counts are for another key');
  if (usage.scannedFields === 0) throw new NothingScannedError(usage);
  if (usage.values > 0) throw new KeyInUseError(usage);
  const keys = doc.keys.map((k): KeyEntry => (k === entry ? { ...k, status: 'retired', retiredAt: now.toISOString() } : k));
  return { doc: { ...doc, keys }, changed: true };
}

/**
 * The checks that need no database: the key exists and is not primary. Returns the entry, or
 * `undefined` when it is already retired.
 */
export function checkRetirable(doc: KeyringDocument, id: string): KeyEntry | undefined {
  const entry = find(doc, id);
  if (entry.status === 'retired') return undefined;
  if (entry.status === 'primary') throw new KeyringError(id, `is the primary ${entry.purpose} key: promote another key first`);
  return entry;
}

/**
 * Undoes a retirement: the key becomes active (loaded, used for reading) again. The key is
 * unwrapped once first, so a key whose KMS key version was disabled since is reported now
 * rather than at the application's next start.
 */
export async function reactivateKey(doc: KeyringDocument, id: string, ctx: LifecycleContext): Promise<{ doc: KeyringDocument; changed: boolean }> {
  const entry = find(doc, id);
  if (entry.status !== 'retired') return { doc, changed: false };
  (await entryBytes(entry, ctx)).fill(0);
  const keys = doc.keys.map((k): KeyEntry => {
    if (k !== entry) return k;
    const { retiredAt: _dropped, ...rest } = k;
    return { ...rest, status: 'active' };
  });
  return { doc: { ...doc, keys }, changed: true };
}

export interface RewrapResult {
  readonly id: string;
  readonly kmsKeyName: string;
  readonly fromVersion: string;
  readonly toVersion: string;
}

export interface RewrapOptions {
  /** Move every wrapped key to this KMS key instead of the current one. */
  readonly kmsKeyName?: string;
  /** Leave retired keys as they are (their KMS key version may be gone; they are not loaded anyway). */
  readonly skipRetired?: boolean;
}

/**
 * Re-wraps every wrapped key (retired ones too unless `skipRetired`: backups may still need them)
 * under the current primary version of its KMS key, or under `kmsKeyName` when moving to another
 * KMS key. Each key is unwrapped, checked against its fingerprint, wrapped again, and the new
 * wrapped bytes are unwrapped and compared before they are accepted; the document is returned
 * only when every key succeeded.
 */
export async function rewrapKeys(
  doc: KeyringDocument,
  ctx: LifecycleContext,
  options: RewrapOptions = {},
): Promise<{ doc: KeyringDocument; results: RewrapResult[]; skipped: string[] }> {
  const at = (ctx.now?.() ?? new Date()).toISOString();
  const results: RewrapResult[] = [];
  const skipped: string[] = [];
  const keys: KeyEntry[] = [];
  for (const entry of doc.keys) {
    if (!isWrapped(entry) || (options.skipRetired && entry.status === 'retired')) {
      if (isWrapped(entry)) skipped.push(entry.id);
      keys.push(entry);
      continue;
    }
    const bytes = await entryBytes(entry, ctx);
    try {
      const kmsKeyName = options.kmsKeyName ?? entry.kmsKeyName;
      const { kmsKeyVersion: _old, wrappedKey: _oldBytes, ...rest } = entry;
      const next = await wrapChecked(bytes, { ...rest, kmsKeyName, rewrappedAt: at }, ctx);
      keys.push(next);
      results.push({ id: entry.id, kmsKeyName, fromVersion: entry.kmsKeyVersion, toVersion: next.kmsKeyVersion });
    } finally {
      bytes.fill(0);
    }
  }
  return { doc: { ...doc, keys }, results, skipped };
}

export function primaryOf(doc: KeyringDocument, purpose: KeyPurpose): KeyEntry | undefined {
  return doc.keys.find((k) => k.purpose === purpose && k.status === 'primary');
}

export function findKey(doc: KeyringDocument, id: string): KeyEntry | undefined {
  return doc.keys.find((k) => k.id === id);
}

function find(doc: KeyringDocument, id: string): KeyEntry {
  const entry = findKey(doc, id);
  if (!entry) throw new KeyringError(id, `is not in the keyring (known: ${doc.keys.map((k) => k.id).join(', ') || 'none'})`);
  return entry;
}
