import type { KeyPurpose, KmsKind } from './keyMaterial';

/**
 * Envelope encryption behind one interface. A key-management service never sees data: it only
 * wraps (encrypts) and unwraps (decrypts) the 32-byte data and index keys, once when a key is
 * generated or re-wrapped and once per key at start-up.
 *
 * A new source (AWS KMS, Vault transit) implements these two methods, adds its name to
 * `KmsKind`, and is passed to `loadKeyring({ wrappers: { ... } })` and the CLI.
 */
export interface KeyWrapper {
  /** The `source` this wrapper serves; stored with every key it wraps. */
  readonly kind: KmsKind;
  /**
   * Encrypts key bytes under `target.kmsKeyName`. Must bind `wrapAad(target)` as associated
   * data (or the service's equivalent) so a wrapped key cannot be moved to another key id.
   * Returns the wrapped bytes and the exact KMS key version that wrapped them.
   */
  wrap(plain: Buffer, target: WrapTarget, limits: CallLimits): Promise<WrappedKey>;
  /** Decrypts what {@link wrap} returned for the same target. */
  unwrap(wrapped: Buffer, target: WrapTarget, limits: CallLimits): Promise<Buffer>;
  /**
   * The protection level (`SOFTWARE`, `HSM`, `EXTERNAL`, ...) of `name`: a KMS key (its primary
   * version) or one key version. Optional: a source without it cannot satisfy
   * `keys generate --protection-level`, and its keys list no level.
   */
  protectionLevel?(name: string, target: WrapTarget, limits: CallLimits): Promise<string>;
  /** Releases connections. Called by whoever created the wrapper. */
  close(): Promise<void>;
}

/** Which key is being wrapped, and under which KMS key. */
export interface WrapTarget {
  /** Resource name of the wrapping key (GCP CryptoKey, AWS key ARN, Vault key name). */
  readonly kmsKeyName: string;
  readonly keyId: string;
  readonly purpose: KeyPurpose;
}

/** Limits for one call. Retries happen outside the wrapper (see retry.ts). */
export interface CallLimits {
  /** Deadline for this attempt. */
  readonly timeoutMs: number;
}

/** What {@link KeyWrapper.wrap} returns: the wrapped bytes to store, and the KMS key version that made them. */
export interface WrappedKey {
  readonly wrapped: Buffer;
  /** The KMS key version that did the wrapping, so a later KMS rotation can be followed by a re-wrap. */
  readonly kmsKeyVersion: string;
}

/** Wrappers by source kind; a keyring file may mix sources. */
export type KeyWrappers = { readonly [K in KmsKind]?: KeyWrapper };

/**
 * Associated data bound to every wrapped key: the key id and purpose. Swapping wrapped bytes
 * between entries, or relabelling an index key as a data key, makes unwrapping fail.
 */
export function wrapAad(target: Pick<WrapTarget, 'keyId' | 'purpose'>): Buffer {
  return Buffer.from(`prisma-column-encryption/wrapped-key/v1:${target.purpose}:${target.keyId}`, 'utf8');
}
