import { KeyringError } from '../errors';

/** What went wrong talking to a key-management service. */
export type KeySourceFailure =
  | 'unreachable'
  | 'internal'
  | 'timeout'
  | 'overloaded'
  | 'integrity'
  | 'permission-denied'
  | 'unauthenticated'
  | 'kms-key-not-found'
  | 'invalid-kms-key-name'
  | 'kms-key-disabled'
  | 'corrupted'
  | 'rejected'
  | 'kms-error';

/** Failures worth another attempt: the service may answer correctly a moment later. */
const TRANSIENT: ReadonlySet<KeySourceFailure> = new Set(['unreachable', 'internal', 'timeout', 'overloaded', 'integrity']);

/** What a {@link KeySourceError} is about: the key, the KMS key and the operation. */
export interface KeySourceErrorSubject {
  readonly keyId: string;
  readonly source: string;
  readonly kmsKeyName: string;
  readonly operation: 'wrap' | 'unwrap';
}

/** Everything a {@link KeySourceError} reports. */
export interface KeySourceErrorDetails extends KeySourceErrorSubject {
  readonly failure: KeySourceFailure;
  /** The service's status name (e.g. PERMISSION_DENIED), never its payload. */
  readonly status?: string;
  /** Attempts made before giving up (set by the retry loop). */
  readonly attempts?: number;
  readonly elapsedMs?: number;
}

/**
 * A key could not be wrapped or unwrapped. Names the key id, the KMS key and what to check;
 * carries the failure kind for programs (`failure`, `transient`).
 */
export class KeySourceError extends KeyringError {
  /** Always set: a key-management failure is always about one key. */
  declare readonly keyId: string;
  readonly source: string;
  readonly kmsKeyName: string;
  readonly operation: 'wrap' | 'unwrap';
  readonly failure: KeySourceFailure;
  readonly status: string | undefined;
  readonly attempts: number;
  readonly transient: boolean;

  constructor(details: KeySourceErrorDetails, options?: { cause?: unknown }) {
    super(details.keyId, describe(details), options);
    this.source = details.source;
    this.kmsKeyName = details.kmsKeyName;
    this.operation = details.operation;
    this.failure = details.failure;
    this.status = details.status;
    this.attempts = details.attempts ?? 1;
    this.transient = TRANSIENT.has(details.failure);
  }

  /** The same failure, annotated with how long the retry loop tried. */
  withAttempts(attempts: number, elapsedMs: number): KeySourceError {
    return new KeySourceError(
      {
        keyId: this.keyId,
        source: this.source,
        kmsKeyName: this.kmsKeyName,
        operation: this.operation,
        failure: this.failure,
        status: this.status,
        attempts,
        elapsedMs,
      },
      { cause: this.cause },
    );
  }
}

export function isTransient(failure: KeySourceFailure): boolean {
  return TRANSIENT.has(failure);
}

function describe(d: KeySourceErrorDetails): string {
  const status = d.status ? ` (${d.status})` : '';
  const tries = d.attempts && d.attempts > 1 ? ` after ${d.attempts} attempts in ${d.elapsedMs ?? 0} ms` : '';
  return `cannot ${d.operation} with ${d.source} key ${d.kmsKeyName}: ${what(d.failure)}${status}${tries}. Check ${hint(d)}`;
}

function what(failure: KeySourceFailure): string {
  switch (failure) {
    case 'unreachable':
      return 'the key-management service is unreachable';
    case 'internal':
      return 'the key-management service reported an internal error';
    case 'timeout':
      return 'the key-management service did not answer in time';
    case 'overloaded':
      return 'the key-management service refused the call (quota or overload)';
    case 'integrity':
      return 'the response failed its CRC32C integrity check';
    case 'permission-denied':
      return 'permission denied';
    case 'unauthenticated':
      return 'no valid credentials';
    case 'kms-key-not-found':
      return 'the KMS key does not exist';
    case 'invalid-kms-key-name':
      return 'the KMS key name is malformed';
    case 'kms-key-disabled':
      return 'the KMS key version is disabled or destroyed';
    case 'corrupted':
      return 'the wrapped key is corrupted or does not belong to this key id';
    case 'rejected':
      return 'the request was rejected';
    case 'kms-error':
      return 'the key-management service failed';
  }
}

function hint(d: KeySourceErrorDetails): string {
  switch (d.failure) {
    case 'unreachable':
    case 'internal':
    case 'timeout':
    case 'overloaded':
    case 'integrity':
      return 'network access to the KMS endpoint (PCE_KMS_ENDPOINT if set), the service status and quotas, and the retry time limit';
    case 'permission-denied':
      return `that the identity running this process has roles/cloudkms.cryptoKeyEncrypterDecrypter (or the source's equivalent) on ${d.kmsKeyName}`;
    case 'unauthenticated':
      return 'GOOGLE_APPLICATION_CREDENTIALS or the attached service account (gcloud auth application-default login for development)';
    case 'kms-key-not-found':
      return 'the kmsKeyName in the keyring file (project, location, key ring, key) and that the key exists';
    case 'invalid-kms-key-name':
      return 'the format projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>';
    case 'kms-key-disabled':
      return 'that the KMS key version recorded for this key is enabled (re-enable or restore it, then run `keys rewrap`)';
    case 'corrupted':
      return 'that the keyring file entry (wrappedKey, id, purpose, kmsKeyName) was not edited or copied from another entry; restore it from a backup';
    case 'rejected':
      return 'that the KMS key is a symmetric ENCRYPT_DECRYPT key';
    case 'kms-error':
      return 'the service status and retry later';
  }
}
