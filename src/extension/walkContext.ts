import type { CryptoStats } from '../audit/auditLog';
import type { KeyChoice } from '../codec/keyChoice';
import { UnsupportedQueryError, type DecryptionError } from '../errors';
import { DEFAULT_SHAPE, type ReadShape } from './decryptResult';
import type { RuntimeModel, RuntimeSchema } from './runtimeSchema';
import type { SubjectPlan } from './subjectPlan';

/** State shared by the walkers while one query is rewritten. */
export class WalkContext {
  readonly stats: CryptoStats = { encrypted: 0, decrypted: 0, indexed: 0 };
  /** Encrypted fields (`Model.field`) the query decrypted, encrypted and looked up: what the data-access event names. */
  readonly fields: FieldsTouched = { read: new Set(), written: new Set(), searched: new Set() };
  /**
   * Unique lookups through an index field while several index keys are loaded. A unique where
   * must name one stored value, so the walker writes the primary key's hash and records the
   * alternatives; the extension resolves them against the database before the query runs.
   */
  readonly uniqueLookups: UniqueLookup[] = [];
  /**
   * Values written to a unique index field while several index keys are loaded: the database
   * constraint cannot see a duplicate stored under another key, so the extension checks them.
   */
  readonly uniqueWrites: UniqueWrite[] = [];
  /** What the top-level selection asks of result decryption (set by rewriteArgs). */
  readShape: ReadShape = DEFAULT_SHAPE;
  /** Audit hook for decryption failures found outside a codec (plaintext in a strict typed column). */
  onDecryptFailure?: (error: DecryptionError) => void;
  /**
   * Plaintexts the query carries for protected fields, and the ciphertexts and blind indexes written
   * into it: redacted from any error Prisma raises for the rewritten query.
   */
  readonly secrets = new Set<string>();
  /** Which subject (slot, key) each payload of a subject-keyed model is written under (subjectPlan.ts). */
  subjectPlan?: SubjectPlan;
  /** Subject keys loaded for the result being decrypted; subject-keyed codecs read with them. */
  readKeys?: KeyChoice;

  constructor(
    readonly schema: RuntimeSchema,
    readonly operation: string,
    private readonly onRefuse: (error: UnsupportedQueryError, operation: string) => void,
  ) {}

  model(name: string): RuntimeModel {
    const model = this.schema.get(name);
    // The generated map covers every model in the schema; a miss means the map is stale.
    if (!model) throw new UnsupportedQueryError(name, '*', this.operation, 'the model is not in the encryption map; re-run prisma generate');
    return model;
  }

  /** Records values that must not reach an error message (strings only; others are not data we wrote). */
  secret(...values: readonly unknown[]): void {
    for (const v of values) if (typeof v === 'string') this.secrets.add(v);
  }

  /**
   * The keys a payload of a subject-keyed model is encrypted with, from the plan; `undefined` for
   * a shared-key model. A payload the plan did not cover is refused rather than written under
   * some other key.
   */
  writeKeys(model: RuntimeModel, data: object, field: string, kind: string): KeyChoice | undefined {
    if (!model.spec.subject) return undefined;
    const keys = this.subjectPlan?.slots.get(data)?.keys;
    if (!keys) this.refuse(model.name, field, kind, "the row's subject cannot be told for this shape of write; write the record at top level or under a relation that carries its subject");
    return keys;
  }

  refuse(model: string, field: string, operator: string, reason: string): never {
    const spec = this.schema.get(model);
    const kind = spec?.indexOwners.has(field) ? 'index' : spec?.spec.subject?.field === field && !spec.codecs.has(field) ? 'subject' : 'encrypted';
    const error = new UnsupportedQueryError(model, field, operator, reason, kind);
    this.onRefuse(error, this.operation);
    throw error;
  }
}

export type Obj = Record<string, unknown>;

/** Names (`Model.field`) of the encrypted fields one query touched, by what it did with them. */
export interface FieldsTouched {
  readonly read: Set<string>;
  readonly written: Set<string>;
  readonly searched: Set<string>;
}

/** One unique index lookup whose row may still carry a hash under an older index key. */
export interface UniqueLookup {
  readonly model: string;
  readonly indexField: string;
  /** Candidate stored values, primary index key first. */
  readonly hashes: readonly string[];
  /** The object (built by the walker, never the caller's) whose `indexField` holds the chosen hash. */
  readonly target: Obj;
}

/** One value written to a unique index field during an index-key rotation. */
export interface UniqueWrite {
  readonly model: string;
  readonly indexField: string;
  /** Every hash the value may be stored under, primary index key first (the one written). */
  readonly hashes: readonly string[];
  /** Field lists of the unique constraints the index field is part of (`[indexField]` for `@unique`). */
  readonly constraints: ReadonlyArray<readonly string[]>;
}

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && !Buffer.isBuffer(value);
}

/** Applies `fn` to a value that Prisma accepts as one item or an array of items. */
export function mapOneOrMany<T>(value: unknown, fn: (item: unknown) => T): T | T[] {
  return Array.isArray(value) ? value.map(fn) : fn(value);
}
