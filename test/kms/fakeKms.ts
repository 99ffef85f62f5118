import { crc32c } from '@aws-crypto/crc32c';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';

/**
 * A local stand-in for Google Cloud KMS: a gRPC server implementing
 * google.cloud.kms.v1.KeyManagementService Encrypt, Decrypt, GetCryptoKey and GetCryptoKeyVersion from the protos shipped with
 * @google-cloud/kms, so the real client library is what the tests exercise.
 *
 * It keeps symmetric CryptoKeys with numbered versions (AES-256-GCM, like GOOGLE_SYMMETRIC_ENCRYPTION),
 * checks CRC32C fields the way KMS documents, and can be told to fail, be slow or deny.
 */

const KMS_PROTOS = join(dirname(require.resolve('@google-cloud/kms/package.json')), 'build', 'protos');
const GAX_PROTOS = join(dirname(require.resolve('google-gax')), '..', 'protos');
const CRYPTO_KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;
const VERSION_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)\/cryptoKeyVersions\/(\d+)$/;
/** Fake ciphertext: magic, version number (uint32 BE), 12-byte nonce, ciphertext, 16-byte tag. */
const MAGIC = 0xfa;

export type Method = 'encrypt' | 'decrypt';

/** KMS protection levels as the API names them. */
export type ProtectionLevel = 'SOFTWARE' | 'HSM' | 'EXTERNAL' | 'EXTERNAL_VPC';

interface CryptoKey {
  /** New versions get this level (the key's version template). */
  protectionLevel: ProtectionLevel;
  versions: Array<{ key: Buffer; enabled: boolean; protectionLevel: ProtectionLevel }>;
  /** 1-based number of the primary version. */
  primary: number;
}

interface PendingFailure {
  code: grpc.status;
  remaining: number;
  method: Method | undefined;
}

interface Int64Value {
  value?: number | string;
}

interface EncryptRequest {
  name: string;
  plaintext: Buffer;
  additionalAuthenticatedData: Buffer;
  plaintextCrc32c?: Int64Value | null;
  additionalAuthenticatedDataCrc32c?: Int64Value | null;
}

interface DecryptRequest {
  name: string;
  ciphertext: Buffer;
  additionalAuthenticatedData: Buffer;
  ciphertextCrc32c?: Int64Value | null;
  additionalAuthenticatedDataCrc32c?: Int64Value | null;
}

class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function crcOf(data: Buffer): number {
  return crc32c(data);
}

function checkCrc(data: Buffer, given: Int64Value | null | undefined, what: string): boolean {
  if (!given || given.value === undefined) return false;
  if (Number(given.value) !== crcOf(data)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `${what} checksum mismatch`);
  return true;
}

/** The controllable local KMS. */
export class FakeKms {
  readonly calls: Record<Method, number> = { encrypt: 0, decrypt: 0 };
  private readonly keys = new Map<string, CryptoKey>();
  private failures: PendingFailure[] = [];
  private latencyMs = 0;
  /** Denied key names ('*' for all), each with the methods denied (undefined: both). */
  private readonly denied = new Map<string, Method | undefined>();
  private corruptNext = 0;

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<FakeKms> {
    const definition = protoLoader.loadSync('google/cloud/kms/v1/service.proto', {
      includeDirs: [KMS_PROTOS, GAX_PROTOS],
      longs: Number,
      defaults: true,
      oneofs: true,
    });
    const proto = grpc.loadPackageDefinition(definition) as unknown as {
      google: { cloud: { kms: { v1: { KeyManagementService: { service: grpc.ServiceDefinition } } } } };
    };
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const kms = new FakeKms(server, port);
    server.addService(proto.google.cloud.kms.v1.KeyManagementService.service, {
      encrypt: kms.handler('encrypt', (req: EncryptRequest) => kms.encrypt(req)),
      decrypt: kms.handler('decrypt', (req: DecryptRequest) => kms.decrypt(req)),
      getCryptoKey: kms.describer((req: { name: string }) => kms.getCryptoKey(req.name)),
      getCryptoKeyVersion: kms.describer((req: { name: string }) => kms.getCryptoKeyVersion(req.name)),
    });
    return kms;
  }

  /** Options for `new KeyManagementServiceClient(...)` that reach this server without network or credentials. */
  clientOptions(): { apiEndpoint: string; port: number; sslCreds: grpc.ChannelCredentials; projectId: string; universeDomain: string } {
    return {
      apiEndpoint: '127.0.0.1',
      port: this.port,
      sslCreds: grpc.credentials.createInsecure(),
      projectId: 'pce-test',
      // Without it the auth library probes the GCE metadata server (and warns) on some paths.
      universeDomain: 'googleapis.com',
    };
  }

  /** Creates a CryptoKey with one enabled version and returns its resource name. */
  createKey(keyRing = 'pce', name = `k${this.keys.size + 1}`, protectionLevel: ProtectionLevel = 'SOFTWARE'): string {
    const full = `projects/pce-test/locations/global/keyRings/${keyRing}/cryptoKeys/${name}`;
    this.keys.set(full, { protectionLevel, versions: [{ key: randomBytes(32), enabled: true, protectionLevel }], primary: 1 });
    return full;
  }

  /**
   * Adds a version and makes it primary (what `gcloud kms keys versions create --primary` does).
   * Returns the version name. `protectionLevel` overrides the key's template for this version.
   */
  rotate(keyName: string, protectionLevel?: ProtectionLevel): string {
    const key = this.mustGet(keyName);
    key.versions.push({ key: randomBytes(32), enabled: true, protectionLevel: protectionLevel ?? key.protectionLevel });
    key.primary = key.versions.length;
    return `${keyName}/cryptoKeyVersions/${key.primary}`;
  }

  /** Disables one version: decrypting what it wrapped then fails with FAILED_PRECONDITION. */
  disableVersion(versionName: string): void {
    const m = VERSION_NAME.exec(versionName);
    if (!m) throw new Error(`not a version name: ${versionName}`);
    this.mustGet(m[1]!).versions[Number(m[2]) - 1]!.enabled = false;
  }

  /** The next `count` calls (of `method`, or any) fail with `code`. */
  failNext(count: number, code: grpc.status, method?: Method): void {
    this.failures.push({ code, remaining: count, method });
  }

  /** Every call waits this long before answering. */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /**
   * Calls on this key (or every key with '*') fail with PERMISSION_DENIED; with `method`, only
   * that one (an identity allowed to encrypt but not decrypt, say).
   */
  deny(keyName = '*', method?: Method): void {
    this.denied.set(keyName, method);
  }

  /** The next `count` responses carry a wrong CRC32C, as if damaged in transit. */
  corruptResponses(count: number): void {
    this.corruptNext = count;
  }

  /** Clears failures, latency, denials and counters; keys stay. */
  reset(): void {
    this.failures = [];
    this.latencyMs = 0;
    this.denied.clear();
    this.corruptNext = 0;
    this.calls.encrypt = 0;
    this.calls.decrypt = 0;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  private mustGet(keyName: string): CryptoKey {
    const key = this.keys.get(keyName);
    if (!key) throw new Error(`fake KMS has no key ${keyName}`);
    return key;
  }

  /** GetCryptoKey / GetCryptoKeyVersion: not counted, and not subject to injected failures. */
  private describer<Req, Res>(run: (req: Req) => Res): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      try {
        callback(null, run(call.request));
      } catch (e) {
        if (e instanceof RpcError) callback({ code: e.code, details: e.message });
        else callback({ code: grpc.status.INTERNAL, details: String(e) });
      }
    };
  }

  private getCryptoKey(name: string) {
    if (!CRYPTO_KEY_NAME.test(name)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Resource name [${name}] does not represent a valid CryptoKey`);
    const key = this.keys.get(name);
    if (!key) throw new RpcError(grpc.status.NOT_FOUND, `${name} not found.`);
    return {
      name,
      purpose: 'ENCRYPT_DECRYPT',
      primary: this.versionResource(name, key, key.primary),
      versionTemplate: { protectionLevel: key.protectionLevel, algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' },
    };
  }

  private getCryptoKeyVersion(name: string) {
    const m = VERSION_NAME.exec(name);
    if (!m) throw new RpcError(grpc.status.INVALID_ARGUMENT, `Resource name [${name}] does not represent a valid CryptoKeyVersion`);
    const key = this.keys.get(m[1]!);
    if (!key || !key.versions[Number(m[2]) - 1]) throw new RpcError(grpc.status.NOT_FOUND, `${name} not found.`);
    return this.versionResource(m[1]!, key, Number(m[2]));
  }

  private versionResource(keyName: string, key: CryptoKey, n: number) {
    const v = key.versions[n - 1]!;
    return { name: `${keyName}/cryptoKeyVersions/${n}`, state: v.enabled ? 'ENABLED' : 'DISABLED', protectionLevel: v.protectionLevel, algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' };
  }

  private handler<Req, Res>(method: Method, run: (req: Req) => Res): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      this.calls[method]++;
      const answer = () => {
        try {
          const failure = this.failures.find((f) => f.remaining > 0 && (f.method === undefined || f.method === method));
          if (failure) {
            failure.remaining--;
            throw new RpcError(failure.code, `injected ${grpc.status[failure.code]}`);
          }
          callback(null, run(call.request));
        } catch (e) {
          if (e instanceof RpcError) callback({ code: e.code, details: e.message });
          else callback({ code: grpc.status.INTERNAL, details: String(e) });
        }
      };
      if (this.latencyMs > 0) setTimeout(answer, this.latencyMs);
      else answer();
    };
  }

  private lookup(name: string, method: Method): CryptoKey {
    if (!CRYPTO_KEY_NAME.test(name) && !VERSION_NAME.test(name)) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `Resource name [${name}] does not represent a valid CryptoKey`);
    }
    const keyName = VERSION_NAME.exec(name)?.[1] ?? name;
    for (const name of ['*', keyName]) {
      if (this.denied.has(name) && (this.denied.get(name) ?? method) === method) {
        const permission = method === 'encrypt' ? 'useToEncrypt' : 'useToDecrypt';
        throw new RpcError(grpc.status.PERMISSION_DENIED, `Permission 'cloudkms.cryptoKeyVersions.${permission}' denied on resource '${keyName}'`);
      }
    }
    const key = this.keys.get(keyName);
    if (!key) throw new RpcError(grpc.status.NOT_FOUND, `${keyName} not found.`);
    return key;
  }

  private crcOut(data: Buffer): { value: number } {
    if (this.corruptNext > 0) {
      this.corruptNext--;
      return { value: (crcOf(data) + 1) >>> 0 };
    }
    return { value: crcOf(data) };
  }

  private encrypt(req: EncryptRequest) {
    const key = this.lookup(req.name, 'encrypt');
    const versionMatch = VERSION_NAME.exec(req.name);
    const versionNumber = versionMatch ? Number(versionMatch[2]) : key.primary;
    const version = key.versions[versionNumber - 1];
    if (!version?.enabled) throw new RpcError(grpc.status.FAILED_PRECONDITION, `version ${versionNumber} is not enabled`);
    const verifiedPlaintext = checkCrc(req.plaintext, req.plaintextCrc32c, 'plaintext');
    const verifiedAad = checkCrc(req.additionalAuthenticatedData, req.additionalAuthenticatedDataCrc32c, 'additional authenticated data');
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', version.key, nonce);
    cipher.setAAD(req.additionalAuthenticatedData);
    const header = Buffer.alloc(5);
    header.writeUInt8(MAGIC, 0);
    header.writeUInt32BE(versionNumber, 1);
    const ciphertext = Buffer.concat([header, nonce, cipher.update(req.plaintext), cipher.final(), cipher.getAuthTag()]);
    const keyName = versionMatch?.[1] ?? req.name;
    return {
      name: `${keyName}/cryptoKeyVersions/${versionNumber}`,
      ciphertext,
      ciphertextCrc32c: this.crcOut(ciphertext),
      verifiedPlaintextCrc32c: verifiedPlaintext,
      verifiedAdditionalAuthenticatedDataCrc32c: verifiedAad,
      protectionLevel: version.protectionLevel,
    };
  }

  private decrypt(req: DecryptRequest) {
    if (VERSION_NAME.test(req.name)) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'Decrypt takes a CryptoKey name, not a version');
    const key = this.lookup(req.name, 'decrypt');
    checkCrc(req.ciphertext, req.ciphertextCrc32c, 'ciphertext');
    checkCrc(req.additionalAuthenticatedData, req.additionalAuthenticatedDataCrc32c, 'additional authenticated data');
    const invalid = () => new RpcError(grpc.status.INVALID_ARGUMENT, 'Decryption failed: the ciphertext is invalid.');
    const c = req.ciphertext;
    if (c.length < 5 + 12 + 16 || c.readUInt8(0) !== MAGIC) throw invalid();
    const versionNumber = c.readUInt32BE(1);
    const version = key.versions[versionNumber - 1];
    if (!version) throw invalid();
    if (!version.enabled) throw new RpcError(grpc.status.FAILED_PRECONDITION, `${req.name}/cryptoKeyVersions/${versionNumber} is not enabled`);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', version.key, c.subarray(5, 17));
      decipher.setAAD(req.additionalAuthenticatedData);
      decipher.setAuthTag(c.subarray(c.length - 16));
      plaintext = Buffer.concat([decipher.update(c.subarray(17, c.length - 16)), decipher.final()]);
    } catch {
      throw invalid();
    }
    return {
      plaintext,
      plaintextCrc32c: this.crcOut(plaintext),
      usedPrimary: versionNumber === key.primary,
      protectionLevel: version.protectionLevel,
    };
  }
}
