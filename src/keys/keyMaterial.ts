import { createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { KEY_ID_PATTERN } from '../crypto/ciphertext';
import { KeyringError } from '../errors';

export const KEY_BYTES = 32;

/**
 * What a key is for. Data keys encrypt values; index keys are roots for blind-index HMAC keys;
 * wrap keys (key-encryption keys) wrap the per-subject data keys stored in the database. The
 * primary wrap key is the current *epoch*: `keys rotate-epoch` re-wraps every live subject key
 * under it, after which older wrap keys can be destroyed (crypto-shredding old backups).
 */
export type KeyPurpose = 'data' | 'index' | 'wrap';

/** Every purpose, in the order listings and policies show them. */
export const KEY_PURPOSES: readonly KeyPurpose[] = ['data', 'index', 'wrap'];

/**
 * Key-management services that can wrap keys. Adding a source (AWS KMS, Vault transit) means
 * adding its name here and implementing `KeyWrapper` (src/keys/keyWrapper.ts).
 */
export const KMS_KINDS = ['gcp-kms'] as const;
/** The name of a key-management service that wraps keys; stored as `source` in the keyring file. */
export type KmsKind = (typeof KMS_KINDS)[number];

/** Where a key came from. Discriminated so each source carries exactly what it needs. */
export type KeySource =
  | { readonly kind: 'local' }
  | { readonly kind: KmsKind; readonly kmsKeyName: string; readonly kmsKeyVersion: string | undefined };

/** A usable key held in memory. The secret is a KeyObject, so it never prints or serialises. */
export interface LoadedKey {
  readonly id: string;
  readonly purpose: KeyPurpose;
  readonly secret: KeyObject;
  readonly source: KeySource;
  /** Non-secret identifier of the key bytes (see {@link fingerprintOf}), safe for logs and listings. */
  readonly fingerprint: string;
}

export function assertKeyId(id: string): void {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new KeyringError(undefined, `invalid key id (use 1-32 characters from A-Z a-z 0-9 _ -)`);
  }
}

/**
 * Checks raw key bytes and wraps them in a KeyObject. Rejects wrong lengths and obviously weak
 * keys (constant bytes, too few distinct byte values for random material); the error names the
 * key id and the rule, never the bytes. The caller's buffer is zeroed.
 */
export function importKeyBytes(id: string, purpose: KeyPurpose, bytes: Buffer, source: KeySource): LoadedKey {
  assertKeyId(id);
  try {
    if (bytes.length !== KEY_BYTES) {
      throw new KeyringError(id, `must be exactly ${KEY_BYTES} bytes (base64 of 32 random bytes), got ${bytes.length}`);
    }
    // 32 random bytes have ~30 distinct values; fewer than 16 means a pattern or a placeholder.
    // All-printable bytes (p = 0.37^32, about 1e-14, for random ones) mean a password or a phrase.
    if (new Set(bytes).size < 16 || bytes.every((b) => b >= 0x20 && b < 0x7f)) {
      throw new KeyringError(id, 'is too weak: it does not look like 32 random bytes (generate one with `prisma-column-encryption keys generate`)');
    }
    const secret = createSecretKey(bytes); // copies: the caller's buffer is zeroed below
    return { id, purpose, secret, source, fingerprint: fingerprintOf(secret) };
  } finally {
    bytes.fill(0);
  }
}

/** Decodes standard or url-safe base64 strictly: anything else is rejected rather than guessed. */
export function decodeBase64Key(id: string, text: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new KeyringError(id, 'is not valid base64');
  }
  return Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Fresh key material from the system CSPRNG. The caller zeroes it after use. */
export function generateKeyBytes(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * Non-secret identifier of key bytes, safe for logs and listings: 8 bytes of HKDF output under
 * its own label, so the key itself is never used directly outside its one purpose.
 */
export function fingerprintOf(secret: KeyObject): string {
  return Buffer.from(hkdfSync('sha256', secret, 'prisma-column-encryption', 'fingerprint/v1', 8)).toString('hex');
}
