/**
 * The PostgreSQL array literal of a text column's values, exactly as the pg driver writes a
 * JavaScript array parameter (`{"a",NULL,"b\"c"}`), built here because the migrator sends
 * several such arrays of a thousand values with every batch: pg escapes each element with two
 * regular-expression replaces, which showed in rotation profiles, while stored values (envelopes,
 * blind indexes) almost never hold a quote or backslash. Pure.
 */
export function textArrayLiteral(values: ReadonlyArray<string | null | undefined>): string {
  if (values.length === 0) return '{}';
  // The usual batch: no NULL and nothing to escape, so one join builds the literal.
  let plain = true;
  for (let i = 0; i < values.length && plain; i++) {
    const v = values[i];
    plain = v !== null && v !== undefined && !v.includes('"') && !v.includes('\\');
  }
  if (plain) return `{"${values.join('","')}"}`;
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

/**
 * A primary-key column's values as the batch UPDATE's array parameter: the text literal when
 * every key is a string or number (what keys almost always are; PostgreSQL casts the literal to
 * the column's array type), otherwise the values themselves, for the driver to serialise (Date,
 * Buffer). Pure.
 */
export function keyArray(values: readonly unknown[]): string | readonly unknown[] {
  const texts: string[] = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'string') texts[i] = v;
    else if (typeof v === 'number' || typeof v === 'bigint') texts[i] = String(v);
    else return values;
  }
  return textArrayLiteral(texts);
}
