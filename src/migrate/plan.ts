import { indexKeyIdOf } from '../crypto/blindIndex';
import { looksLikePfe } from '../codec/pfe';
import { keyIdOf, looksLikeCiphertext, parseHeader } from '../crypto/ciphertext';
import { DecryptionError, EncryptionError } from '../errors';
import type { FieldCodec } from '../codec/fieldCodec';
import type { KeyChoice } from '../codec/keyChoice';
import type { StoredRow } from './sql';
import { fromTypedText } from './typedColumn';

/** What planning reads of a stored row: its cells in field-target order (not its key). */
export type PlanInput = Pick<StoredRow, 'values' | 'indexes' | 'typed'>;

/** What a migration run does to each value. */
export type MigrationMode = 'rotate' | 'encrypt-existing' | 'convert-pfe';

/** The ids of the keys new values and indexes are written under: what planning compares stored ids with. */
export interface PrimaryKeyIds {
  readonly dataKey: string;
  readonly indexKey: string;
}

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

/**
 * Thrown by a subject-keyed row's key choice when the row has no subject key to write under:
 * `subject-erased` (the subject was forgotten), `no-subject` (its subject field is NULL),
 * `invalid-subject`, or why its key does not unwrap. Becomes a per-value failure; the row is not written.
 */
export class MissingWriteKey extends Error {
  constructor(readonly reason: string) {
    super(`no subject key to write the row under (${reason})`);
    this.name = 'MissingWriteKey';
  }
}

/** True when `value` is an envelope under a per-subject key (`pce:v2:<t>:s:...`). */
export function underSubjectKey(value: string): boolean {
  const h = parseHeader(value);
  return h.kind === 'header' && h.header.scope === 'subject';
}

/** A value under a subject key that was erased: unreadable on purpose, left exactly as it is (not a failure). */
function erasedValue(keys: KeyChoice | undefined, value: string): boolean {
  if (!keys) return false;
  const h = parseHeader(value);
  return h.kind === 'header' && h.header.scope === 'subject' && keys.forRead('subject', h.header.keyId) === 'subject-erased';
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
  // Plain loops: these run for every row of a rotation, where flatMap and spreads showed in profiles.
  const out: string[] = [];
  for (const f of fields) {
    out.push(f.column);
    if (f.indexColumn) out.push(f.indexColumn);
    if (f.typedColumn) out.push(f.typedColumn);
  }
  return out;
}

/** A stored row's cells in {@link planColumns} order (a typed column as its text form). */
export function storedCells(fields: ReadonlyArray<Omit<Columns, 'column'>>, row: PlanInput): Array<string | null> {
  const text = (v: unknown) => (v as string | null | undefined) ?? null;
  const out: Array<string | null> = [];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    out.push(text(row.values[i]));
    if (f.indexColumn) out.push(text(row.indexes[i]));
    if (f.typedColumn) out.push(text(row.typed?.[i]));
  }
  return out;
}

/**
 * What planning decided for one row: its new cells in {@link planColumns} order when it is to be
 * written, and the values that could not be processed (a row with failures is not written).
 */
export interface RowPlan {
  readonly next?: ReadonlyArray<string | null>;
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
 * Subject-keyed models (`keys` given: the row's keys, see `needsSubjectKey`): what would
 * be encrypted goes under the row's subject key, never a shared key; shared-key values (v1 and
 * v2 `:k:`) are moved there by rotate and encrypt-existing alike; values already under a subject
 * key are never re-encrypted (an epoch rotation re-wraps their key, not them), only their indexes
 * are recomputed as above; values of an erased subject are left as they are. A row needing its
 * subject key without one (erased subject, NULL subject) fails with that reason.
 *
 * A value that cannot be decrypted is reported and its row is not written at all.
 */
export function planRow(
  mode: MigrationMode,
  fields: readonly PlannedField[],
  row: PlanInput,
  primary: PrimaryKeyIds,
  options: PlanOptions = {},
  decrypted: ReadonlyArray<Decrypted | undefined> = [],
  keys?: KeyChoice,
): RowPlan {
  const failures: ValueFailure[] = [];
  const next: Array<string | null> = [];
  let changed = false;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
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
          nextValue = f.codec.encrypt(plain, keys);
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
          const decided = decide(mode, f, value, index ?? null, primary, options, decrypted[i], keys);
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
  }
  return failures.length > 0 || !changed ? { failures } : { next, failures };
}

/** A value's plaintext decrypted ahead, for a whole batch at once ({@link decryptAhead}). */
export interface Decrypted {
  readonly plaintext: unknown;
}

/**
 * What an envelope value needs besides its plaintext, or `undefined` when it is not decrypted at
 * all. The one statement of when a value is decrypted, shared by {@link decide} and
 * {@link decryptAhead} so the batch decrypts exactly the values planning would.
 */
function envelopeWork(
  mode: MigrationMode,
  f: PlannedField,
  value: string,
  index: string | null,
  primary: PrimaryKeyIds,
  options: PlanOptions,
  subject: boolean,
): { reencrypt: boolean; reindex: boolean } | undefined {
  if ((f.codec.spec.legacy && looksLikePfe(value)) || !looksLikeCiphertext(value)) return undefined;
  if (mode === 'convert-pfe') {
    // An index without a key id (`<keyId>:<mac>`) is an old hash: prisma-field-encryption's are hex or base64.
    const oldHash = f.indexColumn !== undefined && (index === null || indexKeyIdOf(index) === undefined);
    return oldHash ? { reencrypt: false, reindex: true } : undefined;
  }
  const recompute = options.reindex === true && mode === 'rotate' && f.indexColumn !== undefined;
  // A subject model's values belong under their row's subject key: a shared-key one moves there.
  const reencrypt = subject ? !underSubjectKey(value) : mode === 'rotate' && keyIdOf(value) !== primary.dataKey;
  const reindex = recompute || (f.indexColumn !== undefined && (index === null || (mode === 'rotate' && indexKeyIdOf(index) !== primary.indexKey)));
  // encrypt-existing checks every prefixed value it meets, so a damaged one is reported, not skipped.
  return reencrypt || reindex || mode === 'encrypt-existing' ? { reencrypt, reindex } : undefined;
}

/**
 * Decrypts, for one field, every value of a batch that planning will decrypt, in one
 * {@link FieldCodec.decryptMany} call (one native call per key with the native backend). Returns
 * `undefined` when fewer than two values need it, or when any of them fails: planning then
 * decrypts value by value and reports each failure as before.
 */
export function decryptAhead(
  mode: MigrationMode,
  f: PlannedField,
  field: number,
  rows: readonly PlanInput[],
  primary: PrimaryKeyIds,
  options: PlanOptions = {},
  keys?: KeyChoice,
): Array<Decrypted | undefined> | undefined {
  const wanted: number[] = [];
  const texts: string[] = [];
  rows.forEach((row, j) => {
    const value = row.values[field];
    // A typed field's plaintext column wins over its storage column (planRow's first branch).
    if (typeof value !== 'string' || (f.typedColumn && (row.typed?.[field] ?? null) !== null)) return;
    const index = f.indexColumn ? ((row.indexes[field] as string | null | undefined) ?? null) : null;
    if (envelopeWork(mode, f, value, index, primary, options, keys !== undefined) === undefined || erasedValue(keys, value)) return;
    wanted.push(j);
    texts.push(value);
  });
  if (wanted.length < 2) return undefined;
  let plaintexts: unknown[];
  try {
    plaintexts = f.codec.decryptMany(texts, keys);
  } catch {
    return undefined;
  }
  const out = new Array<Decrypted | undefined>(rows.length);
  wanted.forEach((j, k) => (out[j] = { plaintext: plaintexts[k] }));
  return out;
}

function decide(
  mode: MigrationMode,
  f: PlannedField,
  value: string,
  index: string | null,
  primary: PrimaryKeyIds,
  options: PlanOptions,
  ahead: Decrypted | undefined,
  keys: KeyChoice | undefined,
): { value: string; index?: string } | undefined {
  const { codec } = f;
  const subject = keys !== undefined;
  if (codec.spec.legacy && looksLikePfe(value)) {
    if (mode === 'encrypt-existing') throw new DecryptionError(codec.model, codec.field, undefined, 'legacy-format');
    if (mode !== 'convert-pfe') return undefined;
    const plaintext = codec.decrypt(value);
    return { value: codec.encrypt(plaintext, keys), ...(f.indexColumn ? { index: codec.indexForWrite(plaintext) } : {}) };
  }
  if (erasedValue(keys, value)) return undefined;
  // Throws DecryptionError for malformed values, unknown keys and failed authentication.
  const plaintextOf = () => (ahead ? ahead.plaintext : codec.decrypt(value, keys));
  if (mode === 'convert-pfe') {
    if (envelopeWork(mode, f, value, index, primary, options, subject) === undefined) return undefined;
    return { value, index: codec.indexForWrite(plaintextOf()) };
  }
  const recompute = options.reindex === true && mode === 'rotate' && f.indexColumn !== undefined;
  if (!looksLikeCiphertext(value)) {
    if (recompute) {
      const fresh = codec.indexForWrite(value);
      return fresh === index ? undefined : { value, index: fresh };
    }
    if (mode !== 'encrypt-existing') return undefined;
    return { value: codec.encrypt(value, keys), ...(f.indexColumn ? { index: codec.indexForWrite(value) } : {}) };
  }
  const work = envelopeWork(mode, f, value, index, primary, options, subject);
  if (!work) return undefined;
  const { reencrypt, reindex } = work;
  const plaintext = plaintextOf();
  if (!reencrypt && !reindex) return undefined;
  const fresh = reindex ? codec.indexForWrite(plaintext) : undefined;
  if (!reencrypt && fresh === index) return undefined;
  return {
    value: reencrypt ? codec.encrypt(plaintext, keys) : value,
    ...(fresh !== undefined ? { index: fresh } : {}),
  };
}

/** Typed crypto errors become per-value failures; anything else is a bug and fails the batch. */
function toFailure(field: string, error: unknown): ValueFailure {
  if (error instanceof MissingWriteKey) return { field, keyId: undefined, reason: error.reason };
  if (error instanceof DecryptionError) return { field, keyId: error.keyId, reason: error.reason };
  if (error instanceof EncryptionError) return { field, keyId: undefined, reason: 'encryption-failed' };
  throw error;
}
