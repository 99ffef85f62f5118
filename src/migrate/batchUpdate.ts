import { ConfigurationError } from '../errors';
import type { SqlConnection } from './connection';
import type { KeyTuple } from './keyCodec';
import type { ModelTarget } from './scope';
import { Params, sameText, TABLE_ALIAS } from './sql';
import { keyArray, textArrayLiteral } from './textArray';
import { typedText } from './typedColumn';

/**
 * The migrator's batched write: one compare-and-set UPDATE for a whole batch of rows, with the
 * key columns' types it needs for PostgreSQL's array casts.
 */

/**
 * Types of the key columns, for the array casts of the PostgreSQL batch update; refuses, on MySQL
 * and MariaDB, a key the batch update could not match its rows by.
 */
export async function keyColumnTypes(conn: SqlConnection, target: ModelTarget): Promise<string[]> {
  const rows =
    conn.dialect === 'postgres'
      ? await conn.query<{ name: string; type: string }>(
          `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
           WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
          [conn.quote(target.table)],
        )
      : await conn.query<{ name: string; type: string }>(
          'SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
          [target.table],
        );
  if (rows.length === 0) throw new ConfigurationError(target.model, undefined, `table ${target.table} was not found in the database`);
  const byName = new Map(rows.map((r) => [r.name, r.type]));
  return target.keyColumns.map((c) => {
    const t = byName.get(c);
    if (!t) throw new ConfigurationError(target.model, undefined, `primary key column ${c} was not found in table ${target.table}`);
    // The driver reads a single-precision FLOAT as the shortest decimal of its value (0.1), which
    // MySQL then compares with the stored float as a double (0.10000000149...): no row would match.
    if (conn.dialect === 'mysql' && t.toLowerCase() === 'float') {
      throw new ConfigurationError(target.model, undefined, `primary key column ${c} is a single-precision FLOAT, whose values do not survive the round trip through the driver; the migrator cannot address its rows by key (DOUBLE or an exact type can be)`);
    }
    return t;
  });
}

/**
 * One row to write: its key, and the old and new text of every column the statement names
 * (`columns` of {@link updateRows}, in that order).
 */
export interface RowWrite {
  readonly key: KeyTuple;
  readonly old: ReadonlyArray<string | null>;
  readonly next: ReadonlyArray<string | null>;
}

/**
 * One UPDATE for many rows, each guarded by compare-and-set on the `guarded` columns (the
 * encrypted values): a row the application changed since it was read does not match, keeps the
 * application's value, and is not counted. Index columns need no guard of their own: every write
 * through the extension changes the value column too, since ciphertext is randomised. Returns
 * the number of rows written.
 */
export async function updateRows(
  conn: SqlConnection,
  target: ModelTarget,
  keyTypes: readonly string[],
  columns: readonly string[],
  rows: readonly RowWrite[],
  guarded: ReadonlySet<string>,
): Promise<number> {
  if (rows.length === 0) return 0;
  const guards = columns.map((c) => guarded.has(c));
  // A typed field's own column is only ever cleared (its value moved into the storage column),
  // and compared through its text form, since the old value was read as text.
  const typedTypes = new Map(target.fields.filter((f) => f.typedColumn).map((f) => [f.typedColumn!, f.spec.type!]));
  const cleared = columns.map((c) => typedTypes.has(c));
  const t = TABLE_ALIAS;
  const v = '_pce_v';
  const p = new Params(conn);
  const set = columns.map((c, j) => `${conn.quote(c)} = ${cleared[j] ? 'NULL' : `${v}.n${j}`}`);
  const keyMatch = target.keyColumns.map((c, i) => `${t}.${conn.quote(c)} = ${v}.k${i}`);
  // Per column: its old text when guarded, its new text unless cleared; decided once, not per row.
  const picks = columns.flatMap((_, j) => [...(guards[j] ? [{ j, old: true }] : []), ...(cleared[j] ? [] : [{ j, old: false }])]);
  const names = [...target.keyColumns.map((_, i) => `k${i}`), ...picks.map(({ j, old }) => `${old ? 'o' : 'n'}${j}`)];
  const cells = (r: RowWrite): unknown[] => {
    const out: unknown[] = r.key.slice();
    for (const { j, old } of picks) out.push((old ? r.old : r.next)[j]);
    return out;
  };
  const current = (c: string) => {
    const type = typedTypes.get(c);
    return type ? typedText(conn, `${t}.${conn.quote(c)}`, type) : `${t}.${conn.quote(c)}`;
  };
  const cas = columns.flatMap((c, j) => (guards[j] ? [sameText(conn, current(c), `${v}.o${j}`)] : []));
  if (conn.dialect === 'postgres') {
    // One array parameter per column: the statement text and parameter count do not grow with the batch.
    const types = [...keyTypes, ...names.slice(keyTypes.length).map(() => 'text')];
    // Column-wise straight from the rows: no per-row cell arrays to transpose.
    const keyCount = target.keyColumns.length;
    // Every column as its array literal, built once; keys of other types (Date, Buffer) as arrays for the driver.
    const column = (i: number) => {
      if (i < keyCount) return keyArray(rows.map((r) => r.key[i]));
      const { j, old } = picks[i - keyCount]!;
      return textArrayLiteral(rows.map((r) => (old ? r.old : r.next)[j]));
    };
    const arrays = names.map((_, i) => `${p.add(column(i))}::${types[i]}[]`);
    const sql =
      `UPDATE ${conn.quote(target.table)} AS ${t} SET ${set.join(', ')} ` +
      `FROM unnest(${arrays.join(', ')}) AS ${v}(${names.join(', ')}) ` +
      `WHERE ${[...keyMatch, ...cas].join(' AND ')}`;
    return conn.execute(sql, p.values);
  }
  const selects = rows.map((r, n) => {
    const placeholders = cells(r).map((c) => p.add(c));
    return n > 0 ? `SELECT ${placeholders.join(', ')}` : `SELECT ${placeholders.map((c, i) => `${c} AS ${names[i]}`).join(', ')}`;
  });
  const sql =
    `UPDATE ${conn.quote(target.table)} AS ${t} JOIN (${selects.join(' UNION ALL ')}) AS ${v} ` +
    `ON ${[...keyMatch, ...cas].join(' AND ')} SET ${set.map((s) => `${t}.${s}`).join(', ')}`;
  return conn.execute(sql, p.values);
}
