import { randomBytes, createSecretKey } from 'node:crypto';
import { PrismaClientKnownRequestError } from '@prisma/client/runtime/client';
import { subjectKeys, type ChosenKey, type KeyringView } from '../codec/keyChoice';
import { SubjectErasedError } from '../errors';
import { rewriteArgs } from './rewriteArgs';
import type { RuntimeModel, RuntimeSchema } from './runtimeSchema';
import { subjectText, type Slot, type SubjectPlan } from './subjectPlan';
import type { SubjectKeySource } from './subjectStore';
import { delegateOf, type QueryClient } from './transactionScope';
import type { Dialect } from './uniqueGuard';
import { rewriteWhere } from './rewriteWhere';
import { isObject, type Obj, WalkContext } from './walkContext';
import { resolveUniqueLookups, sendChecked, type WriteScope } from './writeTransaction';

/**
 * A write that encrypts values of a subject-keyed model, in its transaction: the subjects of the
 * rows it writes are found (from the data, the rows it updates, a connected record), their keys
 * fetched or created (a key for a subject id the database generates is reserved, then bound to
 * the id the insert produced), the payloads encrypted under them, and the write sent. An updateMany
 * whose rows belong to several subjects runs once per subject, its counts summed.
 */

export interface SubjectWrite {
  readonly scope: WriteScope;
  readonly store: SubjectKeySource;
  readonly keyring: KeyringView;
  readonly schema: RuntimeSchema;
  readonly dialect: Dialect | undefined;
  readonly model: RuntimeModel;
  readonly operation: string;
  readonly args: Obj;
  readonly plan: SubjectPlan;
  /** Explicit reuse of an erased subject's id (the client option). */
  readonly allowReuse: boolean;
  /** The `where` as rewritten (blind indexes) by the validation pass. */
  readonly where: unknown;
  /** The validation pass's context: its unique lookups say which stored index value `where` names. */
  readonly checked: WalkContext;
}

/** A key no value is ever stored under: the validation pass encrypts with it, so refusals come before any SQL. */
const DRY_RUN_KEY: ChosenKey = { scope: 'subject', id: 'dry-run', key: createSecretKey(randomBytes(32)) };

/** Gives every slot of the plan the dry-run key (for the validation pass). */
export function dryRunKeys(plan: SubjectPlan, keyring: KeyringView): void {
  const keys = subjectKeys(keyring, { write: DRY_RUN_KEY });
  for (const slot of plan.all) slot.keys = keys;
}

/** Runs the write; `ctx` collects what the real rewrite did (stats, secrets, read shape). */
export async function runSubjectWrite(w: SubjectWrite, ctx: WalkContext): Promise<unknown> {
  const { scope, plan } = w;
  const db = scope.client;
  if (w.checked.uniqueLookups.length > 0) await resolveUniqueLookups(w.checked.uniqueLookups, db);
  const generated: Slot[] = [];
  const known = new Map<string, ChosenKey>();
  const keyFor = async (model: RuntimeModel, subject: string): Promise<ChosenKey> => {
    const root = rootOf(model);
    let key = known.get(`${root}\0${subject}`);
    if (!key) known.set(`${root}\0${subject}`, (key = await fetchKey(w, db, root, subject)));
    return key;
  };
  for (const slot of plan.all) {
    if (!slot.needed || slot.source.kind === 'row') continue;
    const source = slot.source;
    if (source.kind === 'known') slot.key = await keyFor(slot.model, source.subject);
    else if (source.kind === 'connect') slot.key = await keyFor(source.model, await connectedSubject(w, db, source.model, source.where));
    else if (source.kind === 'generated') {
      slot.key = await w.store.reserve(db);
      generated.push(slot);
    }
    slot.keys = subjectKeys(w.keyring, { write: slot.key! });
  }
  const row = plan.rowSlot?.needed ? plan.rowSlot : undefined;
  const force = forcedSelection(w, generated.length > 0);
  const subjectField = w.model.spec.subject?.field;
  if (subjectField && (w.operation === 'upsert' || (w.operation === 'update' && row))) {
    const found = await delegateOf(db, w.model.name).findUnique({ where: w.where, select: { [subjectField!]: true } });
    if (!found) {
      // Prisma's own answer for an update of no row.
      if (w.operation === 'update') throw notFound(db, w.model.name);
      // upsert: the create branch runs. Its update payload would run only if the row appeared
      // meanwhile; it is encrypted under the create's key, the subject of the record being made.
      if (row) row.keys = plan.createSlot!.keys;
      return bindGenerated(w, generated, await send(w, ctx, force.args), force.strip);
    }
    const value = found[subjectField!];
    if (row) row.keys = subjectKeys(w.keyring, { write: await keyFor(w.model, subjectText(value)) });
    // Pinned to the subject read, so a row whose subject changed meanwhile is not written under the wrong key.
    const args = { ...force.args, where: { ...(force.args.where as Obj), [subjectField!]: value } };
    const result = await send(w, ctx, args);
    if (generated.length === 0) return stripped(result, force.strip);
    // A record with another subject: the row was deleted meanwhile and the create branch ran, under the reserved key.
    const made = isObject(result) ? result[subjectField!] : undefined;
    if (made !== undefined && made !== null && subjectText(made) !== subjectText(value)) return bindGenerated(w, generated, result, force.strip);
    // The update branch ran: the key reserved for the create branch is not needed, and goes in this transaction.
    await w.store.release(db, generated.map((slot) => slot.key!.id));
    return stripped(result, force.strip);
  }
  if (!row) return bindGenerated(w, generated, await send(w, ctx, force.args), force.strip);
  const field = subjectField!;
  // updateMany / updateManyAndReturn: once per subject of the matching rows.
  const subjects = (await delegateOf(db, w.model.name).findMany({ where: w.where, select: { [field]: true }, distinct: [field] })).map((r) => r[field]);
  if (w.args.limit !== undefined && subjects.length > 1) {
    ctx.refuse(w.model.name, field, `${w.operation} with limit`, 'the rows belong to several subjects, so the update runs once per subject and one limit cannot be shared between the runs; narrow the where to one subject');
  }
  // Every subject's key first (each read under a shared lock, so no erasure can slip in after):
  // one erased subject refuses the whole write before any row is changed, even inside a
  // caller's transaction that would commit the part already applied.
  const keysOf: ChosenKey[] = [];
  for (const value of subjects) keysOf.push(await keyFor(w.model, subjectText(value)));
  let count = 0;
  const records: unknown[] = [];
  for (const [i, value] of subjects.entries()) {
    row.keys = subjectKeys(w.keyring, { write: keysOf[i]! });
    const result = await send(w, ctx, { ...w.args, where: { AND: [w.args.where ?? {}, { [field]: value }] } });
    if (Array.isArray(result)) records.push(...result);
    else count += Number((result as { count?: unknown }).count ?? 0);
  }
  return w.operation === 'updateManyAndReturn' ? records : { count };
}

function fetchKey(w: SubjectWrite, db: QueryClient, root: string, subject: string): Promise<ChosenKey> {
  return named(w, () => w.store.keyForSubject(db, root, subject, { allowReuse: w.allowReuse }));
}

/** The id space a model's subjects live in (maps generated before roots existed: the model itself). */
function rootOf(model: RuntimeModel): string {
  return model.spec.subject?.root ?? model.name;
}

/** A SubjectErasedError named after the model written; the subject id stays out of the message. */
async function named<T>(w: SubjectWrite, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof SubjectErasedError) throw new SubjectErasedError(w.model.name);
    throw error;
  }
}

/** Rewrites the arguments with the slots' keys and sends them (unique checks included). */
function send(w: SubjectWrite, ctx: WalkContext, args: Obj): Promise<unknown> {
  ctx.subjectPlan = w.plan;
  const rewritten = rewriteArgs(ctx, w.model, w.operation, args);
  return sendChecked(w.scope, ctx, w.dialect, w.schema, rewritten);
}

/** The subject field of the record a `connect` names (its where rewritten as the connect's own is: blind indexes). */
async function connectedSubject(w: SubjectWrite, db: QueryClient, model: RuntimeModel, where: unknown): Promise<string> {
  const field = model.spec.subject!.field;
  const lookup = new WalkContext(w.schema, 'connect', () => undefined);
  const rewritten = rewriteWhere(lookup, model, where, true);
  if (lookup.uniqueLookups.length > 0) await resolveUniqueLookups(lookup.uniqueLookups, db);
  const found = await delegateOf(db, model.name).findUnique({ where: rewritten as Obj, select: { [field]: true } });
  if (!found) throw notFound(db, model.name);
  return subjectText(found[field]);
}

/**
 * A key reserved for a generated subject id is bound to the id in the result, so the top-level
 * record's subject field must be in it: selected for the query when the caller left it out, and
 * removed from the result again.
 */
function forcedSelection(w: SubjectWrite, needed: boolean): { args: Obj; strip?: string } {
  const field = w.model.spec.subject!.field;
  if (!needed) return { args: w.args };
  if (isObject(w.args.select) && !w.args.select[field]) return { args: { ...w.args, select: { ...w.args.select, [field]: true } }, strip: field };
  if (isObject(w.args.omit) && w.args.omit[field]) return { args: { ...w.args, omit: { ...w.args.omit, [field]: false } }, strip: field };
  return { args: w.args };
}

async function bindGenerated(w: SubjectWrite, generated: readonly Slot[], result: unknown, strip: string | undefined): Promise<unknown> {
  if (generated.length > 0) {
    const field = w.model.spec.subject!.field;
    const value = isObject(result) ? result[field] : undefined;
    if (value === undefined || value === null) throw new Error(`${w.model.name}: the write's result has no ${field} to bind the subject key to`);
    // One generated subject per write: the top-level record's (nested records under it share the slot).
    // MySQL may hand out an AUTO_INCREMENT value again: an erased id is refused here too.
    for (const slot of generated) await named(w, () => w.store.bind(w.scope.client, slot.key!.id, rootOf(w.model), subjectText(value), { allowReuse: w.allowReuse }));
  }
  return stripped(result, strip);
}

function stripped(result: unknown, field: string | undefined): unknown {
  if (field && isObject(result)) delete result[field];
  return result;
}

function notFound(db: QueryClient, model: string): PrismaClientKnownRequestError {
  const version = (db as unknown as { _clientVersion?: unknown })._clientVersion;
  return new PrismaClientKnownRequestError(`No record was found for the ${model} write: the record it depends on does not exist.`, {
    code: 'P2025',
    clientVersion: typeof version === 'string' ? version : 'unknown',
    meta: { modelName: model, cause: 'Record to update not found.' },
  });
}
