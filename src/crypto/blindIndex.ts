import { createHmac, hkdfSync, createSecretKey, type KeyObject } from 'node:crypto';

/** Stored blind index text: `<indexKeyId>:<base64url HMAC-SHA-256>`. */
declare const blindIndexBrand: unique symbol;
/** A stored blind index, `<indexKeyId>:<base64url HMAC>`, as computed by {@link computeBlindIndex}. */
export type BlindIndex = string & { readonly [blindIndexBrand]: true };

const HKDF_SALT = Buffer.from('prisma-column-encryption/blind-index/v1', 'utf8');

/**
 * Derives the per-field HMAC key from an index root key with HKDF-SHA-256. Each field gets its
 * own key, so equal values in two fields have unrelated indexes, and the root key never touches
 * data directly.
 */
export function deriveFieldIndexKey(root: KeyObject, binding: string): KeyObject {
  const derived = Buffer.from(hkdfSync('sha256', root, HKDF_SALT, Buffer.from(binding, 'utf8'), 32));
  const key = createSecretKey(derived);
  derived.fill(0);
  return key;
}

/** HMAC-SHA-256 of an already normalised value, with node:crypto. Pure. */
export function computeBlindIndex(fieldKey: KeyObject, indexKeyId: string, normalized: string): BlindIndex {
  return formatBlindIndex(indexKeyId, createHmac('sha256', fieldKey).update(normalized, 'utf8').digest());
}

/** The stored text of a blind index from its key id and MAC bytes (computed by any backend). */
export function formatBlindIndex(indexKeyId: string, mac: Buffer): BlindIndex {
  return `${indexKeyId}:${mac.toString('base64url')}` as BlindIndex;
}

/** The index key id a stored blind index was computed under. */
export function indexKeyIdOf(index: string): string | undefined {
  const sep = index.indexOf(':');
  return sep > 0 ? index.slice(0, sep) : undefined;
}
