import type { DMMF } from '@prisma/generator-helper';
import type { ValueType } from '../crypto/ciphertext';
import type { ColumnShape, EncryptedFieldSpec } from '../schema';
import { parseAnnotation, type ParsedAnnotation } from './annotation';

type Field = DMMF.Datamodel['models'][number]['fields'][number];

/**
 * Validates an annotated field of a type other than String and returns what the map records for
 * it: its type, its storage field, and what its column would keep of a value.
 *
 * Such a field keeps its Prisma type (and so its TypeScript type) and its own column, which stays
 * NULL at rest; its ciphertext goes to the `storage` String field. So the typed field must be
 * optional (NULL is all it ever holds) and the storage field must be an optional text field that
 * nothing else uses.
 */
export function typedFieldSpec(
  field: Field,
  parsed: ParsedAnnotation,
  fields: ReadonlyMap<string, Field>,
  storageOwners: Map<string, string>,
  provider: string,
  fail: (reason: string) => never,
): Pick<EncryptedFieldSpec, 'type' | 'storage' | 'column'> {
  const type = field.type as Exclude<ValueType, 'String'>;
  if (!parsed.storage) {
    fail(`has type ${type}: name a String field to hold its ciphertext, @encrypted(storage: ${field.name}Cipher), and add ${field.name}Cipher String? to the model`);
  }
  if (field.isRequired) fail(`must be optional (${type}?): its own column stays NULL, the ciphertext goes to storage field '${parsed.storage}'`);
  if (parsed.normalize) fail(`normalize applies to String fields only; a ${type} index hashes its canonical form`);
  const storageName = parsed.storage!;
  const storage = fields.get(storageName);
  const failStorage = (reason: string): never => fail(`storage field '${storageName}' ${reason}`);
  if (!storage) failStorage('does not exist on the model');
  const s = storage!;
  if (s.kind !== 'scalar' || s.type !== 'String' || s.isList) failStorage(`must be a scalar String (found ${s.kind === 'object' ? 'a relation' : `${s.type}${s.isList ? '[]' : ''}`})`);
  if (s.isRequired) failStorage('must be optional (String?): the extension fills it, so create inputs must not require it');
  if (s.isId || s.isUnique || s.hasDefaultValue || s.isUpdatedAt) failStorage('must not be the id, @unique, @default or @updatedAt');
  if (parseAnnotation(s.documentation, '', s.name)) failStorage('is itself encrypted');
  const owner = storageOwners.get(storageName);
  if (owner) failStorage(`is already the storage of '${owner}'`);
  storageOwners.set(storageName, field.name);
  const column = columnShape(field, provider, fail);
  return { type, storage: storageName, ...(column ? { column } : {}) };
}

/**
 * What the typed column would keep of a value, for the native types where that changes the value
 * (DateTime precision, Decimal scale). Native types whose rounding is not reproduced are refused.
 */
function columnShape(field: Field, provider: string, fail: (reason: string) => never): ColumnShape | undefined {
  const [nativeType, args] = field.nativeType ?? [];
  if (!nativeType) return undefined;
  const n = args?.[0] !== undefined ? Number(args[0]) : undefined;
  switch (field.type) {
    case 'DateTime':
      if (nativeType === 'Date') return { precision: 'date' };
      if (['Timestamp', 'Timestamptz', 'DateTime'].includes(nativeType)) {
        const precision = Math.min(n ?? 3, 3);
        // MariaDB drops the digits a DATETIME(n) cannot keep; PostgreSQL rounds them (ColumnShape.excess).
        return provider === 'mysql' && precision < 3 ? { precision, excess: 'truncate' } : { precision };
      }
      return fail(`@db.${nativeType} is not supported for an encrypted DateTime (use the default, @db.Date or @db.Timestamp(n))`);
    case 'Decimal':
      if (nativeType === 'Decimal') return { digits: n ?? 65, scale: args?.[1] !== undefined ? Number(args[1]) : 0 };
      return fail(`@db.${nativeType} is not supported for an encrypted Decimal (use the default or @db.Decimal(p, s))`);
    case 'Float':
      if (['DoublePrecision', 'Double'].includes(nativeType)) return undefined;
      return fail(`@db.${nativeType} rounds to single precision, which encrypted values would not; use the default column type`);
    default:
      return undefined;
  }
}
