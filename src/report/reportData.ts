import type { KeyAge, RotationPolicy } from '../keys/rotationPolicy';
import type { FieldStatus } from '../migrate/status';
import type { VerifyReport } from '../migrate/verify';
import type { EncryptionSchema } from '../schema';
import type { TlsFinding } from '../tls/tlsPolicy';

/**
 * The compliance report (`prisma-column-encryption report`): what is encrypted and how, under
 * which keys, how old they are, what the database holds, how the connection is protected, and
 * what the scheme does not hide. Every fact comes from the schema, the keyring and the database
 * at the time of the run; nothing is typed in by hand.
 */
export interface ComplianceReport {
  readonly generatedAt: string;
  readonly schema: string;
  readonly database: { readonly label: string; readonly dialect: string; readonly tls: TlsStatus | null };
  readonly fields: readonly FieldReport[];
  readonly keys: KeysReport;
  /** Stored values per key id, plaintext and nulls, per field (the `status` scan). */
  readonly storage: readonly FieldStatus[];
  /** Migrator jobs found in its checkpoint table, newest first. */
  readonly migrations: readonly MigrationRun[];
  /** The result of `--verify` (decrypting every value now); `null` when not asked for. */
  readonly verify: VerifySummary | null;
  readonly limits: readonly string[];
}

export interface TlsStatus extends TlsFinding {
  /** True when the session uses TLS 1.2 or later. */
  readonly ok: boolean;
  readonly shortfall: string | null;
}

export interface FieldReport {
  readonly model: string;
  readonly field: string;
  readonly algorithm: string;
  /** Whose key encrypts the field: the keyring's shared data key, or each person's own key (`@@encrypted(subject: ...)`). */
  readonly keyScope: string;
  /** The blind-index field, `null` when the field cannot be searched. */
  readonly index: string | null;
  readonly indexAlgorithm: string | null;
  readonly normalize: readonly string[];
  readonly readMode: string;
}

export interface KeysReport {
  /** Where the keys come from: a keyring file, PCE_KEYRING_JSON, or PCE_DATA_KEYS/PCE_INDEX_KEYS. */
  readonly origin: string;
  readonly policy: RotationPolicy | null;
  readonly entries: readonly KeyReport[];
}

export interface KeyReport {
  readonly id: string;
  readonly purpose: string;
  readonly status: string;
  readonly source: string;
  readonly protectionLevel: string | null;
  readonly kmsKeyName: string | null;
  readonly createdAt: string | null;
  readonly rotation: Omit<KeyAge, 'id' | 'purpose' | 'primary'> | null;
}

export interface MigrationRun {
  readonly description: string;
  readonly state: string;
  readonly updatedAt: string;
}

export type VerifySummary = Pick<VerifyReport, 'ok' | 'rows' | 'values' | 'failedCount' | 'complete'>;

export const ALGORITHM = 'AES-256-GCM (node:crypto or OpenSSL through the native module), random 96-bit nonce, associated data binds the envelope header (key id, type, key scope) and Model.field';
export const INDEX_ALGORITHM = 'HMAC-SHA-256, per-field key derived by HKDF-SHA-256 from the index key';

/** What the scheme does not protect against: stated in every report. */
export const LIMITS: readonly string[] = [
  'Lengths are visible: ciphertext length follows plaintext length (no padding).',
  'Equality leaks through blind indexes: rows with the same normalised value have the same index, so equal values can be grouped and counted, and guessable values (small domains) can be tested by anyone holding the index key.',
  'Raw SQL ($queryRaw, $executeRaw, other clients) bypasses the extension: it reads ciphertext and writes whatever it is given.',
  'No ordering, range, prefix or full-text queries on encrypted fields; orderBy on them is refused.',
  'Keys are in application memory while it runs: a compromised application host can read everything it can read.',
  'The data-access trail records queries made through the extension only, and its tamper evidence needs the last sequence number and its MAC kept elsewhere to detect records cut from the end (and a file cut back and written on).',
];

/** The fields part of the report, straight from the generated map. */
export function fieldReports(schema: EncryptionSchema): FieldReport[] {
  return Object.entries(schema.models).flatMap(([model, spec]) =>
    Object.entries(spec.encrypted).map(([field, f]) => ({
      model,
      field,
      algorithm: ALGORITHM,
      keyScope: spec.subject
        ? `per-person key (${spec.subject.root} ids, from ${spec.subject.field}), wrapped under the primary wrap key`
        : 'shared data key (keyring primary)',
      index: f.index ?? null,
      indexAlgorithm: f.index ? INDEX_ALGORITHM : null,
      normalize: [...(f.normalize ?? [])],
      readMode: f.readMode,
    })),
  );
}
