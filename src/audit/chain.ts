import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * The tamper-evident audit chain, as pure functions over lines of text.
 *
 * Each record is one JSON line that ends with four fields the chain adds: `"chain"` (the
 * chain's identity, 128 random bits in hex, chosen when the file is started and the same in every
 * record), `"seq"` (1, 2, 3, ... within a file), `"prev"` (the MAC of the record before, or
 * {@link GENESIS} for the first) and `"mac"`: HMAC-SHA-256, under a key of its own, over the
 * exact bytes of the line up to the MAC. Editing any byte breaks that line's MAC; deleting,
 * inserting or moving a record breaks the run of sequence numbers and links, which
 * {@link verifyChain} reports by line number; a record of another chain (same key, another file)
 * is told apart by its identity. Without the key nobody can forge a record.
 */

/** `prev` of the first record of a file. */
export const GENESIS = '0'.repeat(64);

const DOMAIN = 'prisma-column-encryption/audit-chain/v1\n';
const MAC_SUFFIX = /,"mac":"([0-9a-f]{64})"\}$/;
const CHAIN_ID = /^[0-9a-f]{32}$/;

/** Where the chain stands after a record: the next record gets `seq + 1` and `prev: mac`. */
export interface ChainHead {
  /** The chain's identity: keep it with the head, and pass it back as `expectChain`. */
  readonly chain: string;
  readonly seq: number;
  readonly mac: string;
}

/**
 * The head of a new, empty chain: a fresh random identity unless one is given (32 lowercase hex
 * digits), so a file holding another chain, even one sealed under the same key, cannot pass for it.
 */
export function startChain(chain: string = randomBytes(16).toString('hex')): ChainHead {
  if (!CHAIN_ID.test(chain)) throw new TypeError('a chain identity is 32 lowercase hex digits');
  return { chain, seq: 0, mac: GENESIS };
}

function macOf(key: KeyObject, body: string): string {
  return createHmac('sha256', key).update(DOMAIN).update(body).digest('hex');
}

/**
 * Adds `chain`, `seq`, `prev` and `mac` to one JSON object line (no newline) after `head`.
 * The line must be a JSON object, as pino writes them.
 */
export function sealRecord(key: KeyObject, json: string, head: ChainHead): { line: string; head: ChainHead } {
  if (!json.startsWith('{') || !json.endsWith('}')) throw new TypeError('an audit record must be one JSON object');
  if (!CHAIN_ID.test(head.chain)) throw new TypeError('the head has no chain identity (start one with startChain)');
  const seq = head.seq + 1;
  const open = json.length === 2 ? '{' : `${json.slice(0, -1)},`;
  const body = `${open}"chain":"${head.chain}","seq":${seq},"prev":"${head.mac}"}`;
  const mac = macOf(key, body);
  return { line: `${body.slice(0, -1)},"mac":"${mac}"}`, head: { chain: head.chain, seq, mac } };
}

/** What one line says about itself: authentic (its MAC verifies) with its place in the chain, or not. */
export type OpenedRecord =
  | { readonly authentic: true; readonly chain: string; readonly seq: number; readonly prev: string; readonly mac: string }
  | { readonly authentic: false; readonly reason: 'not a chained JSON record' | 'MAC does not verify' };

/** Checks one line's MAC and reads its `chain`, `seq` and `prev`. */
export function openRecord(key: KeyObject, line: string): OpenedRecord {
  const m = MAC_SUFFIX.exec(line);
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { authentic: false, reason: 'not a chained JSON record' };
  }
  const record = parsed as { chain?: unknown; seq?: unknown; prev?: unknown };
  if (!m || typeof record.chain !== 'string' || !CHAIN_ID.test(record.chain) || typeof record.seq !== 'number' || !Number.isSafeInteger(record.seq) || record.seq < 1 || typeof record.prev !== 'string') {
    return { authentic: false, reason: 'not a chained JSON record' };
  }
  const body = `${line.slice(0, m.index)}}`;
  const expected = Buffer.from(macOf(key, body), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'))) return { authentic: false, reason: 'MAC does not verify' };
  return { authentic: true, chain: record.chain, seq: record.seq, prev: record.prev, mac: m[1]! };
}

/** One finding of {@link verifyChain}; `line` is 1-based in the file as given. */
export interface ChainProblem {
  readonly kind: 'edited' | 'inserted' | 'altered' | 'deleted' | 'reordered' | 'duplicated' | 'truncated' | 'replaced' | 'broken-link' | 'foreign' | 'swapped';
  readonly line: number;
  /** The sequence number concerned (the record's own, or the first missing one). */
  readonly seq: number | null;
  readonly message: string;
}

export interface ChainReport {
  readonly ok: boolean;
  /** Lines read (blank final line excluded). */
  readonly lines: number;
  /** Lines whose MAC verified. */
  readonly authentic: number;
  /** The identity of the chain checked: `expectChain`, else the first authentic record's; `null` when none verifies. */
  readonly chain: string | null;
  /** The last record in chain order (`seq` 0 when none), to keep elsewhere and pass back as `expectLastSeq`. */
  readonly head: { readonly seq: number; readonly mac: string };
  readonly problems: readonly ChainProblem[];
}

export interface VerifyChainOptions {
  /**
   * The chain identity kept from when the file was started. Without it a whole file can be
   * replaced by another valid chain sealed under the same key (another process's file, an old
   * one): only the identity shows it (`swapped`).
   */
  readonly expectChain?: string;
  /**
   * The sequence number the last record must at least have (from a head kept elsewhere). Records
   * deleted from the end of a file leave no gap inside it: only an outside anchor shows them.
   */
  readonly expectLastSeq?: number;
  /**
   * The MAC of record `expectLastSeq` as it was kept. A file cut back and then written on by the
   * restarted application reaches that sequence number again with other records: only the MAC
   * shows it (`replaced`).
   */
  readonly expectLastMac?: string;
}

interface Authentic {
  readonly line: number;
  readonly seq: number;
  readonly prev: string;
  readonly mac: string;
}

/**
 * Verifies a whole chained file and says where it was tampered with:
 * - a line whose MAC fails is `edited` when it fills a gap in the sequence (a record was
 *   there), `inserted` when it does not, and `altered` (either) at the end of the file;
 * - records missing from the sequence are `deleted`, reported at the line after the gap;
 * - authentic records out of order are `reordered` (those outside the longest in-order run);
 * - an authentic record seen twice is `duplicated` (replayed);
 * - with `expectLastSeq`, a file ending early is `truncated`; with `expectLastMac` too, a record
 *   at that number other than the one kept is `replaced`;
 * - an authentic record of another chain among this one's is `foreign`; a file holding none of
 *   `expectChain`'s records but another chain's is `swapped` (reported once, at its first record).
 */
export function verifyChain(key: KeyObject, text: string, options: VerifyChainOptions = {}): ChainReport {
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text === '' ? [] : text.split('\n');
  const problems: ChainProblem[] = [];
  const forged: Array<{ line: number; reason: string }> = [];
  const records: Authentic[] = [];
  const seen = new Map<number, Authentic>();
  const foreign: Array<{ line: number; seq: number; chain: string }> = [];
  let chain = options.expectChain ?? null;
  lines.forEach((content, i) => {
    const line = i + 1;
    const opened = openRecord(key, content);
    if (!opened.authentic) {
      forged.push({ line, reason: opened.reason });
      return;
    }
    chain ??= opened.chain;
    if (opened.chain !== chain) {
      foreign.push({ line, seq: opened.seq, chain: opened.chain });
      return;
    }
    const first = seen.get(opened.seq);
    if (first) {
      problems.push({ kind: 'duplicated', line, seq: opened.seq, message: `line ${line} repeats record ${opened.seq} of line ${first.line}` });
      return;
    }
    const record = { line, seq: opened.seq, prev: opened.prev, mac: opened.mac };
    seen.set(opened.seq, record);
    records.push(record);
  });

  if (records.length === 0 && foreign.length > 0) {
    // Not one record of the expected chain: the whole file was put in place of another.
    const first = foreign[0]!;
    const problems: ChainProblem[] = [{ kind: 'swapped', line: first.line, seq: null, message: `the file holds chain ${first.chain}, not the expected chain ${chain}: another chain's file was put in its place` }];
    return { ok: false, lines: lines.length, authentic: foreign.length, chain, head: { seq: 0, mac: GENESIS }, problems };
  }
  for (const f of foreign) {
    problems.push({ kind: 'foreign', line: f.line, seq: f.seq, message: `line ${f.line} holds record ${f.seq} of another chain (${f.chain}), sealed under the same key` });
  }

  const inOrder = longestIncreasingRun(records);
  const kept = new Set(inOrder);
  for (const r of records) {
    if (kept.has(r)) continue;
    const before = seen.get(r.seq - 1);
    problems.push({
      kind: 'reordered',
      line: r.line,
      seq: r.seq,
      message: `line ${r.line} holds record ${r.seq}, out of order${before ? ` (it belongs after line ${before.line}, record ${before.seq})` : ''}`,
    });
  }

  // Walk the in-order run; gaps in it are deleted records, or edited ones (forged lines in the gap).
  const absorbed = new Set<number>();
  let previous: Authentic = { line: 0, seq: 0, prev: GENESIS, mac: GENESIS };
  const gapBefore = (next: { line: number; seq: number }, isEnd: boolean) => {
    const missing: number[] = [];
    for (let s = previous.seq + 1; s < next.seq; s++) if (!seen.has(s)) missing.push(s);
    const inGap = forged.filter((f) => f.line > previous.line && f.line < next.line && !absorbed.has(f.line));
    const edited = inGap.slice(0, missing.length);
    for (const f of edited) {
      absorbed.add(f.line);
      problems.push({ kind: 'edited', line: f.line, seq: null, message: `line ${f.line} was edited (${f.reason})` });
    }
    const deleted = missing.slice(edited.length);
    if (deleted.length > 0) {
      const at = isEnd ? previous.line : next.line;
      const range = deleted.length === 1 ? `record ${deleted[0]}` : `${deleted.length} records (${deleted[0]}..${deleted[deleted.length - 1]})`;
      problems.push({
        kind: isEnd ? 'truncated' : 'deleted',
        line: at,
        seq: deleted[0]!,
        message: isEnd ? `${range} missing after line ${at}, the end of the file` : `${range} missing before line ${at}`,
      });
    }
  };
  for (const r of inOrder) {
    gapBefore(r, false);
    if (r.seq === previous.seq + 1 && r.prev !== previous.mac) {
      problems.push({ kind: 'broken-link', line: r.line, seq: r.seq, message: `line ${r.line}: record ${r.seq} does not link to record ${previous.seq} (two chains mixed in one file?)` });
    }
    previous = r;
  }
  const anchored = options.expectLastSeq !== undefined && options.expectLastMac !== undefined ? seen.get(options.expectLastSeq) : undefined;
  if (anchored && anchored.mac !== options.expectLastMac) {
    problems.push({ kind: 'replaced', line: anchored.line, seq: anchored.seq, message: `line ${anchored.line}: record ${anchored.seq} is not the one kept as the head (its MAC differs): the file was cut back and written on` });
  }
  const lastSeq = Math.max(previous.seq, options.expectLastSeq ?? 0);
  if (lastSeq > previous.seq) gapBefore({ line: lines.length + 1, seq: lastSeq + 1 }, true);
  for (const f of forged) {
    if (absorbed.has(f.line)) continue;
    // A forged line after the last authentic record: no later record tells an edit from an insertion.
    const kind = f.line > previous.line ? 'altered' : 'inserted';
    problems.push({ kind, line: f.line, seq: null, message: `line ${f.line} was ${kind === 'altered' ? 'edited or inserted' : 'inserted'} (${f.reason})` });
  }
  problems.sort((a, b) => a.line - b.line);
  return { ok: problems.length === 0, lines: lines.length, authentic: records.length + foreign.length, chain, head: { seq: previous.seq, mac: previous.mac }, problems };
}

/** The longest run of records whose sequence numbers increase in file order (patience sorting). */
function longestIncreasingRun(records: readonly Authentic[]): Authentic[] {
  const tails: number[] = [];
  const parent: number[] = new Array<number>(records.length).fill(-1);
  records.forEach((r, i) => {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (records[tails[mid]!]!.seq < r.seq) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) parent[i] = tails[lo - 1]!;
    tails[lo] = i;
  });
  const run: Authentic[] = [];
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i >= 0; i = parent[i]!) run.push(records[i]!);
  return run.reverse();
}
