import { PFE_PREFIX } from '../codec/pfe';
import { CIPHERTEXT_PREFIX, headerFor, headerText, TYPE_TAGS, type KeyScope, type ValueType } from '../crypto/ciphertext';
import type { ModelTarget } from './scope';
import { isV2Subject, matches, startsWith, type RowFilter } from './sql';

/**
 * Which rows each migration mode reads: coarse SQL filters over the stored values and indexes
 * (the planner decides per value). Parameters are added in text order: MySQL placeholders are
 * positional.
 *
 * In a subject-keyed model (`target.subject`) a value's right place is its row's subject key, not
 * the primary data key: a value under a subject key needs work only for its index, and any
 * shared-key value (v1, or v2 `:k:`) is moved under the row's subject key.
 */

/** The header a value of the field under shared data key `keyId` starts with (what the SQL prefix tests match). */
const currentHeader = (f: { readonly spec: { readonly type?: ValueType } }, keyId: string): string => headerText(headerFor(f.spec.type ?? 'String', 'shared', keyId));

/** The shape of a v1 envelope; whether its key is known is checked separately, with parameters. */
const V1_SHAPE = '^pce:v1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$';

/** The shape of a v2 envelope of `type` under a keyring key (`k`) or a subject key (`s`). */
const v2Shape = (type: ValueType, scope: KeyScope = 'shared'): string =>
  `^pce:v2:${TYPE_TAGS[type]}:${scope === 'shared' ? 'k' : 's'}:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$`;

const subjectKeyed = (target: ModelTarget) => target.subject !== undefined;

/**
 * Rows that `rotate` has work on: a value carrying the envelope prefix but another data key (in a
 * subject model: any shared-key value), or (for indexed fields) a missing index or one under
 * another index key. Plaintext is left to `encrypt-existing`.
 */
export function rotateFilter(primaryDataKey: string, primaryIndexKey: string): RowFilter {
  return (conn, p, target, alias) =>
    target.fields
      .map((f) => {
        const v = `${alias}.${conn.quote(f.column)}`;
        const isCiphertext = startsWith(conn, p, v, CIPHERTEXT_PREFIX);
        const stale = [subjectKeyed(target) ? `NOT ${isV2Subject(conn, p, v)}` : `NOT (${startsWith(conn, p, v, currentHeader(f, primaryDataKey))})`];
        if (f.indexColumn) {
          const x = `${alias}.${conn.quote(f.indexColumn)}`;
          stale.push(`${x} IS NULL`, `NOT (${startsWith(conn, p, x, `${primaryIndexKey}:`)})`);
        }
        return `(${v} IS NOT NULL AND ${isCiphertext} AND (${stale.join(' OR ')}))`;
      })
      .join(' OR ');
}

/**
 * Rows that `encrypt-existing` has work on: legacy plaintext, a value whose index is missing, or a
 * value that carries the envelope prefix but is not a well-formed v1 value under one of
 * `dataKeyIds` (reported as a failure, never encrypted as if it were plaintext). In a subject
 * model: anything but a well-formed subject-key value (so shared-key values are moved too).
 */
export function encryptExistingFilter(dataKeyIds: readonly string[]): RowFilter {
  return (conn, p, target, alias) =>
    target.fields
      .map((f) => {
        const v = `${alias}.${conn.quote(f.column)}`;
        const plaintext = `NOT (${startsWith(conn, p, v, CIPHERTEXT_PREFIX)})`;
        let suspect: string;
        if (subjectKeyed(target)) {
          suspect = `NOT (${matches(conn, p, v, v2Shape(f.spec.type ?? 'String', 'subject'))})`;
        } else {
          const known = dataKeyIds.map((id) => startsWith(conn, p, v, currentHeader(f, id)));
          const shape = f.typedColumn ? v2Shape(f.spec.type!) : V1_SHAPE;
          suspect = `NOT (${matches(conn, p, v, shape)}${known.length > 0 ? ` AND (${known.join(' OR ')})` : ''})`;
        }
        const work = [plaintext, suspect];
        if (f.indexColumn) work.push(`${alias}.${conn.quote(f.indexColumn)} IS NULL`);
        const stored = `(${v} IS NOT NULL AND (${work.join(' OR ')}))`;
        // A typed field's legacy plaintext is in its own column, which the conversion leaves NULL.
        return f.typedColumn ? `(${stored} OR ${alias}.${conn.quote(f.typedColumn)} IS NOT NULL)` : stored;
      })
      .join(' OR ');
}

/**
 * Rows that `convert-pfe` has work on: a prisma-field-encryption value, or (indexed fields) an
 * envelope value whose index is missing or has no key id, as the old SHA-256 hashes have not.
 */
export const convertPfeFilter: RowFilter = (conn, p, target, alias) =>
  target.fields
    .map((f) => {
      const v = `${alias}.${conn.quote(f.column)}`;
      const work = [startsWith(conn, p, v, PFE_PREFIX)];
      if (f.indexColumn) {
        const x = `${alias}.${conn.quote(f.indexColumn)}`;
        work.push(`(${startsWith(conn, p, v, CIPHERTEXT_PREFIX)} AND (${x} IS NULL OR ${x} NOT LIKE ${p.add('%:%')}))`);
      }
      return `(${v} IS NOT NULL AND (${work.join(' OR ')}))`;
    })
    .join(' OR ');

/** `rotate --reindex`: everything rotate has work on, and every row with a value in an indexed field. */
export function reindexFilter(primaryDataKey: string, primaryIndexKey: string): RowFilter {
  const stale = rotateFilter(primaryDataKey, primaryIndexKey);
  return (conn, p, target, alias) => {
    const indexed = target.fields.filter((f) => f.indexColumn).map((f) => `${alias}.${conn.quote(f.column)} IS NOT NULL`);
    const base = stale(conn, p, target, alias);
    return [base, ...indexed].filter((x) => x).join(' OR ');
  };
}
