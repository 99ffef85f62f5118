import { loadNativeCrypto, type NativeCrypto } from '../crypto/native';
import { ConfigurationError } from '../errors';
import { nodeBackend, type CryptoBackend } from './backend';

/** The backends by name: `native` is OpenSSL through the bundled N-API module, `node` is node:crypto. */
export type CryptoBackendName = 'native' | 'node';

/** Which backend computes, and why the native one is not in use when it is not. */
export interface CryptoBackendInfo {
  readonly name: CryptoBackendName;
  /** Why the native module is not in use: it did not load (and why), or `PCE_CRYPTO_BACKEND=node`. */
  readonly nativeUnavailable?: string;
}

/** The native module's AES-GCM contexts and HMAC state, kept per key; batch decryption of envelope text. */
function nativeBackend(crypto: NativeCrypto): CryptoBackend {
  return {
    name: 'native',
    seal: (key, nonce, plaintext, aad) => crypto.seal(key, nonce, plaintext, aad),
    open: (key, nonce, sealed, aad) => crypto.open(key, nonce, sealed, aad),
    hmac: (key, data) => crypto.hmac(key, data),
    sealer: (key, aad, header) => crypto.sealer(key, aad, header),
    indexer: (key, prefix) => crypto.indexer(key, prefix),
    openTexts: (keys, keyOf, binding, texts, nonceStarts) => crypto.openTexts(keys, keyOf, binding, texts, nonceStarts),
    openText: (key, binding, text, nonceStart) => crypto.openText(key, binding, text, nonceStart),
    openString: (key, binding, text, nonceStart) => crypto.openString(key, binding, text, nonceStart),
    openStrings: (keys, keyOf, binding, texts, nonceStarts) => crypto.openStrings(keys, keyOf, binding, texts, nonceStarts),
  };
}

let native: CryptoBackend | undefined;

/** The named backend. `native` where the module cannot load is a ConfigurationError naming the reason. */
export function backendNamed(name: CryptoBackendName): CryptoBackend {
  if (name === 'node') return nodeBackend;
  if (name !== 'native') throw new ConfigurationError(undefined, undefined, `crypto backend must be 'node' or 'native' (got '${String(name).slice(0, 20)}')`);
  if (native) return native;
  const status = loadNativeCrypto();
  if (!status.loaded) throw new ConfigurationError(undefined, undefined, `the native crypto backend was asked for but cannot be used here: ${status.reason}`);
  return (native = nativeBackend(status.crypto));
}

let chosen: CryptoBackend | undefined;

/**
 * The backend for this process: the native module when it loads and passes its self-test,
 * node:crypto otherwise. `PCE_CRYPTO_BACKEND=node` forces node:crypto; `PCE_CRYPTO_BACKEND=native`
 * makes a native module that cannot load a ConfigurationError instead of a silent fallback.
 * Both give byte-for-byte the same envelopes and blind indexes.
 */
export function defaultBackend(): CryptoBackend {
  if (chosen) return chosen;
  const setting = process.env.PCE_CRYPTO_BACKEND?.trim() || undefined;
  if (setting !== undefined && setting !== 'node' && setting !== 'native') {
    throw new ConfigurationError(undefined, undefined, `PCE_CRYPTO_BACKEND must be 'node' or 'native' (got '${setting.slice(0, 20)}')`);
  }
  return (chosen = backendNamed(setting ?? (loadNativeCrypto().loaded ? 'native' : 'node')));
}

/** What the audit log and {@link cryptoBackend} say about a backend: its name and, for node:crypto, why. */
export function backendInfo(backend: CryptoBackend): CryptoBackendInfo {
  if (backend.name === 'native') return { name: 'native' };
  const status = loadNativeCrypto();
  return { name: 'node', nativeUnavailable: status.loaded ? 'node:crypto was asked for (PCE_CRYPTO_BACKEND or the cryptoBackend option)' : status.reason };
}

/**
 * Which crypto backend this process uses by default (`native` or `node`) and, for `node`, why.
 * For a health check or a deployment test: the npm package ships the native module prebuilt for
 * linux-x64 (glibc); other platforms use node:crypto. Reads `PCE_CRYPTO_BACKEND` on first use.
 *
 * @example
 * import { cryptoBackend } from 'prisma-column-encryption';
 * console.log(cryptoBackend().name); // 'native' on linux-x64 with glibc
 */
export function cryptoBackend(): CryptoBackendInfo {
  return backendInfo(defaultBackend());
}
