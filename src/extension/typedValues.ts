import { DbNull, Decimal, isAnyNull, isDbNull, isJsonNull } from '@prisma/client/runtime/client';
import type { FieldCodec } from '../codec/fieldCodec';
import { isObject, type Obj } from './walkContext';

/**
 * What the query walkers need to tell about typed values (Decimal, Bytes, Json, ...), which can
 * be objects: a value is not an operator object (`{ set }`, `{ equals }`), and Prisma's Json null
 * markers stand for SQL NULL (`DbNull`) or the JSON value null (`JsonNull`).
 */

/** Stands for the JSON value `null` in a filter, where a plain `null` means SQL NULL. */
export const JSON_NULL: unique symbol = Symbol('JsonNull');

/**
 * True when `value`, given for the codec's field in `data` or in `where`, is one value rather than
 * an object of operators. Json values are objects too: in `data` a Json field takes no operators,
 * in `where` it takes only a filter object (Prisma has no Json shorthand).
 */
export function isFieldValue(codec: FieldCodec, value: unknown, place: 'data' | 'where'): boolean {
  if (!isObject(value)) return true;
  if (value instanceof Uint8Array || Decimal.isDecimal(value)) return true;
  return codec.spec.type === 'Json' && place === 'data';
}

/**
 * A Json field's value or filter operand with Prisma's null markers resolved: DbNull becomes
 * `null` (SQL NULL), JsonNull the JSON value null. AnyNull cannot be one blind-index lookup.
 */
export function resolveJsonNull(codec: FieldCodec, value: unknown, place: 'data' | 'where'): unknown {
  if (codec.spec.type !== 'Json') return value;
  if (isDbNull(value)) return null;
  if (isJsonNull(value)) return place === 'data' ? null : JSON_NULL;
  if (isAnyNull(value)) return ANY_NULL;
  return value;
}
export const ANY_NULL: unique symbol = Symbol('AnyNull');

/** In `data`, whether a Json field is set to the JSON value null (JsonNull), not to SQL NULL. */
export const isJsonNullValue = (codec: FieldCodec, value: unknown): boolean => codec.spec.type === 'Json' && isJsonNull(value);

/** SQL NULL for the typed column, as Prisma wants it written: Json columns take `Prisma.DbNull`. */
export const typedNull = (codec: FieldCodec): unknown => (codec.spec.type === 'Json' ? DbNull : null);

/**
 * The condition "the field is (not) null" for a typed field. Its ciphertext sits in the storage
 * column; in passthrough mode a row may still hold legacy plaintext in the typed column instead.
 */
export function typedNullTest(codec: FieldCodec, isNull: boolean): Obj {
  const storage = codec.storageField!;
  if (codec.spec.readMode !== 'passthrough') return { [storage]: isNull ? null : { not: null } };
  const typedIsNull = codec.spec.type === 'Json' ? { equals: DbNull } : null;
  const typedNotNull = codec.spec.type === 'Json' ? { not: DbNull } : { not: null };
  return isNull ? { [storage]: null, [codec.field]: typedIsNull } : { OR: [{ [storage]: { not: null } }, { [codec.field]: typedNotNull }] };
}
