import { createCipheriv, createDecipheriv, createHmac, type KeyObject } from 'node:crypto';
import type { OpenedTexts } from '../crypto/native';

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
   * Optional: `seal` and the stored text at once, `<header><base64url nonce>:<base64url sealed>`
   * (the envelope of codec/envelope.ts), where building the text natively saves its own cost.
   */
  sealText?(key: KeyObject, nonce: Buffer, plaintext: Buffer, aad: Buffer, header: string): string;
  /** Optional: `hmac` and a blind index's text at once, `<prefix><base64url MAC>`. */
  hmacText?(key: KeyObject, data: Buffer, prefix: string): string;
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
