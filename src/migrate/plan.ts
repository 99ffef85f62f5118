import { indexKeyIdOf } from '../crypto/blindIndex';
import { looksLikePfe } from '../codec/pfe';
import { keyIdOf, looksLikeCiphertext } from '../crypto/ciphertext';
import { DecryptionError, EncryptionError } from '../errors';
import type { FieldCodec } from '../codec/fieldCodec';
import type { RowWrite, StoredRow } from './sql';
import { fromTypedText } from './typedColumn';

/** What a migration run does to each value. */
export type MigrationMode = 'rotate' | 'encrypt-existing' | 'convert-pfe';

/** A value the migrator could not process. Names the field and key id, never the value. */
export interface ValueFailure {
  readonly field: string;
  readonly keyId: string | undefined;
  readonly reason: string;
}

export interface PlannedField {
  readonly codec: FieldCodec;
  readonly column: string;
  readonly indexColumn?: string;
  /** Typed fields: their own column (legacy plaintext until converted, NULL after). */
  readonly typedColumn?: string;
}

/** Planning options beyond the mode. */
export interface PlanOptions {
  /** rotate: recompute every blind index and write those that differ (after a change to normalize). */
  readonly reindex?: boolean;
}

type Columns = { readonly column: string; readonly indexColumn?: string; readonly typedColumn?: string };

/**
 * The columns a row write names, in the one order every part of the migrator uses: each field's
 * value column, then its index column when it has one, then a typed field's own column.
 */
export function planColumns(fields: ReadonlyArray<Columns>): string[] {
  return fields.flatMap((f) => [f.column, ...(f.indexColumn ? [f.indexColumn] : []), ...(f.typedColumn ? [f.typedColumn] : [])]);
}

/** A stored row's cells in {@link planColumns} order (a typed column as its text form). */
export function storedCells(fields: ReadonlyArray<Omit<Columns, 'column'>>, row: Pick<StoredRow, 'values' | 'indexes' | 'typed'>): Array<string | null> {
  const text = (v: unknown) => (v as string | null | undefined) ?? null;
  return fields.flatMap((f, i) => [text(row.values[i]), ...(f.indexColumn ? [text(row.indexes[i])] : []), ...(f.typedColumn ? [text(row.typed?.[i])] : [])]);
}

export interface RowPlan {
  /** The write for this row, or undefined when nothing is to change. */
  readonly write?: RowWrite;
  readonly failures: readonly ValueFailure[];
}

/**
 * Decides, for one stored row, the new text of each value and index column. Pure apart from the
 * random nonce of fresh ciphertext.
 *
 * - `rotate`: a value under a data key other than the primary is decrypted and re-encrypted; an
 *   index that is missing or under another index key is recomputed. Plaintext is left alone.
 * - `encrypt-existing`: a value without the envelope prefix is legacy plaintext and is encrypted
 *   and indexed; a ciphertext value only gets a missing index filled. Anything carrying the prefix
 *   is never treated as plaintext, so no value is ever encrypted twice; such a value is decrypted
 *   to check it, and one that does not decrypt (damaged, unknown key) is a failure.
 * - `reindex` (rotate): every index is recomputed and written when it differs, so a change to a
 *   field's normalisation is repaired.
 * - `convert-pfe` (fields marked `legacy: pfe`): a prisma-field-encryption value is decrypted with
 *   the legacy keys and re-encrypted under the primary data key, and its index recomputed from
 *   the plaintext (replacing the old SHA-256 hash); an envelope value whose index is missing or
 *   still an old hash is re-indexed. Plaintext is left to `encrypt-existing`. The other modes
 *   never take such a value for plaintext: encrypt-existing reports it, rotate leaves it.
 *
 * A value that cannot be decrypted is reported and its row is not written at all.
 */
export function planRow(
  mode: MigrationMode,
  fields: readonly PlannedField[],
  row: StoredRow,
  primary: { readonly dataKey: string; readonly indexKey: string },
  options: PlanOptions = {},
): RowPlan {
  const failures: ValueFailure[] = [];
  const next: Array<string | null> = [];
  let changed = false;
  fields.forEach((f, i) => {
    const value = row.values[i];
    const index = f.indexColumn ? (row.indexes[i] as string | null) : undefined;
    let nextValue = value as string | null;
    let nextIndex = index;
    const legacy = f.typedColumn ? ((row.typed?.[i] ?? null) as string | null) : null;
    if (legacy !== null && legacy !== undefined) {
      // Plaintext in a typed field's own column: written by code that bypassed the extension, so
      // newer than any ciphertext beside it. encrypt-existing moves it into the storage column.
      if (mode === 'encrypt-existing') {
        try {
          const plain = fromTypedText(f.codec.spec.type!, legacy);
          nextValue = f.codec.encrypt(plain);
          if (f.indexColumn) nextIndex = f.codec.indexForWrite(plain);
          changed = true;
        } catch (error) {
          failures.push(toFailure(f.codec.field, error));
        }
      }
    } else if (value !== null && value !== undefined) {
      if (typeof value !== 'string') {
        failures.push({ field: f.codec.field, keyId: undefined, reason: 'not-text' });
      } else {
        try {
          const decided = decide(mode, f, value, index ?? null, primary, options);
          if (decided) {
            nextValue = decided.value;
            if (f.indexColumn && decided.index !== undefined) nextIndex = decided.index;
          }
        } catch (error) {
          failures.push(toFailure(f.codec.field, error));
        }
      }
    }
    if (nextValue !== value || nextIndex !== index) changed = true;
    next.push(nextValue ?? null);
    if (f.indexColumn) next.push(nextIndex ?? null);
    if (f.typedColumn) next.push(mode === 'encrypt-existing' ? null : (legacy ?? null));
  });
  if (failures.length > 0 || !changed) return { failures };
  const names = planColumns(fields);
  const old = storedCells(fields, row);
  return { write: { key: row.key, columns: names.map((c, j) => [c, old[j]!, next[j]!] as const) }, failures };
}

function decide(
  mode: MigrationMode,
  f: PlannedField,
  value: string,
  index: string | null,
  primary: { readonly dataKey: string; readonly indexKey: string },
  options: PlanOptions,
): { value: string; index?: string } | undefined {
  const { codec } = f;
  if (codec.spec.legacy && looksLikePfe(value)) {
    if (mode === 'encrypt-existing') throw new DecryptionError(codec.model, codec.field, undefined, 'legacy-format');
    if (mode !== 'convert-pfe') return undefined;
    const plaintext = codec.decrypt(value);
    return { value: codec.encrypt(plaintext), ...(f.indexColumn ? { index: codec.indexForWrite(plaintext) } : {}) };
  }
  if (mode === 'convert-pfe') {
    // An index without a key id (`<keyId>:<mac>`) is an old hash: prisma-field-encryption's are hex or base64.
    if (!looksLikeCiphertext(value) || !f.indexColumn || (index !== null && indexKeyIdOf(index) !== undefined)) return undefined;
    return { value, index: codec.indexForWrite(codec.decrypt(value)) };
  }
  const recompute = options.reindex === true && mode === 'rotate' && f.indexColumn !== undefined;
  if (!looksLikeCiphertext(value)) {
    if (recompute) {
      const fresh = codec.indexForWrite(value);
      return fresh === index ? undefined : { value, index: fresh };
    }
    if (mode !== 'encrypt-existing') return undefined;
    return { value: codec.encrypt(value), ...(f.indexColumn ? { index: codec.indexForWrite(value) } : {}) };
  }
  const reencrypt = mode === 'rotate' && keyIdOf(value) !== primary.dataKey;
  const reindex = recompute || (f.indexColumn !== undefined && (index === null || (mode === 'rotate' && indexKeyIdOf(index) !== primary.indexKey)));
  // encrypt-existing checks every prefixed value it meets, so a damaged one is reported, not skipped.
  if (!reencrypt && !reindex && mode !== 'encrypt-existing') return undefined;
  // Throws DecryptionError for malformed values, unknown keys and failed authentication.
  const plaintext = codec.decrypt(value);
  if (!reencrypt && !reindex) return undefined;
  const fresh = reindex ? codec.indexForWrite(plaintext) : undefined;
  if (!reencrypt && fresh === index) return undefined;
  return {
    value: reencrypt ? codec.encrypt(plaintext) : value,
    ...(fresh !== undefined ? { index: fresh } : {}),
  };
}

/** Typed crypto errors become per-value failures; anything else is a bug and fails the batch. */
function toFailure(field: string, error: unknown): ValueFailure {
  if (error instanceof DecryptionError) return { field, keyId: error.keyId, reason: error.reason };
  if (error instanceof EncryptionError) return { field, keyId: undefined, reason: 'encryption-failed' };
  throw error;
}
