import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { isCanonicalBase64url, NONCE_BYTES, TAG_BYTES } from '../crypto/ciphertext';
import { nodeBackend, type CryptoBackend } from '../codec/backend';
import { KEY_BYTES } from '../keys/keyMaterial';

/**
 * Wrapping of per-subject data keys: pure functions, no database. A subject key is 32 random
 * bytes, stored only as AES-256-GCM(wrapKey, random 96-bit nonce, key bytes) with the associated
 * data `pce:subject-key:<keyId>`, so a wrapped key copied onto another row (another key id) fails
 * to unwrap instead of handing one person's key to another.
 *
 * Stored text: `<nonce base64url>.<ciphertext+tag base64url>` (no padding).
 */

/** Bytes of a subject key id before base64url (128 bits: never guessed, never collides). */
const KEY_ID_BYTES = 16;

/** A fresh random subject key id: 22 base64url characters, within the envelope's key id pattern. */
export function newSubjectKeyId(): string {
  return randomBytes(KEY_ID_BYTES).toString('base64url');
}

function aadFor(keyId: string): Buffer {
  return Buffer.from(`pce:subject-key:${keyId}`, 'utf8');
}

/** Wraps `keyBytes` (32 bytes; not zeroed here) for the row whose key id is `keyId`. */
export function wrapSubjectKey(wrapKey: KeyObject, keyId: string, keyBytes: Buffer, backend: CryptoBackend = nodeBackend): string {
  if (keyBytes.length !== KEY_BYTES) throw new Error(`a subject key is ${KEY_BYTES} bytes`);
  const nonce = randomBytes(NONCE_BYTES);
  const sealed = backend.seal(wrapKey, nonce, keyBytes, aadFor(keyId));
  return `${nonce.toString('base64url')}.${sealed.toString('base64url')}`;
}

/**
 * Unwraps a stored wrapped key into a KeyObject, or `undefined` when it does not authenticate
 * under `wrapKey` for `keyId` (wrong wrap key, tampered bytes, copied from another row) or is not
 * in the stored format. The intermediate plain bytes are zeroed.
 */
export function unwrapSubjectKey(wrapKey: KeyObject, keyId: string, wrapped: string, backend: CryptoBackend = nodeBackend): KeyObject | undefined {
  const dot = wrapped.indexOf('.');
  if (dot < 0) return undefined;
  const nonceText = wrapped.slice(0, dot);
  const sealedText = wrapped.slice(dot + 1);
  if (!isCanonicalBase64url(nonceText) || !isCanonicalBase64url(sealedText)) return undefined;
  const nonce = Buffer.from(nonceText, 'base64url');
  const sealed = Buffer.from(sealedText, 'base64url');
  if (nonce.length !== NONCE_BYTES || sealed.length !== KEY_BYTES + TAG_BYTES) return undefined;
  const bytes = backend.open(wrapKey, nonce, sealed, aadFor(keyId));
  if (!bytes) return undefined;
  try {
    return createSecretKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** A new subject key: its id, its secret, and the bytes wrapped under `wrapKey`. */
export function newSubjectKey(wrapKey: KeyObject, backend: CryptoBackend = nodeBackend): { id: string; key: KeyObject; wrapped: string } {
  const id = newSubjectKeyId();
  const bytes = randomBytes(KEY_BYTES);
  try {
    return { id, key: createSecretKey(bytes), wrapped: wrapSubjectKey(wrapKey, id, bytes, backend) };
  } finally {
    bytes.fill(0);
  }
}

/**
 * Re-wraps a stored wrapped key from one wrap key to another (an epoch rotation), or `undefined`
 * when it does not unwrap under `from`. The key bytes never leave this function.
 */
export function rewrapSubjectKey(from: KeyObject, to: KeyObject, keyId: string, wrapped: string, backend: CryptoBackend = nodeBackend): string | undefined {
  const key = unwrapSubjectKey(from, keyId, wrapped, backend);
  if (!key) return undefined;
  const bytes = key.export();
  try {
    return wrapSubjectKey(to, keyId, bytes, backend);
  } finally {
    bytes.fill(0);
  }
}
