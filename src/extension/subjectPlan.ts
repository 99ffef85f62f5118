import type { ChosenKey, KeyChoice } from '../codec/keyChoice';
import type { RelationSpec } from '../schema';
import type { RuntimeModel } from './runtimeSchema';
import { isObject, type Obj, type WalkContext } from './walkContext';

/**
 * Which subject each payload of a write belongs to, decided before anything is encrypted. The
 * extension sees one top-level operation with its nested writes inside, so the plan walks the
 * payloads the way rewriteData will and gives every payload of a subject-keyed model a slot:
 * one subject, told by the data, by a relation carrying the subject (`subjectLink`), by the row
 * the operation updates, or by the id the database generates during the query. Slots are
 * resolved to keys in the write's transaction; rewriteData then encrypts each payload under its
 * slot's key. What the plan cannot tell is refused here, before anything reaches the database.
 */

/** How a slot's subject is told. */
export type SubjectSource =
  /** Given in the data (or the connected record's subject). */
  | { readonly kind: 'known'; readonly subject: string }
  /** The top-level record's subject field is generated during the query: reserve a key, bind it to the result's value. */
  | { readonly kind: 'generated' }
  /** The subject of an existing record a `connect` names. */
  | { readonly kind: 'connect'; readonly model: RuntimeModel; readonly where: unknown }
  /** The subject(s) of the rows the top-level `where` matches (update, updateMany, upsert). */
  | { readonly kind: 'row' }
  /** Cannot be told; refused if an encrypted value needs it. */
  | { readonly kind: 'unknown'; readonly reason: string };

/** One subject of a write: its payloads share a key. */
export interface Slot {
  readonly model: RuntimeModel;
  readonly source: SubjectSource;
  /** Some payload of the slot writes an encrypted field. */
  needed: boolean;
  /** Set when resolved: the subject's data key, and the key choice payloads encrypt with. */
  key?: ChosenKey;
  keys?: KeyChoice;
}

export class SubjectPlan {
  /** Payload object (the caller's, as rewriteData sees it) -> its slot. */
  readonly slots = new Map<object, Slot>();
  readonly all: Slot[] = [];
  /** The slot of the top-level rows an update/updateMany/upsert updates. */
  rowSlot?: Slot;
  /** The slot of the top-level record a create (or upsert's create) writes. */
  createSlot?: Slot;

  get needed(): boolean {
    return this.all.some((s) => s.needed);
  }

  slot(model: RuntimeModel, source: SubjectSource): Slot {
    const slot: Slot = { model, source, needed: false };
    this.all.push(slot);
    return slot;
  }
}

const WRITES = new Set(['create', 'createMany', 'createManyAndReturn', 'update', 'updateMany', 'updateManyAndReturn', 'upsert']);
const CREATES = new Set(['create', 'createMany', 'createManyAndReturn']);

/** The plan of one top-level operation; `undefined` when it writes no encrypted value of a subject-keyed model. */
export function planSubjects(ctx: WalkContext, model: RuntimeModel, operation: string, args: Obj | undefined): SubjectPlan | undefined {
  if (!args || !WRITES.has(operation) || !model.reachesSubject) return undefined;
  const plan = new SubjectPlan();
  const many = operation !== 'create';
  if (CREATES.has(operation)) {
    for (const data of Array.isArray(args.data) ? args.data : [args.data]) {
      const slot = planData(ctx, plan, model, data, 'create', undefined, !many);
      if (!many) plan.createSlot = slot;
    }
  } else if (operation === 'upsert') {
    plan.rowSlot = model.spec.subject ? plan.slot(model, { kind: 'row' }) : undefined;
    plan.createSlot = planData(ctx, plan, model, args.create, 'create', undefined, true);
    planData(ctx, plan, model, args.update, 'update', plan.rowSlot, true);
    const create = plan.createSlot;
    if (plan.rowSlot?.needed && create && !create.needed) {
      // Without a row to update the create branch runs, and the update payload is encrypted under its key.
      if (create.source.kind === 'unknown') ctx.refuse(model.name, model.spec.subject!.field, 'upsert', create.source.reason);
      create.needed = true;
    }
  } else {
    plan.rowSlot = model.spec.subject ? plan.slot(model, { kind: 'row' }) : undefined;
    planData(ctx, plan, model, args.data, 'update', plan.rowSlot, true);
  }
  return plan.needed ? plan : undefined;
}

/** Plans one create or update payload of `model` and its nested writes; returns its slot. */
function planData(ctx: WalkContext, plan: SubjectPlan, model: RuntimeModel, data: unknown, kind: 'create' | 'update', inherited: Slot | undefined, top: boolean): Slot | undefined {
  if (!isObject(data) || !model.reachesSubject) return undefined;
  const subject = model.spec.subject;
  let slot: Slot | undefined;
  if (subject) {
    if (kind === 'update') refuseSubjectChange(ctx, model, data);
    slot = inherited ?? (kind === 'create' ? plan.slot(model, createSource(ctx, model, data, top)) : undefined);
    const written = [...model.codecs.keys()].find((f) => data[f] !== undefined);
    if (written) {
      if (!slot) {
        ctx.refuse(model.name, written, 'nested update', `the row's subject cannot be told: update ${model.name} at top level, or through a relation that carries its subject (@@encrypted(subject: ...) on both models, the subject field as the relation's foreign key)`);
      }
      if (slot!.source.kind === 'unknown') ctx.refuse(model.name, written, kind, (slot!.source as { reason: string }).reason);
      slot!.needed = true;
      plan.slots.set(data, slot!);
    }
  }
  for (const [field, value] of Object.entries(data)) {
    const relation = model.relations.get(field);
    if (!relation || !isObject(value)) continue;
    const target = ctx.model(relation.model);
    if (!target.reachesSubject) continue;
    const linked = subject && target.spec.subject && relation.subjectLink ? slot : undefined;
    planNested(ctx, plan, model, relation, target, value, linked, kind);
  }
  return slot;
}

/** How a created record's subject is told: its subject field, the relation carrying it, or the id the database generates. */
function createSource(ctx: WalkContext, model: RuntimeModel, data: Obj, top: boolean): SubjectSource {
  const field = model.spec.subject!.field;
  const value = data[field];
  if (value !== undefined && value !== null) return { kind: 'known', subject: givenSubject(ctx, model, value) };
  for (const [name, relation] of model.relations) {
    const ops = data[name];
    if (relation.subjectLink !== 'child' || !isObject(ops)) continue;
    const target = ctx.model(relation.model);
    if (isObject(ops.connect)) return { kind: 'connect', model: target, where: ops.connect };
    if (isObject(ops.create)) {
      const nested = createSource(ctx, target, ops.create, top);
      // The nested record's generated id is this record's subject field: told by this record's result.
      return nested;
    }
    return { kind: 'unknown', reason: `the subject comes from '${name}', which a create can only tell with a single create or connect (connectOrCreate cannot say which subject before the query)` };
  }
  const generated = model.spec.primaryKey.length === 1 && model.spec.primaryKey[0] === field;
  if (generated && top) return { kind: 'generated' };
  if (generated) return { kind: 'unknown', reason: `the subject is the id of a record created inside another one, which the database generates during the query; create ${model.name} at top level, or give its ${field}` };
  return { kind: 'unknown', reason: `the subject cannot be told: give '${field}' in the data, or connect/create the record it belongs to through its relation` };
}

/**
 * The subject id a create's data gives, refused unless the field stores exactly that value: the
 * database rounds `1.5` in an Int column to a person's id, while the key would be that of a
 * subject '1.5' no erasure of the person ever reaches. The message never holds the value.
 */
function givenSubject(ctx: WalkContext, model: RuntimeModel, value: unknown): string {
  const { field, type } = model.spec.subject!;
  const integer = typeof value === 'bigint' || (typeof value === 'number' && Number.isSafeInteger(value));
  const exact = type === 'String' ? typeof value === 'string' : type === 'Int' || type === 'BigInt' ? integer : typeof value === 'string' || integer;
  if (!exact) ctx.refuse(model.name, field, 'create', `the subject id must be ${type === 'String' ? 'a string' : type ? 'an integer (a number without fraction, or a bigint)' : 'a string or an integer'}, as the field stores it; another value would be written under a key no erasure of the subject reaches`);
  return subjectText(value);
}

/** A subject id as the key table stores it: the text of the field's value. */
export function subjectText(value: unknown): string {
  return typeof value === 'bigint' || typeof value === 'number' ? value.toString() : String(value);
}

/** Nested writes under one relation; `linked`: the related records share this record's subject. */
function planNested(ctx: WalkContext, plan: SubjectPlan, model: RuntimeModel, relation: RelationSpec, target: RuntimeModel, ops: Obj, linked: Slot | undefined, kind: 'create' | 'update'): void {
  const each = (value: unknown, fn: (v: unknown) => void) => (Array.isArray(value) ? value.forEach(fn) : fn(value));
  const moves = (op: string) => {
    if (target.codecs.size === 0) return;
    if (relation.subjectLink === 'parent') {
      ctx.refuse(target.name, target.spec.subject!.field, `nested ${op}`, `it would move existing ${target.name} records to this ${model.name}'s subject while their values stay under their old subject's key; create them here or update them where they are`);
    }
    if (relation.subjectLink === 'child' && kind === 'update') {
      ctx.refuse(model.name, model.spec.subject!.field, `nested ${op}`, `it would change the subject of this ${model.name} while its values stay under the old subject's key`);
    }
  };
  for (const [op, value] of Object.entries(ops)) {
    if (value === undefined) continue;
    switch (op) {
      case 'create':
        if (relation.subjectLink === 'child' && kind === 'update') moves(op);
        each(value, (v) => planData(ctx, plan, target, v, 'create', linked, false));
        break;
      case 'createMany':
        if (isObject(value)) each(value.data, (v) => planData(ctx, plan, target, v, 'create', linked, false));
        break;
      case 'connectOrCreate':
        if (linked) moves(op);
        each(value, (v) => isObject(v) && planData(ctx, plan, target, v.create, 'create', linked, false));
        break;
      case 'upsert':
        each(value, (v) => {
          if (!isObject(v)) return;
          planData(ctx, plan, target, v.create, 'create', linked, false);
          planData(ctx, plan, target, v.update, 'update', linked, false);
        });
        break;
      case 'update':
      case 'updateMany':
        each(value, (v) => planData(ctx, plan, target, isObject(v) && isObject(v.data) && (op === 'updateMany' || Object.keys(v).every((k) => k === 'where' || k === 'data')) ? v.data : v, 'update', linked, false));
        break;
      case 'connect':
      case 'set':
        if (linked && !(relation.subjectLink === 'child' && kind === 'create')) moves(op);
        break;
      default:
        break;
    }
  }
}

/** An update may not change the subject of a row holding encrypted values: they would stay under the old subject's key. */
function refuseSubjectChange(ctx: WalkContext, model: RuntimeModel, data: Obj): void {
  const field = model.spec.subject!.field;
  if (model.codecs.size > 0 && data[field] !== undefined) {
    ctx.refuse(model.name, field, 'update', `it is the subject field: changing it would leave the row's encrypted values under the old subject's key; create a new record for the other subject instead`);
  }
}
