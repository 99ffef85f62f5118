import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { NativeCrypto, selfTest } from '../../src/crypto/native';
import { collectGarbage } from '../support/collectGarbage';
import { describeNative, detached, hmacText, oddView, rawNative, ref, sealText, type RawNative } from './nativeRaw';

/**
 * The native module's one-value exports (aeadKey, macKey, seal, open, hmac, sealer, indexer, sealWith,
 * indexWith, openString)
 * called as a hostile caller would: every argument of the wrong kind or count is a TypeError and
 * never a crash, and every buffer it does accept (empty, detached, at odd offsets, shared, huge)
 * gives node:crypto's bytes. `npm run test:asan` runs this file under AddressSanitizer/UBSan.
 */

/** The module's TypeErrors come from the main realm, not Jest's: matched by name. */
const TYPE_ERROR = expect.objectContaining({ name: 'TypeError' });

/** Values of every kind that is not a Uint8Array (typed arrays of other element types included). */
const NOT_BYTES: readonly unknown[] = [
  undefined,
  null,
  0,
  32,
  -1,
  1.5,
  NaN,
  12n,
  'x'.repeat(32),
  Symbol('s'),
  {},
  { length: 32 },
  [],
  new Array(32).fill(1),
  () => 0,
  new ArrayBuffer(32),
  new SharedArrayBuffer(32),
  new DataView(new ArrayBuffer(32)),
  new Int8Array(32),
  new Uint8ClampedArray(32),
  new Uint16Array(16),
  new Uint32Array(8),
  new Float64Array(4),
  new BigUint64Array(4),
];

describeNative('native module one-value exports against a hostile caller', () => {
  let m: RawNative;
  const keyBytes = randomBytes(32);
  let aead: unknown;
  let mac: unknown;
  let sealerH: unknown;
  let indexerH: unknown;
  let stored: string;

  beforeAll(() => {
    m = rawNative();
    aead = m.aeadKey(keyBytes);
    mac = m.macKey(keyBytes);
    sealerH = m.sealer(aead, Buffer.from('pce:v1:k:User.email'), 'pce:v1:k:');
    indexerH = m.indexer(mac, 'k:');
    stored = m.sealWith(sealerH, 'a@b.example');
  });

  /** Valid arguments of each export, built fresh (outputs are written to). */
  const valid = (): Record<string, unknown[]> => ({
    aeadKey: [Buffer.from(keyBytes)],
    macKey: [Buffer.from(keyBytes)],
    seal: [aead, randomBytes(12), Buffer.alloc(5), Buffer.alloc(3), Buffer.alloc(21)],
    open: [aead, randomBytes(12), Buffer.alloc(21), Buffer.alloc(3), Buffer.alloc(5)],
    hmac: [mac, Buffer.alloc(5), Buffer.alloc(32)],
    sealer: [aead, Buffer.alloc(3), 'pce:v1:k:'],
    indexer: [mac, 'k:'],
    sealWith: [sealerH, Buffer.alloc(5), randomBytes(12)],
    indexWith: [indexerH, Buffer.alloc(5)],
    openString: [aead, Buffer.from('User.email'), stored, 9],
  });
  /** Arguments that also take a value of another kind: plaintext as a string or bytes, the nonce left out. */
  const alsoAccepted: Record<string, Record<number, (w: unknown) => boolean>> = {
    sealWith: { 1: (w) => typeof w === 'string', 2: (w) => w === undefined },
    indexWith: { 1: (w) => typeof w === 'string' },
  };
  const required: Record<string, number> = { sealWith: 2 };

  test('the valid arguments used below are accepted', () => {
    for (const [name, args] of Object.entries(valid())) expect(() => (m as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args)).not.toThrow();
  });

  test('too few arguments, or any argument of the wrong kind (key handles of the other kind included), is a TypeError', () => {
    const call = (name: string, args: unknown[]) => (m as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!(...args);
    for (const [name, args] of Object.entries(valid())) {
      for (let n = 0; n < (required[name] ?? args.length); n++) expect(() => call(name, args.slice(0, n))).toThrow(TYPE_ERROR);
      const handles = [aead, mac, sealerH, indexerH];
      for (let at = 0; at < args.length; at++) {
        // A handle of another kind, a Buffer where a string belongs, a non-number for a number, and every other kind of value.
        const wrong =
          typeof args[at] === 'string'
            ? [...NOT_BYTES.filter((w) => typeof w !== 'string'), Buffer.from('k:'), ...handles]
            : typeof args[at] === 'number'
              ? [...NOT_BYTES.filter((w) => typeof w !== 'number'), ...handles]
              : [...NOT_BYTES, ...handles.filter((h) => h !== args[at])];
        for (const w of wrong.filter((v) => !alsoAccepted[name]?.[at]?.(v))) {
          const bad = valid()[name]!;
          bad[at] = w;
          expect(() => call(name, bad)).toThrow(TYPE_ERROR);
        }
      }
      // Extra arguments are ignored.
      expect(() => call(name, [...args, 1, 2])).not.toThrow();
    }
    // Keys and nonces of every wrong length, detached ones (length 0) included.
    for (const len of [0, 1, 16, 31, 33, 64]) {
      expect(() => m.aeadKey(randomBytes(len))).toThrow(TYPE_ERROR);
      expect(() => m.macKey(randomBytes(len))).toThrow(TYPE_ERROR);
    }
    expect(() => m.aeadKey(detached())).toThrow(TYPE_ERROR);
    for (const n of [detached(12), Buffer.alloc(0), Buffer.alloc(11), Buffer.alloc(13)]) {
      expect(() => m.seal(aead, n, Buffer.alloc(1), Buffer.alloc(0), Buffer.alloc(17))).toThrow(TYPE_ERROR);
      expect(() => m.sealWith(sealerH, Buffer.alloc(1), n)).toThrow(TYPE_ERROR);
    }
    // Outputs of the wrong size (one off either way, detached, empty).
    for (const out of [Buffer.alloc(20), Buffer.alloc(22), detached(21), Buffer.alloc(0)]) expect(() => m.seal(aead, randomBytes(12), Buffer.alloc(5), Buffer.alloc(0), out)).toThrow(TYPE_ERROR);
    for (const out of [Buffer.alloc(4), Buffer.alloc(6), detached(5)]) expect(() => m.open(aead, randomBytes(12), Buffer.alloc(21), Buffer.alloc(0), out)).toThrow(TYPE_ERROR);
    for (const sealed of [Buffer.alloc(15), Buffer.alloc(0), detached(16)]) expect(() => m.open(aead, randomBytes(12), sealed, Buffer.alloc(0), Buffer.alloc(0))).toThrow(TYPE_ERROR);
    for (const out of [Buffer.alloc(31), Buffer.alloc(33), detached(32)]) expect(() => m.hmac(mac, Buffer.alloc(1), out)).toThrow(TYPE_ERROR);
  });

  test('empty, detached, odd-offset and SharedArrayBuffer-backed buffers give node:crypto bytes', () => {
    for (const shared of [false, true]) {
      const raw = randomBytes(32);
      const k = m.aeadKey(oddView(raw, shared));
      const hk = m.macKey(oddView(raw, shared, 1));
      for (const len of [0, 1, 15, 16, 17, 511, 512, 513, 1023, 1024, 1025, 4099]) {
        const nonce = randomBytes(12);
        const pt = randomBytes(len);
        const aad = randomBytes(len % 7);
        const out = oddView(Buffer.alloc(len + 16), shared, 7);
        m.seal(k, oddView(nonce, shared, 5), oddView(pt, shared), oddView(aad, shared, 1), out);
        const expected = ref.seal(raw, nonce, pt, aad);
        expect(Buffer.from(out).equals(expected)).toBe(true);
        const opened = oddView(Buffer.alloc(len), shared, 9);
        expect(m.open(k, oddView(nonce, shared, 2), oddView(expected, shared, 1), oddView(aad, shared, 3), opened)).toBe(true);
        expect(Buffer.from(opened).equals(pt)).toBe(true);
        expect(sealText(m, k, oddView(nonce, shared), oddView(pt, shared, 1), oddView(aad, shared), 'pce:v1:k:')).toBe(ref.sealText(raw, nonce, pt, aad, 'pce:v1:k:'));
        const mac = oddView(Buffer.alloc(32), shared, 11);
        m.hmac(hk, oddView(pt, shared, 6), mac);
        expect(Buffer.from(mac).equals(ref.hmac(raw, pt))).toBe(true);
      }
    }
    // A detached input reads as empty, exactly as node:crypto reads one.
    const raw = randomBytes(32);
    const k = m.aeadKey(raw);
    const nonce = randomBytes(12);
    const out = Buffer.alloc(16);
    m.seal(k, nonce, detached(10), detached(4), out);
    expect(out.equals(ref.seal(raw, nonce, detached(10), detached(4)))).toBe(true);
    expect(sealText(m, k, nonce, detached(3), detached(), 'h:')).toBe(ref.sealText(raw, nonce, Buffer.alloc(0), Buffer.alloc(0), 'h:'));
    expect(hmacText(m, m.macKey(raw), detached(), '')).toBe(ref.hmac(raw, Buffer.alloc(0)).toString('base64url'));
    expect(m.open(k, nonce, out, Buffer.alloc(0), detached(0))).toBe(true);
  });

  test('an output sharing memory with its input: in place gives node:crypto bytes, partly over it is refused', () => {
    const raw = randomBytes(32);
    const k = m.aeadKey(raw);
    for (const len of [1, 16, 33, 1000]) {
      const nonce = randomBytes(12);
      const pt = randomBytes(len);
      const expected = ref.seal(raw, nonce, pt, Buffer.alloc(0));
      const whole = Buffer.alloc(len + 16 + 200);
      pt.copy(whole);
      m.seal(k, nonce, whole.subarray(0, len), Buffer.alloc(0), whole.subarray(0, len + 16));
      expect(whole.subarray(0, len + 16).equals(expected)).toBe(true);
      expect(m.open(k, nonce, whole.subarray(0, len + 16), Buffer.alloc(0), whole.subarray(0, len))).toBe(true);
      expect(whole.subarray(0, len).equals(pt)).toBe(true);
      // node:crypto's output never overlaps its input; here OpenSSL would read what it already overwrote.
      for (const shift of [1, 8, 16, 100].filter((s) => s < len + 16)) {
        const b = Buffer.alloc(len + 16 + 200);
        pt.copy(b, 100);
        const plain = b.subarray(100, 100 + len);
        for (const at of shift < len ? [100 + shift, 100 - shift] : [100 - shift]) {
          expect(() => m.seal(k, nonce, plain, Buffer.alloc(0), b.subarray(at, at + len + 16))).toThrow(TYPE_ERROR);
        }
        expected.copy(b, 100);
        const sealed = b.subarray(100, 100 + len + 16);
        expect(() => m.open(k, nonce, sealed, Buffer.alloc(0), b.subarray(100 + shift, 100 + shift + len))).toThrow(TYPE_ERROR);
        expect(sealed.equals(expected)).toBe(true);
      }
    }
  });

  test('headers and prefixes: ASCII under 128 characters as given (NUL too); longer, non-ASCII or lone surrogates refused, never rewritten', () => {
    const raw = randomBytes(32);
    const k = m.aeadKey(raw);
    const hk = m.macKey(raw);
    const nonce = randomBytes(12);
    const pt = Buffer.from('value');
    for (const header of ['', ':', 'a\u0000b:', '\u007f', 'x'.repeat(126), 'y'.repeat(127)]) {
      expect(sealText(m, k, nonce, pt, Buffer.alloc(0), header)).toBe(ref.sealText(raw, nonce, pt, Buffer.alloc(0), header));
      expect(hmacText(m, hk, pt, header)).toBe(`${header}${ref.hmac(raw, pt).toString('base64url')}`);
    }
    // U+0141 and U+0100 keep an ASCII low byte: a Latin-1 copy would turn 'pce:v1:\u0141:' into 'pce:v1:A:'.
    const refused = ['x'.repeat(128), 'x'.repeat(1000), 'pce:v1:\u0141:', '\u0100', 'pce:\u00e9:', '\u0080', 'k\ud800:', '\udfff', '\u{1f600}:', `${'x'.repeat(126)}\u0141`];
    for (const header of refused) {
      expect(() => sealText(m, k, nonce, pt, Buffer.alloc(0), header)).toThrow(TYPE_ERROR);
      expect(() => hmacText(m, hk, pt, header)).toThrow(TYPE_ERROR);
    }
  });

  test('values around the stack buffers (1024 sealed bytes, 2048 text characters), of every header length, and of 6 MiB', () => {
    const raw = randomBytes(32);
    const k = m.aeadKey(raw);
    const hk = m.macKey(raw);
    const lengths = [...Array.from({ length: 60 }, (_, i) => 980 + i), ...Array.from({ length: 70 }, (_, i) => 1450 + i), 2047, 2048, 2049, 65536];
    for (const header of ['', 'pce:v2:s:s:0123456789abcdef0123456789abcdef:', 'h'.repeat(127)]) {
      for (const len of lengths) {
        const nonce = randomBytes(12);
        const pt = randomBytes(len);
        const aad = randomBytes(len % 600);
        expect(sealText(m, k, nonce, pt, aad, header)).toBe(ref.sealText(raw, nonce, pt, aad, header));
      }
    }
    const big = randomBytes(6 * 1024 * 1024 + 5);
    const nonce = randomBytes(12);
    const out = Buffer.alloc(big.length + 16);
    m.seal(k, nonce, big, big.subarray(0, 70000), out);
    expect(out.equals(ref.seal(raw, nonce, big, big.subarray(0, 70000)))).toBe(true);
    const back = Buffer.alloc(big.length);
    expect(m.open(k, nonce, out, big.subarray(0, 70000), back)).toBe(true);
    expect(back.equals(big)).toBe(true);
    out[out.length - 1]! ^= 1;
    expect(m.open(k, nonce, out, big.subarray(0, 70000), back)).toBe(false);
    // The partial plaintext of a value that fails is wiped.
    expect(back.equals(Buffer.alloc(big.length))).toBe(true);
    expect(sealText(m, k, nonce, big, Buffer.alloc(0), 'pce:v1:k:')).toBe(ref.sealText(raw, nonce, big, Buffer.alloc(0), 'pce:v1:k:'));
    expect(hmacText(m, hk, big, 'k:')).toBe(`k:${ref.hmac(raw, big).toString('base64url')}`);
  });

  test('the load-time self-test refuses a module whose text entry points (what every read and write uses) compute anything else', () => {
    const withExport = (name: keyof RawNative, f: (...args: unknown[]) => unknown) =>
      // The module's exports are read-only and not enumerable: the real module is the prototype, one export shadowed.
      new NativeCrypto(Object.create(m, { [name]: { value: f } }) as ConstructorParameters<typeof NativeCrypto>[0]);
    expect(selfTest(withExport('seal', m.seal))).toBeUndefined();
    const broken: [keyof RawNative, (...args: unknown[]) => unknown, string][] = [
      // A string converted as Latin-1 (or with its lone surrogate dropped) instead of as Buffer.from's UTF-8.
      ['sealWith', (h, p, n) => m.sealWith(h, typeof p === 'string' ? Buffer.from(p, 'latin1') : p, n), 'sealer'],
      ['sealWith', (h, p, n) => m.sealWith(h, typeof p === 'string' ? p.replace('\ud800', '') : p, n), 'sealer'],
      // Every value under one nonce: each envelope alone still decrypts.
      ['sealWith', (h, p) => m.sealWith(h, p, Buffer.alloc(12)), 'sealer nonces'],
      ['indexWith', (h, d) => m.indexWith(h, typeof d === 'string' ? d.replace('\ud800', '\ufffd\ufffd') : d), 'indexer'],
      ['openString', (...a) => m.openString(...a)?.normalize('NFD'), 'openString'],
      // A tampered value decided (Array.from: the result's undecided entries are holes, which map skips).
      [
        'openStrings',
        (...a) => {
          const got = m.openStrings(...a);
          return Array.from(got, (v) => v ?? got[0]);
        },
        'openStrings',
      ],
      ['openTexts', (...a) => (m.openTexts(...a), (a[5] as Uint8Array).reverse(), 1), 'openTexts'],
    ];
    for (const [name, f, problem] of broken) expect([name, selfTest(withExport(name, f))]).toEqual([name, problem]);
  });

  test('a nonce given in shared memory another thread rewrites: the envelope names the nonce it was sealed under', async () => {
    const raw = randomBytes(32);
    const aad = Buffer.from('pce:v1:k:M.f');
    const sealer = m.sealer(m.aeadKey(raw), aad, 'pce:v1:k:');
    const nonce = new Uint8Array(new SharedArrayBuffer(12));
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const flipper = new Worker(
      `const { workerData: { nonce, stop } } = require('node:worker_threads');
       for (let i = 0; Atomics.load(stop, 0) === 0; i++) nonce.fill(i & 0xff);`,
      { eval: true, workerData: { nonce, stop } },
    );
    const plaintext = randomBytes(2000);
    let wrong = 0;
    try {
      await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 3000; i++) {
        const [, , , nonceText, sealed] = m.sealWith(sealer, plaintext, nonce).split(':');
        if (!ref.open(raw, Buffer.from(nonceText!, 'base64url'), Buffer.from(sealed!, 'base64url'), aad)?.equals(plaintext)) wrong++;
      }
    } finally {
      Atomics.store(stop, 0, 1);
      await flipper.terminate();
    }
    expect(wrong).toBe(0);
  });

  test('a sealer or indexer outlives the key handle it was made from (and the key outlives neither)', async () => {
    const raw = randomBytes(32);
    let collected = 0;
    const registry = new FinalizationRegistry(() => collected++);
    const make = () => {
      const k = m.aeadKey(raw);
      registry.register(k as object, 'key');
      return { sealer: m.sealer(k, Buffer.from('aad'), 'h:'), indexer: m.indexer(m.macKey(raw), 'k:') };
    };
    const { sealer, indexer } = make();
    // The key handles are unreachable now: collect them (their finalizers run) and keep using what was made from them.
    for (let i = 0; i < 5; i++) {
      collectGarbage();
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Not vacuous: the key handle really was collected before the sealer is used.
    expect(collected).toBe(1);
    const nonce = randomBytes(12);
    expect(m.sealWith(sealer, Buffer.from('value'), nonce)).toBe(ref.sealText(raw, nonce, Buffer.from('value'), Buffer.from('aad'), 'h:'));
    expect(m.indexWith(indexer, 'value')).toBe(`k:${ref.hmac(raw, Buffer.from('value')).toString('base64url')}`);
    // Many handles made and dropped: every finalizer path runs (under ASan, any use after free or double free aborts).
    for (let i = 0; i < 2000; i++) make();
    collectGarbage();
    await new Promise((resolve) => setImmediate(resolve));
  });
});

