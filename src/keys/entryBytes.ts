import { createSecretKey } from 'node:crypto';
import { KeyringError } from '../errors';
import { KeySourceError } from './keySourceError';
import { decodeBase64Key, fingerprintOf, KEY_BYTES, type KmsKind } from './keyMaterial';
import { isWrapped, type KeyEntry, type WrappedKeyEntry } from './keyringFile';
import type { KeyWrapper, KeyWrappers } from './keyWrapper';
import { withRetry, type RetryListener, type RetryPolicy } from './retry';

/** What unwrapping needs: wrappers by source and how long to retry. */
export interface UnwrapContext {
  readonly wrappers: (kind: KmsKind) => KeyWrapper;
  readonly retry: RetryPolicy;
  readonly onRetry?: RetryListener;
}

/** Looks up the wrapper for a source, with an error that says how to provide one. */
export function wrapperLookup(wrappers: KeyWrappers): (kind: KmsKind) => KeyWrapper {
  return (kind) => {
    const w = wrappers[kind];
    if (!w) throw new KeyringError(undefined, `no key wrapper configured for source '${kind}'`);
    return w;
  };
}

/**
 * The raw bytes of one keyring entry: decoded for local keys, unwrapped (with retries) for
 * wrapped ones. Checks length and the recorded fingerprint (always recorded for wrapped keys), so
 * a wrong or damaged key is caught here rather than as decryption failures later. The caller
 * zeroes the result.
 */
export async function entryBytes(entry: KeyEntry, ctx: UnwrapContext): Promise<Buffer> {
  const bytes = isWrapped(entry) ? await unwrapEntry(entry, ctx) : decodeBase64Key(entry.id, entry.key);
  const matches = bytes.length === KEY_BYTES && (entry.fingerprint === undefined || fingerprintOf(createSecretKey(bytes)) === entry.fingerprint);
  if (!matches || (isWrapped(entry) && entry.fingerprint === undefined)) {
    bytes.fill(0);
    if (isWrapped(entry)) {
      throw new KeySourceError({ keyId: entry.id, source: entry.source, kmsKeyName: entry.kmsKeyName, operation: 'unwrap', failure: 'corrupted' });
    }
    throw new KeyringError(entry.id, bytes.length !== KEY_BYTES ? `local key must be ${KEY_BYTES} bytes` : 'local key does not match its recorded fingerprint');
  }
  return bytes;
}

function unwrapEntry(entry: WrappedKeyEntry, ctx: UnwrapContext): Promise<Buffer> {
  const wrapper = ctx.wrappers(entry.source);
  const wrapped = Buffer.from(entry.wrappedKey, 'base64');
  const target = { kmsKeyName: entry.kmsKeyName, keyId: entry.id, purpose: entry.purpose };
  return withRetry((limits) => wrapper.unwrap(wrapped, target, limits), ctx.retry, {
    subject: { keyId: entry.id, source: entry.source, kmsKeyName: entry.kmsKeyName, operation: 'unwrap' },
    onRetry: ctx.onRetry,
    discard: (late) => late.fill(0),
  });
}
