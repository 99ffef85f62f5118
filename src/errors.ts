/**
 * Typed errors. Every message names the model, field, key id or operator involved
 * and never the value, plaintext or key material.
 */

/** Base class: `code` is stable and machine-readable, `message` is for humans. */
export abstract class ColumnEncryptionError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An annotation or extension option is invalid (generator time or start-up). */
export class ConfigurationError extends ColumnEncryptionError {
  readonly code = 'PCE_CONFIG';
  constructor(
    readonly model: string | undefined,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`${model ? `${model}${field ? `.${field}` : ''}: ` : ''}${reason}`);
  }
}

/**
 * Several problems found in one pass over a schema (the generator and the CLI report them all at
 * once). `problems` holds each one; the message lists them one per line.
 */
export class SchemaProblems extends ConfigurationError {
  constructor(readonly problems: readonly ConfigurationError[]) {
    super(undefined, undefined, `${problems.length} problems in the schema:\n${problems.map((p) => p.message).join('\n')}`);
  }
}

/** A query asks for something the extension cannot do on ciphertext. */
export class UnsupportedQueryError extends ColumnEncryptionError {
  readonly code = 'PCE_UNSUPPORTED_QUERY';
  constructor(
    readonly model: string,
    readonly field: string,
    readonly operator: string,
    readonly reason: string,
    /** `index`: the field is the blind index of an encrypted field, not encrypted itself; `subject`: the model's subject field. */
    readonly fieldKind: 'encrypted' | 'index' | 'subject' = 'encrypted',
  ) {
    super(`${model}.${field}: '${operator}' is not supported on ${FIELD_KINDS[fieldKind]}: ${reason}`);
  }
}

const FIELD_KINDS = { encrypted: 'an encrypted field', index: 'an index field', subject: 'the subject field' } as const;

/** A value could not be encrypted; nothing was written. */
export class EncryptionError extends ColumnEncryptionError {
  readonly code = 'PCE_ENCRYPT';
  constructor(
    readonly model: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${model}.${field}: cannot encrypt: ${reason}`);
  }
}

/** Why a stored value could not be decrypted. */
export type DecryptionFailure =
  | 'not-ciphertext'
  | 'malformed'
  | 'unknown-key'
  | 'retired-key'
  | 'authentication-failed'
  | 'unsupported-version'
  /** The value is in prisma-field-encryption's format and no legacy key source was given. */
  | 'legacy-format'
  /** The value is under the key of a subject that was erased (forgotten): it is unreadable for good. */
  | 'subject-erased';

/** A stored value could not be decrypted (tampered, swapped, unknown key, plaintext in strict mode). */
export class DecryptionError extends ColumnEncryptionError {
  readonly code = 'PCE_DECRYPT';
  constructor(
    readonly model: string,
    readonly field: string,
    readonly keyId: string | undefined,
    readonly reason: DecryptionFailure,
  ) {
    super(`${model}.${field}: cannot decrypt${keyId ? ` (key id '${keyId}')` : ''}: ${describeFailure(reason)}`);
  }
}

function describeFailure(reason: DecryptionFailure): string {
  switch (reason) {
    case 'not-ciphertext':
      return 'the stored value is not ciphertext (use readMode: passthrough while legacy plaintext remains)';
    case 'malformed':
      return 'the stored value looks like ciphertext but is malformed';
    case 'unknown-key':
      return 'no key with this id is in the keyring';
    case 'retired-key':
      return 'this key is retired, so it is not loaded; reactivate it (prisma-column-encryption keys reactivate <id>), then re-encrypt (rotate)';
    case 'authentication-failed':
      return 'authentication failed: the value was tampered with, copied from another field, or the key is wrong';
    case 'legacy-format':
      return "the stored value is in prisma-field-encryption's format: load its keys (legacyKeys: pfeLegacyKeys()) until convert-pfe has run";
    case 'unsupported-version':
      return 'the ciphertext format version is not supported by this release';
    case 'subject-erased':
      return "the value's subject was erased (forgotten) and its key destroyed: the value is unreadable for good";
  }
}

/** Keys are missing, malformed, weak, or a key source failed. */
export class KeyringError extends ColumnEncryptionError {
  readonly code = 'PCE_KEYRING';
  constructor(
    readonly keyId: string | undefined,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${keyId ? `key '${keyId}': ` : ''}${reason}`, options);
  }
}

/**
 * The database connection is not protected well enough: no TLS, or a version below TLS 1.2.
 * `found` says what the server reported; `host` is the host connected to (never user or password).
 */
export class InsecureConnectionError extends ColumnEncryptionError {
  readonly code = 'PCE_INSECURE_CONNECTION';
  constructor(
    readonly host: string | undefined,
    readonly found: string,
    readonly advice: string,
  ) {
    super(`the database connection${host ? ` to ${host}` : ''} is not encrypted with TLS 1.2 or later (found ${found}): ${advice}`);
  }
}

/**
 * A write for a subject (a person) whose data was erased with `forgetSubject`: refused, because
 * new values under a new key would bring the person back. Reuse of the id must be explicit
 * (`reinstateSubject`, or the extension's allow-reuse option). The message never holds the subject id.
 */
export class SubjectErasedError extends ColumnEncryptionError {
  readonly code = 'PCE_SUBJECT_ERASED';
  constructor(readonly model?: string) {
    super(`${model ? `${model}: ` : ''}the subject of this write was erased (forgotten); writing for it again needs an explicit reinstateSubject or allowReuse`);
  }
}

/**
 * A subject write lost a deadlock: the database chose its transaction as the victim and rolled it
 * back, so nothing of it was written. In a transaction of the extension's own the write is retried
 * first (`attempts` says how often it ran); inside the caller's interactive `$transaction` the
 * whole transaction is gone and must be run again (`inCallersTransaction`). A first write for a
 * subject racing `forgetSubject` for the same subject can meet this on MySQL/MariaDB. The message
 * holds no SQL, ids or values.
 */
export class WriteDeadlockError extends ColumnEncryptionError {
  readonly code = 'PCE_WRITE_DEADLOCK';
  constructor(
    readonly model: string,
    readonly inCallersTransaction: boolean,
    readonly attempts: number,
  ) {
    super(
      inCallersTransaction
        ? `${model}: the interactive transaction lost a deadlock against a concurrent transaction (such as an erasure of the same subject) and the database rolled it back: nothing of it was written; run the whole $transaction again`
        : `${model}: the write lost a deadlock against a concurrent transaction ${attempts} times and was rolled back each time: nothing was written; retry it`,
    );
  }
}
