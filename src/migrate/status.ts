import { PFE_PREFIX } from '../codec/pfe';
import { CIPHERTEXT_PREFIX, CURRENT_VERSION } from '../crypto/ciphertext';
import type { StoredKeyCounts } from '../keys/keyUsage';
import type { EncryptionSchema } from '../schema';
import type { SqlConnection } from './connection';
import { resolveScope, type ScopeFilter } from './scope';
import { colonPart, exact, isV2Shared, isV2Subject, Params, startsWith } from './sql';

/** Where one encrypted field stands: stored values per data key id, plaintext, nulls, and indexes per index key id. */
export interface FieldStatus extends StoredKeyCounts {
  /** Ciphertext values per data key id. Values with the envelope prefix but an unknown format version count under {@link UNSUPPORTED_FORMAT}. */
  readonly byKey: Record<string, number>;
  readonly indexByKey: Record<string, number>;
}

/**
 * The `byKey` entry for values under per-subject keys (`@@encrypted(subject: ...)` models): one
 * bucket, as there is a key per person; `status` lists the subject keys themselves by wrap key.
 */
export const SUBJECT_KEYS = '(subject-keys)';
/** The `byKey` entry for values carrying the `pce:` prefix in a format version this release does not read. */
export const UNSUPPORTED_FORMAT = '(unsupported-format)';
/** `legacy: pfe` fields: prisma-field-encryption values count under `pfe:<fingerprint>`, its old hashes under this index key. */
export const PFE_HASH = 'pfe-hash';

/**
 * Counts, per annotated field, how stored values are distributed over key ids. Reads no value
 * into the process: the database groups by the key id in each value's header.
 */
export async function collectStatus(conn: SqlConnection, schema: EncryptionSchema, filter: ScopeFilter = {}): Promise<FieldStatus[]> {
  const out: FieldStatus[] = [];
  for (const target of resolveScope(schema, filter)) {
    for (const f of target.fields) {
      const p = new Params(conn);
      const v = conn.quote(f.column);
      const v1 = `${CIPHERTEXT_PREFIX}${CURRENT_VERSION}:`;
      const legacy = f.spec.legacy?.format === 'pfe';
      // Parameters are added in text order (MySQL placeholders are positional): the legacy parts are
      // functions, called where they appear in the text.
      const pfe = () => (legacy ? ` WHEN ${startsWith(conn, p, v, PFE_PREFIX)} THEN 'l'` : '');
      // A typed field's legacy plaintext is in its own column while its storage column is still NULL.
      const whenNull = f.typedColumn ? `CASE WHEN ${conn.quote(f.typedColumn)} IS NULL THEN 'n' ELSE 'p' END` : `'n'`;
      const kind = `CASE WHEN ${v} IS NULL THEN ${whenNull} WHEN ${startsWith(conn, p, v, v1)} THEN 'k' WHEN ${isV2Shared(conn, p, v)} THEN 'k' WHEN ${isV2Subject(conn, p, v)} THEN 's' WHEN ${startsWith(conn, p, v, CIPHERTEXT_PREFIX)} THEN 'u'${pfe()} ELSE 'p' END`;
      // prisma-field-encryption's fingerprint: the 8 characters after `v1.aesgcm256.`.
      const pfeKey = () => (legacy ? ` WHEN ${startsWith(conn, p, v, PFE_PREFIX)} THEN SUBSTRING(${v}, ${PFE_PREFIX.length + 1}, 8)` : '');
      // The key id is the third ':'-separated part of `pce:v1:<keyId>:...` and the fifth of
      // `pce:v2:<type>:k:<keyId>:...`; the index key id is the first of `<keyId>:<mac>`.
      const keyId = `CASE WHEN ${startsWith(conn, p, v, v1)} THEN ${colonPart(conn, v, 3)} WHEN ${isV2Shared(conn, p, v)} THEN ${colonPart(conn, v, 5)}${pfeKey()} END`;
      const select = [`${kind} AS kind`, `${keyId} AS k`];
      if (f.indexColumn) {
        const x = conn.quote(f.indexColumn);
        const indexPart = conn.dialect === 'postgres' ? `split_part(${x}, ':', 1)` : exact(conn, `SUBSTRING_INDEX(${x}, ':', 1)`);
        // An old hash has no key id: counted as one bucket, never shown (it is an unkeyed hash of the value).
        const oldHash = legacy ? ` WHEN ${x} NOT LIKE ${p.add('%:%')} THEN '${PFE_HASH}'` : '';
        select.push(`CASE WHEN ${x} IS NULL THEN NULL${oldHash} ELSE ${indexPart} END AS ik`);
      } else {
        select.push('NULL AS ik');
      }
      const rows = await conn.query<{ kind: string; k: string | null; ik: string | null; n: unknown }>(
        `SELECT ${select.join(', ')}, COUNT(*) AS n FROM ${conn.quote(target.table)} GROUP BY 1, 2, 3`,
        p.values,
      );
      const status = { model: target.model, field: f.field, byKey: {} as Record<string, number>, plaintext: 0, nulls: 0, indexByKey: {} as Record<string, number> };
      for (const r of rows) {
        const n = Number(r.n);
        const kindText = String(r.kind);
        if (kindText === 'n') status.nulls += n;
        else if (kindText === 'p') status.plaintext += n;
        else {
          const id = kindText === 'u' ? UNSUPPORTED_FORMAT : kindText === 's' ? SUBJECT_KEYS : kindText === 'l' ? `pfe:${String(r.k).toLowerCase()}` : String(r.k);
          status.byKey[id] = (status.byKey[id] ?? 0) + n;
        }
        if (r.ik !== null && r.ik !== undefined) {
          const ik = String(r.ik);
          status.indexByKey[ik] = (status.indexByKey[ik] ?? 0) + n;
        }
      }
      out.push(status);
    }
  }
  return out;
}
