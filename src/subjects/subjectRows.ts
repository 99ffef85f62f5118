import type { EncryptionSchema, ModelSpec } from '../schema';
import type { Statement, SubjectKeySql } from './subjectKeySql';

/*
 * A subject's rows in the application's tables, as erasure finds them: which models hold the
 * subjects of an id space, the condition matching one subject's rows, and the statements erasure
 * runs on them (pure: statement text and parameters, no database).
 */

/** A model's subject as the generated map describes it (`/// @@encrypted(subject: field)`). */
export interface SubjectOf {
  readonly field: string;
  readonly column: string;
  readonly type?: 'Int' | 'BigInt' | 'String';
  /** The subject's id space (`SubjectSpec.root`); the model itself when absent. */
  readonly root?: string;
}
type SubjectModel = ModelSpec & { readonly subject?: SubjectOf };

/** A subject model of the map: its table, subject, and the columns erasure looks at. */
export interface SubjectTarget {
  readonly model: string;
  readonly root: string;
  readonly table: string;
  readonly subject: SubjectOf;
  readonly indexColumns: readonly string[];
  readonly valueColumns: readonly string[];
  readonly typedColumns: readonly string[];
}

/** Models of the map with a subject, and the columns of their blind indexes and values. */
export function subjectTargets(fields: EncryptionSchema): SubjectTarget[] {
  return Object.entries(fields.models).flatMap(([model, spec]) => {
    const subject = (spec as SubjectModel).subject;
    if (!subject) return [];
    const column = (field: string) => spec.columns[field] ?? field;
    const encrypted = Object.entries(spec.encrypted);
    const indexColumns = encrypted.flatMap(([, f]) => (f.index ? [column(f.index)] : []));
    // Where each field's ciphertext is stored, and a typed field's own column (plaintext written past the extension).
    const valueColumns = encrypted.map(([field, f]) => column(f.storage ?? field));
    const typedColumns = encrypted.flatMap(([field, f]) => (f.storage ? [column(field)] : []));
    return [{ model, root: subject.root ?? model, table: spec.dbName, subject, indexColumns, valueColumns, typedColumns }];
  });
}

/** How an integer id space writes an id: canonical decimal, what `subjectIdText` gives for a number. */
export const CANONICAL_INTEGER = /^(0|-?[1-9]\d{0,18})$/;
/**
 * The condition matching one subject's rows of a model, or none when no row can hold that id.
 * Its parameters are the statement's first ones.
 */
function subjectMatch(sql: SubjectKeySql, target: SubjectTarget, subject: string): { where: string; values: unknown[] } | undefined {
  const { type, column } = target.subject;
  if (type === 'Int' || type === 'BigInt') {
    // An integer column holds only canonical decimal ids: '007' or 'c1x' cannot be one of its rows.
    if (!CANONICAL_INTEGER.test(subject)) return undefined;
    return { where: `${sql.quote(column)} = ${sql.dialect === 'postgres' ? 'CAST($1 AS BIGINT)' : 'CAST(? AS SIGNED)'}`, values: [subject] };
  }
  if (type === 'String') {
    if (sql.dialect === 'postgres') return { where: `${sql.quote(column)} = $1`, values: [subject] };
    // The application's column may compare without case ('abc' = 'ABC'); the key table does not,
    // so 'ABC' is another subject, whose erasure must not touch the rows of 'abc'. The first
    // condition keeps the column's index usable, the second compares as the key table does.
    const exact = `CONVERT(${sql.quote(column)} USING utf8mb4) COLLATE utf8mb4_bin`;
    return { where: `${sql.quote(column)} = ? AND ${exact} = ?`, values: [subject, subject] };
  }
  // Type unknown (an older map): compare the text form, which is exact for both kinds.
  const text = sql.dialect === 'postgres' ? `CAST(${sql.quote(column)} AS TEXT) = $1` : `CAST(${sql.quote(column)} AS CHAR) = ?`;
  return { where: text, values: [subject] };
}

/** The statement nulling one model's blind indexes for a subject, or none when it has none or no row can hold that id. */
export function nullIndexStatement(sql: SubjectKeySql, target: SubjectTarget, subject: string): Statement | undefined {
  const match = target.indexColumns.length > 0 ? subjectMatch(sql, target, subject) : undefined;
  if (!match) return undefined;
  const sets = target.indexColumns.map((c) => `${sql.quote(c)} = NULL`).join(', ');
  return { text: `UPDATE ${sql.quote(target.table)} SET ${sets} WHERE ${match.where}`, values: match.values };
}

/**
 * Counts the subject's rows of a model that still hold a value erasure cannot reach: plaintext or
 * a shared-key envelope in an encrypted field (written before the model had a subject, not yet
 * moved by encrypt-existing), or plaintext in a typed field's own column.
 */
export function outsideSubjectKeysStatement(sql: SubjectKeySql, target: SubjectTarget, subject: string): Statement | undefined {
  const match = subjectMatch(sql, target, subject);
  if (!match) return undefined;
  const q = (c: string) => sql.quote(c);
  const outside = [
    ...target.valueColumns.map((c) => `(${q(c)} IS NOT NULL AND ${q(c)} NOT LIKE 'pce:v2:_:s:%')`),
    ...target.typedColumns.map((c) => `${q(c)} IS NOT NULL`),
  ];
  return { text: `SELECT COUNT(*) AS n FROM ${q(target.table)} WHERE ${match.where} AND (${outside.join(' OR ')})`, values: match.values };
}

