import { crc32c } from '@aws-crypto/crc32c';
import type { KeyManagementServiceClient } from '@google-cloud/kms';
// google-gax comes with @google-cloud/kms; only its types are used.
import type { CallOptions } from 'google-gax';
import { KeySourceError, type KeySourceFailure } from './keySourceError';
import { wrapAad, type CallLimits, type KeyWrapper, type WrappedKey, type WrapTarget } from './keyWrapper';

/** Options accepted by `new KeyManagementServiceClient(...)`. */
export type GcpKmsClientOptions = NonNullable<ConstructorParameters<typeof KeyManagementServiceClient>[0]>;

/**
 * How {@link GcpKmsWrapper} gets its Cloud KMS client: a client you made (and close), or options
 * for one it makes and closes. With neither, options come from the environment.
 */
export interface GcpKmsOptions {
  /** A ready client. It stays yours: {@link GcpKmsWrapper.close} does not close it. */
  readonly client?: KeyManagementServiceClient;
  /** Options for a client created here; by default from the environment ({@link gcpKmsClientOptionsFromEnv}). */
  readonly clientOptions?: GcpKmsClientOptions;
}

/**
 * The KMS client library takes ~100 ms to load: only applications with KMS-wrapped keys pay for it.
 */
function kmsLibrary(): typeof import('@google-cloud/kms') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@google-cloud/kms') as typeof import('@google-cloud/kms');
}

function grpcLibrary(): typeof import('@grpc/grpc-js') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
}

const CRYPTO_KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;

/**
 * gRPC status codes (numeric, as the client reports them) and what they mean for a key. INTERNAL
 * and UNKNOWN are server-side faults that often pass, so they are retried as `internal`.
 */
const STATUS: Readonly<Record<number, { name: string; failure: KeySourceFailure }>> = {
  1: { name: 'CANCELLED', failure: 'kms-error' },
  2: { name: 'UNKNOWN', failure: 'internal' },
  3: { name: 'INVALID_ARGUMENT', failure: 'rejected' },
  4: { name: 'DEADLINE_EXCEEDED', failure: 'timeout' },
  5: { name: 'NOT_FOUND', failure: 'kms-key-not-found' },
  6: { name: 'ALREADY_EXISTS', failure: 'kms-error' },
  7: { name: 'PERMISSION_DENIED', failure: 'permission-denied' },
  8: { name: 'RESOURCE_EXHAUSTED', failure: 'overloaded' },
  9: { name: 'FAILED_PRECONDITION', failure: 'kms-key-disabled' },
  10: { name: 'ABORTED', failure: 'overloaded' },
  11: { name: 'OUT_OF_RANGE', failure: 'rejected' },
  12: { name: 'UNIMPLEMENTED', failure: 'kms-error' },
  13: { name: 'INTERNAL', failure: 'internal' },
  14: { name: 'UNAVAILABLE', failure: 'unreachable' },
  15: { name: 'DATA_LOSS', failure: 'kms-error' },
  16: { name: 'UNAUTHENTICATED', failure: 'unauthenticated' },
};

/**
 * Client options from the environment. `PCE_KMS_ENDPOINT=host:port` points the client at another
 * endpoint (a regional endpoint, or a local emulator). Plaintext gRPC without credentials is used
 * only for loopback hosts, so the variable cannot downgrade a remote connection.
 */
export function gcpKmsClientOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): GcpKmsClientOptions {
  const endpoint = env.PCE_KMS_ENDPOINT?.trim();
  if (!endpoint) return {};
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(endpoint);
  if (!m) throw new RangeError(`PCE_KMS_ENDPOINT must be host or host:port, got '${endpoint}'`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = m[2] ? Number(m[2]) : 443;
  if (host === '127.0.0.1' || host === 'localhost' || host === '::1') {
    return {
      apiEndpoint: host,
      port,
      sslCreds: grpcLibrary().credentials.createInsecure(),
      projectId: env.GOOGLE_CLOUD_PROJECT ?? 'local',
      // Keeps the auth library from probing the GCE metadata server for a universe domain.
      universeDomain: 'googleapis.com',
    };
  }
  return { apiEndpoint: host, port };
}

/**
 * Wraps keys with Google Cloud KMS symmetric encryption (`Encrypt`/`Decrypt` on a CryptoKey).
 * Binds the key id and purpose as additional authenticated data and checks the CRC32C
 * fields both ways, as Google's data-integrity guidelines describe.
 */
export class GcpKmsWrapper implements KeyWrapper {
  readonly kind = 'gcp-kms' as const;
  private readonly client: KeyManagementServiceClient;
  private readonly ownsClient: boolean;
  private ready: Promise<unknown> | undefined;
  private setupFailed = false;

  constructor(options: GcpKmsOptions = {}, env: NodeJS.ProcessEnv = process.env) {
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new (kmsLibrary().KeyManagementServiceClient)(options.clientOptions ?? gcpKmsClientOptionsFromEnv(env));
  }

  async wrap(plain: Buffer, target: WrapTarget, limits: CallLimits): Promise<WrappedKey> {
    const fail = this.failer(target, 'wrap');
    checkName(target, fail);
    await this.connected(fail, limits);
    const aad = wrapAad(target);
    let response;
    try {
      [response] = await this.client.encrypt(
        {
          name: target.kmsKeyName,
          plaintext: plain,
          additionalAuthenticatedData: aad,
          plaintextCrc32c: { value: crc32c(plain) },
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        callOptions(limits),
      );
    } catch (error) {
      throw fromGrpc(error, fail);
    }
    if (!response.verifiedPlaintextCrc32c || !response.verifiedAdditionalAuthenticatedDataCrc32c) throw fail('integrity');
    const wrapped = Buffer.from(response.ciphertext ?? new Uint8Array());
    if (wrapped.length === 0 || crcValue(response.ciphertextCrc32c) !== crc32c(wrapped)) throw fail('integrity');
    const version = response.name ?? '';
    if (!version.startsWith(`${target.kmsKeyName}/cryptoKeyVersions/`)) throw fail('integrity');
    return { wrapped, kmsKeyVersion: version };
  }

  async unwrap(wrapped: Buffer, target: WrapTarget, limits: CallLimits): Promise<Buffer> {
    const fail = this.failer(target, 'unwrap');
    checkName(target, fail);
    await this.connected(fail, limits);
    const aad = wrapAad(target);
    let response;
    try {
      [response] = await this.client.decrypt(
        {
          name: target.kmsKeyName,
          ciphertext: wrapped,
          additionalAuthenticatedData: aad,
          ciphertextCrc32c: { value: crc32c(wrapped) },
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        callOptions(limits),
      );
    } catch (error) {
      // On Decrypt, INVALID_ARGUMENT means the ciphertext or its associated data does not verify.
      throw fromGrpc(error, (failure, status, cause) => fail(failure === 'rejected' ? 'corrupted' : failure, status, cause));
    }
    const received = response.plaintext;
    const plain = Buffer.from(received ?? new Uint8Array());
    // Buffer.from copied the key: the response's own copy must not linger until garbage collection.
    if (received instanceof Uint8Array) received.fill(0);
    if (crcValue(response.plaintextCrc32c) !== crc32c(plain)) {
      plain.fill(0);
      throw fail('integrity');
    }
    return plain;
  }

  /** `GetCryptoKey` (the primary version's level) for a key name, `GetCryptoKeyVersion` for a version name. */
  async protectionLevel(name: string, target: WrapTarget, limits: CallLimits): Promise<string> {
    const fail = this.failer({ ...target, kmsKeyName: name }, 'wrap');
    await this.connected(fail, limits);
    try {
      if (/\/cryptoKeyVersions\/\d+$/.test(name)) {
        const [version] = await this.client.getCryptoKeyVersion({ name }, callOptions(limits));
        return levelName(version.protectionLevel);
      }
      checkName({ ...target, kmsKeyName: name }, fail);
      const [key] = await this.client.getCryptoKey({ name }, callOptions(limits));
      return levelName(key.primary?.protectionLevel ?? key.versionTemplate?.protectionLevel);
    } catch (error) {
      if (error instanceof KeySourceError) throw error;
      throw fromGrpc(error, fail);
    }
  }

  async close(): Promise<void> {
    // A client whose set-up failed opened nothing, and its close() would only re-raise that failure.
    if (this.ownsClient && !this.setupFailed) await this.client.close();
  }

  /**
   * Sets up the client's channel and credentials before the first call. The client library
   * starts this itself on every call but leaves a failure (no credentials found, say) as an
   * unhandled rejection that ends the process (googleapis/google-cloud-node#9085); awaited here,
   * it becomes a typed error, and no API call is made on a client that failed to set up.
   */
  private async connected(fail: Fail, limits: CallLimits): Promise<void> {
    this.ready ??= this.client.initialize().catch((error: unknown) => {
      this.setupFailed = true;
      throw error;
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(fail('timeout', 'credentials lookup')), limits.timeoutMs);
        }),
      ]);
    } catch (error) {
      if (error instanceof KeySourceError) throw error;
      throw fail('unauthenticated', 'client setup failed', error);
    } finally {
      clearTimeout(timer);
    }
  }

  private failer(target: WrapTarget, operation: 'wrap' | 'unwrap') {
    return (failure: KeySourceFailure, status?: string, cause?: unknown) =>
      new KeySourceError(
        { keyId: target.keyId, source: this.kind, kmsKeyName: target.kmsKeyName, operation, failure, status },
        cause === undefined ? undefined : { cause },
      );
  }
}

type Fail = (failure: KeySourceFailure, status?: string, cause?: unknown) => KeySourceError;

function checkName(target: WrapTarget, fail: Fail): void {
  if (!CRYPTO_KEY_NAME.test(target.kmsKeyName)) throw fail('invalid-kms-key-name');
}

/** Our retry loop owns retries and deadlines: the client's built-in retry is switched off. */
function callOptions(limits: CallLimits): CallOptions {
  // A RetryOptions with no retry codes; the class instance is not needed, only its fields.
  return { timeout: limits.timeoutMs, retry: { retryCodes: [] } as unknown as CallOptions['retry'] };
}

/** The API's enum, which the client may hand over as its name or its number. */
const PROTECTION_LEVELS = ['PROTECTION_LEVEL_UNSPECIFIED', 'SOFTWARE', 'HSM', 'EXTERNAL', 'EXTERNAL_VPC', 'HSM_SINGLE_TENANT'];
function levelName(level: unknown): string {
  if (typeof level === 'number') return PROTECTION_LEVELS[level] ?? `PROTECTION_LEVEL_${level}`;
  return typeof level === 'string' && level !== '' ? level : 'PROTECTION_LEVEL_UNSPECIFIED';
}

function crcValue(field: { value?: unknown } | null | undefined): number | undefined {
  const v = field?.value;
  if (v === null || v === undefined) return undefined;
  return Number(String(v));
}

function fromGrpc(error: unknown, fail: Fail): KeySourceError {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const known = typeof code === 'number' ? STATUS[code] : undefined;
  if (!known) return fail('kms-error', typeof code === 'number' ? `gRPC status ${code}` : undefined, error);
  return fail(known.failure, known.name, error);
}
