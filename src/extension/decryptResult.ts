import type { FieldCodec } from '../codec/fieldCodec';
import type { RuntimeModel } from './runtimeSchema';
import type { Obj, WalkContext } from './walkContext';

/** Rows holding a stored value of each field, gathered over the whole result before decrypting. */
type Pending = Map<FieldCodec, Obj[]>;

/**
 * Decrypts, in place, every encrypted field present in a result of `model`, following only the
 * relations that can lead to encrypted data. Cost is proportional to the fields actually present
 * in the result, not to the size of the schema. Results are fresh objects built by Prisma for this
 * call, so decrypting in place is safe and saves a copy per row.
 *
 * The walk first gathers each field's values across all rows (nested relations included), then
 * decrypts them field by field: one batch call per field, which the native backend turns into
 * one call into OpenSSL for the whole result.
 */
export function decryptResult(ctx: WalkContext, model: RuntimeModel, result: unknown): void {
  const pending: Pending = new Map();
  collect(ctx, model, result, pending);
  for (const [codec, rows] of pending) {
    const plain = codec.decryptMany(rows.map((row) => row[codec.field] as string));
    for (let i = 0; i < rows.length; i++) rows[i]![codec.field] = plain[i];
    ctx.stats.decrypted += rows.length;
    ctx.fields.read.add(codec.binding);
  }
}

function collect(ctx: WalkContext, model: RuntimeModel, result: unknown, pending: Pending): void {
  if (result === null || typeof result !== 'object' || !model.holdsEncrypted) return;
  if (Array.isArray(result)) {
    for (const row of result) collectRow(ctx, model, row, pending);
  } else {
    collectRow(ctx, model, result as Obj, pending);
  }
}

function collectRow(ctx: WalkContext, model: RuntimeModel, row: Obj | null, pending: Pending): void {
  if (row === null || typeof row !== 'object') return;
  for (const codec of model.codecs.values()) {
    if (typeof row[codec.field] !== 'string') continue;
    let rows = pending.get(codec);
    if (!rows) pending.set(codec, (rows = []));
    rows.push(row);
  }
  for (const [field, target] of model.encryptedReach) {
    const nested = row[field];
    if (nested !== undefined && nested !== null) collect(ctx, ctx.model(target), nested, pending);
  }
}
