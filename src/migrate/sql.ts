import { CIPHERTEXT_PREFIX } from '../crypto/ciphertext';
import type { SqlConnection, SqlRow } from './connection';
import type { KeyTuple } from './keyCodec';
import type { ModelTarget } from './scope';
import { typedText } from './typedColumn';

/**
 * SQL text for the migrator: keyset ranges over a (possibly compound) primary key, prefix tests
 * on stored values, and the selects of batches and key pages (which rows need work: filters.ts;
 * the batched compare-and-set UPDATE: batchUpdate.ts).
 * Values always travel as parameters; identifiers come from the encryption map and are quoted.
 */

/**
 * Collects parameters and hands out the matching placeholders. Add them in the order their
 * placeholders appear in the SQL text: MySQL placeholders are positional.
 */
export class Params {
  readonly values: unknown[] = [];
  constructor(private readonly conn: Pick<SqlConnection, 'placeholder'>) {}
  add(value: unknown): string {
    this.values.push(value);
    return this.conn.placeholder(this.values.length);
  }
}

/** What the migrator looks for in a batch select; `undefined` means every row. */
export type RowFilter = (conn: SqlConnection, p: Params, target: ModelTarget, alias: string) => string | undefined;

/** `expr` compared byte-for-byte: MySQL collations are usually case-insensitive, ciphertext is not. */
export function exact(conn: SqlConnection, expr: string): string {
  return conn.dialect === 'mysql' ? `CONVERT(${expr} USING utf8mb4) COLLATE utf8mb4_bin` : expr;
}

/**
 * Null-safe equality of two text expressions, byte for byte. On MySQL even utf8mb4_bin is PAD
 * SPACE ('a' = 'a  '), so both sides are compared as binary strings.
 */
export function sameText(conn: SqlConnection, left: string, right: string): string {
  return conn.dialect === 'mysql'
    ? `CAST(CONVERT(${left} USING utf8mb4) AS BINARY) <=> CAST(CONVERT(${right} USING utf8mb4) AS BINARY)`
    : `${left} IS NOT DISTINCT FROM ${right}`;
}

/** True when the text in `column` matches the regular expression parameter, case-sensitively. */
export function matches(conn: SqlConnection, p: Params, column: string, pattern: string): string {
  return conn.dialect === 'postgres' ? `${column} ~ ${p.add(pattern)}` : `${exact(conn, column)} REGEXP ${p.add(pattern)}`;
}

/** True when the text in `column` starts with `prefix` (exact, never a LIKE pattern). */
export function startsWith(conn: SqlConnection, p: Params, column: string, prefix: string): string {
  return `${exact(conn, `LEFT(${column}, ${prefix.length})`)} = ${p.add(prefix)}`;
}

/** The v2 envelope prefix; a keyring (shared) key's value continues with `<type letter>:k:`. */
const V2_PREFIX = `${CIPHERTEXT_PREFIX}v2:`;

/** True when the text in `column` is a v2 envelope under a keyring data key (`pce:v2:<t>:k:...`). */
export function isV2Shared(conn: SqlConnection, p: Params, column: string): string {
  return `(${startsWith(conn, p, column, V2_PREFIX)} AND ${exact(conn, `SUBSTRING(${column}, ${V2_PREFIX.length + 2}, 3)`)} = ${p.add(':k:')})`;
}

/** True when the text in `column` is a v2 envelope under a per-subject key (`pce:v2:<t>:s:...`). */
export function isV2Subject(conn: SqlConnection, p: Params, column: string): string {
  return `(${startsWith(conn, p, column, V2_PREFIX)} AND ${exact(conn, `SUBSTRING(${column}, ${V2_PREFIX.length + 2}, 3)`)} = ${p.add(':s:')})`;
}

/** The `n`-th (1-based) ':'-separated part of the text in `column`: key ids sit at 3 (v1) and 5 (v2). */
export function colonPart(conn: SqlConnection, column: string, n: number): string {
  return conn.dialect === 'postgres' ? `split_part(${column}, ':', ${n})` : exact(conn, `SUBSTRING_INDEX(SUBSTRING_INDEX(${column}, ':', ${n}), ':', -1)`);
}

/** Keyset bound: the key columns compared with a key tuple, `>` (after) or `<=` (at most). */
export function keyBound(conn: SqlConnection, p: Params, columns: readonly string[], key: KeyTuple, op: '>' | '<='): string {
  if (conn.dialect === 'postgres' || columns.length === 1) {
    // PostgreSQL compares row values lexicographically and can use the primary key index for it.
    const lhs = columns.length === 1 ? columns[0]! : `(${columns.join(', ')})`;
    const rhs = columns.length === 1 ? p.add(key[0]) : `(${key.map((v) => p.add(v)).join(', ')})`;
    return `${lhs} ${op} ${rhs}`;
  }
  // MySQL/MariaDB: spelled out, with a leading range on the first column so the index is used.
  const strict = op === '>' ? '>' : '<';
  const last = op === '>' ? '>' : '<=';
  const nest = (i: number): string => {
    if (i === columns.length - 1) return `${columns[i]} ${last} ${p.add(key[i])}`;
    return `(${columns[i]} ${strict} ${p.add(key[i])} OR (${columns[i]} = ${p.add(key[i])} AND ${nest(i + 1)}))`;
  };
  const lead = `${columns[0]} ${op === '>' ? '>=' : '<='} ${p.add(key[0])}`;
  return `${lead} AND ${nest(0)}`;
}

export interface BatchQuery {
  readonly after?: KeyTuple;
  readonly atMost?: KeyTuple;
  readonly limit?: number;
  readonly filter?: RowFilter;
}

/** A row as the migrator sees it: its key and, per field target, the stored value and index. */
export interface StoredRow {
  readonly key: KeyTuple;
  readonly values: readonly unknown[];
  readonly indexes: readonly unknown[];
  /** Per field target: a typed field's own column as text ({@link typedText}), undefined for String fields. */
  readonly typed?: readonly unknown[];
  /** Subject-keyed models: the row's subject id as the driver returned it (NULL in a drifted column). */
  readonly subject?: unknown;
}

/** Alias of the model's table in the migrator's statements, unlikely to clash with a column name. */
export const TABLE_ALIAS = '_pce_t';
const A = TABLE_ALIAS;

/** Columns of the batch select, aliased positionally so odd column names cannot collide. */
export function selectBatch(conn: SqlConnection, target: ModelTarget, q: BatchQuery): { sql: string; params: unknown[] } {
  const p = new Params(conn);
  const col = (c: string) => `${A}.${conn.quote(c)}`;
  const keyCols = target.keyColumns.map(col);
  const select = keyCols.map((c, i) => `${c} AS k${i}`);
  if (target.subject) select.push(`${col(target.subject.column)} AS sj`);
  target.fields.forEach((f, i) => {
    select.push(`${col(f.column)} AS v${i}`);
    if (f.indexColumn) select.push(`${col(f.indexColumn)} AS x${i}`);
    if (f.typedColumn) select.push(`${typedText(conn, col(f.typedColumn), f.spec.type!)} AS t${i}`);
  });
  const where: string[] = [];
  if (q.after) where.push(keyBound(conn, p, keyCols, q.after, '>'));
  if (q.atMost) where.push(keyBound(conn, p, keyCols, q.atMost, '<='));
  const filter = q.filter?.(conn, p, target, A);
  if (filter) where.push(`(${filter})`);
  const limit = q.limit !== undefined ? ` LIMIT ${Math.trunc(q.limit)}` : '';
  const sql =
    `SELECT ${select.join(', ')} FROM ${conn.quote(target.table)} AS ${A}` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${keyCols.join(', ')}${limit}`;
  return { sql, params: p.values };
}

/** The aliases {@link selectBatch} gives a target's columns, per field (undefined where it selects none). */
interface Aliases {
  readonly keys: readonly string[];
  readonly values: readonly string[];
  readonly indexes: ReadonlyArray<string | undefined>;
  readonly typed: ReadonlyArray<string | undefined>;
}

function aliasesOf(target: ModelTarget): Aliases {
  return {
    keys: target.keyColumns.map((_, i) => `k${i}`),
    values: target.fields.map((_, i) => `v${i}`),
    indexes: target.fields.map((f, i) => (f.indexColumn ? `x${i}` : undefined)),
    typed: target.fields.map((f, i) => (f.typedColumn ? `t${i}` : undefined)),
  };
}

/** A result row of {@link selectBatch} as a {@link StoredRow}; `a` is built once per batch, not per row. */
function readRow(target: ModelTarget, a: Aliases, row: SqlRow): StoredRow {
  const cells = (names: ReadonlyArray<string | undefined>, missing: null | undefined) => names.map((n) => (n === undefined ? undefined : (row[n] ?? missing)));
  return {
    key: a.keys.map((n) => row[n]),
    values: a.values.map((n) => row[n]),
    indexes: cells(a.indexes, undefined),
    typed: cells(a.typed, null),
    ...(target.subject ? { subject: row.sj ?? null } : {}),
  };
}

export async function readBatch(conn: SqlConnection, target: ModelTarget, q: BatchQuery): Promise<StoredRow[]> {
  const { sql, params } = selectBatch(conn, target, q);
  const a = aliasesOf(target);
  return (await conn.query(sql, params)).map((r) => readRow(target, a, r));
}

/** A key of one page of the chunk scan, and whether the run's filter selects its row. */
export interface KeyPageRow {
  readonly key: KeyTuple;
  readonly work: boolean;
}

/**
 * One page of keys in key order, after `after`, each with the filter's verdict as a column rather
 * than as a WHERE condition. With the filter in WHERE, PostgreSQL misjudged how many rows the
 * prefix tests keep and, instead of walking the primary key until the LIMIT was reached, scanned
 * the rest of the table and sorted it, on every page: the chunk scan grew with the square of the
 * table. A bare key range with ORDER BY and LIMIT is an index range scan on both databases.
 */
export function selectKeyPage(conn: SqlConnection, target: ModelTarget, after: KeyTuple | undefined, limit: number, filter: RowFilter): { sql: string; params: unknown[] } {
  const p = new Params(conn);
  const keyCols = target.keyColumns.map((c) => `${A}.${conn.quote(c)}`);
  const select = keyCols.map((c, i) => `${c} AS k${i}`);
  // Parameters in text order (MySQL's are positional): the filter's in the select list come first.
  const verdict = filter(conn, p, target, A);
  // CASE makes SQL's unknown (a NULL value in a test) "no work", as it was in WHERE, and gives
  // both databases the same integer.
  select.push(verdict ? `CASE WHEN (${verdict}) THEN 1 ELSE 0 END AS w` : '1 AS w');
  const where = after ? ` WHERE ${keyBound(conn, p, keyCols, after, '>')}` : '';
  const sql = `SELECT ${select.join(', ')} FROM ${conn.quote(target.table)} AS ${A}${where} ORDER BY ${keyCols.join(', ')} LIMIT ${Math.trunc(limit)}`;
  return { sql, params: p.values };
}

export async function readKeyPage(conn: SqlConnection, target: ModelTarget, after: KeyTuple | undefined, limit: number, filter: RowFilter): Promise<KeyPageRow[]> {
  const { sql, params } = selectKeyPage(conn, target, after, limit, filter);
  const keys = target.keyColumns.map((_, i) => `k${i}`);
  return (await conn.query(sql, params)).map((r) => ({ key: keys.map((n) => r[n]), work: Number(r.w) === 1 }));
}
