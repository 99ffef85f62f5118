import { createCipheriv, createDecipheriv, type KeyObject } from 'node:crypto';
import { formatCiphertext, headerFor, NONCE_BYTES, TAG_BYTES, type Ciphertext, type ParsedCiphertext } from './ciphertext';
import { NoncePool } from './nonces';

/** A data-encryption key: AES-256 key material kept in a KeyObject, never a plain Buffer. */
export interface DataKey {
  readonly id: string;
  readonly key: KeyObject;
}

/**
 * Associated data for one value: the envelope header plus the field it belongs to.
 * Binding `Model.field` means a value copied to another column or model fails authentication.
 */
export function associatedData(keyId: string, binding: string): Buffer {
  return Buffer.from(`${headerFor(keyId)}${binding}`, 'utf8');
}

const nonces = new NoncePool(NONCE_BYTES);

/** Encrypts `plaintext` under `key` with a fresh random 96-bit nonce. */
export function seal(plaintext: string, key: DataKey, aad: Buffer): Ciphertext {
  const nonce = nonces.next();
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext, 'utf8');
  const final = cipher.final();
  const tag = cipher.getAuthTag();
  return formatCiphertext(key.id, nonce, Buffer.concat([body, final, tag]));
}

/**
 * Decrypts a parsed envelope. Returns `undefined` when authentication fails (tampering, a value
 * moved from another field, or the wrong key) so callers decide which typed error to raise.
 */
export function open(parsed: ParsedCiphertext, key: DataKey, aad: Buffer): string | undefined {
  const tagStart = parsed.sealed.length - TAG_BYTES;
  const decipher = createDecipheriv('aes-256-gcm', key.key, parsed.nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(parsed.sealed.subarray(tagStart));
  const body = decipher.update(parsed.sealed.subarray(0, tagStart));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return body.toString('utf8');
}
