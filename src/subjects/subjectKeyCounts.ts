import type { StoredSubjectKeyCounts } from '../keys/keyUsage';
import type { EncryptionSchema } from '../schema';
import { rows, type SqlClient } from './sqlClient';
import { dialectOf, KEYS_TABLE, SubjectKeySql } from './subjectKeySql';

/** Subject keys per wrap key (live, pending) and the tombstones of erased subjects. */
export type SubjectKeyCounts = StoredSubjectKeyCounts;

/**
 * Counts the subject-key table in one grouped query: what `status` shows, `verify` checks and
 * `keys retire` refuses on (a wrap key that still wraps a live or pending key).
 */
export async function subjectKeyCounts(db: SqlClient, provider: string): Promise<SubjectKeyCounts> {
  const sql = new SubjectKeySql(dialectOf(provider));
  const byWrapKey: Record<string, { live: number; pending: number }> = {};
  const totals = { live: 0, pending: 0, erased: 0 };
  for (const r of await rows<{ wrap_key_id: string | null; state: string; n: unknown }>(db, sql.counts())) {
    const n = Number(r.n);
    const state = String(r.state) as 'live' | 'pending' | 'erased';
    totals[state] += n;
    if (state !== 'erased' && r.wrap_key_id !== null) {
      const entry = (byWrapKey[r.wrap_key_id] ??= { live: 0, pending: 0 });
      entry[state] += n;
    }
  }
  return { byWrapKey, ...totals };
}

/** True when the schema declares the package's subject-key table (so counting it makes sense). */
export function hasSubjectKeyTable(schema: EncryptionSchema): boolean {
  return Object.values(schema.models).some((m) => m.dbName === KEYS_TABLE);
}
