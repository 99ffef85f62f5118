import type { SubjectKeyStore } from '../../src';
import type { Harness } from '../support/clients';

/** TEMPORARY stand-in for forgetSubject until the store helper lands it. */
export async function forget(h: Harness, store: SubjectKeyStore, subject: number): Promise<void> {
  const id = String(subject);
  const pg = h.provider === 'postgres';
  const q = (s: string) => (pg ? `"${s}"` : `\`${s}\``);
  const p = (n: number) => (pg ? `$${n}` : '?');
  await h.plain.$transaction(async (tx) => {
    const now = new Date();
    await tx.$executeRawUnsafe(pg ? `INSERT INTO pce_erasures (subject_id, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING` : `INSERT IGNORE INTO pce_erasures (subject_id, erased_at) VALUES (?, ?)`, id, now);
    const rows = (await tx.$queryRawUnsafe(`SELECT key_id FROM pce_subject_keys WHERE subject_id = ${p(1)} FOR UPDATE`, id)) as Array<{ key_id: string }>;
    await tx.$executeRawUnsafe(`UPDATE pce_subject_keys SET wrapped_key = NULL, wrap_key_id = NULL, subject_id = NULL, erased_at = ${p(1)} WHERE subject_id = ${p(2)}`, now, id);
    await tx.$executeRawUnsafe(`UPDATE ${q('Person')} SET ${q('emailIndex')} = NULL WHERE id = ${p(1)}`, subject);
    await tx.$executeRawUnsafe(`UPDATE ${q('PersonReading')} SET ${q('topicIndex')} = NULL WHERE ${q('personId')} = ${p(1)}`, subject);
    for (const r of rows) store.evict(r.key_id);
  });
}
