/**
 * The stored text format of one encrypted value:
 *
 *   pce:v1:<keyId>:<nonce>:<ciphertext+tag>
 *
 * `nonce` is 12 random bytes and `ciphertext+tag` is the AES-256-GCM output followed by its
 * 16-byte tag, both base64url without padding. The header (prefix, version, key id) is
 * authenticated as part of the associated data, so a value cannot be relabelled with another
 * key id without failing to decrypt.
 */

declare const ciphertextBrand: unique symbol;
/** A string known to be in the envelope format (produced by {@link formatCiphertext} or checked by {@link parseCiphertext}). */
export type Ciphertext = string & { readonly [ciphertextBrand]: true };

export const CIPHERTEXT_PREFIX = 'pce:';
export const CURRENT_VERSION = 'v1';
const V1_PREFIX = `${CIPHERTEXT_PREFIX}${CURRENT_VERSION}:`;
/**
 * Key ids are short, printable and cannot contain the separator. At most 32 characters, so a
 * base64 key (43-44 characters) pasted where an id belongs is rejected instead of being echoed
 * in an error as a "key id".
 */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export const NONCE_BYTES = 12;
/** 12 bytes are exactly 16 base64url characters. */
const NONCE_TEXT_LENGTH = 16;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
export const TAG_BYTES = 16;

export interface ParsedCiphertext {
  readonly version: 'v1';
  readonly keyId: string;
  readonly nonce: Buffer;
  /** Ciphertext followed by the 16-byte GCM tag. */
  readonly sealed: Buffer;
}

export type ParseResult =
  | { readonly kind: 'ciphertext'; readonly value: ParsedCiphertext }
  /** Does not carry our prefix: legacy plaintext, or not ours at all. */
  | { readonly kind: 'not-ciphertext' }
  /** Carries our prefix but a version this release does not read. */
  | { readonly kind: 'unsupported-version' }
  /** Carries our prefix and version but is damaged. */
  | { readonly kind: 'malformed'; readonly keyId?: string };

const NOT_CIPHERTEXT: ParseResult = { kind: 'not-ciphertext' };
const UNSUPPORTED: ParseResult = { kind: 'unsupported-version' };

/** True when the value carries the envelope prefix (any version). Cheap: no allocation. */
export function looksLikeCiphertext(value: string): boolean {
  return value.startsWith(CIPHERTEXT_PREFIX);
}

export function formatCiphertext(keyId: string, nonce: Buffer, sealed: Buffer): Ciphertext {
  return `${V1_PREFIX}${keyId}:${nonce.toString('base64url')}:${sealed.toString('base64url')}` as Ciphertext;
}

/** The header that is authenticated together with the field binding. */
export function headerFor(keyId: string): string {
  return `${V1_PREFIX}${keyId}:`;
}

export function parseCiphertext(value: string): ParseResult {
  if (!value.startsWith(CIPHERTEXT_PREFIX)) return NOT_CIPHERTEXT;
  if (!value.startsWith(V1_PREFIX)) return UNSUPPORTED;
  const keyEnd = value.indexOf(':', V1_PREFIX.length);
  if (keyEnd < 0) return { kind: 'malformed' };
  const keyId = value.slice(V1_PREFIX.length, keyEnd);
  const nonceEnd = value.indexOf(':', keyEnd + 1);
  if (nonceEnd < 0 || !KEY_ID_PATTERN.test(keyId)) return { kind: 'malformed' };
  const nonceText = value.slice(keyEnd + 1, nonceEnd);
  const sealedText = value.slice(nonceEnd + 1);
  // Node's base64url decoder skips characters outside the alphabet; checking first keeps the
  // format unambiguous (one text for one envelope) instead of accepting trailing junk.
  if (nonceText.length !== NONCE_TEXT_LENGTH || !BASE64URL.test(nonceText) || !BASE64URL.test(sealedText)) {
    return { kind: 'malformed', keyId };
  }
  const nonce = Buffer.from(nonceText, 'base64url');
  const sealed = Buffer.from(sealedText, 'base64url');
  if (sealed.length < TAG_BYTES) return { kind: 'malformed', keyId };
  return { kind: 'ciphertext', value: { version: 'v1', keyId, nonce, sealed } };
}

/** The key id a stored value names, without decoding the body. `undefined` when not ciphertext. */
export function keyIdOf(value: string): string | undefined {
  if (!value.startsWith(V1_PREFIX)) return undefined;
  const end = value.indexOf(':', V1_PREFIX.length);
  return end < 0 ? undefined : value.slice(V1_PREFIX.length, end);
}
