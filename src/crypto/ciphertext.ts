/**
 * The stored text formats of one encrypted value (the envelope). Two versions coexist:
 *
 *   pce:v1:<keyId>:<nonce>:<ciphertext+tag>
 *   pce:v2:<type>:<scope>:<keyId>:<nonce>:<ciphertext+tag>
 *
 * `nonce` is 12 random bytes and `ciphertext+tag` is the AES-256-GCM output followed by its
 * 16-byte tag, both base64url without padding. Everything before the nonce (the header) is part
 * of the associated data together with the field binding, so a value cannot be relabelled with
 * another key id, type or scope without failing to decrypt.
 *
 * v1 is what String fields under the keyring's shared data keys are written as, exactly as in
 * 0.1: it means "type String, scope shared", so existing data needs no conversion.
 * v2 adds the two things a v1 header cannot say:
 * - `type`: the Prisma scalar type the plaintext bytes encode (one letter, {@link TYPE_TAGS}).
 *   A value written as Int cannot be read back as String or Json, even in a column of the same
 *   model and field name, because the type is authenticated.
 * - `scope`: which key space `keyId` names: `k`, a data key of the keyring (shared by every
 *   row), or `s`, a per-subject data key (one per person, stored wrapped in the package's
 *   subject-key table; destroying it crypto-shreds that person's values everywhere, backups
 *   included). A subject key id is random, never the person's id, so the envelope leaks nothing.
 * Values of any type other than String, and all values under subject keys, are written as v2.
 */

declare const ciphertextBrand: unique symbol;
/** A string known to be in an envelope format (produced by {@link formatCiphertext} or checked by {@link parseCiphertext}). */
export type Ciphertext = string & { readonly [ciphertextBrand]: true };

export const CIPHERTEXT_PREFIX = 'pce:';
/** The version String values under shared keys are written in. */
export const CURRENT_VERSION = 'v1';
const V1_PREFIX = `${CIPHERTEXT_PREFIX}v1:`;
const V2_PREFIX = `${CIPHERTEXT_PREFIX}v2:`;

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

/** The Prisma scalar types a value can be encrypted as. */
export type ValueType = 'String' | 'Int' | 'BigInt' | 'Float' | 'Decimal' | 'Boolean' | 'DateTime' | 'Json' | 'Bytes';

/** One letter per type in the v2 header. Stable: these letters are in stored data. */
export const TYPE_TAGS: Readonly<Record<ValueType, string>> = {
  String: 's',
  Int: 'i',
  BigInt: 'b',
  Float: 'f',
  Decimal: 'd',
  Boolean: 'o',
  DateTime: 't',
  Json: 'j',
  Bytes: 'y',
};
const TYPE_OF_TAG: ReadonlyMap<string, ValueType> = new Map(Object.entries(TYPE_TAGS).map(([t, tag]) => [tag, t as ValueType]));

/** Which key space a value's key id belongs to. */
export type KeyScope = 'shared' | 'subject';
const SCOPE_TAGS: Readonly<Record<KeyScope, string>> = { shared: 'k', subject: 's' };
const SCOPE_OF_TAG: ReadonlyMap<string, KeyScope> = new Map([
  ['k', 'shared'],
  ['s', 'subject'],
]);

/** What the header of an envelope says: everything but the nonce and the sealed bytes. */
export interface EnvelopeHeader {
  readonly version: 'v1' | 'v2';
  readonly type: ValueType;
  readonly scope: KeyScope;
  readonly keyId: string;
}

export interface ParsedCiphertext extends EnvelopeHeader {
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

/** Every parse result but success. */
type ParseFailure = Exclude<ParseResult, { readonly kind: 'ciphertext' }>;
const NOT_CIPHERTEXT: ParseFailure = { kind: 'not-ciphertext' };
const UNSUPPORTED: ParseFailure = { kind: 'unsupported-version' };
const MALFORMED: ParseFailure = { kind: 'malformed' };

/** The header to write for a value of `type` under a key of `scope`: v1 where v1 can say it, else v2. */
export function headerFor(type: ValueType, scope: KeyScope, keyId: string): EnvelopeHeader {
  return { version: type === 'String' && scope === 'shared' ? 'v1' : 'v2', type, scope, keyId };
}

/** True when the value carries the envelope prefix (any version). Cheap: no allocation. */
export function looksLikeCiphertext(value: string): boolean {
  return value.startsWith(CIPHERTEXT_PREFIX);
}

/**
 * The header's text, exactly as it starts the stored value (ending with `:`). It is the first part
 * of the associated data. Throws on a header v1 cannot express: that is a programming error.
 */
export function headerText(header: EnvelopeHeader): string {
  if (header.version === 'v1') {
    if (header.type !== 'String' || header.scope !== 'shared') throw new Error('a v1 envelope holds only String values under shared keys');
    return `${V1_PREFIX}${header.keyId}:`;
  }
  return `${V2_PREFIX}${TYPE_TAGS[header.type]}:${SCOPE_TAGS[header.scope]}:${header.keyId}:`;
}

/** How every envelope of `type` under a subject key begins, up to its key id: `pce:v2:<type>:s:`. */
export function subjectHeaderPrefix(type: ValueType): string {
  return `${V2_PREFIX}${TYPE_TAGS[type]}:${SCOPE_TAGS.subject}:`;
}

export function formatCiphertext(header: EnvelopeHeader, nonce: Buffer, sealed: Buffer): Ciphertext {
  return `${headerText(header)}${nonce.toString('base64url')}:${sealed.toString('base64url')}` as Ciphertext;
}

/** An envelope's header and where its nonce text starts, or why the value has no valid header. */
export type HeaderResult =
  | { readonly kind: 'header'; readonly header: EnvelopeHeader; readonly nonceStart: number }
  | ParseFailure;

/** Parses the header only (no base64url decoding): the batch decryption path groups values by it. */
export function parseHeader(value: string): HeaderResult {
  if (!value.startsWith(CIPHERTEXT_PREFIX)) return NOT_CIPHERTEXT;
  let type: ValueType = 'String';
  let scope: KeyScope = 'shared';
  let version: 'v1' | 'v2';
  let at: number;
  if (value.startsWith(V1_PREFIX)) {
    version = 'v1';
    at = V1_PREFIX.length;
  } else if (value.startsWith(V2_PREFIX)) {
    version = 'v2';
    // `<type>:<scope>:`: two single letters, each followed by the separator.
    const t = TYPE_OF_TAG.get(value.charAt(V2_PREFIX.length));
    const s = SCOPE_OF_TAG.get(value.charAt(V2_PREFIX.length + 2));
    if (!t || !s || value.charAt(V2_PREFIX.length + 1) !== ':' || value.charAt(V2_PREFIX.length + 3) !== ':') return MALFORMED;
    type = t;
    scope = s;
    at = V2_PREFIX.length + 4;
  } else {
    return UNSUPPORTED;
  }
  const keyEnd = value.indexOf(':', at);
  if (keyEnd < 0) return MALFORMED;
  const keyId = value.slice(at, keyEnd);
  if (!KEY_ID_PATTERN.test(keyId)) return MALFORMED;
  return { kind: 'header', header: { version, type, scope, keyId }, nonceStart: keyEnd + 1 };
}

export function parseCiphertext(value: string): ParseResult {
  const parsed = parseHeader(value);
  if (parsed.kind !== 'header') return parsed;
  const { header, nonceStart } = parsed;
  const { keyId } = header;
  const nonceEnd = value.indexOf(':', nonceStart);
  if (nonceEnd < 0) return MALFORMED;
  const nonceText = value.slice(nonceStart, nonceEnd);
  const sealedText = value.slice(nonceEnd + 1);
  // Node's base64url decoder skips characters outside the alphabet; checking first keeps the
  // format unambiguous (one text for one envelope) instead of accepting trailing junk.
  if (nonceText.length !== NONCE_TEXT_LENGTH || !BASE64URL.test(nonceText) || !isCanonicalBase64url(sealedText)) {
    return { kind: 'malformed', keyId };
  }
  const nonce = Buffer.from(nonceText, 'base64url');
  const sealed = Buffer.from(sealedText, 'base64url');
  if (sealed.length < TAG_BYTES) return { kind: 'malformed', keyId };
  return { kind: 'ciphertext', value: { ...header, nonce, sealed } };
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * True when `text` is the one unpadded base64url spelling of some bytes. The decoder accepts more:
 * it drops a lone trailing character (length % 4 === 1) and ignores the unused low bits of the last
 * character, so several texts would decode to the same envelope. The nonce needs no such check:
 * 16 characters carry exactly 12 bytes.
 */
export function isCanonicalBase64url(text: string): boolean {
  if (!BASE64URL.test(text)) return false;
  const rest = text.length % 4;
  if (rest === 1) return false;
  if (rest === 0) return true;
  // 2 characters carry 1 byte (4 unused bits), 3 carry 2 bytes (2 unused bits): they must be zero.
  const unusedBits = rest === 2 ? 0b1111 : 0b11;
  return (ALPHABET.indexOf(text[text.length - 1]!) & unusedBits) === 0;
}

/**
 * The keyring data key id a stored value names, without decoding the body: v1 values and v2
 * values of scope shared. `undefined` when not ciphertext, or when the value is under a subject key.
 */
export function keyIdOf(value: string): string | undefined {
  let at: number;
  if (value.startsWith(V1_PREFIX)) at = V1_PREFIX.length;
  else if (value.startsWith(V2_PREFIX) && value.charAt(V2_PREFIX.length + 2) === SCOPE_TAGS.shared) at = V2_PREFIX.length + 4;
  else return undefined;
  const end = value.indexOf(':', at);
  return end < 0 ? undefined : value.slice(at, end);
}
