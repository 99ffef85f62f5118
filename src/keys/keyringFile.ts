import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KeyringError } from '../errors';
import { assertKeyId, KEY_PURPOSES, KMS_KINDS, type KeyPurpose, type KmsKind } from './keyMaterial';
import { parseRotationPolicy, type RotationPolicy } from './rotationPolicy';
import { syncFolder } from '../files/syncFolder';

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
  /** How long a key may stay primary, per purpose (see rotationPolicy.ts). */
  readonly policy?: RotationPolicy;
}

export const KEYRING_FORMAT = 'prisma-column-encryption/keyring';

/** `primary`: used for new values (one per purpose); `active`: still read; `retired`: not loaded. */
export type KeyStatus = 'primary' | 'active' | 'retired';

interface EntryBase {
  readonly id: string;
  readonly purpose: KeyPurpose;
  readonly status: KeyStatus;
  /** Non-secret fingerprint of the key bytes, checked when the key is loaded (required for wrapped keys). */
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
  /** Proves after unwrapping that the KMS returned this key and not another one. */
  readonly fingerprint: string;
  readonly kmsKeyName: string;
  /** The KMS key version that produced `wrappedKey`. */
  readonly kmsKeyVersion: string;
  /** Base64 of the KMS ciphertext. */
  readonly wrappedKey: string;
  readonly rewrappedAt?: string;
  /**
   * Protection level of the KMS key version that wrapped it (`SOFTWARE`, `HSM`, `EXTERNAL`, ...),
   * as the KMS reported it at generate or rewrap time; absent for entries written before this was recorded.
   */
  readonly protectionLevel?: string;
}

/**
 * One key of a keyring file, told apart by `source`: `local` entries hold the key in the clear,
 * the others hold it only wrapped by that key-management service.
 */
export type KeyEntry = LocalKeyEntry | WrappedKeyEntry;

const PURPOSES = KEY_PURPOSES;
const STATUSES: readonly KeyStatus[] = ['primary', 'active', 'retired'];
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Date and time with a zone, as `Date.prototype.toISOString` writes them (the CLI's own format). */
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/;

function isGcpVersionOf(version: string, keyName: string): boolean {
  return version.startsWith(`${keyName}/cryptoKeyVersions/`) && /^\d+$/.test(version.slice(keyName.length + '/cryptoKeyVersions/'.length));
}

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
    const source = field('source')!;
    const wrapped = source !== 'local';
    // A wrapped key's fingerprint is what proves, after unwrapping, that the KMS returned this key.
    const fingerprint = field('fingerprint', !wrapped);
    if (fingerprint !== undefined && !/^[0-9a-f]{16}$/.test(fingerprint)) throw bad('"fingerprint" must be 16 hex digits', id);
    const date = (name: string, optional = false): string | undefined => {
      const v = field(name, optional);
      if (v !== undefined && (!ISO_TIME.test(v) || Number.isNaN(Date.parse(v)))) throw bad(`"${name}" must be an ISO 8601 time (like 2026-11-25T10:00:00.000Z)`, id);
      return v;
    };
    const base = { id, purpose, status, fingerprint, createdAt: date('createdAt')!, retiredAt: date('retiredAt', true) };
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
    const kmsKeyName = field('kmsKeyName')!;
    const kmsKeyVersion = field('kmsKeyVersion')!;
    if (source === 'gcp-kms' && !isGcpVersionOf(kmsKeyVersion, kmsKeyName)) {
      throw bad(`"kmsKeyVersion" must be a version of "kmsKeyName" (${kmsKeyName}/cryptoKeyVersions/<n>)`, id);
    }
    return prune({
      ...base,
      fingerprint: fingerprint!,
      source: source as KmsKind,
      kmsKeyName,
      kmsKeyVersion,
      wrappedKey,
      rewrappedAt: date('rewrappedAt', true),
      protectionLevel: protectionLevel(field('protectionLevel', true), id),
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
  if (value.policy === undefined) return { format: KEYRING_FORMAT, version: 1, keys };
  return { format: KEYRING_FORMAT, version: 1, keys, policy: parseRotationPolicy(value.policy, origin) };
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
 * Writes the keyring so that a crash or a full disk never leaves a half-written or missing file:
 * a temporary file in the same folder is written and flushed to disk, then renamed over the
 * keyring, then the folder entry is flushed. On any failure the temporary file is removed, as it
 * holds the same wrapped (and any local) keys.
 *
 * A new file is owner-only (0600). An existing file keeps its mode, owner and group, so an
 * operator's `keys rewrap` does not lock out the application that reads the file. When the
 * ownership cannot be kept (not root, file owned by someone else), nothing is written.
 */
export async function writeKeyringFile(path: string, doc: KeyringDocument): Promise<void> {
  const existing = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new KeyringError(undefined, `cannot read keyring file ${path}: ${error.code ?? 'error'}`, { cause: error });
  });
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx', 0o600);
    await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`);
    if (existing) await keepOwnership(handle, existing, path);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    if (error instanceof KeyringError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new KeyringError(undefined, `cannot write keyring file ${path}: ${code}; the file was not changed`, { cause: error });
  }
  await syncFolder(dirname(path));
}

async function keepOwnership(handle: FileHandle, existing: Stats, path: string): Promise<void> {
  await handle.chmod(existing.mode & 0o7777);
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  if (existing.uid === uid && existing.gid === gid) return;
  try {
    await handle.chown(existing.uid, existing.gid);
  } catch (error) {
    throw new KeyringError(
      undefined,
      `keyring file ${path} belongs to uid ${existing.uid} gid ${existing.gid}, and this process cannot give a new copy the same owner and group ` +
        `(${(error as NodeJS.ErrnoException).code ?? 'error'}); run the command as that user (or root) so the application can still read it. The file was not changed`,
      { cause: error },
    );
  }
}


/** Protection levels are upper-case words (`SOFTWARE`, `HSM`, `EXTERNAL_VPC`): anything else is refused. */
function protectionLevel(value: string | undefined, id: string): string | undefined {
  if (value !== undefined && !/^[A-Z][A-Z_]{0,31}$/.test(value)) throw new KeyringError(id, '"protectionLevel" must be a KMS protection level such as HSM or SOFTWARE');
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Drops undefined optional fields so files stay tidy. */
function prune<T extends object>(entry: T): T {
  return Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)) as T;
}
