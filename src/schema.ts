import type { PfeHashSpec } from './codec/pfe';
import type { ValueType } from './crypto/ciphertext';
import type { Normalizer } from './crypto/normalize';

/**
 * The encryption map the generator emits from `/// @encrypted` annotations. It is plain data, so
 * the generated module needs no import and the extension can validate it at start-up.
 */

/** How reads treat a stored value that is not ciphertext. */
export type ReadMode =
  /** Refuse it with a DecryptionError: the column is fully encrypted. */
  | 'strict'
  /** Return it as is: the column still holds legacy plaintext while `encrypt-existing` runs. */
  | 'passthrough';

/** What a typed column's declaration says about the values it would hold (so encrypted values match it). */
export interface ColumnShape {
  /** DateTime: fractional-second digits kept (0-3; JavaScript dates stop at milliseconds), or 'date' for a date column. */
  readonly precision?: number | 'date';
  /**
   * DateTime: what the database does with digits beyond `precision`. Absent: rounds half away from
   * zero around 2000-01-01 (PostgreSQL's timestamp epoch). `truncate`: drops them (MariaDB).
   */
  readonly excess?: 'truncate';
  /** Decimal: total digits (Prisma's default column is Decimal(65, 30)). */
  readonly digits?: number;
  /** Decimal: digits after the point. */
  readonly scale?: number;
}

/** What every annotated field has, whatever its type. */
interface FieldSpecBase {
  readonly readMode: ReadMode;
  /** Values written by prisma-field-encryption that this field still reads (and `convert-pfe` converts). */
  readonly legacy?: LegacySpec;
  /** The field's Prisma scalar type; String when absent. */
  readonly type?: ValueType;
  /**
   * Fields of any type but String: the String field that holds the ciphertext. The typed column
   * itself stays NULL at rest, so the field keeps Prisma's own TypeScript type.
   */
  readonly storage?: string;
  /** Typed fields: the typed column's precision or scale, which encrypted values are rounded to. */
  readonly column?: ColumnShape;
}

/**
 * Where a field's older values came from (`legacy: pfe`): prisma-field-encryption. Its values are
 * read (with a legacy key source) and converted, never written. `hash` says how its old hash
 * column (this field's index field) was computed, from that field's `@encryption:hash` line.
 */
export interface LegacySpec {
  readonly format: 'pfe';
  readonly hash?: PfeHashSpec;
}

/**
 * One annotated field. `normalize` exists only together with `index`: normalisation applies to
 * the blind index, never to the stored value.
 */
export type EncryptedFieldSpec =
  | (FieldSpecBase & { readonly index?: undefined; readonly normalize?: undefined })
  | (FieldSpecBase & {
      /** Field holding the blind index of this field, for equality lookups. */
      readonly index: string;
      /** Normalisations applied before hashing into the index, in order. */
      readonly normalize?: readonly Normalizer[];
    });

export interface RelationSpec {
  readonly model: string;
  readonly list: boolean;
  /**
   * Both models are subject-keyed and this relation carries the subject (see `subject` below):
   * `'parent'`: a record created under this relation belongs to this model's subject (the
   * related model's subject field is the relation's foreign key, referencing this model's
   * subject field); `'child'`: this model's subject field is the foreign key, so this record
   * belongs to the subject of the record the relation points at (or creates).
   */
  readonly subjectLink?: 'parent' | 'child';
}

/**
 * `/// @@encrypted(subject: <field>)` on a model: whose personal data its rows hold. Every
 * encrypted value of a row is encrypted under that subject's own data key, so forgetting the
 * subject makes its values unreadable everywhere at once (crypto-shredding).
 */
export interface SubjectSpec {
  /** The scalar field holding the subject's id (a required Int, BigInt or String; may be the id). */
  readonly field: string;
  /** Its database column. */
  readonly column: string;
  /** Its scalar type (so SQL can compare subject ids exactly and use the column's index). */
  readonly type: 'Int' | 'BigInt' | 'String';
  /**
   * The model whose ids the subject ids are (its id space): the model itself when the subject is its
   * own id or an unrelated field, else, when the subject field is the foreign key of a relation to
   * another subject model's subject field, that model's root (`PersonReading.personId` -> `Person`).
   * Subjects are keyed by (root, id), so Person 1 and a Client 1 never share a key.
   */
  readonly root: string;
}

/** What the extension and the migrator need to know about one model. */
export interface ModelSpec {
  /** Database table name (`@@map`), for the migrator's SQL. */
  readonly dbName: string;
  /** Primary key fields in order (compound keys have several). */
  readonly primaryKey: readonly string[];
  /** Names of all scalar fields (columns), in schema order. */
  readonly scalarFields: readonly string[];
  /** Scalar field name → database column name, for fields whose column name differs. */
  readonly columns: Readonly<Record<string, string>>;
  readonly encrypted: Readonly<Record<string, EncryptedFieldSpec>>;
  readonly relations: Readonly<Record<string, RelationSpec>>;
  /** Compound unique inputs (`a_b`) and the fields in them, for rewriting `where` on index fields. */
  readonly compoundUniques: Readonly<Record<string, readonly string[]>>;
  /**
   * Scalar fields with `@unique` of their own. Maps generated before this entry existed lack it;
   * the extension then treats every index field as unique (safe, and only costs while several
   * index keys are loaded).
   */
  readonly uniqueFields?: readonly string[];
  /** Present when the model's rows are encrypted under per-subject keys (`@@encrypted(subject: ...)`). */
  readonly subject?: SubjectSpec;
}

/** The generated encryption map (`encryptedFields`): every model of the schema, by name. */
export interface EncryptionSchema {
  readonly version: 1;
  readonly provider: string;
  readonly models: Readonly<Record<string, ModelSpec>>;
}
