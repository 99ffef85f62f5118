/**
 * prisma-column-encryption: transparent, searchable, rotatable column encryption for Prisma 7.
 * @packageDocumentation
 */
export { columnEncryption, type ColumnEncryptionOptions } from './extension/columnEncryption';
export { localKeys, localKeysFromEnv, type LocalKeySpec, type LocalKeysOptions } from './keys/local';
export { Keyring, type KeyInfo, type KeyringOptions } from './keys/keyring';
export type { KeyPurpose, KeySource, KmsKind } from './keys/keyMaterial';
export { loadKeyring, keyringFromDocument, type LoadKeyringOptions } from './keys/loadKeyring';
export { pfeLegacyKeys, PfeLegacyKeys, type PfeLegacyKeysOptions } from './keys/pfeKeys';
export { GcpKmsWrapper, gcpKmsClientOptionsFromEnv, type GcpKmsOptions, type GcpKmsClientOptions } from './keys/gcpKms';
export { wrapAad, type KeyWrapper, type KeyWrappers, type WrapTarget, type WrappedKey, type CallLimits } from './keys/keyWrapper';
export { KeySourceError, type KeySourceFailure } from './keys/keySourceError';
export { DEFAULT_RETRY, type RetryPolicy } from './keys/retry';
export {
  readKeyringFile,
  writeKeyringFile,
  parseKeyringDocument,
  type KeyringDocument,
  type KeyEntry,
  type KeyStatus,
  type LocalKeyEntry,
  type WrappedKeyEntry,
} from './keys/keyringFile';
export { KeyInUseError, NothingScannedError } from './keys/lifecycle';
export { KeyDestroyRefusedError, type DestroyRefusal } from './keys/destroy';
export { createAuditLog, type AuditLog, type DataAccess } from './audit/auditLog';
export { withAuditContext, currentAuditContext, type AuditContext } from './audit/accessContext';
export { openAuditChain, auditChainKey, type AuditChainDestination } from './audit/chainFile';
export { verifyChain, sealRecord, startChain, GENESIS, type ChainHead, type ChainProblem, type ChainReport, type VerifyChainOptions } from './audit/chain';
export { cryptoBackend, type CryptoBackendInfo, type CryptoBackendName } from './codec/backendChoice';
export { requireTlsAdapter, type DriverAdapterFactory, type RequireTlsOptions } from './tls/tlsAdapter';
export {
  rotate,
  encryptExisting,
  convertPfe,
  verify,
  collectStatus,
  openConnection,
  MigrationError,
  type SqlConnection,
  type MigrationOptions,
  type MigrationReport,
  type MigrationProgress,
  type ModelMigrationReport,
  type RowFailure,
  type FieldStatus,
  type VerifyOptions,
  type VerifyReport,
  type VerifyFailure,
  type VerifyProblem,
} from './migrate';
export {
  SubjectKeyStore,
  subjectIdText,
  subjectRef,
  type SubjectId,
  type SubjectKeyLookup,
  type SubjectKeyStoreOptions,
  type SubjectWriteOptions,
  type SqlClient,
  type TransactionalClient,
  ErasureLedger,
  forgetSubject,
  replayErasures,
  reinstateSubject,
  rotateEpoch,
  subjectKeyCounts,
  type LedgerEntry,
  type ErasureOptions,
  type ForgetReport,
  type ReplayReport,
  type RotateEpochOptions,
  type RotateEpochReport,
  type SubjectKeyCounts,
} from './subjects';
export type { ChosenKey } from './codec/keyChoice';
export type { Ciphertext } from './crypto/ciphertext';
export type { BlindIndex } from './crypto/blindIndex';
export type { Normalizer } from './crypto/normalize';
export type { EncryptionSchema, ModelSpec, EncryptedFieldSpec, ReadMode } from './schema';
export {
  ColumnEncryptionError,
  ConfigurationError,
  DecryptionError,
  EncryptionError,
  KeyringError,
  SchemaProblems,
  UnsupportedQueryError,
  InsecureConnectionError,
  SubjectErasedError,
  WriteDeadlockError,
  type DecryptionFailure,
} from './errors';
