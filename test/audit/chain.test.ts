import { createSecretKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import pino from 'pino';
import { sealRecord, startChain, verifyChain, type ChainProblem } from '../../src/audit/chain';
import { auditChainKey, openAuditChain } from '../../src/audit/chainFile';
import { ConfigurationError } from '../../src/errors';
import { tempDir } from '../keys/support';

const key = createSecretKey(randomBytes(32));

/** A chained log of `n` records as lines, with pino-like content, as a new chain (or the one named). */
function chainedLines(contents: readonly Record<string, unknown>[], chain?: string): string[] {
  let head = startChain(chain);
  return contents.map((c) => {
    const sealed = sealRecord(key, JSON.stringify(c), head);
    head = sealed.head;
    return sealed.line;
  });
}
const text = (lines: readonly string[]) => lines.map((l) => `${l}\n`).join('');

const record = fc.record({
  level: fc.constantFrom(30, 40),
  event: fc.constantFrom('pce.data.access', 'pce.keys.loaded'),
  model: fc.constantFrom('User', 'Profile'),
  rows: fc.nat(1000),
  actor: fc.string({ maxLength: 12 }),
});
const log = fc.array(record, { minLength: 2, maxLength: 25 }).map(chainedLines);
/** A printable character (never a newline), for edits. */
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const lines = (p: readonly ChainProblem[]) => p.map((x) => x.line);

describe('audit chain: verifyChain finds and places every kind of edit', () => {
  test('an untouched log verifies, and its head is the last record', () => {
    fc.assert(
      fc.property(log, (l) => {
        const r = verifyChain(key, text(l));
        expect(r).toMatchObject({ ok: true, lines: l.length, authentic: l.length, problems: [] });
        expect(r.head.seq).toBe(l.length);
        expect(verifyChain(key, text(l), { expectLastSeq: l.length }).ok).toBe(true);
      }),
    );
  });

  test('a deleted line is reported at the line that follows the gap', () => {
    fc.assert(
      fc.property(log, fc.nat(), (l, k0) => {
        const k = k0 % (l.length - 1); // not the last line: see the truncation test
        const r = verifyChain(key, text(l.filter((_, i) => i !== k)));
        expect(r.ok).toBe(false);
        expect(r.problems).toEqual([expect.objectContaining({ kind: 'deleted', line: k + 1, seq: k + 1 })]);
      }),
    );
  });

  test('lines cut from the end leave no gap: found only against a head kept elsewhere', () => {
    fc.assert(
      fc.property(log, fc.integer({ min: 1, max: 5 }), (l, cut0) => {
        const cut = Math.min(cut0, l.length - 1);
        const kept = l.slice(0, l.length - cut);
        expect(verifyChain(key, text(kept)).ok).toBe(true);
        const r = verifyChain(key, text(kept), { expectLastSeq: l.length });
        expect(r.problems).toEqual([expect.objectContaining({ kind: 'truncated', line: kept.length, seq: kept.length + 1 })]);
      }),
    );
  });

  test('an inserted line (no key to seal it) is reported at its line', () => {
    fc.assert(
      fc.property(log, fc.nat(), record, (l, k0, content) => {
        const k = k0 % (l.length + 1);
        // The forger copies the format, with a made-up MAC.
        const forged = `${JSON.stringify({ ...content, chain: 'c'.repeat(32), seq: k + 1, prev: '0'.repeat(64) }).slice(0, -1)},"mac":"${randomBytes(32).toString('hex')}"}`;
        const r = verifyChain(key, text([...l.slice(0, k), forged, ...l.slice(k)]));
        expect(r.ok).toBe(false);
        expect(r.problems).toEqual([expect.objectContaining({ kind: k === l.length ? 'altered' : 'inserted', line: k + 1 })]);
      }),
    );
  });

  test('an edited line (any one character) is reported at its line', () => {
    fc.assert(
      fc.property(log, fc.nat(), fc.nat(), printable, (l, k0, p0, c) => {
        const k = k0 % l.length;
        const p = p0 % l[k]!.length;
        fc.pre(l[k]![p] !== c);
        const edited = [...l];
        edited[k] = l[k]!.slice(0, p) + c + l[k]!.slice(p + 1);
        const r = verifyChain(key, text(edited));
        expect(r.ok).toBe(false);
        expect(r.problems).toEqual([expect.objectContaining({ kind: k === l.length - 1 ? 'altered' : 'edited', line: k + 1 })]);
      }),
    );
  });

  test('a moved line is reported as reordered, within the lines it moved across', () => {
    fc.assert(
      fc.property(log, fc.nat(), fc.nat(), (l, i0, j0) => {
        const i = i0 % l.length;
        const j = j0 % l.length;
        fc.pre(i !== j);
        const moved = [...l];
        const [line] = moved.splice(i, 1);
        moved.splice(j, 0, line!);
        const r = verifyChain(key, text(moved));
        expect(r.ok).toBe(false);
        for (const p of r.problems) {
          expect(p.kind).toBe('reordered');
          expect(p.line).toBeGreaterThanOrEqual(Math.min(i, j) + 1);
          expect(p.line).toBeLessThanOrEqual(Math.max(i, j) + 1);
        }
      }),
    );
  });

  test('a replayed (copied) record is reported as duplicated', () => {
    fc.assert(
      fc.property(log, fc.nat(), fc.nat(), (l, i0, j0) => {
        const i = i0 % l.length;
        const j = j0 % (l.length + 1);
        const copied = [...l.slice(0, j), l[i]!, ...l.slice(j)];
        const r = verifyChain(key, text(copied));
        expect(r.ok).toBe(false);
        expect(r.problems.map((p) => p.kind)).toContain('duplicated');
        expect(lines(r.problems).some((n) => n === j + 1 || n === (j <= i ? i + 2 : i + 1))).toBe(true);
      }),
    );
  });

  test('any sequence of deletions, insertions, moves, copies and edits is detected unless it changed nothing', () => {
    const edit = fc.oneof(
      fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ maxLength: 40 }).map((s) => s.replace(/\n/g, ' ')) }),
      fc.record({ op: fc.constant('move' as const), at: fc.nat(), to: fc.nat() }),
      fc.record({ op: fc.constant('copy' as const), at: fc.nat(), to: fc.nat() }),
      fc.record({ op: fc.constant('edit' as const), at: fc.nat(), pos: fc.nat(), char: printable }),
    );
    fc.assert(
      fc.property(log, fc.array(edit, { minLength: 1, maxLength: 4 }), (l, edits) => {
        let m = [...l];
        for (const e of edits) {
          if (m.length === 0) break;
          const at = e.at % m.length;
          if (e.op === 'delete') m.splice(at, 1);
          else if (e.op === 'insert') m.splice(e.at % (m.length + 1), 0, e.text);
          else if (e.op === 'move') m.splice(e.to % m.length, 0, m.splice(at, 1)[0]!);
          else if (e.op === 'copy') m.splice(e.to % (m.length + 1), 0, m[at]!);
          else m[at] = m[at]!.slice(0, e.pos % (m[at]!.length + 1)) + e.char + m[at]!.slice((e.pos % (m[at]!.length + 1)) + 1);
        }
        const changed = text(m) !== text(l);
        // The head of the original log is known (kept elsewhere), so cutting the end is caught too.
        expect(verifyChain(key, text(m), { expectLastSeq: l.length }).ok).toBe(!changed);
      }),
      { numRuns: 300 },
    );
  });

  test('a file swapped for another valid chain under the same key passes alone, and fails against the chain identity kept', () => {
    fc.assert(
      fc.property(log, log, (mine, theirs) => {
        const id = (l: readonly string[]) => (JSON.parse(l[0]!) as { chain: string }).chain;
        expect(id(mine)).not.toBe(id(theirs));
        expect(verifyChain(key, text(mine), { expectChain: id(mine) })).toMatchObject({ ok: true, chain: id(mine) });
        // Same key, sequence numbers from 1, links intact: without the identity nothing shows the swap.
        expect(verifyChain(key, text(theirs)).ok).toBe(true);
        const r = verifyChain(key, text(theirs), { expectChain: id(mine) });
        expect(r.ok).toBe(false);
        expect(r.problems).toEqual([expect.objectContaining({ kind: 'swapped', line: 1, message: expect.stringContaining(id(mine)) })]);
      }),
      { numRuns: 50 },
    );
  });

  test('records of another chain spliced in are foreign, with or without the identity kept; its identity edited is an edit', () => {
    fc.assert(
      fc.property(log, log, fc.nat(), fc.nat(), (mine, theirs, at0, pick0) => {
        const at = at0 % (mine.length + 1);
        const spliced = [...mine.slice(0, at), theirs[pick0 % theirs.length]!, ...mine.slice(at)];
        const id = (JSON.parse(mine[0]!) as { chain: string }).chain;
        // With the identity given, or when the first line is still this chain's, the stranger is foreign.
        const r = verifyChain(key, text(spliced), at === 0 ? { expectChain: id } : {});
        expect(r.problems).toEqual([expect.objectContaining({ kind: 'foreign', line: at + 1 })]);
        expect(r.chain).toBe(id);
      }),
      { numRuns: 50 },
    );
    const l = chainedLines([{ a: 1 }, { b: 2 }, { c: 3 }]);
    const other = JSON.parse(chainedLines([{}])[0]!) as { chain: string };
    const retagged = [l[0]!, l[1]!.replace(/"chain":"[0-9a-f]{32}"/, `"chain":"${other.chain}"`), l[2]!];
    expect(verifyChain(key, text(retagged)).problems).toEqual([expect.objectContaining({ kind: 'edited', line: 2 })]);
  });

  test('records cut from the front are deleted; from the end, truncated against the head kept; the identity survives both', () => {
    const l = chainedLines(Array.from({ length: 6 }, (_, i) => ({ i })));
    const id = (JSON.parse(l[0]!) as { chain: string }).chain;
    expect(verifyChain(key, text(l.slice(2)), { expectChain: id }).problems).toEqual([expect.objectContaining({ kind: 'deleted', line: 1, seq: 1 })]);
    expect(verifyChain(key, text(l.slice(0, 4)), { expectChain: id, expectLastSeq: 6 }).problems).toEqual([expect.objectContaining({ kind: 'truncated', line: 4, seq: 5 })]);
  });

  test('a chain identity is 32 lowercase hex digits; one can be chosen', () => {
    expect(startChain('ab'.repeat(16)).chain).toBe('ab'.repeat(16));
    expect(() => startChain('xyz')).toThrow(TypeError);
    expect(startChain().chain).toMatch(/^[0-9a-f]{32}$/);
    expect(startChain().chain).not.toBe(startChain().chain);
  });

  test('a record sealed under another key does not verify', () => {
    const l = chainedLines([{ a: 1 }, { b: 2 }]);
    const r = verifyChain(createSecretKey(randomBytes(32)), text(l));
    expect(r.ok).toBe(false);
    expect(r.authentic).toBe(0);
  });
});

describe('audit chain file (openAuditChain as a pino destination)', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  test('records keep their fields, and the chain continues across reopening', () => {
    const file = dir.file('access.log');
    const first = openAuditChain(file, key);
    pino({ base: null }, first).info({ event: 'pce.data.access', model: 'User' }, 'one');
    pino({ base: null }, first).info({ event: 'pce.data.access', model: 'Profile' }, 'two');
    first.close();
    const second = openAuditChain(file, key);
    expect(second.head.seq).toBe(2);
    expect(second.head.chain).toBe(first.head.chain);
    pino({ base: null }, second).info({ event: 'pce.data.access', model: 'Reading' }, 'three');
    second.close();
    const content = readFileSync(file, 'utf8');
    const records = content.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => [r.seq, r.model, r.msg])).toEqual([
      [1, 'User', 'one'],
      [2, 'Profile', 'two'],
      [3, 'Reading', 'three'],
    ]);
    expect(records[0]!.prev).toBe('0'.repeat(64));
    expect(records[1]!.prev).toBe(records[0]!.mac);
    expect(records.map((r) => r.chain)).toEqual([first.head.chain, first.head.chain, first.head.chain]);
    expect(verifyChain(key, content, { expectChain: first.head.chain })).toMatchObject({ ok: true, lines: 3, chain: first.head.chain });
    // Another file, same key: a chain of its own.
    const elsewhere = openAuditChain(dir.file('access-2.log'), key);
    expect(elsewhere.head.chain).not.toBe(first.head.chain);
    elsewhere.close();
    const chosen = openAuditChain(dir.file('access-3.log'), key, { chain: 'e'.repeat(32) });
    expect(chosen.head).toEqual({ chain: 'e'.repeat(32), seq: 0, mac: '0'.repeat(64) });
    chosen.close();
  });

  test('a file cut back and written on by the restarted application fails against the anchored head (seq and mac)', () => {
    const file = dir.file('cut-and-continued.log');
    const w = openAuditChain(file, key);
    for (let i = 1; i <= 5; i++) pino({ base: null }, w).info({ event: 'pce.data.access', rows: i }, 'original');
    const anchored = w.head;
    w.close();
    // Someone without the key cuts the last three records; the application restarts and continues the chain.
    writeFileSync(file, readFileSync(file, 'utf8').split('\n').slice(0, 2).map((l) => `${l}\n`).join(''));
    const again = openAuditChain(file, key);
    for (let i = 0; i < 4; i++) pino({ base: null }, again).info({ event: 'pce.data.access', rows: 0 }, 'after the cut');
    again.close();
    const content = readFileSync(file, 'utf8');
    // The sequence alone no longer shows the cut: record 5 exists again.
    expect(verifyChain(key, content, { expectLastSeq: anchored.seq }).ok).toBe(true);
    const r = verifyChain(key, content, { expectLastSeq: anchored.seq, expectLastMac: anchored.mac });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'replaced', line: 5, seq: 5 })]);
    // The anchored record itself, untouched, passes; a head the file never reached is truncation.
    const kept = readFileSync(file, 'utf8');
    const head = verifyChain(key, kept).head;
    expect(verifyChain(key, kept, { expectLastSeq: head.seq, expectLastMac: head.mac }).ok).toBe(true);
    expect(verifyChain(key, kept, { expectLastSeq: head.seq + 1, expectLastMac: head.mac }).problems).toEqual([expect.objectContaining({ kind: 'truncated' })]);
  });

  test('refuses to continue a file whose last record does not verify (other key, edited, cut mid-line)', () => {
    const file = dir.file('other.log');
    const w = openAuditChain(file, key);
    pino({ base: null }, w).info('x');
    w.close();
    expect(() => openAuditChain(file, createSecretKey(randomBytes(32)))).toThrow(/does not verify under this key/);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"x"', '"y"'));
    expect(() => openAuditChain(file, key)).toThrow(ConfigurationError);
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, -5));
    expect(() => openAuditChain(file, key)).toThrow(/does not end with a complete record/);
  });

  test('the chain key comes from base64 of 32 bytes, and nothing else', () => {
    expect(() => auditChainKey(undefined, {})).toThrow(/PCE_AUDIT_KEY/);
    expect(() => auditChainKey(randomBytes(16).toString('base64'))).toThrow(/32 bytes/);
    expect(() => auditChainKey('not base64!')).toThrow(/base64/);
    expect(auditChainKey(undefined, { PCE_AUDIT_KEY: randomBytes(32).toString('base64') }).symmetricKeySize).toBe(32);
  });
});
