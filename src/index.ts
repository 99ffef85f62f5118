/**
 * prisma-column-encryption: transparent, searchable, rotatable column encryption for Prisma 7.
 * @packageDocumentation
 */
export { columnEncryption, type ColumnEncryptionOptions } from './extension/columnEncryption';
export { localKeys, localKeysFromEnv, type LocalKeySpec, type LocalKeysOptions } from './keys/local';
export { Keyring, type KeyInfo, type KeyringOptions } from './keys/keyring';
export type { KeyPurpose, KeySource } from './keys/keyMaterial';
export { createAuditLog, type AuditLog } from './audit/auditLog';
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
  UnsupportedQueryError,
  type DecryptionFailure,
} from './errors';
