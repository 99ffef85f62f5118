import { createHash, type KeyObject } from 'node:crypto';
import type { DecryptionFailure } from '../errors';
import type { LegacySpec } from '../schema';
import { TAG_BYTES, type CryptoBackend } from './backend';

/**
 * The stored formats of prisma-field-encryption 1.x (through its `@47ng/cloak` dependency), read
 * so that its users can switch to this library and convert their data in place. Decrypt and hash
 * only: nothing here ever writes that format.
 *
 *   v1.aesgcm256.<fingerprint>.<iv>.<ciphertext+tag>
 *
 * `fingerprint` is 8 hex digits (the first 4 bytes of SHA-256 over the key's text), `iv` is 12
 * bytes and `ciphertext+tag` the AES-256-GCM output followed by its 16-byte tag, both url-safe
 * base64 with `=` padding. There is no associated data: a value moved between columns still
 * decrypts, which is one reason to convert.
 */

/** The prefix every prisma-field-encryption ciphertext starts with. */
export const PFE_PREFIX = 'v1.aesgcm256.';
const FINGERPRINT = /^[0-9a-fA-F]{8}$/;
const IV_TEXT = /^[A-Za-z0-9_-]{16}$/;
const BODY_TEXT = /^[A-Za-z0-9_-]+={0,2}$/;

export interface PfeCiphertext {
  /** Lower-case fingerprint of the key the value names. */
  readonly fingerprint: string;
  readonly iv: Buffer;
  /** Ciphertext followed by the 16-byte GCM tag. */
  readonly sealed: Buffer;
}

/** True when the value carries the prisma-field-encryption prefix. Cheap: no allocation. */
export function looksLikePfe(value: string): boolean {
  return value.startsWith(PFE_PREFIX);
}

/** Parses a stored value; `undefined` when it is not a well-formed prisma-field-encryption ciphertext. */
export function parsePfeCiphertext(value: string): PfeCiphertext | undefined {
  if (!looksLikePfe(value)) return undefined;
  const parts = value.slice(PFE_PREFIX.length).split('.');
  if (parts.length !== 3) return undefined;
  const [fingerprint, ivText, bodyText] = parts as [string, string, string];
  // Node's base64 decoder skips characters outside the alphabet: check the text first.
  if (!FINGERPRINT.test(fingerprint) || !IV_TEXT.test(ivText) || !BODY_TEXT.test(bodyText)) return undefined;
  const sealed = Buffer.from(bodyText.replace(/=+$/, ''), 'base64url');
  if (sealed.length < TAG_BYTES) return undefined;
  return { fingerprint: fingerprint.toLowerCase(), iv: Buffer.from(ivText, 'base64url'), sealed };
}

/** The 8-hex-digit fingerprint prisma-field-encryption gives a key: SHA-256 of the key's text, truncated. */
export function pfeFingerprint(keyText: string): string {
  return createHash('sha256').update(keyText, 'utf8').digest('hex').slice(0, 8);
}

/** Where the legacy codec finds a prisma-field-encryption key by fingerprint, and hash salts by variable name. */
export interface PfeKeyLookup {
  keyFor(fingerprint: string): KeyObject | undefined;
  salt(variable: string): string | undefined;
}

export type PfeOpenResult = { readonly plaintext: string } | { readonly reason: DecryptionFailure; readonly keyId?: string };

/**
 * Decrypts a stored prisma-field-encryption value: AES-256-GCM through the crypto backend, with
 * no associated data (the empty AAD is exactly GCM without one). Never throws for bad data:
 * returns the DecryptionError reason instead (the key id is `pfe:<fingerprint>`, never material).
 */
export function openPfeValue(backend: CryptoBackend, stored: string, keys: PfeKeyLookup | undefined): PfeOpenResult {
  if (!keys) return { reason: 'legacy-format' };
  const parsed = parsePfeCiphertext(stored);
  if (!parsed) return { reason: 'malformed' };
  const keyId = `pfe:${parsed.fingerprint}`;
  const key = keys.keyFor(parsed.fingerprint);
  if (!key) return { reason: 'unknown-key', keyId };
  const plaintext = backend.open(key, parsed.iv, parsed.sealed, NO_AAD);
  return plaintext === undefined ? { reason: 'authentication-failed', keyId } : { plaintext: plaintext.toString('utf8') };
}

const NO_AAD = Buffer.alloc(0);

/** prisma-field-encryption's hash normalisations, which it always applies in this order. */
export const PFE_NORMALIZE = ['lowercase', 'uppercase', 'trim', 'spaces', 'diacritics'] as const;
export type PfeNormalize = (typeof PFE_NORMALIZE)[number];
export const PFE_ENCODINGS = ['utf8', 'hex', 'base64'] as const;
export type PfeEncoding = (typeof PFE_ENCODINGS)[number];

/**
 * How prisma-field-encryption computed one hash column (`/// @encryption:hash(field)?...`): an
 * unkeyed digest of the normalised value, optionally followed by a salt. Plain data, so it sits
 * in the generated map.
 */
export interface PfeHashSpec {
  readonly algorithm: string;
  readonly normalize: readonly PfeNormalize[];
  readonly inputEncoding: PfeEncoding;
  readonly outputEncoding: Exclude<PfeEncoding, 'utf8'>;
  /** A salt written in the annotation (`salt=`). */
  readonly salt?: string;
  /** Else the variable the salt is read from (`saltEnv=`, default PRISMA_FIELD_ENCRYPTION_HASH_SALT); unset means no salt. */
  readonly saltEnv?: string;
}

const PFE_STEPS: Record<PfeNormalize, (v: string) => string> = {
  lowercase: (v) => v.toLowerCase(),
  uppercase: (v) => v.toUpperCase(),
  trim: (v) => v.trim(),
  spaces: (v) => v.replace(/\s/g, ''),
  diacritics: (v) => v.normalize('NFD').replace(/[\u0300-\u036f]/g, ''),
};

function decode(text: string, encoding: PfeEncoding): Buffer {
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  if (encoding === 'hex') return Buffer.from(text.length % 2 === 0 ? text : `0${text}`, 'hex');
  return Buffer.from(text, 'base64');
}

/**
 * The hash prisma-field-encryption stored for `value`, computed exactly as its `hashString` does:
 * normalise (fixed order), decode, digest, append the salt, encode (base64 is url-safe, padded).
 */
export function pfeHash(value: string, spec: PfeHashSpec, salt: string | undefined): string {
  let normalized = value;
  for (const step of PFE_NORMALIZE) if (spec.normalize.includes(step)) normalized = PFE_STEPS[step](normalized);
  const hash = createHash(spec.algorithm).update(decode(normalized, spec.inputEncoding));
  if (salt) hash.update(decode(salt, spec.inputEncoding));
  const digest = hash.digest();
  return spec.outputEncoding === 'hex' ? digest.toString('hex') : digest.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** The salt a hash spec uses, from the annotation or the variable it names. */
export function pfeSaltFor(spec: PfeHashSpec, keys: PfeKeyLookup): string | undefined {
  return spec.salt ?? (spec.saltEnv ? keys.salt(spec.saltEnv) : undefined);
}

/**
 * The old hash to look a value up by while a `legacy: pfe` field is being converted: only when
 * the field had a hash column and the legacy key source is loaded (dropping it ends old lookups).
 */
export function pfeLookupHash(legacy: LegacySpec | undefined, keys: PfeKeyLookup | undefined, value: string): string | undefined {
  if (!legacy?.hash || !keys) return undefined;
  return pfeHash(value, legacy.hash, pfeSaltFor(legacy.hash, keys));
}
