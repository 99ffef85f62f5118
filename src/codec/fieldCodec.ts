import type { KeyObject } from 'node:crypto';
import { formatBlindIndex, type BlindIndex } from '../crypto/blindIndex';
import { headerFor, headerText, parseCiphertext, parseHeader, subjectHeaderPrefix, type Ciphertext, type EnvelopeHeader, type KeyScope } from '../crypto/ciphertext';
import type { Indexer, Sealer } from '../crypto/native';
import type { FieldIndexKey } from '../keys/keyring';
import { normalize } from '../crypto/normalize';
import { DecryptionError, EncryptionError, type DecryptionFailure } from '../errors';
import type { EncryptedFieldSpec } from '../schema';
import type { CryptoBackend } from './backend';
import { defaultBackend } from './backendChoice';
import { looksLikePfe, openPfeValue, pfeLookupHash, type PfeKeyLookup } from './pfe';
import { associatedData, openValue, sealValue } from './envelope';
import { sharedKeys, subjectKeys, type ChosenKey, type KeyChoice, type KeyringView } from './keyChoice';
import { describeType, encodingFor, InvalidValue, stringEncoding, type ValueEncoding } from './valueEncoding';
import { decryptBatch } from './decryptBatch';

/** What {@link FieldCodec.decrypt} keeps of the last shared-key value it read. */
interface SharedRead {
  readonly text: string;
  readonly nonceStart: number;
  readonly key: ChosenKey;
}

/** What a {@link FieldCodec} is built from besides the field: where keys come from and which backend computes. */
export interface FieldCodecOptions {
  /** Called with every decryption failure before it is thrown (the extension audit-logs them). */
  readonly onDecryptFailure?: (error: DecryptionError) => void;
  /** node:crypto or the native module; by default the process's choice ({@link defaultBackend}). */
  readonly backend?: CryptoBackend;
  /** Key choice; shared keyring keys by default. */
  readonly keys?: KeyChoice;
  /** prisma-field-encryption keys: consulted only when the field is marked `legacy: pfe`, and only to read. */
  readonly legacyKeys?: PfeKeyLookup;
  /** The field's model is subject-keyed: each row's key is passed per call ({@link subjectKeys}). */
  readonly subjectKeyed?: boolean;
  /** A value of an erased subject reads as `null` instead of failing with reason `subject-erased`. */
  readonly erasedAsNull?: boolean;
}

/**
 * Encryption, decryption and blind indexing for one annotated field: the one place where a
 * field's value encoding, key choice, envelope and crypto backend meet. Both the extension and
 * the migrator use it, so a value written by one is read by the other byte for byte.
 * Caches what depends only on (field, key): associated data (for shared keys; a subject key's is computed per call).
 */
export class FieldCodec {
  readonly binding: string;
  readonly indexField: string | undefined;
  /** Typed fields: the String field holding the ciphertext (the typed column stays NULL). */
  readonly storageField: string | undefined;
  /** Rows are encrypted under their subject's key, which callers pass per row (write) or per result (read). */
  readonly subjectKeyed: boolean;
  private readonly erasedAsNull: boolean;
  private readonly aad = new Map<string, Buffer>();
  private readonly sealers = new WeakMap<KeyObject, { readonly id: string; readonly scope: KeyScope; readonly sealer: Sealer }>();
  /** Index keys are shared and few; their ids are fixed per KeyObject. */
  private readonly indexers = new WeakMap<KeyObject, Indexer>();
  private lastRead: SharedRead | undefined;
  /** `Model.field` in UTF-8: the part of every value's associated data after its header. */
  private readonly bindingBytes: Buffer;
  /** `pce:v2:<this type>:s:`: how every value of this field under a subject key begins. */
  private readonly subjectPrefix: string;
  private readonly encoding: ValueEncoding;
  private readonly keys: KeyChoice;
  private readonly backend: CryptoBackend;
  private readonly onDecryptFailure: (error: DecryptionError) => void;
  private readonly legacyKeys: PfeKeyLookup | undefined;

  constructor(
    readonly model: string,
    readonly field: string,
    readonly spec: EncryptedFieldSpec,
    keyring: KeyringView,
    options: FieldCodecOptions | ((error: DecryptionError) => void) = {},
  ) {
    const opts = typeof options === 'function' ? { onDecryptFailure: options } : options;
    this.binding = `${model}.${field}`;
    this.bindingBytes = Buffer.from(this.binding, 'utf8');
    this.indexField = spec.index;
    this.storageField = spec.storage;
    this.encoding = encodingFor(spec.type ?? 'String', spec.column);
    this.subjectPrefix = subjectHeaderPrefix(this.encoding.type);
    this.subjectKeyed = opts.subjectKeyed ?? false;
    this.erasedAsNull = opts.erasedAsNull ?? false;
    // A subject-keyed field without per-row keys can read shared-key values but never writes.
    this.keys = opts.keys ?? (this.subjectKeyed ? subjectKeys(keyring) : sharedKeys(keyring));
    this.backend = opts.backend ?? defaultBackend();
    this.onDecryptFailure = opts.onDecryptFailure ?? (() => undefined);
    this.legacyKeys = opts.legacyKeys;
  }

  private aadFor(header: EnvelopeHeader): Buffer {
    // One entry per key id: a handful of shared keys, but one per person under subject keys, so
    // those are computed per call (cheap) rather than kept for the life of the process.
    if (header.scope === 'subject') return associatedData(header, this.binding);
    const cacheKey = `${header.version}:${header.scope}:${header.keyId}`;
    let aad = this.aad.get(cacheKey);
    if (!aad) {
      aad = associatedData(header, this.binding);
      this.aad.set(cacheKey, aad);
    }
    return aad;
  }

  /**
   * Encrypts under the write key: `keys`'s when given (a subject-keyed row's), else the codec's.
   * Throws EncryptionError (naming model and field) for a value of the wrong type.
   */
  encrypt(value: unknown, keys: KeyChoice = this.keys): Ciphertext {
    // A String's plaintext is its UTF-8: a backend with a sealer converts the string itself.
    const plaintext = this.encoding === stringEncoding && typeof value === 'string' ? value : this.checked(() => this.encoding.encode(value));
    if (plaintext === undefined) throw new EncryptionError(this.model, this.field, `expected ${this.encoding.expects}, got ${describeType(value)}`);
    const key = keys.forWrite();
    if (this.backend.sealer) return this.sealerFor(key).seal(plaintext) as Ciphertext;
    const header = headerFor(this.encoding.type, key.scope, key.id);
    const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    return sealValue(this.backend, header, key.key, bytes, this.aadFor(header));
  }

  /**
   * The backend's sealer for a write key: its header and associated data bound once. Kept per
   * KeyObject in a WeakMap, so a subject key's sealer goes when the key store drops the key.
   */
  private sealerFor(key: ChosenKey): Sealer {
    const known = this.sealers.get(key.key);
    if (known && known.id === key.id && known.scope === key.scope) return known.sealer;
    const header = headerFor(this.encoding.type, key.scope, key.id);
    const sealer = this.backend.sealer!(key.key, associatedData(header, this.binding), headerText(header));
    this.sealers.set(key.key, { id: key.id, scope: key.scope, sealer });
    return sealer;
  }

  /**
   * Decrypts a stored value into the field's type (a string, Date, number, ...), honouring the
   * read mode for legacy plaintext. A typed field's legacy plaintext sits in the typed column,
   * never in its storage column, so text there without the prefix is never passed through.
   * A backend that parses envelope text itself (native) gets the whole text (parsing in native
   * code costs less than in JavaScript); what it does not decide takes the reference path, so
   * errors are the same.
   */
  decrypt(stored: string, keys: KeyChoice = this.keys): unknown {
    const { openText } = this.backend;
    if (!openText) return this.decryptOne(stored, keys);
    const read = this.readFor(stored, keys);
    if (read === undefined) return this.decryptOne(stored, keys);
    const { key, nonceStart } = read;
    if (this.encoding === stringEncoding && this.backend.openString) {
      return this.backend.openString(key.key, this.bindingBytes, stored, nonceStart) ?? this.decryptOne(stored, keys);
    }
    const plaintext = openText.call(this.backend, key.key, this.bindingBytes, stored, nonceStart);
    return plaintext === undefined ? this.decryptOne(stored, keys) : this.encoding.decode(plaintext);
  }

  /**
   * Where a value's nonce starts and the key to open it with, or `undefined` when it has no
   * header, no usable key or another type (the reference path decides what that means). The last
   * shared-key answer is kept: a field's values mostly share one header, a value starting with its
   * text has that header (the text ends with the ':' after the key id, which cannot contain one),
   * and the codec's shared key choice answers the same for the same key id (the keyring never changes).
   */
  private readFor(stored: string, keys: KeyChoice): SharedRead | undefined {
    const last = this.lastRead;
    if (last !== undefined && keys === this.keys && stored.startsWith(last.text)) return last;
    const parsed = parseHeader(stored);
    if (parsed.kind !== 'header' || parsed.header.type !== this.encoding.type) return undefined;
    const key = keys.forRead(parsed.header.scope, parsed.header.keyId);
    if (typeof key === 'string') return undefined;
    const read = { text: stored.slice(0, parsed.nonceStart), nonceStart: parsed.nonceStart, key };
    // Only for the codec's own key choice: a result's subject key choice holds that result's
    // subject keys, which must not outlive the key store's copies (erasure drops those).
    if (parsed.header.scope === 'shared' && keys === this.keys) this.lastRead = read;
    return read;
  }

  /** The reference path for one value: every typed error is raised here, whatever the backend. */
  private decryptOne(stored: string, keys: KeyChoice): unknown {
    const parsed = parseCiphertext(stored);
    if (parsed.kind !== 'ciphertext') {
      if (parsed.kind === 'not-ciphertext' && this.spec.legacy && looksLikePfe(stored)) return this.decryptLegacy(stored);
      if (parsed.kind === 'not-ciphertext' && this.spec.readMode === 'passthrough' && this.storageField === undefined) return stored;
      return this.fail(undefined, parsed.kind === 'malformed' ? 'malformed' : parsed.kind);
    }
    const header = parsed.value;
    const key = keys.forRead(header.scope, header.keyId);
    if (key === 'subject-erased' && (this.erasedAsNull || keys.erasedAsNull)) return null;
    if (typeof key === 'string') return this.fail(header.keyId, key);
    // The type is authenticated, so a mismatch can only mean a value from another field's codec.
    if (header.type !== this.encoding.type) return this.fail(header.keyId, 'authentication-failed');
    const plaintext = openValue(this.backend, header, key.key, this.aadFor(header));
    if (plaintext === undefined) return this.fail(header.keyId, 'authentication-failed');
    return this.encoding.decode(plaintext);
  }

  /** Runs an encoding step, turning a value the column cannot hold into an EncryptionError naming model and field. */
  private checked<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      if (error instanceof InvalidValue) throw new EncryptionError(this.model, this.field, error.message);
      throw error;
    }
  }

  /**
   * Decrypts the stored values of one result's rows, like {@link decrypt} on each, in one native
   * call where the backend has a batch path, whatever keys they are under (a shared key, or each
   * row its subject's). Values it does not decide (legacy plaintext, unknown keys, damaged or
   * tampered ones) take the reference path, so failures are the same typed errors.
   */
  decryptMany(stored: readonly string[], keys: KeyChoice = this.keys): unknown[] {
    const openTexts = this.backend.openTexts;
    if (!openTexts) return stored.map((v) => this.decryptOne(v, keys));
    const out = new Array<unknown>(stored.length);
    const { batch, keyOf, starts, chosen, rest } = decryptBatch(stored, keys, this.encoding.type, this.subjectPrefix);
    for (const i of rest) out[i] = this.decryptOne(stored[i]!, keys);
    if (batch.length === 0) return out;
    const texts = batch.length === stored.length ? stored : batch.map((i) => stored[i]!);
    if (this.encoding === stringEncoding && this.backend.openStrings) {
      const strings: unknown[] = this.backend.openStrings(chosen, keyOf, this.bindingBytes, texts, starts);
      for (let j = 0; j < batch.length; j++) strings[j] ??= this.decryptOne(texts[j]!, keys);
      // Every value in the batch (the usual case): its result array is the answer.
      if (batch.length === stored.length) return strings;
      for (let j = 0; j < batch.length; j++) out[batch[j]!] = strings[j];
      return out;
    }
    const { out: bytes, ends } = openTexts.call(this.backend, chosen, keyOf, this.bindingBytes, texts, starts);
    let begin = 0;
    batch.forEach((i, j) => {
      const end = ends[j]!;
      if (end < 0) {
        out[i] = this.decryptOne(texts[j]!, keys);
      } else {
        // The plaintext bytes of every type: each encoding decodes its own (Bytes copies them out of the shared buffer).
        out[i] = this.encoding.decode(bytes.subarray(begin, end));
        begin = end;
      }
    });
    return out;
  }

  private decryptLegacy(stored: string): string {
    const opened = openPfeValue(this.backend, stored, this.legacyKeys);
    return 'plaintext' in opened ? opened.plaintext : this.fail(opened.keyId, opened.reason);
  }

  private fail(keyId: string | undefined, reason: DecryptionFailure): never {
    const error = new DecryptionError(this.model, this.field, keyId, reason);
    this.onDecryptFailure(error);
    throw error;
  }

  private canonical(value: unknown, what: string): string {
    const text = this.encoding === stringEncoding && typeof value === 'string' ? value : this.checked(() => this.encoding.canonical(value));
    if (text === undefined) throw new EncryptionError(this.model, this.field, `${what} must be ${this.encoding.expects}, got ${describeType(value)}`);
    return normalize(text, this.spec.normalize ?? []);
  }

  /** The blind index to store for a value (primary index key). */
  indexForWrite(value: unknown): BlindIndex {
    return this.blindIndex(this.keys.indexKeys(this.binding)[0]!, this.canonical(value, 'the value'));
  }

  /** The blind index of canonical text (hashed as UTF-8) under one index key. */
  private blindIndex(key: FieldIndexKey, text: string): BlindIndex {
    if (!this.backend.indexer) return formatBlindIndex(key.id, this.backend.hmac(key.key, Buffer.from(text, 'utf8')));
    let indexer = this.indexers.get(key.key);
    if (!indexer) {
      indexer = this.backend.indexer(key.key, `${key.id}:`);
      this.indexers.set(key.key, indexer);
    }
    return indexer.index(text) as BlindIndex;
  }

  /** Every blind index the value may be stored under: one per index key, primary first. */
  indexesForLookup(value: unknown): BlindIndex[] {
    const data = this.canonical(value, 'lookup value');
    const hashes = this.keys.indexKeys(this.binding).map((k) => this.blindIndex(k, data));
    // While converting from prisma-field-encryption, rows not yet converted still hold its hash of the raw text.
    const old = this.spec.legacy ? pfeLookupHash(this.spec.legacy, this.legacyKeys, this.encoding.canonical(value)!) : undefined;
    if (old !== undefined) hashes.push(old as BlindIndex);
    return hashes;
  }
}
