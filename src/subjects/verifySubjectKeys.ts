import type { CryptoBackend } from '../codec/backend';
import { rows, type SqlClient } from './sqlClient';
import { dialectOf, SubjectKeySql, type SubjectKeyRow } from './subjectKeySql';
import type { WrapKeys } from './subjectKeyStore';
import { unwrapSubjectKey } from './subjectKeyWrap';

/** A subject key that does not unwrap with the keyring: by key id and wrap key id, never content. */
export interface SubjectKeyProblem {
  readonly keyId: string;
  readonly wrapKeyId: string | null;
  readonly problem: 'unknown-key' | 'retired-key' | 'authentication-failed';
}

/**
 * Unwraps every subject key that still has a wrapped key (live and pending), page by page, and
 * reports those that fail: their wrap key is not loaded (retired or destroyed: the subject is
 * unreadable without having been erased) or the wrapped bytes do not authenticate.
 */
export async function verifySubjectKeys(
  db: SqlClient,
  keys: WrapKeys,
  provider: string,
  options: { readonly batchSize?: number; readonly backend?: CryptoBackend; readonly onProblem?: (p: SubjectKeyProblem) => void } = {},
): Promise<{ checked: number; failed: number; problems: SubjectKeyProblem[] }> {
  const sql = new SubjectKeySql(dialectOf(provider));
  const batchSize = options.batchSize ?? 1000;
  const problems: SubjectKeyProblem[] = [];
  let checked = 0;
  let failed = 0;
  let after = '';
  for (;;) {
    const batch = await rows<SubjectKeyRow>(db, sql.wrappedKeys(after, batchSize));
    for (const row of batch) {
      checked++;
      const wrap = row.wrap_key_id === null ? undefined : keys.wrapKey(row.wrap_key_id);
      const problem = !wrap
        ? row.wrap_key_id !== null && keys.isRetired?.(row.wrap_key_id)
          ? ('retired-key' as const)
          : ('unknown-key' as const)
        : unwrapSubjectKey(wrap.key, row.key_id, row.wrapped_key!, options.backend)
          ? undefined
          : ('authentication-failed' as const);
      if (problem) {
        failed++;
        const p = { keyId: row.key_id, wrapKeyId: row.wrap_key_id, problem };
        if (problems.length < 1000) problems.push(p);
        options.onProblem?.(p);
      }
    }
    if (batch.length < batchSize) break;
    after = batch[batch.length - 1]!.key_id;
  }
  return { checked, failed, problems };
}
