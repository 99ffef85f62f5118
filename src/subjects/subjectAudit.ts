import type { Logger } from 'pino';
import { defaultLogger } from '../audit/auditLog';

/**
 * Audit events of erasure and epoch rotation. Like every audit event they carry counts and key
 * ids, never the subject's id: the log must not become a list of the people who asked to be
 * forgotten (that list is the erasure ledger, kept apart).
 */
export interface SubjectAudit {
  erased(details: { keysDestroyed: number; rowsUnindexed: number; models: number; alreadyErased: boolean; ledger: boolean; rowsOutsideSubjectKey: number }): void;
  replayed(details: { entries: number; subjects: number; keysDestroyed: number; rowsUnindexed: number; reinstated: number; tornLastLine: boolean }): void;
  reinstated(details: { wasErased: boolean; ledger: boolean }): void;
  epochRotated(details: { wrapKeyId: string; rewrapped: number; failed: number; batches: number; from: Readonly<Record<string, number>> }): void;
}

export function subjectAudit(logger: Logger = defaultLogger()): SubjectAudit {
  const log = logger.child({ component: 'prisma-column-encryption' });
  return {
    erased: (d) => log.info({ event: 'pce.subject.erased', ...d }, 'subject erased: its key is destroyed'),
    replayed: (d) => log.info({ event: 'pce.subject.erasures_replayed', ...d }, 'erasure ledger replayed'),
    reinstated: (d) => log.warn({ event: 'pce.subject.reinstated', ...d }, 'an erased subject id was reinstated for reuse'),
    epochRotated: (d) =>
      log[d.failed > 0 ? 'warn' : 'info']({ event: 'pce.subject.epoch_rotated', ...d }, d.failed > 0 ? 'epoch rotation left keys under old wrap keys' : 'subject keys re-wrapped under the new epoch'),
  };
}
