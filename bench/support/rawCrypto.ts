import { createCipheriv, createDecipheriv, createHmac, randomBytes, type KeyObject } from 'node:crypto';

/*
 * The "limit": the least code that does the same cryptographic work as the extension with
 * node:crypto and produces or reads the same stored text. It knows its key and associated data
 * up front and checks nothing, so the extension's cost above it is pure bookkeeping: walking
 * arguments and results, parsing the envelope, looking keys up, raising typed errors.
 */

/** Encrypts like the extension: `pce:v1:<keyId>:<nonce>:<ct+tag>`, AAD = header + `Model.field`. */
export function rawEncrypt(key: KeyObject, header: string, aad: Buffer, plaintext: string | Buffer): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext);
  cipher.final();
  const tag = cipher.getAuthTag();
  return `${header}${nonce.toString('base64url')}:${Buffer.concat([body, tag]).toString('base64url')}`;
}

/** Decrypts a value known to be `<header><nonce>:<ct+tag>` under `key` into text; throws when authentication fails. */
export function rawDecrypt(key: KeyObject, headerLength: number, aad: Buffer, stored: string): string {
  return rawOpen(key, headerLength, aad, stored).toString('utf8');
}

/** {@link rawDecrypt} to the plaintext bytes (a typed value's, before its type's decoding). */
export function rawOpen(key: KeyObject, headerLength: number, aad: Buffer, stored: string): Buffer {
  const sep = stored.indexOf(':', headerLength);
  const nonce = Buffer.from(stored.slice(headerLength, sep), 'base64url');
  const sealed = Buffer.from(stored.slice(sep + 1), 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const body = decipher.update(sealed.subarray(0, sealed.length - 16));
  decipher.final();
  return body;
}

/** HMAC-SHA-256 blind index `<indexKeyId>:<b64url>` of an already normalised value. */
export function rawIndex(fieldKey: KeyObject, prefix: string, normalized: string): string {
  return prefix + createHmac('sha256', fieldKey).update(normalized, 'utf8').digest('base64url');
}
