import { ConfigurationError } from '../errors';
import type { EncryptedFieldSpec, EncryptionSchema, ModelSpec, SubjectSpec } from '../schema';

/** Which models and fields a command works on. `field` may also be written `Model.field`. */
export interface ScopeFilter {
  readonly model?: string;
  readonly field?: string;
}

/** One encrypted field with the database columns of its value and its blind index. */
export interface FieldTarget {
  readonly field: string;
  /** The column holding the ciphertext: the field's own, or a typed field's storage column. */
  readonly column: string;
  /** Typed fields: the field's own column, NULL at rest (legacy plaintext while encrypt-existing runs). */
  readonly typedColumn?: string;
  readonly spec: EncryptedFieldSpec;
  readonly indexField?: string;
  readonly indexColumn?: string;
}

/** One model's table, primary key columns and the encrypted fields in scope. */
export interface ModelTarget {
  readonly model: string;
  readonly table: string;
  /** Primary key field names, in key order. */
  readonly primaryKey: readonly string[];
  /** Database columns of the primary key, in the same order. */
  readonly keyColumns: readonly string[];
  readonly fields: readonly FieldTarget[];
  /**
   * Subject-keyed models (`@@encrypted(subject: ...)`): the field holding each row's subject,
   * read with the row, since its values belong under that subject's key.
   */
  readonly subject?: SubjectSpec;
}

const columnOf = (spec: ModelSpec, field: string) => spec.columns[field] ?? field;

/**
 * Resolves a filter against the encryption map into the tables and columns to visit, in schema
 * order. Throws a ConfigurationError naming the model or field when the filter matches nothing
 * or a model cannot be paged (no primary key).
 */
export function resolveScope(schema: EncryptionSchema, filter: ScopeFilter = {}): ModelTarget[] {
  let { model, field } = filter;
  if (field?.includes('.')) {
    const [m, f] = field.split('.', 2) as [string, string];
    if (model !== undefined && model !== m) throw new ConfigurationError(model, f, `--field names model ${m} but --model is ${model}`);
    model = m;
    field = f;
  }
  if (model !== undefined && !schema.models[model]) throw new ConfigurationError(model, undefined, 'is not a model in the schema');
  const targets: ModelTarget[] = [];
  for (const [name, spec] of Object.entries(schema.models)) {
    if (model !== undefined && name !== model) continue;
    const names = Object.keys(spec.encrypted).filter((f) => field === undefined || f === field);
    if (names.length === 0) {
      if (model !== undefined && field === undefined) throw new ConfigurationError(name, undefined, 'has no @encrypted field');
      continue;
    }
    if (spec.primaryKey.length === 0) {
      throw new ConfigurationError(name, undefined, 'has no primary key (@id or @@id); the migrator pages through tables by primary key');
    }
    targets.push({
      model: name,
      table: spec.dbName,
      primaryKey: spec.primaryKey,
      keyColumns: spec.primaryKey.map((f) => columnOf(spec, f)),
      // Maps generated before subject roots existed: the model is its own id space.
      ...(spec.subject ? { subject: { ...spec.subject, root: spec.subject.root ?? name } } : {}),
      fields: names.map((f) => {
        const fieldSpec = spec.encrypted[f]!;
        return {
          field: f,
          column: columnOf(spec, fieldSpec.storage ?? f),
          ...(fieldSpec.storage ? { typedColumn: columnOf(spec, f) } : {}),
          spec: fieldSpec,
          ...(fieldSpec.index ? { indexField: fieldSpec.index, indexColumn: columnOf(spec, fieldSpec.index) } : {}),
        };
      }),
    });
  }
  if (targets.length === 0 && field !== undefined) {
    throw new ConfigurationError(model, field, 'is not an @encrypted field of any model in scope');
  }
  return targets;
}
