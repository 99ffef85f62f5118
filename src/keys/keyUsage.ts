import type { KeyPurpose } from './keyMaterial';

/**
 * How one encrypted field's stored values spread over key ids: what a census of the database
 * (the migrator's `collectStatus`) yields. Declared here, beside its only consumer in keys/, so
 * key lifecycle code depends on a shape, not on the migrator.
 */
export interface StoredKeyCounts {
  readonly model: string;
  readonly field: string;
  /** Ciphertext values per data key id. */
  readonly byKey: Readonly<Record<string, number>>;
  /** Values without the envelope prefix: legacy plaintext. */
  readonly plaintext: number;
  readonly nulls: number;
  /** Non-null blind indexes per index key id (empty for fields without an index). */
  readonly indexByKey: Readonly<Record<string, number>>;
}

/**
 * How the per-subject keys of `pce_subject_keys` spread over wrap keys: what a count of that table
 * (`subjectKeyCounts` in subjects/) yields. `live`: bound to a subject; `pending`: reserved, not
 * yet bound; `erased`: tombstones (no wrapped key left, so under no wrap key).
 */
export interface StoredSubjectKeyCounts {
  readonly byWrapKey: Readonly<Record<string, { readonly live: number; readonly pending: number }>>;
  readonly live: number;
  readonly pending: number;
  readonly erased: number;
}

/** The `fields` entry of a wrap key's usage: the wrapped keys of the subject-key table. */
export const SUBJECT_KEY_FIELD = { model: 'PceSubjectKey', field: 'wrappedKey' } as const;

/** How many stored values still need a key, in total and per field, and how much was looked at. */
export interface KeyUsage {
  readonly keyId: string;
  readonly purpose: KeyPurpose;
  readonly values: number;
  readonly fields: ReadonlyArray<{ readonly model: string; readonly field: string; readonly values: number }>;
  /** Encrypted fields whose values were counted. Zero means nothing was checked at all. */
  readonly scannedFields: number;
  /** Rows counted: the rows of every table that has an encrypted field. */
  readonly scannedRows: number;
}

/**
 * Counts the values that still need `keyId`: encrypted values naming it for a data key, blind
 * indexes prefixed with it for an index key. A key may be retired only when this is zero and
 * something was scanned.
 */
export function keyUsage(counts: readonly StoredKeyCounts[], keyId: string, purpose: KeyPurpose, subjectKeys?: StoredSubjectKeyCounts): KeyUsage {
  if (purpose === 'wrap') return wrapKeyUsage(subjectKeys, keyId);
  const fields = counts
    .map((c) => ({ model: c.model, field: c.field, values: (purpose === 'data' ? c.byKey : c.indexByKey)[keyId] ?? 0 }))
    .filter((f) => f.values > 0);
  return {
    keyId,
    purpose,
    values: fields.reduce((sum, f) => sum + f.values, 0),
    fields,
    scannedFields: counts.length,
    scannedRows: rowsScanned(counts),
  };
}

/**
 * A wrap key is in use while it wraps a subject key that is not erased (live or pending): retiring
 * it would make those subjects unreadable without an erasure. Without a subject-key table nothing
 * was scanned, so nothing is proved either.
 */
function wrapKeyUsage(subjectKeys: StoredSubjectKeyCounts | undefined, keyId: string): KeyUsage {
  const under = subjectKeys?.byWrapKey[keyId];
  const values = under ? under.live + under.pending : 0;
  return {
    keyId,
    purpose: 'wrap',
    values,
    fields: values > 0 ? [{ ...SUBJECT_KEY_FIELD, values }] : [],
    scannedFields: subjectKeys ? 1 : 0,
    scannedRows: subjectKeys ? subjectKeys.live + subjectKeys.pending + subjectKeys.erased : 0,
  };
}

/** Every field of a model is counted over the same table: the model's rows are any one field's total. */
function rowsScanned(counts: readonly StoredKeyCounts[]): number {
  const byModel = new Map<string, number>();
  for (const c of counts) {
    const rows = Object.values(c.byKey).reduce((sum, n) => sum + n, 0) + c.plaintext + c.nulls;
    byModel.set(c.model, Math.max(byModel.get(c.model) ?? 0, rows));
  }
  return [...byModel.values()].reduce((sum, n) => sum + n, 0);
}

/** `User.email: 3, User.name: 2` */
export function describeUsage(usage: KeyUsage): string {
  return usage.fields.map((f) => `${f.model}.${f.field}: ${f.values}`).join(', ');
}
