/** Per-subject keys and crypto-shredding (issue 11): the key store and its SQL. */
export { SubjectKeyStore, subjectIdText, subjectRef, MAX_SUBJECT_ID_LENGTH, type SubjectId, type SubjectKeyLookup, type SubjectKeyStoreOptions, type SubjectWriteOptions, type WrapKeys } from './subjectKeyStore';
export { SubjectKeySql, dialectOf, KEYS_TABLE, ERASURES_TABLE, type SubjectKeyDialect, type SubjectKeyRow, type Statement } from './subjectKeySql';
export { newSubjectKey, newSubjectKeyId, wrapSubjectKey, unwrapSubjectKey, rewrapSubjectKey } from './subjectKeyWrap';
export type { SqlClient, TransactionalClient } from './sqlClient';
export { subjectKeyCounts, hasSubjectKeyTable, type SubjectKeyCounts } from './subjectKeyCounts';
export { ErasureLedger, type LedgerEntry, type LedgerContents } from './erasureLedger';
export { forgetSubject, replayErasures, reinstateSubject, type ErasureOptions, type ForgetReport, type ReplayReport } from './erasure';
export { rotateEpoch, type RotateEpochOptions, type RotateEpochReport, type EpochFailure } from './epoch';
export { verifySubjectKeys, type SubjectKeyProblem } from './verifySubjectKeys';
