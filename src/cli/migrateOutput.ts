import type { MigrationReport } from '../migrate/migrator';
import type { FieldStatus } from '../migrate/status';
import type { VerifyReport } from '../migrate/verify';
import { formatKey } from '../migrate/keyCodec';
import type { SubjectKeyCounts } from '../subjects/subjectKeyCounts';

/* How the migration commands print: the scanned line, JSON, and the text of each report. */

/** What a command read: shown first in its output, so a wrong database or schema is noticed. */
export interface Scanned {
  /** `host[:port]/database`: never user or password. */
  readonly database: string;
  readonly schema: string;
}

/** `database host/db, schema path`: printed before any other output. */
export function scannedLine(s: Scanned): string {
  return `database ${s.database}, schema ${s.schema}`;
}

/** The `--json` output: the whole result, indented, on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The text report of a migration run: totals, one line per model, the failures listed. */
export function formatMigrationReport(r: MigrationReport): string {
  const verb = r.dryRun ? 'would write' : 'written';
  const lines = [
    `${r.command}${r.dryRun ? ' (dry run)' : ''}: ${r.updated} rows ${verb}, ${r.scanned} rows needed work, ` +
      `${r.conflicts} left to the next run after concurrent changes, ${r.failedCount} values failed (${(r.durationMs / 1000).toFixed(1)} s)`,
  ];
  for (const m of r.models) {
    const state = m.complete ? 'complete' : m.conflicts > 0 ? 'not complete (rows kept changing: rerun to take them)' : 'not complete (stopped early: rerun to continue)';
    lines.push(`  ${m.model} [${m.fields.join(', ')}]: ${m.scanned} needed work, ${m.updated} ${verb}, ${m.conflicts} conflicts, ${m.failed} failed; ${state}`);
  }
  for (const f of r.failures) {
    lines.push(`  failed: ${f.model} ${keyText(f.key)} ${f.field}: ${f.reason}${f.keyId ? ` (key ${f.keyId})` : ''}`);
  }
  if (r.failures.length < r.failedCount) lines.push(`  ... and ${r.failedCount - r.failures.length} more (see the audit log)`);
  return `${lines.join('\n')}\n`;
}

function keyText(key: Record<string, string | number | boolean | null>): string {
  return formatKey(Object.keys(key), Object.values(key));
}

/** The `status` table: one line per field, the primary keys marked `*`. */
export function formatStatus(fields: readonly FieldStatus[], primary: { dataKey: string; indexKey: string } | undefined): string {
  const counts = (byKey: Record<string, number>, primaryId: string | undefined) =>
    Object.entries(byKey)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, n]) => `${id}${id === primaryId ? '*' : ''}=${n}`)
      .join(' ') || '-';
  const lines = fields.map(
    (f) =>
      `${`${f.model}.${f.field}`.padEnd(28)} keys: ${counts(f.byKey, primary?.dataKey).padEnd(24)} plaintext: ${String(f.plaintext).padEnd(6)} ` +
      `null: ${String(f.nulls).padEnd(6)} index keys: ${counts(f.indexByKey, primary?.indexKey)}`,
  );
  if (primary) lines.push(`(* primary: data key ${primary.dataKey}, index key ${primary.indexKey})`);
  return `${lines.join('\n')}\n`;
}

/** `subject keys: 12 live, 1 pending (wrap keys w2*=13), 3 erased` */
export function subjectKeyLine(c: SubjectKeyCounts, primaryWrap: string | undefined): string {
  const byWrap = Object.entries(c.byWrapKey)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, n]) => `${id}${id === primaryWrap ? '*' : ''}=${n.live + n.pending}`)
    .join(' ');
  return `subject keys: ${c.live} live, ${c.pending} pending${byWrap ? ` (wrap keys ${byWrap})` : ''}, ${c.erased} erased`;
}

/** The text report of `verify`: totals, one line per model, the failures listed. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines = [`verify: ${r.ok ? 'OK' : 'FAILED'}: ${r.rows} rows, ${r.values} values, ${r.failedCount} failed (${(r.durationMs / 1000).toFixed(1)} s)`];
  for (const m of r.models) {
    lines.push(`  ${m.model} [${m.fields.join(', ')}]: ${m.rows} rows, ${m.values} values, ${m.plaintext} plaintext (passthrough), ${m.erased ? `${m.erased} of erased subjects, ` : ''}${m.failed} failed`);
  }
  if (r.subjectKeys) lines.push(`  subject keys: ${r.subjectKeys.checked} unwrapped, ${r.subjectKeys.failed} failed`);
  for (const f of r.failures) lines.push(`  failed: ${f.model} ${keyText(f.key)} ${f.field}: ${f.problem}${f.keyId ? ` (key ${f.keyId})` : ''}`);
  if (r.failures.length < r.failedCount) lines.push(`  ... and ${r.failedCount - r.failures.length} more (see the audit log)`);
  if (!r.complete) lines.push('  interrupted: not every row was checked');
  return `${lines.join('\n')}\n`;
}
