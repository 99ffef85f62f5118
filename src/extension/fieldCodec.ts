import { associatedData, open, seal } from '../crypto/aead';
import { computeBlindIndex, type BlindIndex } from '../crypto/blindIndex';
import { parseCiphertext, type Ciphertext } from '../crypto/ciphertext';
import { normalize } from '../crypto/normalize';
import { DecryptionError, EncryptionError, type DecryptionFailure } from '../errors';
import type { Keyring } from '../keys/keyring';
import type { EncryptedFieldSpec } from '../schema';

/**
 * Encryption, decryption and blind indexing for one annotated field, bound to a keyring.
 * Caches what depends only on (field, key): associated data and derived index keys.
 */
export class FieldCodec {
  readonly binding: string;
  readonly indexField: string | undefined;
  private readonly aad = new Map<string, Buffer>();

  constructor(
    readonly model: string,
    readonly field: string,
    readonly spec: EncryptedFieldSpec,
    private readonly keyring: Keyring,
    private readonly onDecryptFailure: (error: DecryptionError) => void,
  ) {
    this.binding = `${model}.${field}`;
    this.indexField = spec.index;
  }

  private aadFor(keyId: string): Buffer {
    let aad = this.aad.get(keyId);
    if (!aad) {
      aad = associatedData(keyId, this.binding);
      this.aad.set(keyId, aad);
    }
    return aad;
  }

  /** Encrypts under the primary data key. Throws EncryptionError (naming model and field) for non-strings. */
  encrypt(value: unknown): Ciphertext {
    if (typeof value !== 'string') {
      throw new EncryptionError(this.model, this.field, `expected a string, got ${value === null ? 'null' : typeof value}`);
    }
    const key = this.keyring.primaryData;
    return seal(value, key, this.aadFor(key.id));
  }

  /** Decrypts a stored value, honouring the field's read mode for legacy plaintext. */
  decrypt(stored: string): string {
    const parsed = parseCiphertext(stored);
    if (parsed.kind !== 'ciphertext') {
      if (parsed.kind === 'not-ciphertext' && this.spec.readMode === 'passthrough') return stored;
      return this.fail(undefined, parsed.kind === 'malformed' ? 'malformed' : parsed.kind);
    }
    const { keyId } = parsed.value;
    const key = this.keyring.dataKey(keyId);
    // `?.`: the migrator's worker-thread keyring view has no retired list.
    if (!key) return this.fail(keyId, this.keyring.isRetired?.(keyId) ? 'retired-key' : 'unknown-key');
    const plaintext = open(parsed.value, key, this.aadFor(keyId));
    if (plaintext === undefined) return this.fail(keyId, 'authentication-failed');
    return plaintext;
  }

  private fail(keyId: string | undefined, reason: DecryptionFailure): never {
    const error = new DecryptionError(this.model, this.field, keyId, reason);
    this.onDecryptFailure(error);
    throw error;
  }

  /** The blind index to store for a value (primary index key). */
  indexForWrite(value: string): BlindIndex {
    const primary = this.keyring.indexKeysFor(this.binding)[0]!;
    return computeBlindIndex(primary.key, primary.id, normalize(value, this.spec.normalize ?? []));
  }

  /** Every blind index the value may be stored under: one per index key, primary first. */
  indexesForLookup(value: unknown): BlindIndex[] {
    if (typeof value !== 'string') {
      throw new EncryptionError(this.model, this.field, `lookup value must be a string, got ${value === null ? 'null' : typeof value}`);
    }
    const normalized = normalize(value, this.spec.normalize ?? []);
    return this.keyring.indexKeysFor(this.binding).map((k) => computeBlindIndex(k.key, k.id, normalized));
  }
}
