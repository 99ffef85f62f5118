/**
 * The re-encryption migrator: rotate keys, encrypt legacy plaintext, report status, verify.
 * The CLI commands are thin wrappers around these functions.
 */
export type { SqlConnection, Dialect, SqlRow, TransactionOptions } from './connection';
export { openConnection, dialectOf } from './openConnection';
export {
  rotate,
  encryptExisting,
  convertPfe,
  type MigrationMode,
  type MigrationOptions,
  type MigrationProgress,
  type MigrationReport,
  type ModelMigrationReport,
  type RowFailure,
} from './migrator';
export { collectStatus, UNSUPPORTED_FORMAT, type FieldStatus } from './status';
export { verify, type VerifyOptions, type VerifyReport, type VerifyFailure, type VerifyProblem, type ModelVerifyReport } from './verify';
export { MigrationError, type DatabaseErrorSummary } from './migrationError';
export { CHECKPOINT_TABLE } from './checkpoint';
export type { ScopeFilter } from './scope';
