import type { DMMF } from '@prisma/generator-helper';
import { ConfigurationError } from '../errors';
import type { EncryptedFieldSpec, LegacySpec } from '../schema';
import type { ParsedAnnotation } from './annotation';
import { parsePfeHash, type PfeHashAnnotation } from './pfeAnnotation';

type Model = DMMF.Datamodel['models'][number];

function pfeHashOf(model: Model, field: Model['fields'][number]): PfeHashAnnotation | undefined {
  try {
    return parsePfeHash(field.documentation);
  } catch (error) {
    throw new ConfigurationError(model.name, field.name, (error as Error).message);
  }
}

/**
 * The legacy spec of a `legacy: pfe` field: its old hash column is its index field, and how that
 * hash was computed comes from the `/// @encryption:hash(<field>)` line kept on the index field
 * while the conversion runs. Undefined for fields without `legacy`.
 */
export function legacySpecFor(model: Model, field: string, parsed: ParsedAnnotation): LegacySpec | undefined {
  if (!parsed.legacy) return undefined;
  const hashed = model.fields.filter((f) => pfeHashOf(model, f)?.source === field);
  if (!parsed.index) {
    if (hashed.length > 0) {
      throw new ConfigurationError(model.name, field, `legacy: pfe: prisma-field-encryption hashes this field into '${hashed[0]!.name}'; add index: ${hashed[0]!.name} so old hashes are found and converted`);
    }
    return { format: 'pfe' };
  }
  const indexField = model.fields.find((f) => f.name === parsed.index);
  const hash = indexField ? pfeHashOf(model, indexField) : undefined;
  if (hash && hash.source !== field) {
    throw new ConfigurationError(model.name, field, `legacy: pfe: index field '${parsed.index}' holds prisma-field-encryption's hash of '${hash.source}', not of this field`);
  }
  return hash ? { format: 'pfe', hash: hash.spec } : { format: 'pfe' };
}

/**
 * A `@encryption:hash(x)` line is only meaningful on the index field of `x` marked `legacy: pfe`:
 * anywhere else it would silently stop finding rows, so it is refused.
 */
export function checkPfeHashOwners(model: Model, encrypted: Readonly<Record<string, EncryptedFieldSpec>>): void {
  for (const f of model.fields) {
    const hash = pfeHashOf(model, f);
    if (!hash) continue;
    const owner = encrypted[hash.source];
    if (!owner?.legacy || owner.index !== f.name) {
      throw new ConfigurationError(
        model.name,
        f.name,
        `@encryption:hash(${hash.source}) is a prisma-field-encryption annotation: annotate '${hash.source}' with @encrypted(index: ${f.name}, ..., legacy: pfe) while its old hashes remain, or remove the line`,
      );
    }
  }
}
