import type { ComplianceReport } from './reportData';

const cell = (v: unknown) => String(v ?? '-').replace(/\|/g, '\\|');
const table = (header: readonly string[], rows: ReadonlyArray<readonly unknown[]>) =>
  rows.length === 0 ? ['(none)'] : [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)];

/** The report as Markdown, for an auditor. Pure. */
export function renderMarkdown(r: ComplianceReport): string {
  const tls = r.database.tls;
  const counts = (byKey: Record<string, number>) =>
    Object.entries(byKey)
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ') || '-';
  const lines = [
    '# Column encryption: compliance report',
    '',
    `Generated ${r.generatedAt} by prisma-column-encryption from the Prisma schema \`${r.schema}\`, the keyring (${r.keys.origin}) and the database ${r.database.label} (${r.database.dialect}).`,
    '',
    '## Encrypted fields',
    '',
    ...table(
      ['Model', 'Field', 'Key', 'Blind index', 'Normalisation', 'Legacy plaintext'],
      r.fields.map((f) => [f.model, f.field, f.keyScope, f.index ?? 'none (not searchable)', f.normalize.join(', ') || '-', f.readMode === 'passthrough' ? 'read as is (passthrough)' : 'refused (strict)']),
    ),
    '',
    `Encryption: ${r.fields[0]?.algorithm ?? '-'}. Blind indexes: ${r.fields.find((f) => f.indexAlgorithm)?.indexAlgorithm ?? '-'}.`,
    '',
    '## Keys',
    '',
    ...table(
      ['Id', 'Purpose', 'Status', 'Source', 'Protection level', 'Created', 'Age against policy'],
      r.keys.entries.map((k) => [
        k.id,
        k.purpose,
        k.status,
        k.source,
        k.protectionLevel ?? (k.source === 'local' ? 'none: key stored in the clear' : 'not recorded'),
        k.createdAt?.slice(0, 10),
        k.rotation ? `${k.rotation.ageDays} days${k.rotation.maxAgeDays ? ` of ${k.rotation.maxAgeDays}` : ''}: ${k.rotation.state}` : '-',
      ]),
    ),
    '',
    r.keys.policy && Object.keys(r.keys.policy).length > 0
      ? `Rotation policy: ${Object.entries(r.keys.policy).map(([p, rule]) => `${p} keys at most ${rule.maxAgeDays} days primary`).join('; ')}.`
      : 'Rotation policy: none set.',
    '',
    '## Stored values',
    '',
    ...table(
      ['Field', 'Values per data key', 'Plaintext', 'Null', 'Indexes per index key'],
      r.storage.map((s) => [`${s.model}.${s.field}`, counts(s.byKey), s.plaintext, s.nulls, counts(s.indexByKey)]),
    ),
    '',
    '## Re-encryption and verification',
    '',
    ...table(['Job', 'State', 'Last update'], r.migrations.map((m) => [m.description, m.state, m.updatedAt])),
    '',
    r.verify
      ? `Verify (run with this report): ${r.verify.ok ? 'OK' : 'FAILED'}: ${r.verify.rows} rows, ${r.verify.values} values, ${r.verify.failedCount} failed${r.verify.complete ? '' : ', not complete'}.`
      : 'Verify: not run with this report (`report --verify` decrypts every value and checks every index).',
    '',
    '## Database connection',
    '',
    tls
      ? `${tls.encrypted ? `TLS: ${tls.version ?? '?'}${tls.cipher ? `, ${tls.cipher}` : ''}` : 'Not encrypted (no TLS)'}: ${tls.ok ? 'meets' : `does not meet (${tls.shortfall})`} the TLS 1.2 minimum.`
      : 'Not checked.',
    '',
    '## Limits',
    '',
    ...r.limits.map((l) => `- ${l}`),
    '',
  ];
  return `${lines.join('\n')}`;
}
