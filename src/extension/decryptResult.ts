import type { RuntimeModel } from './runtimeSchema';
import type { Obj, WalkContext } from './walkContext';

/**
 * Decrypts, in place, every encrypted field present in a result of `model`, following only the
 * relations that can lead to encrypted data. Cost is proportional to the fields actually present
 * in the result, not to the size of the schema. Results are fresh objects built by Prisma for this
 * call, so decrypting in place is safe and saves a copy per row.
 */
export function decryptResult(ctx: WalkContext, model: RuntimeModel, result: unknown): void {
  if (result === null || typeof result !== 'object' || !model.holdsEncrypted) return;
  if (Array.isArray(result)) {
    for (const row of result) decryptRow(ctx, model, row);
  } else {
    decryptRow(ctx, model, result as Obj);
  }
}

function decryptRow(ctx: WalkContext, model: RuntimeModel, row: Obj | null): void {
  if (row === null || typeof row !== 'object') return;
  for (const codec of model.codecs.values()) {
    const value = row[codec.field];
    if (typeof value === 'string') {
      row[codec.field] = codec.decrypt(value);
      ctx.stats.decrypted++;
      ctx.fields.read.add(codec.binding);
    }
  }
  for (const [field, target] of model.encryptedReach) {
    const nested = row[field];
    if (nested !== undefined && nested !== null) decryptResult(ctx, ctx.model(target), nested);
  }
}
