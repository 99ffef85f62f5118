import type { RelationSpec } from '../schema';
import { rewriteWhere } from './rewriteWhere';
import type { RuntimeModel } from './runtimeSchema';
import { isFieldValue, isJsonNullValue, resolveJsonNull, typedNull } from './typedValues';
import { isObject, mapOneOrMany, type Obj, type WalkContext } from './walkContext';

const ATOMIC_OPERATORS = new Set(['increment', 'decrement', 'multiply', 'divide', 'push', 'unset']);

/**
 * Encrypts annotated fields in a create or update payload and sets their blind indexes, at any
 * depth of nested writes. Returns new objects; the caller's arguments are left untouched. Any
 * failure throws before the query is sent, so nothing is written half way.
 */
export function rewriteData(ctx: WalkContext, model: RuntimeModel, data: unknown, kind: 'create' | 'update'): unknown {
  if (!isObject(data) || !model.holdsEncrypted) return data;
  const out: Obj = {};
  for (const key of Object.keys(data)) {
    const value = data[key];
    if (model.indexOwners.has(key) && value !== undefined) {
      ctx.refuse(model.name, key, kind, `it is the blind index of '${model.indexOwners.get(key)!.field}' and is computed by the extension; write '${model.indexOwners.get(key)!.field}' instead`);
    }
    if (model.storageOwners.has(key) && value !== undefined) {
      ctx.refuse(model.name, key, kind, `it holds the ciphertext of '${model.storageOwners.get(key)!.field}' and is written by the extension; write '${model.storageOwners.get(key)!.field}' instead`);
    }
  }
  if (kind === 'update') refuseUncheckedCompoundChange(ctx, model, data);
  for (const key of Object.keys(data)) {
    const value = data[key];
    const codec = model.codecs.get(key);
    if (codec) {
      if (value === undefined) continue;
      let plain: unknown = value;
      if (kind === 'update' && !isFieldValue(codec, value, 'data') && isObject(value)) {
        const ops = Object.keys(value).filter((o) => value[o] !== undefined);
        if (ops.length === 0) continue; // `{ set: undefined }`: Prisma leaves the field alone
        if (ops.length !== 1 || ops[0] !== 'set') {
          const op = ops.find((o) => o !== 'set')!;
          // Only known operator names are echoed: an unexpected key could be user data.
          ctx.refuse(model.name, key, ATOMIC_OPERATORS.has(op) ? op : 'unknown operator', 'atomic operators cannot be applied to ciphertext; use a plain value or { set }');
        }
        plain = value.set;
      }
      const jsonNull = isJsonNullValue(codec, plain);
      plain = resolveJsonNull(codec, plain, 'data');
      const storage = codec.storageField;
      // A typed field's own column is always written NULL: its ciphertext goes to the storage column.
      if (storage) out[key] = typedNull(codec);
      if (plain === null && !jsonNull) {
        out[storage ?? key] = null;
        if (codec.indexField) out[codec.indexField] = null;
        continue;
      }
      out[storage ?? key] = codec.encrypt(plain, ctx.writeKeys(model, data, key, kind));
      ctx.stats.encrypted++;
      ctx.fields.written.add(codec.binding);
      if (codec.indexField) {
        const constraints = model.uniqueDuringRotation.get(codec.indexField);
        if (constraints) {
          const hashes = codec.indexesForLookup(plain);
          out[codec.indexField] = hashes[0];
          ctx.uniqueWrites.push({ model: model.name, indexField: codec.indexField, hashes, constraints });
        } else {
          out[codec.indexField] = codec.indexForWrite(plain);
        }
        ctx.stats.indexed++;
      }
      ctx.secret(plain, out[key], codec.indexField && out[codec.indexField]);
      continue;
    }
    const relation = model.relations.get(key);
    if (relation && isObject(value)) {
      out[key] = rewriteNestedWrite(ctx, model.name, key, relation, value);
      continue;
    }
    out[key] = value;
  }
  return out;
}

/**
 * The `data` of a create or createMany. `skipDuplicates` lets the database skip a row whose
 * unique value exists; while several index keys are loaded it cannot see a duplicate stored
 * under the other key, and the extension's check can only refuse the whole write, not skip one
 * row: refused until the rotation is over.
 */
export function createManyData(ctx: WalkContext, model: RuntimeModel, args: Obj, create: (d: unknown) => unknown): unknown {
  const before = ctx.uniqueWrites.length;
  const data = mapOneOrMany(args.data, create);
  if (args.skipDuplicates === true && ctx.uniqueWrites.length > before) {
    const write = ctx.uniqueWrites[before]!;
    ctx.refuse(model.name, write.indexField, 'skipDuplicates', 'several index keys are loaded, so a duplicate under the other key cannot be skipped row by row; create without skipDuplicates and handle P2002, or wait until rotate has finished and the old key is unloaded');
  }
  return data;
}

/**
 * While several index keys are loaded, an update that moves a row within a compound unique
 * (`tenant` of `@@unique([tenant, emailIdx])`) without writing the indexed value could land on a
 * row of that tenant holding the value under the other key. Checking needs the value, which only
 * the write itself can supply: such an update must write the encrypted field too.
 */
function refuseUncheckedCompoundChange(ctx: WalkContext, model: RuntimeModel, data: Obj): void {
  for (const [indexField, constraints] of model.uniqueDuringRotation) {
    const owner = model.indexOwners.get(indexField)!;
    if (data[owner.field] !== undefined) continue;
    for (const fields of constraints) {
      const moved = fields.find((f) => f !== indexField && data[f] !== undefined);
      if (moved) {
        ctx.refuse(model.name, moved, 'update', `it is part of a unique constraint with '${indexField}' and several index keys are loaded; write '${owner.field}' in the same update so the extension can check uniqueness`);
      }
    }
  }
}

/** Prisma's nested write operations; which of them a relation accepts is Prisma's to check. */
const NESTED_WRITES = ['create', 'createMany', 'connectOrCreate', 'upsert', 'update', 'updateMany', 'connect', 'set', 'disconnect', 'delete', 'deleteMany'];

/** Rewrites the operations of one relation field inside a create or update payload. */
function rewriteNestedWrite(ctx: WalkContext, modelName: string, field: string, relation: RelationSpec, ops: Obj): Obj {
  const target = ctx.model(relation.model);
  if (!target.holdsEncrypted) return ops;
  const where = (w: unknown) => rewriteWhere(ctx, target, w);
  const whereUnique = (w: unknown) => rewriteWhere(ctx, target, w, true);
  const create = (d: unknown) => rewriteData(ctx, target, d, 'create');
  const update = (d: unknown) => rewriteData(ctx, target, d, 'update');
  // In to-many upsert/update the where picks one related record; in to-one it filters the only one.
  const targetWhere = (v: Obj): Obj => (v.where === undefined ? {} : { where: relation.list ? whereUnique(v.where) : where(v.where) });
  const out: Obj = {};
  for (const [op, value] of Object.entries(ops)) {
    if (value !== undefined && !NESTED_WRITES.includes(op)) {
      // A misspelt operation (`craete`) would reach Prisma unencrypted, and its error would echo
      // the plaintext. The name is not echoed either: it could be data spread into the payload.
      ctx.refuse(modelName, field, 'unknown nested write', `the operation is not one of ${NESTED_WRITES.join(', ')}`);
    }
    if (value === undefined || typeof value === 'boolean') {
      out[op] = value;
      continue;
    }
    switch (op) {
      case 'create':
        out[op] = mapOneOrMany(value, create);
        break;
      case 'createMany':
        out[op] = isObject(value) ? { ...value, data: createManyData(ctx, target, value, create) } : value;
        break;
      case 'connectOrCreate':
        out[op] = mapOneOrMany(value, (v) => (isObject(v) ? { ...v, where: whereUnique(v.where), create: create(v.create) } : v));
        break;
      case 'upsert':
        out[op] = mapOneOrMany(value, (v) =>
          isObject(v)
            ? { ...v, ...targetWhere(v), create: create(v.create), update: update(v.update) }
            : v,
        );
        break;
      case 'update':
        out[op] = mapOneOrMany(value, (v) => (isWithWhere(v) ? { ...v, ...targetWhere(v), data: update(v.data) } : update(v)));
        break;
      case 'updateMany':
        out[op] = mapOneOrMany(value, (v) => (isObject(v) ? { ...v, where: where(v.where), data: update(v.data) } : v));
        break;
      case 'connect':
      case 'set':
        out[op] = mapOneOrMany(value, whereUnique);
        break;
      case 'disconnect':
      case 'delete':
        // To-many: unique wheres; to-one: a filter on the related record.
        out[op] = mapOneOrMany(value, relation.list ? whereUnique : where);
        break;
      case 'deleteMany':
        out[op] = mapOneOrMany(value, where);
        break;
      default:
        out[op] = value;
    }
  }
  return out;
}

/**
 * The `{ where?, data }` wrapper of a nested update, as opposed to the update payload itself.
 * Decided the way Prisma decides: only `where`/`data` keys with an object `data`, even when the
 * target model has a field called `data` (reading it the other way would skip encryption).
 */
function isWithWhere(value: unknown): value is Obj & { data: Obj } {
  return isObject(value) && isObject(value.data) && Object.keys(value).every((k) => k === 'where' || k === 'data');
}
