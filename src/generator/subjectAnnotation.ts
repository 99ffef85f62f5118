import type { DMMF } from '@prisma/generator-helper';
import { ConfigurationError } from '../errors';
import type { RelationSpec, SubjectSpec } from '../schema';
import { parseAnnotation } from './annotation';

type Model = DMMF.Datamodel['models'][number];
type Field = Model['fields'][number];

/**
 * Grammar of the model-level annotation, a line of the model's `///` doc comment:
 *
 *   @@encrypted(subject: <field>)
 *
 * It says whose personal data the model's rows hold: every encrypted field of a row is encrypted
 * under the data key of the subject named by `<field>` (a required Int, BigInt or String scalar,
 * the model's own id allowed), so forgetting that subject crypto-shreds the row's values.
 */

/** Options the model-level annotation takes. */
const OPTIONS = ['subject'] as const;
/** A line starting with the model-level tag (or something close to it, which is refused, not ignored). */
const MODEL_TAG = /^[ \t]*@@[ \t]*([A-Za-z_][\w-]*)/gm;
const SUBJECT_TYPES = new Set(['Int', 'BigInt', 'String']);

/** The subject of a model from its doc comment, validated against its fields; `undefined` without the annotation. */
export function subjectOf(model: Model): Omit<SubjectSpec, 'root'> | undefined {
  const doc = model.documentation;
  if (!doc) return undefined;
  const fail = (reason: string, field?: string): never => {
    throw new ConfigurationError(model.name, field, `@@encrypted: ${reason}`);
  };
  const tags = [...doc.matchAll(MODEL_TAG)];
  const wrong = tags.find((t) => t[1] !== 'encrypted' && /crypt|^encr/i.test(t[1]!));
  if (wrong) fail(`'@@${wrong[1]}' looks like a misspelt @@encrypted; write @@encrypted(subject: <field>) exactly`);
  const ours = tags.filter((t) => t[1] === 'encrypted');
  if (ours.length === 0) return undefined;
  if (ours.length > 1) fail('annotation appears more than once');
  const rest = doc.slice(ours[0]!.index! + ours[0]![0].length).split('\n')[0]!;
  const m = /^\((.*)\)\s*$/.exec(rest);
  if (!m) fail('expected (subject: <field>) right after @@encrypted, and nothing after it on the line');
  const options = new Map<string, string>();
  for (const part of m![1]!.split(',')) {
    const option = /^\s*([A-Za-z_]\w*)\s*:\s*([A-Za-z_]\w*)\s*$/.exec(part);
    if (!option) fail(`expected '<option>: <name>' at '${part.trim().slice(0, 20)}'`);
    const [, name, value] = option!;
    if (!(OPTIONS as readonly string[]).includes(name!)) fail(`unknown option '${name}' (known: ${OPTIONS.join(', ')})`);
    if (options.has(name!)) fail(`option '${name}' given twice`);
    options.set(name!, value!);
  }
  const fieldName = options.get('subject');
  if (!fieldName) fail('the subject option is missing: @@encrypted(subject: <field>)');
  const field = model.fields.find((f) => f.name === fieldName);
  if (!field) fail(`subject field '${fieldName}' does not exist on model ${model.name}`);
  const subjectFail = (reason: string): never => fail(`the subject field ${reason}`, field!.name);
  if (field!.kind === 'object') subjectFail('is a relation; name its scalar foreign key (e.g. userId) instead');
  if (field!.kind !== 'scalar' || !SUBJECT_TYPES.has(field!.type)) subjectFail(`must be an Int, BigInt or String (found ${field!.type})`);
  if (field!.isList) subjectFail(`must not be a list (${field!.type}[])`);
  if (!field!.isRequired) subjectFail(`must be required (${field!.type}, not ${field!.type}?): every row needs a subject to be encrypted for`);
  if (parseAnnotation(field!.documentation, model.name, field!.name)) subjectFail('must not be encrypted: it names the key, so it is read before anything is decrypted');
  return { field: field!.name, column: field!.dbName ?? field!.name, type: field!.type as SubjectSpec['type'] };
}

/**
 * The root (id space) of every subject model: a subject field that is the foreign key of a
 * relation to another subject model's subject field lives in that model's root, followed to the
 * end of the chain; any other subject field roots the model itself.
 */
export function subjectRoots(subjects: ReadonlyMap<string, Omit<SubjectSpec, 'root'>>, models: ReadonlyMap<string, Model>): Map<string, SubjectSpec> {
  const out = new Map<string, SubjectSpec>();
  const rootOf = (name: string, seen: Set<string>): string => {
    const subject = subjects.get(name)!;
    const model = models.get(name)!;
    const parent = model.fields.find((f) => f.kind === 'object' && subjects.has(f.type) && !seen.has(f.type) && linksBy(f, subject.field, subjects.get(f.type)!.field));
    return parent ? rootOf(parent.type, new Set([...seen, name])) : name;
  };
  for (const [name, subject] of subjects) out.set(name, { ...subject, root: rootOf(name, new Set([name])) });
  return out;
}

/**
 * Which relations of `model` carry its subject to or from the related model (`subjectLink`):
 *
 * - `'parent'`: the related model's subject field is the foreign key of this relation and it
 *   references this model's subject field, so a record created under the relation belongs to
 *   this model's subject (Person(subject: id).profile -> PersonProfile(subject: personId)).
 * - `'child'`: the other way round: this model's subject field is the relation's foreign key,
 *   referencing the related model's subject field, so this record belongs to the subject of the
 *   record it points at (PersonProfile.person).
 */
export function subjectLinks(model: Model, subjects: ReadonlyMap<string, SubjectSpec>, models: ReadonlyMap<string, Model>, relations: Record<string, RelationSpec>): void {
  const own = subjects.get(model.name);
  for (const field of model.fields) {
    if (field.kind !== 'object') continue;
    const other = subjects.get(field.type);
    if (!own || !other) continue;
    if (linksBy(field, own.field, other.field)) {
      relations[field.name] = { ...relations[field.name]!, subjectLink: 'child' };
      continue;
    }
    // The back relation on the related model holds the foreign key.
    const back = models.get(field.type)?.fields.find((f) => f.kind === 'object' && f.relationName === field.relationName && f !== field && f.type === model.name);
    if (back && linksBy(back, other.field, own.field)) relations[field.name] = { ...relations[field.name]!, subjectLink: 'parent' };
  }
}

/** True when `relation` (on the model holding the foreign key) maps exactly `fromSubject` to the target's `toSubject`. */
function linksBy(relation: Field, fromSubject: string, toSubject: string): boolean {
  const from = relation.relationFromFields ?? [];
  const to = relation.relationToFields ?? [];
  return from.length === 1 && to.length === 1 && from[0] === fromSubject && to[0] === toSubject;
}
