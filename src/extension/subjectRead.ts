import type { KeyChoice } from '../codec/keyChoice';
import { subjectKeys } from '../codec/keyChoice';
import type { KeyringView } from '../codec/keyChoice';
import type { SubjectKeySource } from './subjectStore';

/** `pce:v2:<type>:s:`: the envelope of a value under a subject key; the key id follows. */
const SUBJECT_ENVELOPE = /^pce:v2:[a-z]:s:/;
const KEY_ID_START = 'pce:v2:x:s:'.length;

/**
 * The subject key ids named by the envelopes anywhere in a result (rows, nested relations,
 * typed fields' storage columns). A walk over every string is cheaper than it sounds: a result
 * holds few strings per row, and it saves knowing which relation a subject model was reached by.
 */
export function subjectKeyIds(result: unknown, into: Set<string> = new Set()): Set<string> {
  if (typeof result === 'string') {
    // charCodeAt before anything else: most strings of a result are not envelopes at all.
    if (result.length > KEY_ID_START && result.charCodeAt(0) === 112 /* p */ && result.charCodeAt(9) === 115 /* s */ && SUBJECT_ENVELOPE.test(result)) {
      const end = result.indexOf(':', KEY_ID_START);
      if (end > KEY_ID_START) into.add(result.slice(KEY_ID_START, end));
    }
    return into;
  }
  if (result === null || typeof result !== 'object') return into;
  if (Array.isArray(result)) {
    for (const item of result) subjectKeyIds(item, into);
    return into;
  }
  // Dates, Decimals, Buffers hold no envelope; only plain records are walked.
  const proto = Object.getPrototypeOf(result);
  if (proto !== Object.prototype && proto !== null) return into;
  for (const key in result) subjectKeyIds((result as Record<string, unknown>)[key], into);
  return into;
}

/**
 * The read keys for one result: every subject key it names, loaded in one call to the store (one
 * SQL read for the keys its cache does not hold). `undefined` when the result names none.
 * `erasedAsNull`: values of erased subjects read as `null` (a delete's record).
 */
export async function readKeysFor(store: SubjectKeySource, db: Parameters<SubjectKeySource['load']>[0], keyring: KeyringView, result: unknown, erasedAsNull = false): Promise<KeyChoice | undefined> {
  const ids = subjectKeyIds(result);
  if (ids.size === 0) return undefined;
  const loaded = await store.load(db, ids);
  return subjectKeys(keyring, { loaded, erasedAsNull });
}
