import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { DecryptionError, cryptoBackend } from '../../src';
import { backendNamed } from '../../src/codec/backendChoice';
import { FieldCodec } from '../../src/codec/fieldCodec';
import { loadNativeCrypto, type NativeCrypto } from '../../src/crypto/native';
import type { EncryptedFieldSpec } from '../../src/schema';
import { randomKey, testKeyring } from '../support/keys';
import { encryptedFields } from '../../generated/postgres/encryption';
import type { CryptoBackend } from '../../src/codec/backend';
import { subjectKeys, type ChosenKey, type LoadedSubjectKey } from '../../src/codec/keyChoice';
import { TYPED_FIELDS, typedArbitraries } from './typedArbitraries';
import { rawNative } from './nativeRaw';

/**
 * The native backend against node:crypto, byte for byte: random keys, nonces, AAD and values of
 * every length up to 64 KiB; both must accept exactly what the other produced and reject the same
 * tampering. node:crypto here is written out directly (not through the library) so the reference
 * cannot share a mistake with the code under test.
 */

// The package ships a linux-x64 (glibc) prebuild and CI builds it: there, not loading is a failure.
const mustLoad = process.platform === 'linux' && process.arch === 'x64';
const status = loadNativeCrypto();
const describeNative = status.loaded || mustLoad ? describe : describe.skip;

const TAG = 16;
const ref = {
  seal(key: KeyObject, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG }).setAAD(aad);
    return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  },
  open(key: KeyObject, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer | undefined {
    if (sealed.length < TAG) return undefined;
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG }).setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG));
    const body = d.update(sealed.subarray(0, sealed.length - TAG));
    try {
      d.final();
    } catch {
      return undefined;
    }
    return body;
  },
  hmac: (key: KeyObject, data: Buffer) => createHmac('sha256', key).update(data).digest(),
};

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
const key = bytes(32, 32).map((b) => createSecretKey(b));
const nonce = bytes(12, 12);
/** Mostly short values (the common case), some up to 64 KiB. */
const value = fc.oneof({ weight: 3, arbitrary: bytes(0, 64) }, { weight: 1, arbitrary: bytes(0, 65536) });
const aad = bytes(0, 96);

describeNative('native crypto backend matches node:crypto', () => {
  let native: NativeCrypto;

  beforeAll(() => {
    if (!status.loaded) throw new Error(`native crypto module did not load: ${status.reason}`);
    native = status.crypto;
  });

  // scripts/asan.sh names its sanitized build: make sure that is the one under test.
  const expectedBuild = process.env.PCE_EXPECT_NATIVE_BUILD;
  (expectedBuild ? test : test.skip)('the sanitized build is the one loaded', () => {
    expect(status.loaded && status.path.startsWith(`${expectedBuild}/`)).toBe(true);
  });

  test('seal gives the same bytes, and each side opens what the other sealed', () => {
    fc.assert(
      fc.property(key, nonce, value, aad, (k, n, v, a) => {
        const sealed = native.seal(k, n, v, a);
        expect(sealed.equals(ref.seal(k, n, v, a))).toBe(true);
        expect(native.open(k, n, sealed, a)?.equals(v)).toBe(true);
        expect(ref.open(k, n, sealed, a)?.equals(v)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('sealers and indexers give exactly the envelope and blind index text built from node:crypto output', () => {
    const m = rawNative();
    const header = fc.stringMatching(/^[A-Za-z0-9_:-]{0,100}$/);
    const envelope = (k: KeyObject, h: string, n: Buffer, v: Buffer, a: Buffer) => `${h}${n.toString('base64url')}:${ref.seal(k, n, v, a).toString('base64url')}`;
    fc.assert(
      fc.property(key, nonce, value, aad, header, (k, n, v, a, h) => {
        // A caller's nonce (the raw export), and the nonce drawn natively (the library's path): read back from the text.
        expect(m.sealWith(m.sealer(m.aeadKey(k.export()), a, h), v, n)).toBe(envelope(k, h, n, v, a));
        const drawn = native.sealer(k, a, h).seal(v);
        expect(drawn).toBe(envelope(k, h, Buffer.from(drawn.slice(h.length, h.length + 16), 'base64url'), v, a));
        expect(native.indexer(k, h).index(v)).toBe(`${h}${ref.hmac(k, v).toString('base64url')}`);
      }),
      { numRuns: 300 },
    );
    // Every length class of the base64url tail (0, 1 and 2 bytes left over), around the stack/heap switch too.
    const k = createSecretKey(randomBytes(32));
    const handle = m.sealer(m.aeadKey(k.export()), Buffer.alloc(0), 'pce:v1:k:');
    for (const len of [0, 1, 2, 3, 1006, 1007, 1008, 1009, 1023, 1024, 1025, 4096]) {
      const n = randomBytes(12);
      const v = randomBytes(len);
      expect(m.sealWith(handle, v, n)).toBe(envelope(k, 'pce:v1:k:', n, v, Buffer.alloc(0)));
    }
    // Headers are ASCII and short; anything else is refused, never truncated.
    expect(() => native.sealer(k, Buffer.alloc(0), 'p\u00e9:')).toThrow(/sealer expects/);
    expect(() => native.sealer(k, Buffer.alloc(0), 'x'.repeat(128))).toThrow(/sealer expects/);
    expect(() => native.indexer(k, 'x'.repeat(128))).toThrow(/indexer expects/);
  });

  test('a string plaintext is sealed and indexed as its UTF-8 (Buffer.from), lone surrogates and the stack/heap switch included', () => {
    const m = rawNative();
    const raw = randomBytes(32);
    const sealer = m.sealer(m.aeadKey(raw), Buffer.from('aad'), 'pce:v1:k:');
    const indexer = m.indexer(m.macKey(raw), 'i:');
    const check = (text: string) => {
      const n = randomBytes(12);
      expect(m.sealWith(sealer, text, n)).toBe(m.sealWith(sealer, Buffer.from(text, 'utf8'), n));
      expect(m.indexWith(indexer, text)).toBe(m.indexWith(indexer, Buffer.from(text, 'utf8')));
    };
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => check(text)), { numRuns: 300 });
    // Hand-picked: lone and paired surrogates, and strings whose UTF-8 ends on every byte around 1024 (the stack buffer) with 1- to 4-byte characters.
    for (const text of ['', '\ud800', 'a\udc00b', '\ud83d\ude00', '\udbff\udfff\ud800']) check(text);
    for (const ch of ['a', '\u00e9', '\u20ac', '\ud83d\ude00']) {
      for (let bytes = 1010; bytes <= 1030; bytes++) check('x'.repeat(bytes % Buffer.byteLength(ch)) + ch.repeat(Math.floor(bytes / Buffer.byteLength(ch))));
    }
    check('\u20ac'.repeat(30000));
  });

  test('natively drawn nonces are all distinct, across many refills of the block', () => {
    const sealer = native.sealer(createSecretKey(randomBytes(32)), Buffer.alloc(0), 'h:');
    const seen = new Set<string>();
    for (let i = 0; i < 20000; i++) seen.add(sealer.seal('').slice(2, 18));
    expect(seen.size).toBe(20000);
  });

  test('openString gives the String value natively, and leaves what it cannot decide to the reference path', () => {
    const k = createSecretKey(randomBytes(32));
    const binding = Buffer.from('User.email');
    const header = 'pce:v1:k1:';
    const sealer = native.sealer(k, Buffer.concat([Buffer.from(header), binding]), header);
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 600 }), (text) => {
        const stored = sealer.seal(text);
        expect(native.openString(k, binding, stored, header.length)).toBe(Buffer.from(text, 'utf8').toString('utf8'));
        const flipped = stored.slice(0, -2) + (stored.at(-2) === 'A' ? 'B' : 'A') + stored.at(-1);
        expect(native.openString(k, binding, flipped, header.length)).toBeUndefined();
        expect(native.openString(k, Buffer.from('User.other'), stored, header.length)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  test('every length from 0 to 4 KiB, and exactly 64 KiB, round-trips identically', () => {
    const k = createSecretKey(randomBytes(32));
    const n = randomBytes(12);
    const a = randomBytes(40);
    const all = randomBytes(65536);
    for (const length of [...Array.from({ length: 4097 }, (_, i) => i), 65535, 65536]) {
      const v = all.subarray(0, length);
      const sealed = native.seal(k, n, v, a);
      if (!sealed.equals(ref.seal(k, n, v, a)) || !native.open(k, n, sealed, a)?.equals(v)) throw new Error(`length ${length} differs`);
    }
  });

  test('tampering with any bit of ciphertext, tag, nonce or AAD, or a wrong key, is rejected by both', () => {
    const tamper = fc.constantFrom('sealed', 'nonce', 'aad', 'key', 'truncate');
    fc.assert(
      fc.property(key, nonce, bytes(0, 200), aad, tamper, fc.nat(), (k, n, v, a, where, at) => {
        const sealed = ref.seal(k, n, v, a);
        let [k2, n2, s2, a2] = [k, Buffer.from(n), Buffer.from(sealed), Buffer.from(a)];
        const flip = (b: Buffer) => {
          b[at % b.length]! ^= 1 << at % 8;
        };
        if (where === 'sealed') flip(s2);
        else if (where === 'nonce') flip(n2);
        else if (where === 'aad') a2 = a.length === 0 ? Buffer.from([at & 0xff]) : (flip(a2), a2);
        else if (where === 'key') k2 = createSecretKey(Buffer.from(k.export().map((x, i) => (i === at % 32 ? x ^ 1 : x))));
        else s2 = s2.subarray(0, at % s2.length);
        expect(native.open(k2, n2, s2, a2)).toBeUndefined();
        expect(ref.open(k2, n2, s2, a2)).toBeUndefined();
      }),
      { numRuns: 400 },
    );
  });

  test('HMAC-SHA-256 is the same for random keys and data', () => {
    fc.assert(
      fc.property(key, value, (k, d) => {
        expect(native.hmac(k, d).equals(ref.hmac(k, d))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  test('batch decryption of envelope text decides exactly the canonical, authentic values, with the same plaintext, each under its own key', () => {
    const prefix = 'pce:v1:k1:';
    const damage = fc.constantFrom('none', 'none', 'flip', 'pad', 'junk', 'non-ascii', 'short', 'trailing-bits');
    fc.assert(
      fc.property(fc.array(key, { minLength: 1, maxLength: 3 }), aad, fc.array(fc.tuple(nonce, fc.oneof({ weight: 4, arbitrary: bytes(0, 300) }, { weight: 1, arbitrary: bytes(400, 2000) }), damage, fc.nat(2)), { maxLength: 20 }), (keys, a, items) => {
        const texts: string[] = [];
        const expected: (Buffer | undefined)[] = [];
        const keyOf = new Uint32Array(items.length);
        // The associated data is the header as stored, then the binding.
        const full = Buffer.concat([Buffer.from(prefix), a]);
        for (const [j, [n, v, how, which]] of items.entries()) {
          keyOf[j] = which % keys.length;
          const sealed = ref.seal(keys[keyOf[j]!]!, n, v, full);
          let body = sealed.toString('base64url');
          let nonceText = n.toString('base64url');
          let plain: Buffer | undefined = v;
          if (how === 'flip') {
            const flipped = Buffer.from(sealed);
            flipped[0]! ^= 0x80;
            [body, plain] = [flipped.toString('base64url'), undefined];
          } else if (how === 'pad') [body, plain] = [`${body}=`, undefined];
          else if (how === 'junk') [body, plain] = [`${body.slice(0, 4)}.${body.slice(4)}`, undefined];
          else if (how === 'non-ascii') [body, plain] = [`${body.slice(0, 4)}\u0141${body.slice(4)}`, undefined];
          else if (how === 'short') [nonceText, plain] = [nonceText.slice(1), undefined];
          else if (how === 'trailing-bits' && body.length % 4 !== 0) {
            // Same bytes under Node's lenient decoder, but not their canonical text: left to the reference path.
            const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
            [body, plain] = [body.slice(0, -1) + alphabet[alphabet.indexOf(body.at(-1)!) | 1], undefined];
          }
          texts.push(`${prefix}${nonceText}:${body}`);
          expected.push(plain);
        }
        const { out, ends } = native.openTexts(keys, keyOf, a, texts, new Uint32Array(texts.length).fill(prefix.length));
        let start = 0;
        expected.forEach((plain, i) => {
          if (plain === undefined) {
            expect(ends[i]).toBeLessThan(0);
          } else {
            expect(ends[i]).toBeGreaterThanOrEqual(0);
            expect(out.subarray(start, ends[i]).equals(plain)).toBe(true);
            start = ends[i]!;
          }
        });
        // The String variant decides the same values, its strings the UTF-8 decoding of the same plaintext.
        const strings = native.openStrings(keys, keyOf, a, texts, new Uint32Array(texts.length).fill(prefix.length));
        expect(strings).toHaveLength(texts.length);
        expected.forEach((plain, i) => expect(strings[i]).toBe(plain?.toString('utf8')));
      }),
      { numRuns: 200 },
    );
  });

  // Native errors come from Node's own realm, not jest's sandbox: match their messages, not `TypeError`.
  test('arguments of the wrong kind are refused with an error, not a crash', () => {
    const k = createSecretKey(randomBytes(32));
    const n = randomBytes(12);
    expect(() => native.seal(k, randomBytes(11), Buffer.alloc(1), Buffer.alloc(0))).toThrow(/seal expects/);
    expect(() => native.seal(createSecretKey(randomBytes(16)), n, Buffer.alloc(1), Buffer.alloc(0))).toThrow(/32-byte secret key/);
    expect(() => native.open(k, n, 'twenty characters...' as unknown as Buffer, Buffer.alloc(0))).toThrow(/open expects/);
    expect(native.open(k, n, Buffer.alloc(15), Buffer.alloc(0))).toBeUndefined();
    expect(() => native.openTexts([k], new Uint32Array(1), Buffer.alloc(0), [1 as unknown as string], new Uint32Array(1))).not.toThrow();
    expect(native.openTexts([k], new Uint32Array(1), Buffer.alloc(0), ['x'], new Uint32Array([99])).ends[0]).toBeLessThan(0);
    // A key index past the keys given is not decided, never read out of bounds.
    expect(native.openTexts([k], new Uint32Array([5]), Buffer.alloc(0), ['pce:v1:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA'], new Uint32Array([10])).ends[0]).toBeLessThan(0);
  });
});

/**
 * The same through the per-field codec the extension and the migrator use: values written under
 * one backend read back under the other, blind indexes agree, and the batch path (one native call
 * per field of a result) gives what one-by-one decryption gives, the same typed error included.
 */
describeNative('FieldCodec on the native backend matches node:crypto', () => {
  const keyring = testKeyring({ data: [{ id: 'd1', key: randomKey() }, { id: 'd2', key: randomKey() }] });
  const spec: EncryptedFieldSpec = { index: 'emailIndex', normalize: ['lowercase'], readMode: 'passthrough' };
  const codecs = () => ({ node: new FieldCodec('User', 'email', spec, keyring, { backend: backendNamed('node') }), native: new FieldCodec('User', 'email', spec, keyring, { backend: backendNamed('native') }) });
  const outcome = (run: () => unknown) => {
    try {
      return { value: run() };
    } catch (error) {
      return { error: error instanceof DecryptionError ? error.reason : String(error) };
    }
  };

  test('the default backend here is native, and says so', () => {
    expect(cryptoBackend()).toEqual({ name: 'native' });
  });

  test('envelopes and blind indexes cross between backends', () => {
    const { node, native } = codecs();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (v) => {
        expect(native.decrypt(node.encrypt(v))).toBe(v);
        expect(node.decrypt(native.encrypt(v))).toBe(v);
        expect(native.indexForWrite(v)).toBe(node.indexForWrite(v));
        expect(native.indexesForLookup(v)).toEqual(node.indexesForLookup(v));
      }),
      { numRuns: 200 },
    );
  });

  test('decrypt and decryptMany of a mixed result on native equal decrypt of each value on node, errors included', () => {
    const { node, native } = codecs();
    const other = new FieldCodec('User', 'name', spec, keyring, { backend: backendNamed('node') });
    const stored = fc.oneof(
      fc.string({ maxLength: 40 }).map((v) => node.encrypt(v) as string),
      fc.string({ maxLength: 40 }).map((v) => other.encrypt(v) as string),
      fc.string({ maxLength: 40 }).map((v) => `${node.encrypt(v).slice(0, -2)}AA`),
      fc.string({ maxLength: 40 }).map((v) => node.encrypt(v).replace('pce:v1:d1:', 'pce:v1:zz:')),
      fc.constantFrom('legacy plaintext', 'pce:v9:x', 'pce:v1:d1:short'),
    );
    fc.assert(
      fc.property(fc.array(stored, { maxLength: 12 }), (values) => {
        const many = outcome(() => native.decryptMany(values));
        const each = outcome(() => values.map((v) => node.decrypt(v)));
        // One value at a time (native parses the whole text itself): the same value or the same error.
        for (const v of values) expect(outcome(() => native.decrypt(v))).toEqual(outcome(() => node.decrypt(v)));
        if ('value' in each) expect(many).toEqual(each);
        else expect('error' in many && values.some((v) => outcome(() => node.decrypt(v)).error === many.error)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test.each([false, true])('subject-keyed values, one key per row: decryptMany on native equals decrypt on node (erasedAsNull %s), unknown, erased and damaged ones included', (erasedAsNull) => {
    const subjectKey = (id: string) => ({ scope: 'subject' as const, id, key: createSecretKey(randomBytes(32)) });
    const live = Array.from({ length: 6 }, (_, i) => subjectKey(`subj-${i}`));
    const erased = subjectKey('erased-1');
    const gone = subjectKey('not-loaded');
    const loaded = new Map<string, LoadedSubjectKey>([...live.map((k) => [k.id, k] as const), [erased.id, 'subject-erased']]);
    const read = subjectKeys(keyring, { loaded });
    const make = (backend: CryptoBackend) => new FieldCodec('Person', 'note', { readMode: 'strict' }, keyring, { backend, subjectKeyed: true, erasedAsNull });
    const node = make(backendNamed('node'));
    const native = make(backendNamed('native'));
    const under = (k: ChosenKey, v: string) => node.encrypt(v, subjectKeys(keyring, { write: k })) as string;
    const stored = fc.oneof(
      fc.tuple(fc.nat(live.length - 1), fc.string({ maxLength: 40 })).map(([i, v]) => under(live[i]!, v)),
      fc.string({ maxLength: 40 }).map((v) => under(erased, v)),
      fc.string({ maxLength: 40 }).map((v) => under(gone, v)),
      fc.string({ maxLength: 40 }).map((v) => `${under(live[0]!, v).slice(0, -2)}AA`),
      fc.string({ maxLength: 40 }).map((v) => under(live[1]!, v).replace('subj-1', 'subj-2')),
      // A shared-key value in a subject model (written before the model had a subject).
      fc.string({ maxLength: 40 }).map((v) => under({ scope: 'shared', id: 'd1', key: keyring.dataKey('d1')!.key }, v)),
      fc.constantFrom('pce:v2:s:s:', 'pce:v2:s:s:no-colon-after', 'pce:v2:s:s:bad id:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA', 'pce:v2:s:s::AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA'),
    );
    fc.assert(
      fc.property(fc.array(stored, { maxLength: 12 }), (values) => {
        for (const v of values) expect(outcome(() => native.decrypt(v, read))).toEqual(outcome(() => node.decrypt(v, read)));
        const each = outcome(() => values.map((v) => node.decrypt(v, read)));
        const many = outcome(() => native.decryptMany(values, read));
        if ('value' in each) expect(many).toEqual(each);
        else expect('error' in many && values.some((v) => outcome(() => node.decrypt(v, read)).error === many.error)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  /** The native backend, counting how often each path runs. */
  const counted = () => {
    const inner = backendNamed('native');
    const calls = { batch: 0, one: 0 };
    const backend: CryptoBackend = {
      ...inner,
      open: (...args) => (calls.one++, inner.open(...args)),
      openTexts: (...args) => (calls.batch++, inner.openTexts!(...args)),
    };
    return { backend, calls };
  };

  test.each(TYPED_FIELDS)('typed values (%s): decryptMany on native, in one batch call, equals decrypt on node, damaged values included', (field) => {
    const typedSpec = encryptedFields.models.NatalChart.encrypted[field] as EncryptedFieldSpec;
    const node = new FieldCodec('NatalChart', field, typedSpec, keyring, { backend: backendNamed('node') });
    const { backend, calls } = counted();
    const native = new FieldCodec('NatalChart', field, typedSpec, keyring, { backend });
    const arb = typedArbitraries('postgres')[field] as fc.Arbitrary<unknown>;
    let authentic = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(arb, fc.constantFrom('none', 'none', 'none', 'tampered')), { maxLength: 12 }), (items) => {
        const stored = items.map(([v, how]) => (how === 'none' ? node.encrypt(v) : `${node.encrypt(v).slice(0, -2)}AA`) as string);
        const before = { ...calls };
        expect(outcome(() => native.decryptMany(stored))).toEqual(outcome(() => stored.map((v) => node.decrypt(v))));
        // Authentic values never take the one-value path; one batch call decides all of them.
        const good = items.filter(([, how]) => how === 'none').length;
        if (items.every(([, how]) => how === 'none')) expect(calls.one - before.one).toBe(0);
        if (good > 0) expect(calls.batch - before.batch).toBe(1);
        authentic += good;
      }),
      { numRuns: 100 },
    );
    expect(authentic).toBeGreaterThan(100);
  });
});
