import type { BlindIndex } from '../crypto/blindIndex';
import type { FieldCodec } from './fieldCodec';
import type { RuntimeModel } from './runtimeSchema';
import { isObject, mapOneOrMany, type Obj, type WalkContext } from './walkContext';

/**
 * Rewrites a `where` so that equality on encrypted fields becomes equality on their blind index.
 * Pure apart from the HMAC computation; returns a new object and never mutates the input.
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
    const codec = model.codecs.get(key);
    if (codec) {
      const conditions = rewriteFieldFilter(ctx, codec, value);
      if (conditions === 'keep') out[key] = value;
      else extra.push(...conditions);
      continue;
    }
    const owner = model.indexOwners.get(key);
    if (owner && unique && (typeof value === 'string' || (isObject(value) && typeof value.equals === 'string' && Object.keys(value).length === 1))) {
      // A unique where must name one stored value, so it cannot use `in`: look up under one index
      // key per attempt (see uniqueAttempt) rather than all of them at once.
      const plain = typeof value === 'string' ? value : (value as Obj).equals;
      const hashes = owner.indexesForLookup(plain);
      ctx.stats.indexed++;
      ctx.usedUniqueIndex = true;
      out[key] = hashes[Math.min(ctx.uniqueAttempt, hashes.length - 1)];
      continue;
    }
    if (owner) {
      const conditions = rewriteFieldFilter(ctx, owner, value);
      if (conditions === 'keep') out[key] = value;
      else extra.push(...conditions);
      continue;
    }
    const relation = model.relations.get(key);
    if (relation) {
      out[key] = rewriteRelationFilter(ctx, ctx.model(relation.model), relation.list, value);
      continue;
    }
    const compound = model.spec.compoundUniques[key];
    if (compound && isObject(value)) {
      out[key] = value;
      for (const field of compound) {
        const indexOwner = model.indexOwners.get(field);
        if (indexOwner && value[field] !== undefined && value[field] !== null) {
          // A compound unique input must stay an equality on one stored index value.
          ctx.stats.indexed++;
          const hashes = indexOwner.indexesForLookup(value[field]);
          ctx.usedUniqueIndex = true;
          out[key] = { ...(out[key] as Obj), [field]: hashes[Math.min(ctx.uniqueAttempt, hashes.length - 1)] };
        }
      }
      continue;
    }
    out[key] = value;
  }
  if (extra.length > 0) mergeConditions(out, extra);
  return out;
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

/**
 * Conditions replacing a filter on an encrypted (or index) field. 'keep' means the filter only
 * tests for null and can stay on the column itself (ciphertext is null exactly when the value is).
 */
function rewriteFieldFilter(ctx: WalkContext, codec: FieldCodec, filter: unknown): Obj[] | 'keep' {
  if (filter === null) return 'keep';
  if (!isObject(filter)) return [equality(ctx, codec, 'equals', [filter])];
  const conditions: Obj[] = [];
  let onlyNullTests = true;
  for (const [op, operand] of Object.entries(filter)) {
    if (operand === undefined) continue;
    if (op === 'mode') {
      if (operand === 'insensitive') {
        ctx.refuse(codec.model, codec.field, 'mode: insensitive', 'ciphertext cannot be compared case-insensitively; normalize the blind index with lowercase instead');
      }
      continue;
    }
    if (!EQUALITY_OPERATORS.has(op)) {
      ctx.refuse(codec.model, codec.field, op, 'only equality (equals, in, notIn, not) can be answered through a blind index');
    }
    if (operand === null && (op === 'equals' || op === 'not')) continue;
    onlyNullTests = false;
    if (op === 'not' && isObject(operand)) {
      const inner = rewriteFieldFilter(ctx, codec, operand);
      conditions.push({ NOT: inner === 'keep' ? { [codec.field]: operand } : inner.length === 1 ? inner[0] : { AND: inner } });
      continue;
    }
    const values = op === 'in' || op === 'notIn' ? asList(ctx, codec, op, operand) : [operand];
    conditions.push(equality(ctx, codec, op === 'equals' || op === 'in' ? 'equals' : 'notEquals', values));
  }
  if (onlyNullTests) return 'keep';
  const nullTests = Object.entries(filter).filter(([op, v]) => v === null && (op === 'equals' || op === 'not'));
  for (const [op] of nullTests) conditions.push({ [codec.field]: op === 'equals' ? null : { not: null } });
  return conditions;
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
  for (const v of values) {
    if (v === null) continue;
    if (typeof v !== 'string') {
      // Field references (`prisma.user.fields.x`) arrive as objects: another column's value is never hashed.
      ctx.refuse(codec.model, codec.field, kind, typeof v === 'object' ? 'comparing with another column cannot use a blind index' : `expected a string, got ${typeof v}`);
    }
    for (const h of codec.indexesForLookup(v)) hashes.push(h);
    ctx.stats.indexed++;
  }
  const onIndex: Obj =
    kind === 'equals'
      ? { [indexField!]: hashes.length === 1 ? hashes[0] : { in: hashes } }
      : { [indexField!]: hashes.length === 1 ? { not: hashes[0] } : { notIn: hashes } };
  if (codec.spec.readMode !== 'passthrough') return onIndex;
  const plain = values.filter((v) => v !== null);
  const onLegacy: Obj = {
    [indexField!]: null,
    [codec.field]: kind === 'equals' ? { in: plain } : { notIn: plain },
  };
  return { OR: [onIndex, onLegacy] };
}
