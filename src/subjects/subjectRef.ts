import { ConfigurationError } from '../errors';

/* How a subject is named in the key table: its id space and id, checked to fit exactly. */

/** A subject's id as the application holds it: the value of the model's subject field. */
export type SubjectId = string | number | bigint;

/** Longest subject id the key table holds (`varchar(191)`, the longest MySQL indexes in utf8mb4). */
export const MAX_SUBJECT_ID_LENGTH = 191;

/**
 * The text a subject id is stored as: a string as it is, an integer in decimal. Refuses what the
 * key table cannot hold exactly (so no two ids can ever be truncated into one). The store takes
 * subjects as {@link subjectRef} texts; this is the id part.
 */
export function subjectIdText(subjectId: SubjectId, max = MAX_SUBJECT_ID_LENGTH, model?: string): string {
  let text: string;
  if (typeof subjectId === 'string') text = subjectId;
  else if (typeof subjectId === 'bigint' || (typeof subjectId === 'number' && Number.isSafeInteger(subjectId))) text = String(subjectId);
  else throw new ConfigurationError(model, undefined, `a subject id must be a string or an integer, got ${typeof subjectId === 'number' ? 'a non-integer number' : typeof subjectId}`);
  const length = [...text].length;
  if (length === 0 || length > max) {
    throw new ConfigurationError(model, undefined, `a subject id${model ? ` of ${model}` : ''} must have 1 to ${max} characters${max < MAX_SUBJECT_ID_LENGTH ? ` (the key table holds '${model}:<id>' in ${MAX_SUBJECT_ID_LENGTH})` : ''}, got ${length}`);
  }
  return text;
}

/** A subject root (model name): the id space a subject id belongs to. */
const ROOT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The subject as the key table stores it: `<root>:<id text>`, where `root` is the model whose ids
 * the subject ids are (`SubjectSpec.root` of the generated map: `Person` for Person and
 * PersonReading). Keying by (root, id) keeps Person 1 and a Client `1` apart: they never share a
 * key, and forgetting one leaves the other. Opaque to callers: pass it to the store as is.
 */
export function subjectRef(root: string, subjectId: SubjectId): string {
  if (!ROOT.test(root)) throw new ConfigurationError(undefined, undefined, 'a subject root must be a model name');
  return `${root}:${subjectIdText(subjectId, MAX_SUBJECT_ID_LENGTH - root.length - 1, root)}`;
}
