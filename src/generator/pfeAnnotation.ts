import { getHashes } from 'node:crypto';
import { PFE_ENCODINGS, PFE_NORMALIZE, type PfeEncoding, type PfeHashSpec, type PfeNormalize } from '../codec/pfe';

/**
 * prisma-field-encryption's annotations, parsed the way its own `dmmf.ts` does (same patterns,
 * same `URLSearchParams` query), for the `legacy: pfe` lookups and the schema converter:
 *
 *   /// @encrypted[?mode=strict|readonly|default]          (also the older ?strict, ?readonly)
 *   /// @encryption:hash(<field>)[?normalize=..&salt=..&saltEnv=..&algorithm=..&inputEncoding=..&outputEncoding=..]
 *   /// @encryption:cursor
 */

const HASH = /@encryption:hash\((?<fieldName>\w+)\)(?<query>\?[\w=&]+)?/;
const ENCRYPTED = /@encrypted(?<query>\?[\w=&]+)?/;
export const PFE_CURSOR = '@encryption:cursor';
export const DEFAULT_SALT_ENV = 'PRISMA_FIELD_ENCRYPTION_HASH_SALT';

export interface PfeHashAnnotation {
  /** The encrypted field the hash is computed from. */
  readonly source: string;
  readonly spec: PfeHashSpec;
}

/**
 * Parses `@encryption:hash(...)` in a doc comment. Returns undefined when absent; throws an Error
 * with `reason` text (the caller adds model and field) for options this library cannot reproduce.
 */
export function parsePfeHash(doc: string | undefined): PfeHashAnnotation | undefined {
  const match = doc ? HASH.exec(doc) : null;
  if (!match) return undefined;
  const query = new URLSearchParams(match.groups!.query ?? '');
  const normalize = query.getAll('normalize');
  for (const n of normalize) {
    if (!(PFE_NORMALIZE as readonly string[]).includes(n)) throw new Error(`@encryption:hash: unknown normalize option '${n}' (prisma-field-encryption knows ${PFE_NORMALIZE.join(', ')})`);
  }
  const inputEncoding = query.get('inputEncoding') ?? 'utf8';
  const outputEncoding = query.get('outputEncoding') ?? 'hex';
  if (!(PFE_ENCODINGS as readonly string[]).includes(inputEncoding)) throw new Error(`@encryption:hash: unsupported inputEncoding '${inputEncoding}'`);
  if (outputEncoding !== 'hex' && outputEncoding !== 'base64') throw new Error(`@encryption:hash: outputEncoding '${outputEncoding}' cannot be reproduced (hex and base64 can)`);
  const algorithm = query.get('algorithm') ?? 'sha256';
  if (!getHashes().includes(algorithm)) throw new Error(`@encryption:hash: unknown algorithm '${algorithm}'`);
  const salt = query.get('salt');
  return {
    source: match.groups!.fieldName!,
    spec: {
      algorithm,
      normalize: PFE_NORMALIZE.filter((n) => normalize.includes(n)) as PfeNormalize[],
      inputEncoding: inputEncoding as PfeEncoding,
      outputEncoding,
      ...(salt !== null ? { salt } : { saltEnv: query.get('saltEnv') ?? DEFAULT_SALT_ENV }),
    },
  };
}

export type PfeMode = 'default' | 'strict' | 'readonly';

/** Parses prisma-field-encryption's `@encrypted[?...]` (not this library's `@encrypted(...)`). */
export function parsePfeEncrypted(doc: string | undefined): { readonly mode: PfeMode } | undefined {
  const match = doc ? ENCRYPTED.exec(doc) : null;
  if (!match) return undefined;
  const query = new URLSearchParams(match.groups!.query ?? '');
  const mode = query.get('mode') ?? (query.get('readonly') !== null ? 'readonly' : query.get('strict') !== null ? 'strict' : 'default');
  return { mode: mode === 'strict' || mode === 'readonly' ? mode : 'default' };
}
