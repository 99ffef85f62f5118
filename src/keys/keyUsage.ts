import type { KeyPurpose } from './keyMaterial';

/**
 * Per-field counts of stored values by key, as the migrator's status scan reports them
 * (`collectStatus` in src/migrate/status.ts returns a superset of this shape).
 */
export interface FieldKeyCounts {
  readonly model: string;
  readonly field: string;
  /** Encrypted values per data key id (the key id named in `pce:v1:<keyId>:...`). */
  readonly byKey: Readonly<Record<string, number>>;
  /** Blind indexes per index key id (the `<keyId>:` prefix). */
  readonly indexByKey: Readonly<Record<string, number>>;
}

/** How many stored values still need a key, in total and per field. */
export interface KeyUsage {
  readonly keyId: string;
  readonly purpose: KeyPurpose;
  readonly values: number;
  readonly fields: ReadonlyArray<{ readonly model: string; readonly field: string; readonly values: number }>;
}

/**
 * Counts the values that still need `keyId`: encrypted values naming it for a data key, blind
 * indexes prefixed with it for an index key. A key may be retired only when this is zero.
 */
export function keyUsage(counts: readonly FieldKeyCounts[], keyId: string, purpose: KeyPurpose): KeyUsage {
  const fields = counts
    .map((c) => ({ model: c.model, field: c.field, values: (purpose === 'data' ? c.byKey : c.indexByKey)[keyId] ?? 0 }))
    .filter((f) => f.values > 0);
  return { keyId, purpose, values: fields.reduce((sum, f) => sum + f.values, 0), fields };
}

/** `User.email: 3, User.name: 2` */
export function describeUsage(usage: KeyUsage): string {
  return usage.fields.map((f) => `${f.model}.${f.field}: ${f.values}`).join(', ');
}
