const NUMERIC = /^[-+]?[\d.,]+\s?(ms|us|x|%)?$/;

/**
 * Renders rows as a plain-text table with a header rule. Columns whose cells all look numeric
 * (optionally with a unit) align right, header included; others align left. Pure.
 */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const right = header.map((_, i) => rows.length > 0 && rows.every((r) => NUMERIC.test(r[i] ?? '') || r[i] === 'n/a'));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Fixed-point formatting that keeps small numbers readable: 3 significant decimals below 1. */
export function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  return value.toFixed(abs !== 0 && abs < 1 ? Math.max(digits, 3) : digits);
}
