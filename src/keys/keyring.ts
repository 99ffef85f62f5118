import type { KeyObject } from 'node:crypto';
import { deriveFieldIndexKey } from '../crypto/blindIndex';
import { KeyringError } from '../errors';
import { fingerprintOf, KEY_BYTES, type KeyPurpose, type KeySource, type LoadedKey } from './keyMaterial';

/** A data-encryption key: AES-256 key material kept in a KeyObject, never a plain Buffer. */
export interface DataKey {
  readonly id: string;
  readonly key: KeyObject;
}

/** One index key ready for a field: its id and the HKDF-derived per-field HMAC key. */
export interface FieldIndexKey {
  readonly id: string;
  readonly key: KeyObject;
}

/** Public, non-secret description of a key in the ring. */
export interface KeyInfo {
  readonly id: string;
  readonly purpose: KeyPurpose;
  readonly primary: boolean;
  readonly source: KeySource;
  readonly fingerprint: string;
  /** When the key was made (ISO 8601), for keys from a keyring document; local keys carry none. */
  readonly createdAt?: string;
}

/** Which keys of a {@link Keyring} are primary, and which ids were retired (not loaded). */
export interface KeyringOptions {
  /** Data key used for new encryptions. Defaults to the first data key given. */
  readonly primaryDataKey?: string;
  /** Index key used for new blind indexes. Defaults to the first index key given. */
  readonly primaryIndexKey?: string;
  /** Wrap key (the current epoch) that new subject keys are wrapped under. Defaults to the first wrap key given. */
  readonly primaryWrapKey?: string;
  /** Ids of retired keys: not loaded, but named when a stored value still needs one. */
  readonly retiredKeyIds?: readonly string[];
  /** Creation times by key id (keyring documents record them). */
  readonly createdAt?: Readonly<Record<string, string>>;
}

/**
 * The keys an extension works with: several data keys and index keys, one primary of each, and
 * optionally wrap keys (key-encryption keys for per-subject data keys; the primary is the epoch).
 * New values are encrypted with the primary data key; a stored value is decrypted with whichever
 * key it names. Equality lookups hash with every index key in the ring (primary first), so rows
 * indexed under an older index key are still found while a re-index runs.
 */
export class Keyring {
  readonly primaryData: DataKey;
  readonly primaryIndexKeyId: string;
  /** The wrap key new subject keys are wrapped under (the current epoch); `undefined` when the ring has no wrap key. */
  readonly primaryWrap: DataKey | undefined;
  private readonly dataKeys = new Map<string, DataKey>();
  private readonly wrapKeys = new Map<string, DataKey>();
  private readonly indexRoots: ReadonlyArray<{ id: string; key: KeyObject }>;
  private readonly infos: readonly KeyInfo[];
  private readonly fieldIndexKeys = new Map<string, readonly FieldIndexKey[]>();
  private readonly retired: ReadonlySet<string>;

  constructor(keys: readonly LoadedKey[], options: KeyringOptions = {}) {
    const seen = new Map<string, LoadedKey>();
    const fingerprints = new Map<string, string>();
    for (const k of keys) {
      // The constructor is public: check what callers hand in rather than trusting it.
      if (k.secret.type !== 'secret' || k.secret.symmetricKeySize !== KEY_BYTES) {
        throw new KeyringError(k.id, `must be a ${KEY_BYTES}-byte secret key`);
      }
      if (k.fingerprint !== fingerprintOf(k.secret)) throw new KeyringError(k.id, 'fingerprint does not match the key');
      if (seen.has(k.id)) throw new KeyringError(k.id, 'appears twice in the keyring');
      const other = fingerprints.get(k.fingerprint);
      if (other !== undefined) {
        throw new KeyringError(k.id, `has the same key bytes as key '${other}': data and index keys must be distinct`);
      }
      seen.set(k.id, k);
      fingerprints.set(k.fingerprint, k.id);
    }
    const data = keys.filter((k) => k.purpose === 'data');
    const index = keys.filter((k) => k.purpose === 'index');
    const wrap = keys.filter((k) => k.purpose === 'wrap');
    if (data.length === 0) throw new KeyringError(undefined, 'the keyring has no data key');
    if (index.length === 0) throw new KeyringError(undefined, 'the keyring has no index key (blind indexes need their own key)');
    const primaryData = pick(data, options.primaryDataKey, 'data');
    const primaryIndex = pick(index, options.primaryIndexKey, 'index');
    // A keyring without wrap keys is valid: only schemas with subject models need one.
    const primaryWrap = wrap.length > 0 || options.primaryWrapKey !== undefined ? pick(wrap, options.primaryWrapKey, 'wrap') : undefined;
    for (const k of data) this.dataKeys.set(k.id, { id: k.id, key: k.secret });
    for (const k of wrap) this.wrapKeys.set(k.id, { id: k.id, key: k.secret });
    this.primaryWrap = primaryWrap && { id: primaryWrap.id, key: primaryWrap.secret };
    this.primaryData = { id: primaryData.id, key: primaryData.secret };
    this.primaryIndexKeyId = primaryIndex.id;
    this.retired = new Set(options.retiredKeyIds ?? []);
    this.indexRoots = [primaryIndex, ...index.filter((k) => k !== primaryIndex)].map((k) => ({ id: k.id, key: k.secret }));
    this.infos = keys.map((k) => ({
      id: k.id,
      purpose: k.purpose,
      primary: k === primaryData || k === primaryIndex || k === primaryWrap,
      source: k.source,
      fingerprint: k.fingerprint,
      ...(options.createdAt?.[k.id] ? { createdAt: options.createdAt[k.id] } : {}),
    }));
  }

  /** The data key with this id, or `undefined` when the ring does not hold it. */
  dataKey(id: string): DataKey | undefined {
    return this.dataKeys.get(id);
  }

  /** The wrap key with this id, or `undefined` when the ring does not hold it (never loaded, retired or destroyed). */
  wrapKey(id: string): DataKey | undefined {
    return this.wrapKeys.get(id);
  }

  /** True when `id` is a retired key of this keyring's file: known, but deliberately not loaded. */
  isRetired(id: string): boolean {
    return this.retired.has(id);
  }

  /** Per-field HMAC keys for every index key, primary first. Derived once per field and cached. */
  indexKeysFor(binding: string): readonly FieldIndexKey[] {
    let keys = this.fieldIndexKeys.get(binding);
    if (!keys) {
      keys = this.indexRoots.map((root) => ({ id: root.id, key: deriveFieldIndexKey(root.key, binding) }));
      this.fieldIndexKeys.set(binding, keys);
    }
    return keys;
  }

  /** Ids, purposes, sources and fingerprints: never key material. */
  describe(): readonly KeyInfo[] {
    return this.infos;
  }
}

function pick(keys: readonly LoadedKey[], id: string | undefined, purpose: KeyPurpose): LoadedKey {
  if (id === undefined) return keys[0]!;
  const found = keys.find((k) => k.id === id);
  if (!found) throw new KeyringError(id, `is named as the primary ${purpose} key but is not a ${purpose} key in the keyring`);
  return found;
}
