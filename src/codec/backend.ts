import { createCipheriv, createDecipheriv, createHmac, type KeyObject } from 'node:crypto';
import type { Indexer, OpenedTexts, Sealer } from '../crypto/native';

/** Bytes of the AES-GCM tag appended to every sealed value. */
export const TAG_BYTES = 16;

/**
 * The three hot primitives every encrypted value goes through, behind one small interface so a
 * faster implementation (a native OpenSSL binding) can replace node:crypto in one place.
 *
 * Contract, identical for every backend (a cross-backend test holds them to it byte for byte):
 * - `seal`: AES-256-GCM of `plaintext` under `key` with the 12-byte `nonce` and `aad`; returns the
 *   ciphertext followed by the 16-byte tag.
 * - `open`: the inverse; `undefined` when the tag does not verify (tampered, wrong key, wrong aad).
 *   The tag comparison happens inside the cipher implementation, never in JavaScript.
 * - `hmac`: HMAC-SHA-256 of `data` under `key` (32 bytes).
 *
 * Keys are KeyObjects so raw key bytes never sit in ordinary Buffers; a backend that needs the
 * bytes keeps its own per-key state and wipes it when the KeyObject is dropped.
 */
export interface CryptoBackend {
  /** Named in the audit log at start-up (`pce.keys.loaded`), so operators can see which one runs. */
  readonly name: string;
  seal(key: KeyObject, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer;
  open(key: KeyObject, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer | undefined;
  hmac(key: KeyObject, data: Buffer): Buffer;
  /**
   * Optional: a key, the associated data and the envelope header bound once, for the values of one
   * field under one key. Its `seal` gives the stored envelope text `<header><base64url nonce>:
   * <base64url sealed>` (codec/envelope.ts) with a fresh random nonce the backend draws, the
   * plaintext given as bytes or as a string (then its UTF-8, as `Buffer.from(s, 'utf8')`).
   */
  sealer?(key: KeyObject, aad: Buffer, header: string): Sealer;
  /** Optional: an index key and its text prefix bound once; `index` gives `<prefix><base64url HMAC>` of bytes or of a string's UTF-8. */
  indexer?(key: KeyObject, prefix: string): Indexer;
  /**
   * Optional batch path: decrypts many envelope texts in one call, `texts[i]` under
   * `keys[keyOf[i]]`, parsing the base64url itself. `nonceStarts[i]` is where the header of
   * `texts[i]` ends (the nonce text begins); the associated data is that header text followed by
   * `binding`, exactly the bytes `associatedData` (codec/envelope.ts) gives for a parsed header. It only decides values
   * it can decrypt (`ends[i] >= 0`); every other value is left to the one-value path, so errors
   * are raised in one place for every backend.
   */
  openTexts?(keys: readonly KeyObject[], keyOf: Uint32Array, binding: Buffer, texts: readonly string[], nonceStarts: Uint32Array): OpenedTexts;
  /** Optional: `openTexts` of one value, its plaintext or `undefined` when not decided. */
  openText?(key: KeyObject, binding: Buffer, text: string, nonceStart: number): Buffer | undefined;
  /** Optional: {@link openTexts} of String values, each decided value's string (UTF-8 decoded) or `undefined` where not decided. */
  openStrings?(keys: readonly KeyObject[], keyOf: Uint32Array, binding: Buffer, texts: readonly string[], nonceStarts: Uint32Array): (string | undefined)[];
  /** Optional: {@link openText} of a String value, its plaintext as a string (UTF-8 decoded) or `undefined` when not decided. */
  openString?(key: KeyObject, binding: Buffer, text: string, nonceStart: number): string | undefined;
}

/** node:crypto: available everywhere, the reference every other backend must match. */
export const nodeBackend: CryptoBackend = {
  name: 'node',
  seal(key, nonce, plaintext, aad) {
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const body = cipher.update(plaintext);
    const final = cipher.final();
    return Buffer.concat([body, final, cipher.getAuthTag()]);
  },
  open(key, nonce, sealed, aad) {
    if (sealed.length < TAG_BYTES) return undefined;
    const tagStart = sealed.length - TAG_BYTES;
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(tagStart));
    const body = decipher.update(sealed.subarray(0, tagStart));
    try {
      decipher.final();
    } catch {
      return undefined;
    }
    return body;
  },
  hmac(key, data) {
    return createHmac('sha256', key).update(data).digest();
  },
};
