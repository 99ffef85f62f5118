import type { DMMF } from '@prisma/generator-helper';
import { ConfigurationError, SchemaProblems } from '../errors';
import type { EncryptedFieldSpec, EncryptionSchema, ModelSpec, RelationSpec, SubjectSpec } from '../schema';
import { parseAnnotation, toFieldSpec } from './annotation';
import { legacySpecFor, checkPfeHashOwners } from './legacySpec';
import { typedFieldSpec } from './typedField';
import { lookalikeTags } from './lookalike';
import { subjectLinks, subjectOf, subjectRoots } from './subjectAnnotation';

type Model = DMMF.Datamodel['models'][number];
type Field = Model['fields'][number];

/**
 * Turns Prisma's data model (as handed to generators, with doc comments) into the encryption map,
 * validating every annotation. Pure: the same input always gives the same map or the same error.
 */
export function buildEncryptionSchema(datamodel: DMMF.Datamodel, provider: string): EncryptionSchema {
  const problems = new ProblemCollector();
  const models: Record<string, ModelSpec> = {};
  const found = new Map<string, Omit<SubjectSpec, 'root'>>();
  for (const model of datamodel.models) {
    const subject = problems.check(() => subjectOf(model));
    if (subject) found.set(model.name, subject);
  }
  const byName = new Map(datamodel.models.map((m) => [m.name, m]));
  const subjects = subjectRoots(found, byName);
  for (const model of datamodel.models) {
    const spec = buildModel(model, provider, problems);
    const subject = subjects.get(model.name);
    const relations = { ...spec.relations };
    subjectLinks(model, subjects, byName, relations);
    models[model.name] = subject ? { ...spec, relations, subject } : { ...spec, relations };
  }
  problems.throwIfAny();
  return { version: 1, provider, models };
}

/**
 * Collects every ConfigurationError of a schema, so one `prisma generate` reports them all. Each
 * check still throws on its own problem (`fail`); `check` catches it, records it and moves on to
 * the next field or model, so a new rule only has to throw.
 */
export class ProblemCollector {
  private readonly problems: ConfigurationError[] = [];

  /** Runs one check; a ConfigurationError it throws is recorded and `undefined` returned. */
  check<T>(run: () => T): T | undefined {
    try {
      return run();
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      this.problems.push(...(error instanceof SchemaProblems ? error.problems : [error]));
      return undefined;
    }
  }

  /** One problem is thrown as it is; several as one {@link SchemaProblems}. */
  throwIfAny(): void {
    // A check may meet another field's problem too (an index field's own annotation): say it once.
    const unique = [...new Map(this.problems.map((p) => [p.message, p])).values()];
    if (unique.length === 1) throw unique[0]!;
    if (unique.length > 1) throw new SchemaProblems(unique);
  }
}

function buildModel(model: Model, provider: string, problems: ProblemCollector): ModelSpec {
  const modelTag = lookalikeTags(model.documentation ?? '')[0];
  if (modelTag) {
    problems.check(() => {
      throw new ConfigurationError(model.name, undefined, `'${modelTag.tag}' on a model annotates nothing; put @encrypted on the doc comment of each field to encrypt (a model's subject is @@encrypted(subject: <field>))`);
    });
  }
  const byName = new Map(model.fields.map((f) => [f.name, f]));
  const encrypted: Record<string, EncryptedFieldSpec> = {};
  const indexOwners = new Map<string, string>();
  const storageOwners = new Map<string, string>();
  const compoundUniques = compoundUniqueInputs(model);
  const foreignKeys = new Set(model.fields.flatMap((f) => f.relationFromFields ?? []));

  for (const field of model.fields) {
    if (/^[ \t]*@@encrypted\b/m.test(field.documentation ?? '')) {
      problems.check(() => {
        throw new ConfigurationError(model.name, field.name, "@@encrypted names a model's subject: put it on the model's /// doc comment, above `model`");
      });
    }
    const spec = problems.check(() => {
      const parsed = parseAnnotation(field.documentation, model.name, field.name);
      if (!parsed) return undefined;
      const fail = (reason: string): never => {
        throw new ConfigurationError(model.name, field.name, reason);
      };
      checkCanBeEncrypted(field, foreignKeys.has(field.name), fail);
      // A String holds its own ciphertext; any other type names a String field that holds it.
      const typed = field.type === 'String' ? undefined : typedFieldSpec(field, parsed, byName, storageOwners, provider, fail);
      if (typed) {
        const storage = byName.get(typed.storage!)!;
        checkColumnType(storage, provider, (reason) => fail(`storage field '${storage.name}' ${reason}`));
      } else {
        if (parsed.storage) fail('is a String, which holds its own ciphertext; storage is for fields of other types');
        checkColumnType(field, provider, fail);
      }
      if (isInCompound(field.name, compoundUniques)) {
        fail('is part of a compound id or @@unique; ciphertext is randomised, put the constraint on its index field instead');
      }
      if (parsed.index) {
        const indexName = parsed.index;
        const index = byName.get(indexName);
        const failIndex = (reason: string): never => fail(`index field '${indexName}' ${reason}`);
        if (!index) failIndex(`does not exist on model ${model.name}`);
        const idx = index!;
        if (idx.name === field.name) failIndex('is the encrypted field itself');
        if (idx.kind !== 'scalar' || idx.type !== 'String' || idx.isList) {
          failIndex(`must be a scalar String (found ${idx.kind === 'object' ? 'a relation' : `${idx.type}${idx.isList ? '[]' : ''}`})`);
        }
        if (idx.isId) failIndex('must not be the id');
        if (idx.isRequired) failIndex('must be optional (String?): the extension fills it, so create inputs must not require it');
        if (idx.hasDefaultValue) failIndex('must not have a @default');
        const [nativeType, nativeArgs] = idx.nativeType ?? [];
        const length = Number(nativeArgs?.[0]);
        if (nativeType === 'Char' || (nativeType === 'VarChar' && length < MIN_INDEX_COLUMN)) {
          failIndex(`is @db.${nativeType}(${nativeArgs?.join(', ')}): a blind index needs a variable-length column of at least ${MIN_INDEX_COLUMN} characters`);
        }
        if (parseAnnotation(idx.documentation, model.name, idx.name)) failIndex('is itself encrypted');
        if (idx.name === parsed.storage) failIndex('is also its storage field');
        const owner = indexOwners.get(indexName);
        if (owner) failIndex(`is already the index of '${owner}'`);
        indexOwners.set(indexName, field.name);
      }
      return toFieldSpec(parsed, legacySpecFor(model, field.name, parsed), typed);
    });
    if (spec) encrypted[field.name] = spec;
  }
  for (const [storage, owner] of storageOwners) {
    const index = [...indexOwners].find(([name]) => name === storage);
    if (index) problems.check(() => {
      throw new ConfigurationError(model.name, owner, `storage field '${storage}' is already the index of '${index[1]}'`);
    });
  }
  problems.check(() => checkPfeHashOwners(model, encrypted));

  const relations: Record<string, RelationSpec> = {};
  const columns: Record<string, string> = {};
  for (const field of model.fields) {
    if (field.kind === 'object') relations[field.name] = { model: field.type, list: field.isList };
    else if (field.dbName && field.dbName !== field.name) columns[field.name] = field.dbName;
  }
  const primaryKey = model.primaryKey?.fields ?? model.fields.filter((f) => f.isId).map((f) => f.name);

  return {
    dbName: model.dbName ?? model.name,
    primaryKey: [...primaryKey],
    scalarFields: model.fields.filter((f) => f.kind !== 'object').map((f) => f.name),
    columns,
    encrypted,
    relations,
    compoundUniques,
    uniqueFields: uniqueFieldsOf(model),
  };
}

const ENCRYPTABLE_TYPES = new Set(['String', 'Int', 'BigInt', 'Float', 'Decimal', 'Boolean', 'DateTime', 'Json', 'Bytes']);

function checkCanBeEncrypted(field: Field, isForeignKey: boolean, fail: (reason: string) => never): void {
  if (field.kind === 'object') fail('is a relation; annotate scalar fields only');
  if (field.kind !== 'scalar' || !ENCRYPTABLE_TYPES.has(field.type)) {
    fail(`has type ${field.type}, which cannot be encrypted (supported: ${[...ENCRYPTABLE_TYPES].join(', ')})`);
  }
  if (field.isList) fail(`is a list (${field.type}[]); encrypt a single ${field.type} field instead`);
  if (field.isId) fail('is the id; ids must stay stable and comparable');
  if (field.isUnique) fail('is @unique, which is meaningless on randomised ciphertext; put @unique on its index field');
  if (field.hasDefaultValue) fail('has a @default, which the database would store as plaintext');
  if (field.isUpdatedAt) fail('is @updatedAt');
  if (isForeignKey) fail('is a foreign key of a relation');
}

/** Longest blind index: a 32-character key id, ':' and 43 characters of base64url. */
const MIN_INDEX_COLUMN = 76;
const MYSQL_TEXT_TYPES = ['Text', 'MediumText', 'LongText'];

/**
 * Ciphertext is about 4/3 of the value plus ~45 characters: a bounded column would reject long
 * values or, with a lax sql_mode, truncate them into something that never decrypts again.
 */
function checkColumnType(field: Field, provider: string, fail: (reason: string) => never): void {
  const [nativeType, nativeArgs] = field.nativeType ?? [];
  if (provider === 'mysql') {
    if (!nativeType || !MYSQL_TEXT_TYPES.includes(nativeType)) {
      fail(`on MySQL/MariaDB, String maps to ${nativeType ? `@db.${nativeType}` : 'VARCHAR(191)'}, too short for ciphertext; declare it String @db.Text (or MediumText, LongText)`);
    }
  } else if ((provider === 'postgresql' || provider === 'cockroachdb') && (nativeType === 'Char' || (nativeType === 'VarChar' && nativeArgs && nativeArgs.length > 0))) {
    fail(`is @db.${nativeType}(${nativeArgs?.join(', ')}), which bounds the ciphertext length; use a plain String (text)`);
  }
}

function compoundUniqueInputs(model: Model): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (model.primaryKey && model.primaryKey.fields.length > 1) {
    out[model.primaryKey.name ?? model.primaryKey.fields.join('_')] = [...model.primaryKey.fields];
  }
  for (const u of model.uniqueIndexes) {
    if (u.fields.length > 1) out[u.name ?? u.fields.join('_')] = [...u.fields];
  }
  return out;
}

/** Fields unique on their own: `@unique`, or a one-field `@@unique([f])` (which DMMF lists apart). */
function uniqueFieldsOf(model: Model): string[] {
  const single = model.uniqueIndexes.filter((u) => u.fields.length === 1).map((u) => u.fields[0]!);
  return [...new Set([...model.fields.filter((f) => f.kind === 'scalar' && f.isUnique).map((f) => f.name), ...single])];
}

function isInCompound(field: string, compounds: Record<string, string[]>): boolean {
  return Object.values(compounds).some((fields) => fields.includes(field));
}
