import { createCipheriv, createDecipheriv, createHmac, type KeyObject } from 'node:crypto';
import { loadNativeCrypto } from '../../src/crypto/native';

/**
 * The native module's own exports, called directly as a hostile caller would (the library's
 * wrapper never passes these arguments), and node:crypto written out as the reference.
 * Shared by nativeAttack.test.ts and nativeAttackBatch.test.ts.
 */

/** Raw exports of the native module (src/crypto/native/module.c); every argument is `unknown` on purpose. */
export interface RawNative {
  aeadKey(...args: unknown[]): unknown;
  macKey(...args: unknown[]): unknown;
  seal(...args: unknown[]): void;
  open(...args: unknown[]): boolean;
  hmac(...args: unknown[]): void;
  sealer(...args: unknown[]): unknown;
  indexer(...args: unknown[]): unknown;
  sealWith(...args: unknown[]): string;
  indexWith(...args: unknown[]): string;
  openTexts(...args: unknown[]): number;
  openString(...args: unknown[]): string | undefined;
  openStrings(...args: unknown[]): (string | undefined)[];
}

/** Envelope text through the raw exports: a sealer for (key, aad, header), then one value with the caller's nonce. */
export const sealText = (m: RawNative, key: unknown, nonce: unknown, plaintext: unknown, aad: unknown, header: unknown): string =>
  m.sealWith(m.sealer(key, aad, header), plaintext, nonce);

/** Blind index text through the raw exports: an indexer for (key, prefix), then one value. */
export const hmacText = (m: RawNative, key: unknown, data: unknown, prefix: unknown): string => m.indexWith(m.indexer(key, prefix), data);

// The package ships a linux-x64 (glibc) prebuild and CI builds it: there, not loading is a failure.
export const status = loadNativeCrypto();
const mustLoad = process.platform === 'linux' && process.arch === 'x64';
export const describeNative = status.loaded || mustLoad ? describe : describe.skip;

/** The module file loaded (the sanitized build under `npm run test:asan`), for workers to load too. */
export function nativePath(): string {
  if (!status.loaded) throw new Error(`native crypto module did not load: ${status.reason}`);
  return status.path;
}

export function rawNative(): RawNative {
  return require(nativePath()) as RawNative;
}

export const ref = {
  seal(key: KeyObject | Buffer, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 }).setAAD(aad);
    return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  },
  open(key: KeyObject | Buffer, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
    if (sealed.length < 16) return undefined;
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 }).setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const body = d.update(sealed.subarray(0, sealed.length - 16));
    try {
      d.final();
    } catch {
      return undefined;
    }
    return body;
  },
  hmac: (key: KeyObject | Buffer, data: Uint8Array) => createHmac('sha256', key).update(data).digest(),
  /** The envelope text `<header><base64url nonce>:<base64url sealed>`. */
  sealText: (key: KeyObject | Buffer, nonce: Buffer, plaintext: Uint8Array, aad: Uint8Array, header: string) =>
    `${header}${nonce.toString('base64url')}:${ref.seal(key, nonce, plaintext, aad).toString('base64url')}`,
};

/** A Uint8Array whose ArrayBuffer has been transferred away (length 0, no memory). */
export function detached(length = 32): Uint8Array {
  const view = new Uint8Array(length);
  structuredClone(view.buffer, { transfer: [view.buffer] });
  return view;
}

/** `bytes` copied into a view at an odd offset inside a larger ArrayBuffer (or SharedArrayBuffer). */
export function oddView(bytes: Uint8Array, shared = false, offset = 3): Uint8Array {
  const backing = shared ? new SharedArrayBuffer(bytes.length + offset + 5) : new ArrayBuffer(bytes.length + offset + 5);
  const view = new Uint8Array(backing, offset, bytes.length);
  view.set(bytes);
  return view;
}
