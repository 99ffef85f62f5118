import { createCipheriv, createDecipheriv, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import path from 'node:path';

/** Opaque per-key state inside the native module (an N-API external; wiped when collected). */
declare const handleBrand: unique symbol;
type AeadHandle = { readonly [handleBrand]: 'aead' };
type MacHandle = { readonly [handleBrand]: 'mac' };
type SealerHandle = { readonly [handleBrand]: 'sealer' };
type IndexerHandle = { readonly [handleBrand]: 'indexer' };

/** The functions the native module (src/crypto/native/, exports in module.c) provides. Byte outputs go into caller-allocated buffers. */
interface NativeModule {
  aeadKey(key: Uint8Array): AeadHandle;
  macKey(key: Uint8Array): MacHandle;
  seal(key: AeadHandle, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): void;
  open(key: AeadHandle, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): boolean;
  hmac(key: MacHandle, data: Uint8Array, out: Uint8Array): void;
  sealer(key: AeadHandle, aad: Uint8Array, header: string): SealerHandle;
  indexer(key: MacHandle, prefix: string): IndexerHandle;
  /** The nonce is drawn natively unless given (tests compare with node:crypto on their own nonce). */
  sealWith(sealer: SealerHandle, plaintext: Uint8Array | string, nonce?: Uint8Array): string;
  indexWith(indexer: IndexerHandle, data: Uint8Array | string): string;
  openString(key: AeadHandle, binding: Uint8Array, text: string, start: number): string | undefined;
  openStrings(keys: readonly AeadHandle[], keyOf: Uint32Array, binding: Uint8Array, texts: readonly string[], starts: Uint32Array): (string | undefined)[];
  openTexts(keys: readonly AeadHandle[], keyOf: Uint32Array, binding: Uint8Array, texts: readonly string[], starts: Uint32Array, out: Uint8Array, ends: Int32Array): number;
}

const TAG_BYTES = 16;
const MAC_BYTES = 32;
const KEY_BYTES = 32;
/** Bytes of envelope text between the nonce's start and the sealed body: 16 nonce characters and ':'. */
const NONCE_FIELD = 17;

/** A key, associated data and envelope header bound once (codec/backend.ts, `CryptoBackend.sealer`). */
export interface Sealer {
  seal(plaintext: Buffer | string): string;
}

/** An index key and its text prefix bound once (`CryptoBackend.indexer`). */
export interface Indexer {
  index(data: Buffer | string): string;
}

/** Decrypted values of one {@link NativeCrypto.openTexts} call: value i is `out[ends[i-1]..ends[i])`, or not decided when ends[i] < 0. */
export interface OpenedTexts {
  readonly out: Buffer;
  readonly ends: Int32Array;
}

/**
 * AES-256-GCM and HMAC-SHA-256 through the native module, keyed by KeyObject. Each KeyObject gets
 * its native state once (key schedule, HMAC pads) and keeps it while the KeyObject lives: the
 * state hangs off a WeakMap entry, so when the KeyObject is collected the native finalizer frees
 * and wipes it. The raw key bytes exist in JavaScript only for the moment of that set-up, in a
 * Buffer zeroed right after.
 */
export class NativeCrypto {
  private readonly aeadKeys = new WeakMap<KeyObject, AeadHandle>();
  private readonly macKeys = new WeakMap<KeyObject, MacHandle>();

  /** {@link openText}'s arguments, reused: calls are synchronous and a module instance serves one thread. */
  private readonly one = { keyOf: new Uint32Array(1), starts: new Uint32Array(1), ends: new Int32Array(1) };

  constructor(private readonly native: NativeModule) {}

  private handle<H>(cache: WeakMap<KeyObject, H>, key: KeyObject, make: (bytes: Buffer) => H): H {
    let handle = cache.get(key);
    if (handle === undefined) {
      if (key.type !== 'secret' || key.symmetricKeySize !== KEY_BYTES) throw new TypeError(`expected a ${KEY_BYTES}-byte secret key`);
      const bytes = key.export();
      try {
        handle = make(bytes);
      } finally {
        bytes.fill(0);
      }
      cache.set(key, handle);
    }
    return handle;
  }

  private aead(key: KeyObject): AeadHandle {
    return this.handle(this.aeadKeys, key, (bytes) => this.native.aeadKey(bytes));
  }

  /** AES-256-GCM: ciphertext followed by the 16-byte tag. */
  seal(key: KeyObject, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
    const out = Buffer.allocUnsafe(plaintext.length + TAG_BYTES);
    this.native.seal(this.aead(key), nonce, plaintext, aad, out);
    return out;
  }

  /** The plaintext, or `undefined` when the tag does not verify (compared inside OpenSSL). */
  open(key: KeyObject, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer | undefined {
    if (sealed.length < TAG_BYTES) return undefined;
    const out = Buffer.allocUnsafe(sealed.length - TAG_BYTES);
    return this.native.open(this.aead(key), nonce, sealed, aad, out) ? out : undefined;
  }

  /**
   * The key, associated data and header of one field's values bound into one native handle, so
   * each value passes only itself: `<header><base64url nonce>:<base64url ciphertext+tag>`, with the
   * nonce drawn natively from a block of OpenSSL CSPRNG output (one RAND_bytes per 256 values).
   */
  sealer(key: KeyObject, aad: Buffer, header: string): Sealer {
    const { native } = this;
    const handle = native.sealer(this.aead(key), aad, header);
    return { seal: (plaintext) => native.sealWith(handle, plaintext) };
  }

  private mac(key: KeyObject): MacHandle {
    return this.handle(this.macKeys, key, (bytes) => this.native.macKey(bytes));
  }

  /** HMAC-SHA-256 (32 bytes). */
  hmac(key: KeyObject, data: Buffer): Buffer {
    const out = Buffer.allocUnsafe(MAC_BYTES);
    this.native.hmac(this.mac(key), data, out);
    return out;
  }

  /** An index key and its prefix bound once: `<prefix><base64url HMAC-SHA-256>` of each value in one native call. */
  indexer(key: KeyObject, prefix: string): Indexer {
    const { native } = this;
    const handle = native.indexer(this.mac(key), prefix);
    return { index: (data) => native.indexWith(handle, data) };
  }

  /**
   * Decrypts many envelope texts in one native call, `texts[i]` under `keys[keyOf[i]]`: a field's
   * values under one shared key and a result's rows each under another person's key alike.
   * `starts[i]` is where the header of `texts[i]` ends and its 16-character nonce text begins; the
   * sealed body follows after ':' to the end. The associated data of each value is its header
   * text as stored followed by `binding` (the envelope's rule, see codec/envelope.ts). Values the
   * native side does not decide (anything malformed, non-canonical or failing authentication) get
   * `ends[i] < 0`, and the caller takes its one-value path for them, so every error is raised by
   * the same code whatever the backend.
   */
  openTexts(keys: readonly KeyObject[], keyOf: Uint32Array, binding: Buffer, texts: readonly string[], starts: Uint32Array): OpenedTexts {
    let capacity = 0;
    for (let i = 0; i < texts.length; i++) {
      const text: unknown = texts[i];
      if (typeof text === 'string') capacity += Math.max(0, text.length - (starts[i] ?? 0) - NONCE_FIELD);
    }
    // Base64url text of n bytes is at least 4n/3 characters: 3/4 of the text bounds the plaintext.
    const out = Buffer.allocUnsafe(Math.ceil((capacity * 3) / 4));
    const ends = new Int32Array(texts.length);
    this.native.openTexts(
      keys.map((k) => this.aead(k)),
      keyOf,
      binding,
      texts,
      starts,
      out,
      ends,
    );
    return { out, ends };
  }

  /** {@link openTexts} of String values: each decided value's string made natively, `undefined` for the others. */
  openStrings(keys: readonly KeyObject[], keyOf: Uint32Array, binding: Buffer, texts: readonly string[], starts: Uint32Array): (string | undefined)[] {
    return this.native.openStrings(
      keys.map((k) => this.aead(k)),
      keyOf,
      binding,
      texts,
      starts,
    );
  }

  /** One envelope text, as {@link openTexts} of one: its plaintext, or `undefined` when not decided here. */
  openText(key: KeyObject, binding: Buffer, text: string, start: number): Buffer | undefined {
    const { keyOf, starts, ends } = this.one;
    const out = Buffer.allocUnsafe(Math.ceil((Math.max(0, text.length - start - NONCE_FIELD) * 3) / 4));
    starts[0] = start;
    this.native.openTexts([this.aead(key)], keyOf, binding, [text], starts, out, ends);
    return ends[0]! < 0 ? undefined : out.subarray(0, ends[0]);
  }

  /** {@link openText} of a String value: the string is made natively (no Buffer, no arrays per value). */
  openString(key: KeyObject, binding: Buffer, text: string, start: number): string | undefined {
    return this.native.openString(this.aead(key), binding, text, start);
  }
}

/** Why the native module is or is not in use: shown by {@link nativeCryptoStatus} and the audit log. */
export type NativeStatus =
  | { readonly loaded: true; readonly crypto: NativeCrypto; /** The file loaded. */ readonly path: string }
  | { readonly loaded: false; readonly reason: string };

let status: NativeStatus | undefined;

/**
 * Loads the native module once per process (per worker thread), and checks it against node:crypto
 * on fixed inputs before trusting it: a prebuild that loads but computes anything else is refused.
 * Never throws; a module that cannot load (another platform, musl, no prebuild, a Node without
 * OpenSSL's symbols) gives `loaded: false` and the reason.
 */
export function loadNativeCrypto(): NativeStatus {
  if (status) return status;
  try {
    // Same depth from src/crypto and dist/crypto: the package root holds prebuilds/.
    const finder = require('node-gyp-build') as { resolve(dir: string): string };
    const file = finder.resolve(path.join(__dirname, '..', '..'));
    const crypto = new NativeCrypto(require(file) as NativeModule);
    const problem = selfTest(crypto);
    status = problem ? { loaded: false, reason: `self-test failed: ${problem}` } : { loaded: true, crypto, path: file };
  } catch (error) {
    status = { loaded: false, reason: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  }
  return status;
}

/**
 * Known-answer comparison with node:crypto; the name of the first primitive that differs. The text
 * entry points are checked too: every write and read of the library goes through them, not through
 * seal/open, so a module whose base64url, UTF-8 conversion or nonce drawing is wrong must be refused
 * here rather than write envelopes nothing can read.
 * @internal Exported for the test that feeds it modules computing something else.
 */
export function selfTest(native: NativeCrypto): string | undefined {
  const raw = Buffer.alloc(KEY_BYTES, 7);
  const key = createSecretKey(raw);
  const nonce = Buffer.alloc(12, 1);
  const aad = Buffer.from('pce:self-test', 'utf8');
  const plaintext = Buffer.from('prisma-column-encryption', 'utf8');
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES }).setAAD(aad);
  const expected = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  const sealed = native.seal(key, nonce, plaintext, aad);
  if (!sealed.equals(expected)) return 'seal';
  if (!native.open(key, nonce, sealed, aad)?.equals(plaintext)) return 'open';
  sealed[0]! ^= 1;
  if (native.open(key, nonce, sealed, aad) !== undefined) return 'open accepted a tampered value';
  if (!native.hmac(key, plaintext).equals(createHmac('sha256', key).update(plaintext).digest())) return 'hmac';
  return selfTestText(native, key);
}

/** The text entry points against node:crypto: a string with 2-, 3- and 4-byte characters and a lone surrogate (U+FFFD). */
function selfTestText(native: NativeCrypto, key: KeyObject): string | undefined {
  const text = 'prisma-column-encryption \u00e9\u20ac\u{1f600}\ud800';
  const bytes = Buffer.from(text, 'utf8');
  const header = 'pce:v1:self-test:';
  const binding = Buffer.from('Self.test', 'utf8');
  const aad = Buffer.concat([Buffer.from(header, 'utf8'), binding]);
  const sealer = native.sealer(key, aad, header);
  const [first, second] = [sealer.seal(text), sealer.seal(bytes)];
  for (const stored of [first, second]) {
    const body = stored.startsWith(header) ? stored.slice(header.length).split(':') : [];
    if (body.length !== 2 || body[0]!.length !== 16) return 'sealer';
    const sealed = Buffer.from(body[1]!, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(body[0]!, 'base64url'), { authTagLength: TAG_BYTES }).setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      if (!Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]).equals(bytes)) return 'sealer';
    } catch {
      return 'sealer';
    }
  }
  if (first.slice(header.length, header.length + 16) === second.slice(header.length, header.length + 16)) return 'sealer nonces';
  const mac = createHmac('sha256', key).update(bytes).digest('base64url');
  if (native.indexer(key, 'self-test:').index(text) !== `self-test:${mac}`) return 'indexer';
  const expected = bytes.toString('utf8');
  if (native.openString(key, binding, first, header.length) !== expected) return 'openString';
  const strings = native.openStrings([key], new Uint32Array(2), binding, [first, `${first.slice(0, -1)}${first.endsWith('A') ? 'B' : 'A'}`], Uint32Array.of(header.length, header.length));
  if (strings.length !== 2 || strings[0] !== expected || strings[1] !== undefined) return 'openStrings';
  if (!native.openText(key, binding, second, header.length)?.equals(bytes)) return 'openTexts';
  return undefined;
}
