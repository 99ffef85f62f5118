import { open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigurationError } from '../errors';
import { syncFolder } from '../files/syncFolder';

/**
 * The erasure ledger: an append-only file of JSON lines, one per erasure (and per explicit
 * reinstatement), kept OUTSIDE the database. A restored backup brings back the database's own
 * copy (`pce_erasures`) as it was when the backup was taken; the ledger still lists every erasure
 * since, and `replayErasures` re-applies them. Keep it where backups of the database do not
 * overwrite it (another volume, object storage with versioning), and back it up on its own.
 *
 *   {"root":"Person","subjectId":"42","erasedAt":"2026-12-02T10:00:00.000Z"}
 *   {"root":"Person","subjectId":"42","reinstatedAt":"2026-12-03T09:00:00.000Z"}
 *
 * `root` is the subject's id space (the model whose ids the subject ids are).
 */
export type LedgerEntry =
  | { readonly root: string; readonly subjectId: string; readonly erasedAt: string }
  | { readonly root: string; readonly subjectId: string; readonly reinstatedAt: string };

/** What {@link ErasureLedger.read} found: the entries, and whether a torn last line (a crash mid-append) was skipped. */
export interface LedgerContents {
  readonly entries: readonly LedgerEntry[];
  readonly tornLastLine: boolean;
}

export class ErasureLedger {
  constructor(readonly path: string) {}

  /**
   * Appends one entry and flushes it to disk before returning (`fsync` of the file, and of its
   * folder when the file is new), so an erasure the caller then commits is never lost from the
   * ledger. Several processes may append: each line is one `write` in append mode.
   */
  async append(entry: LedgerEntry): Promise<void> {
    const handle = await open(this.path, 'a', 0o600).catch((error: NodeJS.ErrnoException) => {
      throw new ConfigurationError(undefined, undefined, `cannot open the erasure ledger ${this.path}: ${error.code ?? 'error'}`);
    });
    let created = false;
    try {
      created = (await handle.stat()).size === 0;
      await handle.write(`${JSON.stringify(entry)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (created) await syncFolder(dirname(this.path));
  }

  /**
   * Reads every entry in order. A missing file is an error (a replay against the wrong path
   * would silently re-apply nothing) unless `allowMissing`. A last line without its newline that
   * does not parse is a torn append: skipped and reported; any other bad line is an error naming
   * its line number (never its content).
   */
  async read(options: { allowMissing?: boolean } = {}): Promise<LedgerContents> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && options.allowMissing) return { entries: [], tornLastLine: false };
      throw new ConfigurationError(undefined, undefined, `cannot read the erasure ledger ${this.path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const lines = text.split('\n');
    const last = lines.pop()!; // '' when the file ends with a newline
    const entries: LedgerEntry[] = [];
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      const entry = parseEntry(line);
      if (!entry) throw new ConfigurationError(undefined, undefined, `erasure ledger ${this.path}: line ${i + 1} is not a ledger entry`);
      entries.push(entry);
    });
    let tornLastLine = false;
    if (last.trim() !== '') {
      const entry = parseEntry(last);
      if (entry) entries.push(entry);
      else tornLastLine = true;
    }
    return { entries, tornLastLine };
  }
}

function parseEntry(line: string): LedgerEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { root, subjectId, erasedAt, reinstatedAt } = value as Record<string, unknown>;
  if (typeof subjectId !== 'string' || subjectId === '' || typeof root !== 'string' || root === '') return undefined;
  const time = (t: unknown) => typeof t === 'string' && !Number.isNaN(Date.parse(t));
  if (time(erasedAt) && reinstatedAt === undefined) return { root, subjectId, erasedAt: erasedAt as string };
  if (time(reinstatedAt) && erasedAt === undefined) return { root, subjectId, reinstatedAt: reinstatedAt as string };
  return undefined;
}

