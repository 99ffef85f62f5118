import type { KeyObject } from 'node:crypto';
import { formatCiphertext, headerText, NONCE_BYTES, type Ciphertext, type EnvelopeHeader, type ParsedCiphertext } from '../crypto/ciphertext';
import { NoncePool } from '../crypto/nonces';
import type { CryptoBackend } from './backend';

/**
 * Associated data for one value: the envelope header plus the field it belongs to.
 * Binding `Model.field` means a value copied to another column or model fails authentication;
 * the header makes the key id, value type and key scope tamper-evident.
 */
export function associatedData(header: EnvelopeHeader, binding: string): Buffer {
  return Buffer.from(`${headerText(header)}${binding}`, 'utf8');
}

const nonces = new NoncePool(NONCE_BYTES);

/** Encrypts `plaintext` with a fresh random 96-bit nonce into the envelope `header` describes. */
export function sealValue(backend: CryptoBackend, header: EnvelopeHeader, key: KeyObject, plaintext: Buffer, aad: Buffer): Ciphertext {
  const nonce = nonces.next();
  return formatCiphertext(header, nonce, backend.seal(key, nonce, plaintext, aad));
}

/**
 * Decrypts a parsed envelope. Returns `undefined` when authentication fails (tampering, a value
 * moved from another field, or the wrong key) so callers decide which typed error to raise.
 */
export function openValue(backend: CryptoBackend, parsed: ParsedCiphertext, key: KeyObject, aad: Buffer): Buffer | undefined {
  return backend.open(key, parsed.nonce, parsed.sealed, aad);
}
