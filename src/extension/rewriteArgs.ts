import { DEFAULT_SHAPE, type ReadShape } from './decryptResult';
import { createManyData, rewriteData } from './rewriteData';
import { refuseProtectedFieldRefs, rewriteWhere } from './rewriteWhere';
import type { RuntimeModel } from './runtimeSchema';
import { isObject, type Obj, type WalkContext } from './walkContext';

/** Operations whose `where` must identify one record (Prisma's WhereUniqueInput). */
const UNIQUE_WHERE = new Set(['findUnique', 'findUniqueOrThrow', 'update', 'upsert', 'delete']);
const CREATE_DATA = new Set(['create', 'createMany', 'createManyAndReturn']);
const UPDATE_DATA = new Set(['update', 'updateMany', 'updateManyAndReturn']);

/**
 * Rewrites the arguments of one top-level model operation: encrypts write payloads, turns
 * equality on encrypted fields into blind-index lookups, and refuses what ciphertext cannot
 * answer. Returns new objects.
 */
export function rewriteArgs(ctx: WalkContext, model: RuntimeModel, operation: string, args: Obj | undefined): Obj | undefined {
  if (!args || !model.holdsEncrypted) return args;
  const out: Obj = { ...args };
  if (args.where !== undefined) out.where = rewriteWhere(ctx, model, args.where, UNIQUE_WHERE.has(operation));
  if (args.data !== undefined) {
    if (CREATE_DATA.has(operation)) out.data = createManyData(ctx, model, args, (d) => rewriteData(ctx, model, d, 'create'));
    else if (UPDATE_DATA.has(operation)) out.data = rewriteData(ctx, model, args.data, 'update');
  }
  if (operation === 'upsert') {
    out.create = rewriteData(ctx, model, args.create, 'create');
    out.update = rewriteData(ctx, model, args.update, 'update');
  }
  ctx.readShape = rewriteQueryShape(ctx, model, args, out);
  if (operation === 'groupBy') checkGroupBy(ctx, model, args);
  if (operation === 'aggregate' || operation === 'groupBy') checkAggregates(ctx, model, args);
  return out;
}

/**
 * select/include/omit, orderBy, cursor and distinct: shared by top-level and nested relation
 * reads. Returns what result decryption must know about the selection at each depth.
 */
function rewriteQueryShape(ctx: WalkContext, model: RuntimeModel, args: Obj, out: Obj): ReadShape {
  const nested = new Map<string, ReadShape>();
  if (isObject(args.select)) out.select = rewriteSelection(ctx, model, args.select, nested);
  if (isObject(args.include)) out.include = rewriteSelection(ctx, model, args.include, nested);
  if (isObject(args.omit) && model.storageOwners.size > 0) out.omit = rewriteOmit(model, args.omit);
  if (args.orderBy !== undefined) checkOrderBy(ctx, model, args.orderBy);
  if (args.cursor !== undefined) out.cursor = rewriteCursor(ctx, model, args.cursor);
  if (args.distinct !== undefined) {
    for (const field of Array.isArray(args.distinct) ? args.distinct : [args.distinct]) {
      if (typeof field === 'string' && (model.codecs.has(field) || model.storageOwners.has(field))) {
        ctx.refuse(model.name, field, 'distinct', 'ciphertext is randomised, so equal values differ; use distinct on its index field');
      }
      if (typeof field === 'string' && model.rotatingIndexes.has(field)) ctx.refuse(model.name, field, 'distinct', ROTATING);
    }
  }
  const keep = isObject(args.select) ? [...model.storageOwners.keys()].filter((s) => (args.select as Obj)[s]) : [];
  return keep.length === 0 && nested.size === 0 ? DEFAULT_SHAPE : { keep: new Set(keep), nested };
}

/**
 * A typed field omitted takes its storage column with it; a storage column omitted while its
 * typed field is not is still read (the value is decrypted from it) and left out of the result.
 */
function rewriteOmit(model: RuntimeModel, omit: Obj): Obj {
  const out: Obj = { ...omit };
  for (const [storage, codec] of model.storageOwners) {
    if (omit[codec.field]) out[storage] = true;
    else if (omit[storage]) delete out[storage];
  }
  return out;
}

/** A cursor names a position by stored values: encrypted fields have none, their index fields do. */
function rewriteCursor(ctx: WalkContext, model: RuntimeModel, cursor: unknown): unknown {
  if (isObject(cursor)) {
    const field = Object.keys(cursor).find((key) => model.codecs.has(key) || model.storageOwners.has(key));
    if (field) ctx.refuse(model.name, field, 'cursor', 'ciphertext is randomised, so it cannot mark a position; use the id or the blind index field');
  }
  return rewriteWhere(ctx, model, cursor, true);
}

function rewriteSelection(ctx: WalkContext, model: RuntimeModel, selection: Obj, shapes: Map<string, ReadShape>): Obj {
  const out: Obj = {};
  // A selected typed field is read from its storage column (left out of the result unless selected too).
  for (const [storage, codec] of model.storageOwners) {
    if (selection[codec.field] && !selection[storage]) out[storage] = true;
  }
  for (const [key, value] of Object.entries(selection)) {
    if (key === '_count' && isObject(value) && isObject(value.select)) {
      const counted: Obj = {};
      for (const [rel, relArgs] of Object.entries(value.select)) {
        const relation = model.relations.get(rel);
        counted[rel] =
          relation && isObject(relArgs) && relArgs.where !== undefined
            ? { ...relArgs, where: rewriteWhere(ctx, ctx.model(relation.model), relArgs.where) }
            : relArgs;
      }
      out[key] = { ...value, select: counted };
      continue;
    }
    const relation = model.relations.get(key);
    if (relation && isObject(value)) {
      const target = ctx.model(relation.model);
      const nested: Obj = { ...value };
      if (value.where !== undefined) nested.where = rewriteWhere(ctx, target, value.where);
      const shape = rewriteQueryShape(ctx, target, value, nested);
      if (shape !== DEFAULT_SHAPE) shapes.set(key, shape);
      out[key] = nested;
      continue;
    }
    out[key] = value;
  }
  return out;
}

function checkOrderBy(ctx: WalkContext, model: RuntimeModel, orderBy: unknown): void {
  for (const entry of Array.isArray(orderBy) ? orderBy : [orderBy]) {
    if (!isObject(entry)) continue;
    for (const [key, value] of Object.entries(entry)) {
      if (model.codecs.has(key) || model.storageOwners.has(key)) {
        ctx.refuse(model.name, key, 'orderBy', 'ciphertext order says nothing about plaintext order');
      }
      // groupBy's `orderBy: { _max: { field: 'desc' } }`: only a count of non-null values means the same on ciphertext.
      if (VALUE_AGGREGATES.has(key) && isObject(value)) {
        const hit = Object.keys(value).find((f) => model.codecs.has(f) || model.indexOwners.has(f) || model.storageOwners.has(f));
        if (hit) ctx.refuse(model.name, hit, `orderBy ${key}`, 'an aggregate of ciphertext or a blind index says nothing about the plaintext; order by _count or a plain field');
      }
      if (key === '_relevance' && isObject(value)) {
        const fields = Array.isArray(value.fields) ? value.fields : [value.fields];
        const hit = fields.find((f) => typeof f === 'string' && model.codecs.has(f));
        if (hit) ctx.refuse(model.name, hit as string, '_relevance', 'full-text search cannot run on ciphertext');
      }
      const relation = model.relations.get(key);
      if (relation && isObject(value) && !('_count' in value)) checkOrderBy(ctx, ctx.model(relation.model), value);
    }
  }
}

/**
 * Why grouping by an index field is refused while several index keys are loaded: one value has a
 * hash under each key, so it would form one group per key. Merging them needs the plaintext of
 * every row, which grouping in the database never has; once `rotate` has moved every row to the
 * primary key and the old key is unloaded, the one-key answer is exact again.
 */
const ROTATING = 'several index keys are loaded (a re-index is in progress), so one value has a hash under each key and would be split into several groups; finish rotate and unload the old index key first';

function checkGroupBy(ctx: WalkContext, model: RuntimeModel, args: Obj): void {
  for (const field of Array.isArray(args.by) ? args.by : [args.by]) {
    if (typeof field === 'string' && (model.codecs.has(field) || model.storageOwners.has(field))) {
      ctx.refuse(model.name, field, 'groupBy', 'ciphertext is randomised, so equal values would form separate groups; group by its index field');
    }
    if (typeof field === 'string' && model.rotatingIndexes.has(field)) ctx.refuse(model.name, field, 'groupBy', ROTATING);
  }
  checkHaving(ctx, model, args.having);
}

/** Aggregates whose result is a stored value (a hash or ciphertext), unlike `_count`. */
const VALUE_AGGREGATES = new Set(['_min', '_max', '_avg', '_sum']);

/**
 * `having` is not rewritten: encrypted fields cannot be aggregated, and a plain condition on an
 * index field, or one on its `_min`/`_max`, would compare the stored hash (filter on the plaintext
 * with `where` instead). `_count` of an index field counts non-null hashes and is fine.
 */
function checkHaving(ctx: WalkContext, model: RuntimeModel, having: unknown): void {
  if (!isObject(having)) return;
  for (const [key, value] of Object.entries(having)) {
    if (key === 'AND' || key === 'OR' || key === 'NOT') {
      for (const inner of Array.isArray(value) ? value : [value]) checkHaving(ctx, model, inner);
      continue;
    }
    if (model.codecs.has(key) || model.storageOwners.has(key)) {
      ctx.refuse(model.name, key, 'having', 'aggregates cannot be computed on ciphertext');
    } else if (model.indexOwners.has(key) && !(isObject(value) && Object.keys(value).every((op) => op === '_count'))) {
      ctx.refuse(model.name, key, 'having', 'it would compare the stored blind index (only _count of an index field is meaningful); filter on the plaintext with where instead');
    }
    refuseProtectedFieldRefs(ctx, value);
  }
}

function checkAggregates(ctx: WalkContext, model: RuntimeModel, args: Obj): void {
  for (const agg of ['_min', '_max', '_avg', '_sum']) {
    const selected = args[agg];
    if (!isObject(selected)) continue;
    for (const [field, on] of Object.entries(selected)) {
      if (on && (model.codecs.has(field) || model.storageOwners.has(field))) ctx.refuse(model.name, field, agg, 'aggregates cannot be computed on ciphertext');
    }
  }
}
