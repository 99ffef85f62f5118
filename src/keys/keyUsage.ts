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
export function keyUsage(counts: readonly StoredKeyCounts[], keyId: string, purpose: KeyPurpose): KeyUsage {
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
