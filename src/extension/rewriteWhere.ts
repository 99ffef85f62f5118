import type { BlindIndex } from '../crypto/blindIndex';
import type { FieldCodec } from '../codec/fieldCodec';
import { JsonNull } from '@prisma/client/runtime/client';
import type { RuntimeModel } from './runtimeSchema';
import { ANY_NULL, isFieldValue, JSON_NULL, resolveJsonNull, typedNullTest } from './typedValues';
import { isObject, mapOneOrMany, type Obj, type WalkContext } from './walkContext';

/**
 * Rewrites a `where` so that equality on encrypted fields becomes equality on their blind index.
 * Returns a new object and never mutates the input; besides HMACs, its only effect is recording
 * unique lookups that need resolving in `ctx.uniqueLookups`.
 *
 * Filters on an index field take the plaintext too (`where: { emailIndex: 'a@x.org' }`): that is
 * how `findUnique` reaches a row through the index field's unique constraint.
 */
export function rewriteWhere(ctx: WalkContext, model: RuntimeModel, where: unknown, unique = false): unknown {
  if (!isObject(where)) return where;
  if (!model.holdsEncrypted) return where;
  const out: Obj = {};
  const extra: Obj[] = [];
  for (const key of Object.keys(where)) {
    const value = where[key];
    if (value === undefined) continue;
    if (key === 'AND' || key === 'OR' || key === 'NOT') {
      out[key] = mapOneOrMany(value, (w) => rewriteWhere(ctx, model, w));
      continue;
    }
    const owner = model.indexOwners.get(key);
    if (owner && unique && value !== null) {
      const equalsOnly = isObject(value) && !isFieldValue(owner, value, 'where') && Object.keys(value).length === 1 && value.equals !== undefined && value.equals !== null;
      if (isFieldValue(owner, value, 'where') || equalsOnly) {
        ctx.secret(equalsOnly ? (value as Obj).equals : value);
        setUniqueIndex(ctx, model, out, key, owner.indexesForLookup(equalsOnly ? (value as Obj).equals : value));
        continue;
      }
    }
    const storageOwner = model.storageOwners.get(key);
    if (storageOwner) {
      out[key] = storageFilter(ctx, model, storageOwner, key, value);
      continue;
    }
    // A filter on the encrypted field, or on its index field (which takes the plaintext too).
    const codec = model.codecs.get(key) ?? owner;
    if (codec) {
      const conditions = rewriteFieldFilter(ctx, codec, key, value);
      if (conditions === 'keep') out[key] = value;
      else extra.push(...conditions);
      continue;
    }
    const relation = model.relations.get(key);
    if (relation) {
      out[key] = rewriteRelationFilter(ctx, ctx.model(relation.model), relation.list, value);
      continue;
    }
    refuseProtectedFieldRefs(ctx, value);
    const compound = model.spec.compoundUniques[key];
    if (compound && isObject(value)) {
      const fields: Obj = { ...value };
      for (const field of compound) {
        const indexOwner = model.indexOwners.get(field);
        if (indexOwner && value[field] !== undefined && value[field] !== null) {
          ctx.secret(value[field]);
          setUniqueIndex(ctx, model, fields, field, indexOwner.indexesForLookup(value[field]));
        }
      }
      out[key] = fields;
      continue;
    }
    out[key] = value;
  }
  if (extra.length > 0) mergeConditions(out, extra);
  return out;
}

/**
 * Sets a unique where's index field to the primary key's hash. With older index keys loaded (a
 * re-index in progress) the stored value may be another candidate: recorded for resolution.
 */
function setUniqueIndex(ctx: WalkContext, model: RuntimeModel, target: Obj, indexField: string, hashes: readonly BlindIndex[]): void {
  ctx.stats.indexed++;
  ctx.secret(...hashes);
  const owner = model.indexOwners.get(indexField);
  if (owner) ctx.fields.searched.add(owner.binding);
  target[indexField] = hashes[0];
  if (hashes.length > 1) ctx.uniqueLookups.push({ model: model.name, indexField, hashes, target });
}

/** Adds rewritten conditions, using top-level keys when free and `AND` otherwise. */
function mergeConditions(out: Obj, conditions: Obj[]): void {
  const and: unknown[] = [];
  for (const c of conditions) {
    const keys = Object.keys(c);
    if (keys.length === 1 && !(keys[0]! in out) && keys[0] !== 'AND') out[keys[0]!] = c[keys[0]!];
    else and.push(c);
  }
  if (and.length > 0) {
    const existing = out.AND;
    out.AND = existing === undefined ? and : [...(Array.isArray(existing) ? existing : [existing]), ...and];
  }
}

function rewriteRelationFilter(ctx: WalkContext, target: RuntimeModel, list: boolean, value: unknown): unknown {
  if (!isObject(value) || !target.holdsEncrypted) return value;
  const ops = list ? ['some', 'every', 'none'] : ['is', 'isNot'];
  if (Object.keys(value).some((k) => ops.includes(k))) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) out[k] = ops.includes(k) ? rewriteWhere(ctx, target, v) : v;
    return out;
  }
  // To-one shorthand: the relation's where without `is`.
  return list ? value : rewriteWhere(ctx, target, value);
}

const EQUALITY_OPERATORS = new Set(['equals', 'in', 'notIn', 'not']);
/** Prisma's other scalar filter operators: named in refusals; anything else is not echoed (it could be data). */
const OTHER_OPERATORS = new Set(['contains', 'startsWith', 'endsWith', 'lt', 'lte', 'gt', 'gte', 'search', 'has', 'hasSome', 'hasEvery', 'isEmpty', 'path', 'string_contains', 'array_contains']);

/** A Prisma field reference (`prisma.user.fields.email`) used as a filter operand. */
function fieldRefOf(operand: unknown): { modelName: string; name: string } | undefined {
  return isObject(operand) && typeof operand.modelName === 'string' && typeof operand.name === 'string'
    ? (operand as { modelName: string; name: string })
    : undefined;
}

/**
 * Comparing a plain column with an encrypted or index column would compare against ciphertext or
 * a hash and silently match nothing (or, negated, everything): refuse it wherever the reference
 * sits in the filter of a plain column (`not: { not: { equals: ref } }`, lists, aggregates of
 * `having`). Relation filters and AND/OR/NOT reach here through rewriteWhere's recursion.
 */
export function refuseProtectedFieldRefs(ctx: WalkContext, operand: unknown): void {
  const ref = fieldRefOf(operand);
  if (ref) {
    const target = ctx.schema.get(ref.modelName);
    if (target && (target.codecs.has(ref.name) || target.indexOwners.has(ref.name) || target.storageOwners.has(ref.name))) {
      ctx.refuse(ref.modelName, ref.name, 'field reference', 'other columns cannot be compared with ciphertext or a blind index');
    }
  } else if (Array.isArray(operand)) {
    for (const item of operand) refuseProtectedFieldRefs(ctx, item);
  } else if (isObject(operand)) {
    for (const inner of Object.values(operand)) refuseProtectedFieldRefs(ctx, inner);
  }
}

/**
 * Conditions replacing a filter on `key`, an encrypted field or its index field. 'keep' means the
 * filter only tests for null and can stay on that column as written (ciphertext is null exactly
 * when the value is). Null tests stay on `key`: in passthrough mode a legacy row has a value but
 * a null index, so moving a test from one column to the other would change its answer.
 */
function rewriteFieldFilter(ctx: WalkContext, codec: FieldCodec, key: string, filter: unknown): Obj[] | 'keep' {
  // A typed field's own column is NULL at rest: its null tests are answered by the storage column.
  const typed = codec.storageField !== undefined && key === codec.field;
  if (filter === null) return typed ? [typedNullTest(codec, true)] : 'keep';
  if (isFieldValue(codec, filter, 'where')) return [equality(ctx, codec, 'equals', [filter])];
  const conditions: Obj[] = [];
  const onlyNullTests = collectConditions(ctx, codec, key, filter as Obj, false, conditions);
  return onlyNullTests && !typed ? 'keep' : conditions;
}

/**
 * Adds the conditions of one filter object to `out`, read the way Prisma reads it (checked on a
 * plaintext column of PostgreSQL and MariaDB, test/integration/querySlips.test.ts): the operators
 * of an object are ANDed; inside `not: { ... }` each of `equals`, `in`, `notIn` is negated on its
 * own, and a nested `not: { ... }` flips back; a scalar `not: v` means "differs from v" (or "is
 * not null") whatever encloses it. Returns true when the object only tests for null.
 */
function collectConditions(ctx: WalkContext, codec: FieldCodec, key: string, filter: Obj, negated: boolean, out: Obj[]): boolean {
  let onlyNullTests = true;
  for (const [op, raw] of Object.entries(filter)) {
    const operand = resolveJsonNull(codec, raw, 'where');
    if (operand === undefined) continue;
    if (operand === ANY_NULL) ctx.refuse(codec.model, codec.field, op, 'AnyNull is two tests; write Prisma.DbNull or Prisma.JsonNull (or both in OR)');
    if (op === 'mode') {
      if (operand === 'insensitive') {
        ctx.refuse(codec.model, codec.field, 'mode: insensitive', 'ciphertext cannot be compared case-insensitively; normalize the blind index with lowercase instead');
      }
      continue;
    }
    if (!EQUALITY_OPERATORS.has(op)) {
      ctx.refuse(codec.model, codec.field, OTHER_OPERATORS.has(op) ? op : 'unknown operator', 'only equality (equals, in, notIn, not) can be answered through a blind index');
    }
    // Prisma's Boolean and Json filters have no lists: refuse what plain Prisma would reject rather than answer it.
    if ((op === 'in' || op === 'notIn') && (codec.spec.type === 'Boolean' || codec.spec.type === 'Json')) {
      ctx.refuse(codec.model, codec.field, op, `Prisma's ${codec.spec.type} filter has no ${op}; use equals, not or OR`);
    }
    if (fieldRefOf(operand)) ctx.refuse(codec.model, codec.field, op, 'comparing with another column cannot use a blind index');
    // Json `not` takes a value, never a nested filter.
    if (op === 'not' && isObject(operand) && !isFieldValue(codec, operand, 'where') && codec.spec.type !== 'Json') {
      if (!collectConditions(ctx, codec, key, operand, !negated, out)) onlyNullTests = false;
      continue;
    }
    if (operand === null && (op === 'equals' || op === 'not')) {
      // The caller's own null test, on the column they named, with the meaning it has here; a
      // typed field's own column is NULL at rest, so its null tests are answered by its storage.
      if (codec.storageField !== undefined && key === codec.field) out.push(typedNullTest(codec, op === 'equals' && !negated));
      else out.push({ [key]: op === 'not' ? { not: null } : negated ? { not: { equals: null } } : { equals: null } });
      continue;
    }
    onlyNullTests = false;
    const values = op === 'in' || op === 'notIn' ? asList(ctx, codec, op, operand) : [operand];
    const matches = op === 'not' ? false : (op === 'notIn') === negated;
    out.push(equality(ctx, codec, matches ? 'equals' : 'notEquals', values));
  }
  return onlyNullTests;
}

/**
 * A filter on a storage column (a typed field's ciphertext): only null tests mean something;
 * anything else would compare ciphertext.
 */
function storageFilter(ctx: WalkContext, model: RuntimeModel, codec: FieldCodec, key: string, value: unknown): unknown {
  const onlyNull = value === null || (isObject(value) && Object.entries(value).every(([op, v]) => v === undefined || (v === null && (op === 'equals' || op === 'not'))));
  if (!onlyNull) ctx.refuse(model.name, key, 'filter', `it holds the ciphertext of '${codec.field}'; filter on '${codec.field}' instead`);
  return value;
}

function asList(ctx: WalkContext, codec: FieldCodec, op: string, operand: unknown): unknown[] {
  if (!Array.isArray(operand)) ctx.refuse(codec.model, codec.field, op, `'${op}' takes an array`);
  return operand as unknown[];
}

/**
 * Equality (or its negation) of the field against a set of plaintexts, expressed on the blind
 * index. Every index key in the ring contributes a hash, so rows not yet re-indexed still match.
 * In passthrough mode, rows that still hold legacy plaintext (index null) are matched on the
 * column itself.
 */
function equality(ctx: WalkContext, codec: FieldCodec, kind: 'equals' | 'notEquals', values: unknown[]): Obj {
  const indexField = codec.indexField;
  if (!indexField) {
    ctx.refuse(codec.model, codec.field, kind === 'equals' ? 'equals' : 'not', 'the field has no blind index (add index: <field> to its @encrypted annotation)');
  }
  const hashes: BlindIndex[] = [];
  for (const raw of values) {
    if (raw === null) continue;
    // Field references (`prisma.user.fields.x`) arrive as objects: another column's value is never hashed.
    if (fieldRefOf(raw)) ctx.refuse(codec.model, codec.field, kind, 'comparing with another column cannot use a blind index');
    if (!codec.storageField && typeof raw !== 'string') {
      ctx.refuse(codec.model, codec.field, kind, typeof raw === 'object' ? 'comparing with another column cannot use a blind index' : `expected a string, got ${typeof raw}`);
    }
    const v = raw === JSON_NULL ? null : raw;
    for (const h of codec.indexesForLookup(v)) hashes.push(h);
    ctx.secret(v, ...hashes);
    ctx.stats.indexed++;
    ctx.fields.searched.add(codec.binding);
  }
  const test = kind === 'equals' ? (hashes.length === 1 ? hashes[0] : { in: hashes }) : hashes.length === 1 ? { not: hashes[0] } : { notIn: hashes };
  if (codec.spec.readMode !== 'passthrough') return { [indexField!]: test };
  // Legacy rows have a null index. `idx = h` is NULL (not false) for them, and NOT(NULL OR ...)
  // would drop them, so the index branch also requires a non-null index: both branches are then
  // plain true/false for legacy rows, exactly as the plaintext comparison would be.
  const plain = values.filter((v) => v !== null);
  return {
    OR: [
      { AND: [{ [indexField!]: { not: null } }, { [indexField!]: test }] },
      { [indexField!]: null, ...legacyMatch(codec, kind, plain) },
    ],
  };
}

/** Legacy rows (passthrough) compared on the plaintext column; Json filters have no `in`. */
function legacyMatch(codec: FieldCodec, kind: 'equals' | 'notEquals', plain: unknown[]): Obj {
  if (codec.spec.type !== 'Json') return { [codec.field]: kind === 'equals' ? { in: plain } : { notIn: plain } };
  const any = { OR: plain.map((v) => ({ [codec.field]: { equals: v === JSON_NULL ? JsonNull : v } })) };
  return kind === 'equals' ? any : { NOT: any };
}
