/**
 * The PostgreSQL array literal of a text column's values, exactly as the pg driver writes a
 * JavaScript array parameter (`{"a",NULL,"b\"c"}`), built here because the migrator sends
 * several such arrays of a thousand values with every batch: pg escapes each element with two
 * regular-expression replaces, which showed in rotation profiles, while stored values (envelopes,
 * blind indexes) almost never hold a quote or backslash. Pure.
 */
export function textArrayLiteral(values: ReadonlyArray<string | null | undefined>): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (v.includes('"') || v.includes('\\')) out += `"${v.replace(/[\\"]/g, '\\$&')}"`;
    else out += `"${v}"`;
  }
  return `${out}}`;
}
