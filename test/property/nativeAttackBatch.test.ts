import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { parseCiphertext, parseHeader } from '../../src/crypto/ciphertext';
import { describeNative, detached, nativePath, rawNative, ref, type RawNative } from './nativeRaw';

/**
 * openTexts (the batch decryption every read takes on the native backend) against a hostile
 * caller and a hostile database: whatever the arguments and texts, no crash, no write outside the
 * buffers, and a value is decided (ends[i] >= 0) only when node:crypto, through the reference
 * parser, opens it to the same bytes. Worker threads each load their own instance. `npm run
 * test:asan` runs this file under AddressSanitizer/UBSan.
 */

const TYPE_ERROR = expect.objectContaining({ name: 'TypeError' });
const BINDING = Buffer.from('Model.field', 'utf8');
const HEADER = 'pce:v1:k1:';

describeNative('native openTexts against a hostile caller and database', () => {
  let m: RawNative;
  const raw = randomBytes(32);
  let k: unknown;

  beforeAll(() => {
    m = rawNative();
    k = m.aeadKey(raw);
  });

  const envelope = (plaintext: Buffer, header = HEADER, binding = BINDING) =>
    ref.sealText(raw, randomBytes(12), plaintext, Buffer.concat([Buffer.from(header, 'utf8'), binding]), header);

  /** openTexts with every value under key 0, its header `HEADER` unless starts are given; ends and the plaintexts. */
  function open(texts: unknown[], opts: { starts?: number[]; out?: Uint8Array; keys?: unknown[]; keyOf?: Uint32Array; binding?: Uint8Array } = {}) {
    const out = opts.out ?? Buffer.alloc(texts.reduce<number>((n, t) => n + (typeof t === 'string' ? t.length : 0), 0));
    const ends = new Int32Array(texts.length);
    const starts = Uint32Array.from(opts.starts ?? texts.map(() => HEADER.length));
    const done = m.openTexts(opts.keys ?? [k], opts.keyOf ?? new Uint32Array(texts.length), opts.binding ?? BINDING, texts, starts, out, ends);
    let begin = 0;
    const values = Array.from(ends, (end) => {
      if (end < 0) return undefined;
      // A detached out (length 0) has no subarray, only empty values.
      const value = end === begin ? Buffer.alloc(0) : Buffer.from(out.subarray(begin, end));
      begin = end;
      return value;
    });
    expect(done).toBe(values.filter((v) => v !== undefined).length);
    // openStrings takes the same arguments but out and ends: it decides the same values (it has no out to fill up), as strings.
    if (!opts.out) {
      const strings = m.openStrings(opts.keys ?? [k], opts.keyOf ?? new Uint32Array(texts.length), opts.binding ?? BINDING, texts, starts);
      expect(strings).toHaveLength(texts.length);
      values.forEach((v, i) => expect(strings[i]).toBe(v?.toString('utf8')));
    }
    return { ends, values };
  }

  /** Buffer by Buffer (toEqual walks a MiB value byte by byte, for seconds). */
  const expectValues = (got: (Buffer | undefined)[], want: (Buffer | undefined)[]) => {
    expect(got.length).toBe(want.length);
    got.forEach((g, i) => expect(g === undefined || want[i] === undefined ? g === want[i] : g.equals(want[i]!)).toBe(true));
  };

  test('texts of every length around the 512-character scratch, short and long mixed, associated data past 512 bytes', () => {
    const plaintexts = Array.from({ length: 80 }, (_, i) => randomBytes(330 + i)); // texts of about 490..600 characters
    const mixed = [...plaintexts, randomBytes(0), randomBytes(5000), randomBytes(1), ...plaintexts.slice(0, 5)];
    expectValues(open(mixed.map((p) => envelope(p))).values, mixed);
    const longBinding = randomBytes(700);
    const header = `pce:v2:s:s:${'a'.repeat(32)}:`;
    const texts = plaintexts.map((p) => envelope(p, header, longBinding));
    expectValues(open(texts, { starts: texts.map(() => header.length), binding: longBinding }).values, plaintexts);
    // One of several MiB.
    const big = randomBytes(5 * 1024 * 1024 + 1);
    expectValues(open([envelope(big)]).values, [big]);
  });

  test('wrong argument kinds and counts are TypeErrors; key handles of the wrong kind too', () => {
    const t = envelope(Buffer.from('x'));
    const args = (): unknown[] => [[k], new Uint32Array(1), BINDING, [t], new Uint32Array([HEADER.length]), Buffer.alloc(10), new Int32Array(1)];
    expect(() => m.openTexts(...args())).not.toThrow();
    for (let n = 0; n < 7; n++) expect(() => m.openTexts(...args().slice(0, n))).toThrow(TYPE_ERROR);
    const wrong: unknown[][] = [
      [undefined, k, {}, [m.macKey(raw)], [k, 'x'], [k, m.macKey(raw)], new Uint32Array(1), new Proxy([k], {})],
      [undefined, [0], new Int32Array(1), new Uint32Array(0), new Float64Array(1), new Uint8Array(4)],
      [undefined, 'Model.field', [1], new Uint16Array(2), new Int8Array(2)],
      [undefined, t, { length: 1, 0: t }, new Uint32Array(1), new Proxy([t], {})],
      [undefined, [HEADER.length], new Int32Array(1), new Uint32Array(0), new Uint16Array(1)],
      [undefined, new Uint16Array(5), new Int8Array(10), new ArrayBuffer(10), [0]],
      [undefined, new Uint32Array(1), new Int32Array(0), new Float32Array(1), [0], detached(4)],
    ];
    wrong.forEach((values, at) => {
      for (const w of values) {
        const bad = args();
        bad[at] = w;
        expect(() => m.openTexts(...bad)).toThrow(TYPE_ERROR);
      }
    });
    // More texts than keyOf, starts or ends cover.
    const two = [t, t];
    expect(() => m.openTexts([k], new Uint32Array(1), BINDING, two, new Uint32Array(2), Buffer.alloc(9), new Int32Array(2))).toThrow(TYPE_ERROR);
    expect(() => m.openTexts([k], new Uint32Array(2), BINDING, two, new Uint32Array(1), Buffer.alloc(9), new Int32Array(2))).toThrow(TYPE_ERROR);
    expect(() => m.openTexts([k], new Uint32Array(2), BINDING, two, new Uint32Array(2), Buffer.alloc(9), new Int32Array(1))).toThrow(TYPE_ERROR);
    const many = new Array(100000);
    expect(() => m.openTexts([k], new Uint32Array(10), BINDING, many, new Uint32Array(100000), Buffer.alloc(9), new Int32Array(100000))).toThrow(TYPE_ERROR);
  });

  test('what is not decided gets -1 (bad key index, starts anywhere, holes, non-strings, odd text, out full); the rest is decided alike', () => {
    const p = Buffer.from('plaintext');
    const t = envelope(p);
    const texts: unknown[] = [t, t, t, undefined, 5, { toString: () => t }, new String(t), t.slice(0, -1), `${t}\ud800`, `pce:v1:\u0141\u0131:${t.slice(HEADER.length)}`];
    texts.length = 12; // 10 and 11: holes
    const { values } = open(texts, { keyOf: Uint32Array.from([0, 1, 0xffffffff, 0, 0, 0, 0, 0, 0, 0, 0, 0]) });
    expect(values).toEqual([p, ...new Array(11).fill(undefined)]);
    for (const start of [0, 1, HEADER.length - 1, HEADER.length + 1, t.length - 17, t.length - 16, t.length, t.length + 1, 0x7fffffff, 0xffffffff]) {
      expect(open([t], { starts: [start] }).values).toEqual([undefined]);
    }
    // Out too small for the second: it alone is left; the empty value after it needs no room.
    const empty = envelope(Buffer.alloc(0));
    expect(open([t, t, empty, t], { out: Buffer.alloc(p.length + 3) }).values).toEqual([p, undefined, Buffer.alloc(0), undefined]);
    expect(open([empty, t], { out: detached(8) }).values).toEqual([Buffer.alloc(0), undefined]);
    expect(open([t, empty], { keys: [] }).values).toEqual([undefined, undefined]);
  });

  test('getters on the arrays cannot move keyOf past the keys or make the call write into buffers taken away', () => {
    const p = Buffer.from('secret');
    const t = envelope(p);
    // Rewrites keyOf between its check and its use (called directly: the helper would read the getters first).
    const keyOf = new Uint32Array(3);
    const texts = [t, t, t];
    // One past the end of the keys (the slot after them is zero: a NULL key), then far past it.
    Object.defineProperty(texts, 1, { get: () => ((keyOf[1] = 1), t) });
    Object.defineProperty(texts, 2, { get: () => ((keyOf[2] = 0x7fffffff), t) });
    const ends = new Int32Array(3);
    expect(m.openTexts([k], keyOf, BINDING, texts, new Uint32Array(3).fill(HEADER.length), Buffer.alloc(64), ends)).toBe(1);
    expect(Array.from(ends)).toEqual([p.length, -1, -1]);
    const keys = [k];
    Object.defineProperty(keys, 0, { get: () => ((keyOf[0] = 5), k) });
    keyOf[0] = 0;
    expect(m.openTexts(keys, keyOf, BINDING, [t], new Uint32Array([HEADER.length]), Buffer.alloc(64), ends)).toBe(0);
    // Transfers a buffer away (its memory now belongs to the copy): nothing may be written into the copy.
    // 2 texts, and 65 (past the 64 element handles kept on the stack), the getter first and last.
    for (const [count, at, which] of [2, 65].flatMap((c) => [0, c - 1].flatMap((a) => (['out', 'ends', 'keyOf', 'starts', 'binding'] as const).map((w) => [c, a, w] as const)))) {
      const buffers = { out: new Uint8Array(64 * count), ends: new Int32Array(count), keyOf: new Uint32Array(count), starts: new Uint32Array(count).fill(HEADER.length), binding: Uint8Array.from(BINDING) };
      const b = buffers[which].buffer;
      let copy: ArrayBuffer | undefined;
      const taking = new Array<string>(count).fill(t);
      Object.defineProperty(taking, at, { get: () => ((copy = structuredClone(b, { transfer: [b] })), t) });
      const before = Buffer.from(b.slice(0));
      try {
        m.openTexts([k], buffers.keyOf, buffers.binding, taking, buffers.starts, buffers.out, buffers.ends);
      } catch (error) {
        expect(error).toEqual(TYPE_ERROR);
      }
      expect(Buffer.from(copy!).equals(before)).toBe(true);
      if (which === 'out') expect(Array.from(buffers.ends)).toEqual(new Array(count).fill(-1));
    }
    // A getter that throws: that error, nothing written.
    const throwing = [t];
    Object.defineProperty(throwing, 0, { get: () => { throw new RangeError('from the getter'); } });
    expect(() => m.openTexts([k], new Uint32Array(1), BINDING, throwing, new Uint32Array([HEADER.length]), Buffer.alloc(64), ends)).toThrow('from the getter');
    // Re-entrant: a getter that runs openTexts itself.
    const nested = [t, t];
    Object.defineProperty(nested, 1, { get: () => (expect(open([t, t, t]).values).toEqual([p, p, p]), t) });
    expect(m.openTexts([k], new Uint32Array(2), BINDING, nested, new Uint32Array(2).fill(HEADER.length), Buffer.alloc(64), ends)).toBe(2);
  });

  test('openStrings: argument errors are TypeErrors; getters cannot move keyOf; a setter on Array.prototype cannot reach the typed arrays', () => {
    const p = Buffer.from('secret');
    const t = envelope(p);
    const args = (): unknown[] => [[k], new Uint32Array(1), BINDING, [t], new Uint32Array([HEADER.length])];
    expect(m.openStrings(...args())).toEqual(['secret']);
    for (let n = 0; n < 5; n++) expect(() => m.openStrings(...args().slice(0, n))).toThrow(TYPE_ERROR);
    for (const [at, w] of [[0, [m.macKey(raw)]], [1, new Int32Array(1)], [2, 'Model.field'], [3, { length: 1, 0: t }], [4, new Uint32Array(0)]] as const) {
      const bad = args();
      bad[at] = w;
      expect(() => m.openStrings(...bad)).toThrow(TYPE_ERROR);
    }
    const keyOf = new Uint32Array(3);
    const texts = [t, t, t];
    Object.defineProperty(texts, 1, { get: () => ((keyOf[1] = 1), t) });
    Object.defineProperty(texts, 2, { get: () => ((keyOf[2] = 0x7fffffff), t) });
    expect(m.openStrings([k], keyOf, BINDING, texts, new Uint32Array(3).fill(HEADER.length))).toEqual(['secret', undefined, undefined]);
    // Results are set after the typed arrays are done with: a setter that detaches them finds nothing left to corrupt.
    const starts = new Uint32Array(2).fill(HEADER.length);
    let ran = 0;
    // The array is made in Node's own realm, not Jest's: its Array.prototype is the one whose setter runs.
    const arrayPrototype = Object.getPrototypeOf(m.openStrings(...args())) as Record<number, unknown>;
    Object.defineProperty(arrayPrototype, 1, {
      configurable: true,
      set() {
        ran++;
        structuredClone(starts.buffer, { transfer: [starts.buffer] });
      },
    });
    try {
      const got = m.openStrings([k], new Uint32Array(2), BINDING, [t, t], starts);
      expect(ran).toBe(1);
      expect(got[0]).toBe('secret');
    } finally {
      delete arrayPrototype[1];
    }
  });

  test('openStrings and openTexts refuse keys or texts that are not arrays without using a count they never read', () => {
    // A call refused after reading a huge texts length leaves that count in the batch arguments' stack
    // slot; the next call's batch is refused before its count is read. openStrings once sized its result
    // array by that unread count (uninitialised memory: under AddressSanitizer, a calloc of tens of GB).
    const huge = new Array<string>(2 ** 32 - 1);
    const t = envelope(Buffer.from('x'));
    const good = (): unknown[] => [[k], new Uint32Array(1), BINDING, [t], new Uint32Array([HEADER.length])];
    for (let i = 0; i < 50; i++) {
      for (const call of [
        () => m.openStrings([k], new Uint32Array(1), BINDING, huge, new Uint32Array(1)),
        () => m.openTexts([k], new Uint32Array(1), BINDING, huge, new Uint32Array(1), Buffer.alloc(1), new Int32Array(1)),
      ]) {
        expect(call).toThrow(TYPE_ERROR);
        for (const [at, w] of [[0, k], [0, { length: 2 ** 31 }], [3, t], [3, { length: 2 ** 31, 0: t }]] as const) {
          const bad = good();
          bad[at] = w;
          expect(() => m.openStrings(...bad)).toThrow(TYPE_ERROR);
          expect(() => m.openTexts(...bad, Buffer.alloc(8), new Int32Array(1))).toThrow(TYPE_ERROR);
        }
      }
    }
    expect(m.openStrings(...good())).toEqual(['x']);
  });

  test('hostile database: a value is decided only when the reference parser and node:crypto open it to the same bytes', () => {
    const base = Array.from({ length: 8 }, (_, i) => ({ p: randomBytes(i * 3), t: '' })).map((v) => ({ ...v, t: envelope(v.p) }));
    const edit = fc.record({
      which: fc.nat(base.length - 1),
      at: fc.nat(),
      op: fc.constantFrom('replace', 'insert', 'delete', 'case', 'append', 'truncate'),
      ch: fc.constantFrom(...'AaZz09-_:=+/. \u0000\u00e9\u0141\ud800'.split('')),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        const texts = base.map((v) => v.t);
        for (const { which, at, op, ch } of edits) {
          const s = texts[which]!;
          const i = at % (s.length + 1);
          texts[which] =
            op === 'replace' ? s.slice(0, i) + ch + s.slice(i + 1)
            : op === 'insert' ? s.slice(0, i) + ch + s.slice(i)
            : op === 'delete' ? s.slice(0, i) + s.slice(i + 1)
            : op === 'case' ? s.slice(0, i) + (s.charAt(i) === s.charAt(i).toLowerCase() ? s.charAt(i).toUpperCase() : s.charAt(i).toLowerCase()) + s.slice(i + 1)
            : op === 'append' ? s + ch
            : s.slice(0, i);
        }
        // Starts as the caller computes them: from the header parse, else where the key id would end.
        const starts = texts.map((s) => {
          const h = parseHeader(s);
          return h.kind === 'header' ? h.nonceStart : s.indexOf(':', 7) + 1;
        });
        const { values } = open(texts, { starts });
        values.forEach((got, i) => {
          if (got === undefined) return;
          const parsed = parseCiphertext(texts[i]!);
          expect(parsed.kind).toBe('ciphertext');
          if (parsed.kind !== 'ciphertext') return;
          const aad = Buffer.concat([Buffer.from(texts[i]!.slice(0, starts[i]), 'utf8'), BINDING]);
          expect(ref.open(raw, parsed.value.nonce, parsed.value.sealed, aad)).toEqual(got);
        });
      }),
      { numRuns: 500 },
    );
  });

  test('worker threads: each loads its own instance and agrees with node:crypto; a handle cannot be sent to one', async () => {
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { createCipheriv, randomBytes } = require('node:crypto');
      const m = require(workerData.path);
      const raw = randomBytes(32), k = m.aeadKey(raw), h = 'pce:v1:k:', b = Buffer.from('M.f');
      const sealer = m.sealer(k, Buffer.concat([Buffer.from(h), b]), h);
      let ok = 0;
      for (let i = 0; i < 3000; i++) {
        const n = randomBytes(12), p = randomBytes(i % 700);
        const c = createCipheriv('aes-256-gcm', raw, n).setAAD(Buffer.concat([Buffer.from(h), b]));
        const t = h + n.toString('base64url') + ':' + Buffer.concat([c.update(p), c.final(), c.getAuthTag()]).toString('base64url');
        if (m.sealWith(sealer, p, n) !== t) break;
        const out = Buffer.alloc(p.length), ends = new Int32Array(1);
        m.openTexts([k], new Uint32Array(1), b, [t], Uint32Array.from([h.length]), out, ends);
        if (ends[0] !== p.length || !out.equals(p)) break;
        ok++;
      }
      let refused = false;
      try { parentPort.postMessage({ handle: k }); } catch { refused = true; }
      parentPort.postMessage({ ok, refused });`;
    const run = () =>
      new Promise<{ ok: number; refused: boolean }>((resolve, reject) => {
        const w = new Worker(source, { eval: true, workerData: { path: nativePath() } });
        w.once('message', resolve);
        w.once('error', reject);
      });
    // The main thread keeps working meanwhile, on its own instance.
    const results = Promise.all([run(), run()]);
    const t = envelope(Buffer.from('main'));
    for (let i = 0; i < 500; i++) expect(open([t]).values).toEqual([Buffer.from('main')]);
    expect(await results).toEqual([{ ok: 3000, refused: true }, { ok: 3000, refused: true }]);
    expect(() => new Worker('0', { eval: true, workerData: { k } })).toThrow();
    // keyOf and starts in shared memory another thread rewrites all the while: read once per value, never past the keys.
    const shared = new Int32Array(new SharedArrayBuffer(4 * 2 * 64));
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const flipper = new Worker(
      `const { workerData: { shared, stop } } = require('node:worker_threads');
       for (let i = 0; Atomics.load(stop, 0) === 0; i++) for (let j = 0; j < 64; j++) shared[j] = i & 1 ? 0 : -1, shared[64 + j] = i & 2 ? ${HEADER.length} : -1;`,
      { eval: true, workerData: { shared, stop } },
    );
    const keyOf = new Uint32Array(shared.buffer, 0, 64);
    const starts = new Uint32Array(shared.buffer, 4 * 64, 64);
    const texts = new Array<string>(64).fill(t);
    const out = Buffer.alloc(64 * 4);
    const ends = new Int32Array(64);
    for (let i = 0; i < 3000; i++) {
      m.openTexts([k], keyOf, BINDING, texts, starts, out, ends);
      let begin = 0;
      for (const end of ends) if (end >= 0) expect(out.subarray(begin, (begin = end)).toString()).toBe('main');
    }
    Atomics.store(stop, 0, 1);
    await flipper.terminate();
    // A worker torn down in the middle of its work leaves this thread's instance intact.
    const w = new Worker(source, { eval: true, workerData: { path: nativePath() } });
    await new Promise((r) => setTimeout(r, 20));
    await w.terminate();
    expect(open([t]).values).toEqual([Buffer.from('main')]);
  });
});
