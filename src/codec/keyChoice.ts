import type { KeyObject } from 'node:crypto';
import type { KeyScope } from '../crypto/ciphertext';
import type { DecryptionFailure } from '../errors';
import type { FieldIndexKey, Keyring } from '../keys/keyring';

/** A data key ready to encrypt or decrypt with: which key space and id it is, and its secret. */
export interface ChosenKey {
  readonly scope: KeyScope;
  readonly id: string;
  readonly key: KeyObject;
}

/** Why no key could be found for a stored value: the DecryptionError reason to raise. */
export type MissingKey = Extract<DecryptionFailure, 'unknown-key' | 'retired-key' | 'subject-erased' | 'authentication-failed'>;

/**
 * Which data key encrypts a new value, which decrypts a stored one, and which index keys hash a
 * field's blind index. One interface, so shared keyring keys and per-subject keys plug into the
 * same {@link FieldCodec}.
 */
export interface KeyChoice {
  /** The key new values are encrypted under. */
  forWrite(): ChosenKey;
  /** The key a stored value names, or why there is none. */
  forRead(scope: KeyScope, keyId: string): ChosenKey | MissingKey;
  /** Per-field HMAC keys, primary (the one new indexes are written under) first. */
  indexKeys(binding: string): readonly FieldIndexKey[];
  /** Values of erased subjects read as `null` with these keys, whatever the codec's own setting. */
  readonly erasedAsNull?: boolean;
}

/** The subset of {@link Keyring} key choice needs; the migrator's worker threads serve it from a snapshot. */
export type KeyringView = Pick<Keyring, 'primaryData' | 'dataKey' | 'indexKeysFor'> & Partial<Pick<Keyring, 'isRetired'>>;

/** Shared keys: every row of the field is encrypted under the keyring's primary data key. */
export function sharedKeys(keyring: KeyringView): KeyChoice {
  return {
    forWrite: () => ({ scope: 'shared', id: keyring.primaryData.id, key: keyring.primaryData.key }),
    forRead(scope, keyId) {
      // A shared-key field never holds subject-scoped values: refusing them here means a value
      // copied in from a subject-keyed field fails as an unknown key, not as a silent read.
      const found = scope === 'shared' ? keyring.dataKey(keyId) : undefined;
      if (found) return { scope, id: found.id, key: found.key };
      // `?.`: the migrator's worker-thread keyring view has no retired list.
      return scope === 'shared' && keyring.isRetired?.(keyId) ? 'retired-key' : 'unknown-key';
    },
    indexKeys: (binding) => keyring.indexKeysFor(binding),
  };
}

/** What a subject key id resolved to when a result's keys were loaded (see the subject key store). */
export type LoadedSubjectKey = ChosenKey | MissingKey;

/** The keys one row (write) or one result (read) of a subject-keyed field is served from. */
export interface SubjectKeyResolution {
  /** The data key of the row's subject: what new values of the row are encrypted under. */
  readonly write?: ChosenKey;
  /** Subject keys loaded for a result, by key id. */
  readonly loaded?: ReadonlyMap<string, LoadedSubjectKey>;
  /** Read values of erased subjects as `null` (the record of a delete: the row is gone, its erased values unreadable for good). */
  readonly erasedAsNull?: boolean;
}

/**
 * Per-subject keys: values are written under the data key of the row's subject (decided by the
 * caller for that row, never chosen here), and read with the subject keys loaded for the result.
 * Shared-key values in a subject model (written before the model had a subject, not yet moved by
 * `encrypt-existing`) are still read with the keyring's keys.
 */
export function subjectKeys(keyring: KeyringView, resolved: SubjectKeyResolution = {}): KeyChoice {
  const shared = sharedKeys(keyring);
  return {
    forWrite() {
      // A subject-keyed value is never written under a shared key by mistake.
      if (!resolved.write) throw new Error('no subject key was decided for this row (a bug in the caller)');
      return resolved.write;
    },
    forRead(scope, keyId) {
      if (scope === 'shared') return shared.forRead(scope, keyId);
      return resolved.loaded?.get(keyId) ?? 'unknown-key';
    },
    indexKeys: shared.indexKeys,
    ...(resolved.erasedAsNull ? { erasedAsNull: true } : {}),
  };
}
