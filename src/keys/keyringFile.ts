import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { KeyringError } from '../errors';
import { assertKeyId, KMS_KINDS, type KeyPurpose, type KmsKind } from './keyMaterial';

/**
 * The keyring file: every key's id, purpose, status and source, with KMS-wrapped keys stored only
 * wrapped. It holds no usable secret unless it contains `local` keys (development only).
 *
 * ```json
 * { "format": "prisma-column-encryption/keyring", "version": 1, "keys": [
 *   { "id": "d1", "purpose": "data", "status": "primary", "source": "gcp-kms",
 *     "kmsKeyName": "projects/p/locations/global/keyRings/r/cryptoKeys/k",
 *     "kmsKeyVersion": "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
 *     "wrappedKey": "<base64>", "fingerprint": "<16 hex>", "createdAt": "2026-11-25T10:00:00.000Z" } ] }
 * ```
 */
export interface KeyringDocument {
  readonly format: typeof KEYRING_FORMAT;
  readonly version: 1;
  readonly keys: readonly KeyEntry[];
}

export const KEYRING_FORMAT = 'prisma-column-encryption/keyring';

/** `primary`: used for new values (one per purpose); `active`: still read; `retired`: not loaded. */
export type KeyStatus = 'primary' | 'active' | 'retired';

interface EntryBase {
  readonly id: string;
  readonly purpose: KeyPurpose;
  readonly status: KeyStatus;
  /** Non-secret fingerprint of the key bytes; checked after unwrapping when present. */
  readonly fingerprint?: string;
  readonly createdAt: string;
  readonly retiredAt?: string;
}

/** A key stored in the clear in the file: for development and tests only. */
export interface LocalKeyEntry extends EntryBase {
  readonly source: 'local';
  /** Base64 of 32 random bytes. */
  readonly key: string;
}

/** A key stored only wrapped by a key-management service. */
export interface WrappedKeyEntry extends EntryBase {
  readonly source: KmsKind;
  readonly kmsKeyName: string;
  /** The KMS key version that produced `wrappedKey`. */
  readonly kmsKeyVersion: string;
  /** Base64 of the KMS ciphertext. */
  readonly wrappedKey: string;
  readonly rewrappedAt?: string;
}

export type KeyEntry = LocalKeyEntry | WrappedKeyEntry;

const PURPOSES: readonly KeyPurpose[] = ['data', 'index'];
const STATUSES: readonly KeyStatus[] = ['primary', 'active', 'retired'];
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function isWrapped(entry: KeyEntry): entry is WrappedKeyEntry {
  return entry.source !== 'local';
}

/** An empty keyring, for `keys generate` on a new file. */
export function emptyKeyring(): KeyringDocument {
  return { format: KEYRING_FORMAT, version: 1, keys: [] };
}

/**
 * Checks a parsed keyring document. Errors name the entry (by id or position) and the field,
 * never a key or wrapped value.
 */
export function parseKeyringDocument(value: unknown, origin: string): KeyringDocument {
  const bad = (what: string, keyId?: string) => new KeyringError(keyId, `${origin}: ${what}`);
  if (!isObject(value)) throw bad('is not a JSON object');
  if (value.format !== KEYRING_FORMAT) throw bad(`"format" must be "${KEYRING_FORMAT}"`);
  if (value.version !== 1) throw bad('"version" must be 1 (this release reads keyring format 1)');
  if (!Array.isArray(value.keys)) throw bad('"keys" must be an array');
  const seen = new Set<string>();
  const keys = value.keys.map((raw: unknown, i: number): KeyEntry => {
    if (!isObject(raw)) throw bad(`keys[${i}] is not an object`);
    const id = raw.id;
    if (typeof id !== 'string') throw bad(`keys[${i}].id must be a string`);
    assertKeyId(id);
    if (seen.has(id)) throw bad('appears twice', id);
    seen.add(id);
    const field = (name: string, optional = false): string | undefined => {
      const v = raw[name];
      if (v === undefined && optional) return undefined;
      if (typeof v !== 'string' || v === '') throw bad(`"${name}" must be a non-empty string`, id);
      return v;
    };
    const purpose = field('purpose') as KeyPurpose;
    if (!PURPOSES.includes(purpose)) throw bad(`"purpose" must be one of ${PURPOSES.join(', ')}`, id);
    const status = field('status') as KeyStatus;
    if (!STATUSES.includes(status)) throw bad(`"status" must be one of ${STATUSES.join(', ')}`, id);
    const fingerprint = field('fingerprint', true);
    if (fingerprint !== undefined && !/^[0-9a-f]{16}$/.test(fingerprint)) throw bad('"fingerprint" must be 16 hex digits', id);
    const base = { id, purpose, status, fingerprint, createdAt: field('createdAt')!, retiredAt: field('retiredAt', true) };
    const source = field('source')!;
    if (source === 'local') {
      const key = field('key')!;
      if (!BASE64.test(key)) throw bad('"key" is not valid base64', id);
      return prune({ ...base, source, key });
    }
    if (!(KMS_KINDS as readonly string[]).includes(source)) {
      throw bad(`unknown "source" '${source}' (this release knows local, ${KMS_KINDS.join(', ')})`, id);
    }
    const wrappedKey = field('wrappedKey')!;
    if (!BASE64.test(wrappedKey)) throw bad('"wrappedKey" is not valid base64', id);
    return prune({
      ...base,
      source: source as KmsKind,
      kmsKeyName: field('kmsKeyName')!,
      kmsKeyVersion: field('kmsKeyVersion')!,
      wrappedKey,
      rewrappedAt: field('rewrappedAt', true),
    });
  });
  for (const purpose of PURPOSES) {
    const primaries = keys.filter((k) => k.purpose === purpose && k.status === 'primary');
    if (primaries.length > 1) {
      throw bad(`more than one primary ${purpose} key (${primaries.map((k) => k.id).join(', ')}); promote exactly one`);
    }
    if (primaries.length === 0 && keys.some((k) => k.purpose === purpose && k.status === 'active')) {
      throw bad(`no primary ${purpose} key among the active ones; run \`keys promote <id>\``);
    }
  }
  return { format: KEYRING_FORMAT, version: 1, keys };
}

/** Reads and checks a keyring file. A missing file is an error unless `allowMissing` (then empty). */
export async function readKeyringFile(path: string, options: { allowMissing?: boolean } = {}): Promise<KeyringDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      if (options.allowMissing) return emptyKeyring();
      throw new KeyringError(undefined, `keyring file ${path} does not exist (create one with \`prisma-column-encryption keys generate\`)`);
    }
    throw new KeyringError(undefined, `cannot read keyring file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message may quote file content: say where, not what.
    throw new KeyringError(undefined, `${path}: is not valid JSON`);
  }
  return parseKeyringDocument(json, path);
}

/**
 * Writes the keyring atomically (temporary file, then rename) with owner-only permissions, so a
 * crash never leaves a half-written file and other users cannot read it.
 */
export async function writeKeyringFile(path: string, doc: KeyringDocument): Promise<void> {
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temp, path);
}

/**
 * Runs a read-modify-write of the keyring file while holding `<path>.lock`, so two CLI runs
 * cannot overwrite each other's change. A lock left by a crashed run must be removed by hand;
 * the error says so.
 */
export async function withKeyringLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  let handle;
  try {
    handle = await open(lock, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyringError(undefined, `keyring file ${path} is locked by another run (${lock}); if no other run is active, delete the lock file`);
    }
    throw new KeyringError(undefined, `cannot lock keyring file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'} (does its folder exist?)`, { cause: error });
  }
  try {
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    return await fn();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Drops undefined optional fields so files stay tidy. */
function prune<T extends object>(entry: T): T {
  return Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)) as T;
}
