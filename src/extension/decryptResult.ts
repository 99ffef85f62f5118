import type { FieldCodec } from '../codec/fieldCodec';
import { DecryptionError } from '../errors';
import type { RuntimeModel } from './runtimeSchema';
import type { Obj, WalkContext } from './walkContext';

/** Rows holding a stored value of each field, gathered over the whole result before decrypting. */
type Pending = Map<FieldCodec, Obj[]>;

/**
 * What result decryption must know about one level of a query's selection: the storage columns
 * the caller selected explicitly (all others are removed from results: a result shows a typed
 * field's ciphertext only when asked for), and the same for each selected relation.
 */
export interface ReadShape {
  readonly keep: ReadonlySet<string>;
  readonly nested: ReadonlyMap<string, ReadShape>;
}

/** No storage column selected explicitly, at any depth. */
export const DEFAULT_SHAPE: ReadShape = { keep: new Set(), nested: new Map() };

/**
 * Decrypts, in place, every encrypted field present in a result of `model`, following only the
 * relations that can lead to encrypted data. Cost is proportional to the fields actually present
 * in the result, not to the size of the schema. Results are fresh objects built by Prisma for this
 * call, so decrypting in place is safe and saves a copy per row.
 *
 * The walk first gathers each field's values across all rows (nested relations included), then
 * decrypts them field by field: one batch call per field, which the native backend turns into
 * one call into OpenSSL for the whole result. A typed field's value is read from its storage
 * column, which is then removed from the row unless the caller selected it.
 */
export function decryptResult(ctx: WalkContext, model: RuntimeModel, result: unknown, shape: ReadShape = DEFAULT_SHAPE): void {
  const pending: Pending = new Map();
  const strip: Array<[Obj, string]> = [];
  collect(ctx, model, result, shape, pending, strip);
  for (const [codec, rows] of pending) {
    const source = codec.storageField ?? codec.field;
    const plain = codec.decryptMany(
      rows.map((row) => row[source] as string),
      ...(codec.subjectKeyed && ctx.readKeys ? [ctx.readKeys] : []),
    );
    for (let i = 0; i < rows.length; i++) rows[i]![codec.field] = plain[i];
    ctx.stats.decrypted += rows.length;
    ctx.fields.read.add(codec.binding);
  }
  for (const [row, storage] of strip) delete row[storage];
}

function collect(ctx: WalkContext, model: RuntimeModel, result: unknown, shape: ReadShape, pending: Pending, strip: Array<[Obj, string]>): void {
  if (result === null || typeof result !== 'object' || !model.holdsEncrypted) return;
  if (Array.isArray(result)) {
    for (const row of result) collectRow(ctx, model, row, shape, pending, strip);
  } else {
    collectRow(ctx, model, result as Obj, shape, pending, strip);
  }
}

function collectRow(ctx: WalkContext, model: RuntimeModel, row: Obj | null, shape: ReadShape, pending: Pending, strip: Array<[Obj, string]>): void {
  if (row === null || typeof row !== 'object') return;
  for (const codec of model.codecs.values()) {
    const storage = codec.storageField;
    if (storage !== undefined) {
      if (!(storage in row)) continue;
      if (!shape.keep.has(storage)) strip.push([row, storage]);
      // Only a selected typed field is decrypted (the caller may have selected the storage column alone).
      if (!(codec.field in row)) continue;
      if (typeof row[storage] !== 'string') {
        if (row[codec.field] !== null && codec.spec.readMode !== 'passthrough') {
          // Plaintext in the typed column of a strict field: never returned as if it were decrypted.
          const error = new DecryptionError(codec.model, codec.field, undefined, 'not-ciphertext');
          ctx.onDecryptFailure?.(error);
          throw error;
        }
        continue;
      }
    } else if (typeof row[codec.field] !== 'string') {
      continue;
    }
    let rows = pending.get(codec);
    if (!rows) pending.set(codec, (rows = []));
    rows.push(row);
  }
  for (const [field, target] of model.encryptedReach) {
    const nested = row[field];
    if (nested !== undefined && nested !== null) collect(ctx, ctx.model(target), nested, shape.nested.get(field) ?? DEFAULT_SHAPE, pending, strip);
  }
}
