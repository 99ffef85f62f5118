import { status } from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { KeyringError } from '../../src/errors';
import { wrapperLookup } from '../../src/keys/entryBytes';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { GcpKmsWrapper, gcpKmsClientOptionsFromEnv } from '../../src/keys/gcpKms';
import { emptyKeyring, type KeyringDocument, type WrappedKeyEntry } from '../../src/keys/keyringFile';
import { KeySourceError } from '../../src/keys/keySourceError';
import { generateKey, rewrapKeys, type LifecycleContext } from '../../src/keys/lifecycle';
import { keyringFromDocument, loadKeyring } from '../../src/keys/loadKeyring';
import { retryPolicy } from '../../src/keys/retry';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, FAST_RETRY, gcpWrapper, KMS_RETRY, kmsClient, tempDir } from './support';

/**
 * The Cloud KMS wrapper and the keyring loader against a local KMS gRPC server, through the
 * real @google-cloud/kms client: round trips, key versions, and every failure path.
 */
describe('Google Cloud KMS key wrapping', () => {
  let kms: FakeKms;
  let wrapper: GcpKmsWrapper;
  let kmsKey: string;
  let ctx: LifecycleContext;
  let doc: KeyringDocument;
  const dir = tempDir();

  beforeAll(async () => {
    kms = await FakeKms.start();
    kmsKey = kms.createKey('app', 'pce');
    wrapper = gcpWrapper(kms);
    ctx = { wrappers: wrapperLookup({ 'gcp-kms': wrapper }), retry: retryPolicy(KMS_RETRY) };
    doc = emptyKeyring();
    for (const [purpose, id] of [['data', 'd1'], ['index', 'i1']] as const) {
      doc = (await generateKey(doc, { purpose, id, source: { kind: 'gcp-kms', kmsKeyName: kmsKey } }, ctx)).doc;
    }
  });
  afterAll(async () => {
    await wrapper.close();
    await kms.close();
    dir.remove();
  });
  beforeEach(() => kms.reset());

  const load = (d: KeyringDocument, more: Parameters<typeof keyringFromDocument>[1] = {}) =>
    keyringFromDocument(d, { wrappers: { 'gcp-kms': wrapper }, retry: FAST_RETRY, ...more });
  const entry = (d: KeyringDocument, id: string) => d.keys.find((k) => k.id === id) as WrappedKeyEntry;
  const replace = (d: KeyringDocument, id: string, patch: Partial<WrappedKeyEntry>): KeyringDocument => ({
    ...d,
    keys: d.keys.map((k) => (k.id === id ? { ...k, ...patch } : k)) as KeyringDocument['keys'],
  });
  async function failure(p: Promise<unknown>): Promise<KeySourceError> {
    const error = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeySourceError);
    expect(error).toBeInstanceOf(KeyringError);
    return error as KeySourceError;
  }

  test('generate stores only wrapped bytes, with the KMS key version and a fingerprint', () => {
    const d1 = entry(doc, 'd1');
    expect(d1).toMatchObject({ source: 'gcp-kms', kmsKeyName: kmsKey, kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/1`, status: 'primary' });
    expect(d1.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    // AES-GCM output of 32 bytes plus the fake's 33-byte envelope: not the key itself.
    expect(Buffer.from(d1.wrappedKey, 'base64').length).toBe(32 + 33);
    expect(d1).not.toHaveProperty('key');
  });

  test('loading unwraps each key once, then the keyring works with no KMS call', async () => {
    const keyring = await load(doc);
    expect(kms.calls.decrypt).toBe(2);
    expect(keyring.describe().map((k) => [k.id, k.primary, k.source])).toEqual([
      ['d1', true, { kind: 'gcp-kms', kmsKeyName: kmsKey, kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/1` }],
      ['i1', true, { kind: 'gcp-kms', kmsKeyName: kmsKey, kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/1` }],
    ]);
    expect(keyring.describe()[0]!.fingerprint).toBe(entry(doc, 'd1').fingerprint);
    expect(keyring.dataKey('d1')).toBeDefined();
    keyring.indexKeysFor('User.email');
    expect(kms.calls.decrypt).toBe(2);
  });

  test('loadKeyring reads PCE_KEYRING_FILE and skips retired keys', async () => {
    const retiredDoc = (await generateKey(doc, { purpose: 'data', id: 'old', source: { kind: 'gcp-kms', kmsKeyName: kmsKey } }, ctx)).doc;
    const file = dir.file('ring.json');
    writeFileSync(file, JSON.stringify(replace(retiredDoc, 'old', { status: 'retired' })));
    kms.reset();
    const cap = captureLogger();
    const keyring = await loadKeyring({ env: { PCE_KEYRING_FILE: file }, wrappers: { 'gcp-kms': wrapper }, logger: cap.logger });
    expect(keyring.describe().map((k) => k.id)).toEqual(['d1', 'i1']);
    expect(kms.calls.decrypt).toBe(2);
    const [ev] = cap.events().filter((e) => e.event === 'pce.keys.unwrapped');
    expect(ev).toMatchObject({ retired: 1, keys: [{ id: 'd1', source: 'gcp-kms', kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/1` }, { id: 'i1' }] });
  });

  test('loadKeyring builds its own client from options and closes it', async () => {
    const close = jest.spyOn(KeyManagementServiceClient.prototype, 'close');
    try {
      const keyring = await loadKeyring({ file: writeDoc(doc), gcpKms: { clientOptions: kms.clientOptions() }, retry: KMS_RETRY });
      expect(keyring.dataKey('d1')).toBeDefined();
      expect(close).toHaveBeenCalledTimes(1);
      // Also when loading fails.
      kms.deny(kmsKey);
      await failure(loadKeyring({ file: writeDoc(doc), gcpKms: { clientOptions: kms.clientOptions() }, retry: FAST_RETRY }));
      expect(close).toHaveBeenCalledTimes(2);
    } finally {
      close.mockRestore();
    }
  });

  test('a KMS key rotation: new keys wrap under the new version, old wrapped keys still unwrap', async () => {
    const key = kms.createKey('app', 'rotating');
    let d = (await generateKey(emptyKeyring(), { purpose: 'data', id: 'a', source: { kind: 'gcp-kms', kmsKeyName: key } }, ctx)).doc;
    kms.rotate(key);
    d = (await generateKey(d, { purpose: 'data', id: 'b', source: { kind: 'gcp-kms', kmsKeyName: key } }, ctx)).doc;
    expect(entry(d, 'a').kmsKeyVersion).toBe(`${key}/cryptoKeyVersions/1`);
    expect(entry(d, 'b').kmsKeyVersion).toBe(`${key}/cryptoKeyVersions/2`);
    const idx = (await generateKey(d, { purpose: 'index', id: 'ix', source: { kind: 'local' } }, ctx)).doc;
    const ring = await load(idx);
    expect(ring.describe().map((k) => k.id)).toEqual(['a', 'b', 'ix']);
  });

  test('transient errors are retried with backoff, then loading succeeds', async () => {
    const cap = captureLogger();
    kms.failNext(2, status.UNAVAILABLE, 'decrypt');
    kms.failNext(1, status.RESOURCE_EXHAUSTED, 'decrypt');
    const keyring = await load(doc, { logger: cap.logger });
    expect(keyring.dataKey('d1')).toBeDefined();
    expect(kms.calls.decrypt).toBe(5);
    const retries = cap.events().filter((e) => e.event === 'pce.kms.retry');
    expect(retries).toHaveLength(3);
    expect(retries.map((r) => r.failure).sort()).toEqual(['overloaded', 'unreachable', 'unreachable']);
  });

  test('INTERNAL and UNKNOWN are retried as internal errors, not reported as an unreachable service', async () => {
    const cap = captureLogger();
    kms.failNext(1, status.INTERNAL, 'decrypt');
    kms.failNext(1, status.UNKNOWN, 'decrypt');
    await expect(load(doc, { logger: cap.logger })).resolves.toBeDefined();
    expect(cap.events().filter((e) => e.event === 'pce.kms.retry').map((r) => r.failure)).toEqual(['internal', 'internal']);
    kms.failNext(1000, status.INTERNAL, 'decrypt');
    const e = await failure(load(doc, { retry: { ...FAST_RETRY, totalTimeoutMs: 300 } }));
    expect(e).toMatchObject({ failure: 'internal', status: 'INTERNAL', transient: true });
    expect(e.message).toContain('the key-management service reported an internal error (INTERNAL) after');
  });

  test('the key bytes in the KMS response are zeroed once copied', async () => {
    const client = kmsClient(kms);
    const received: Uint8Array[] = [];
    const decrypt = client.decrypt.bind(client) as unknown as (...a: unknown[]) => Promise<[{ plaintext?: Uint8Array }]>;
    // Observes the client's real response; the call itself goes to the server unchanged.
    (client as unknown as { decrypt: unknown }).decrypt = async (...a: unknown[]) => {
      const response = await decrypt(...a);
      received.push(response[0].plaintext!);
      return response;
    };
    const own = new GcpKmsWrapper({ client });
    const key = await own.unwrap(Buffer.from(entry(doc, 'd1').wrappedKey, 'base64'), { kmsKeyName: kmsKey, keyId: 'd1', purpose: 'data' }, { timeoutMs: 2000 });
    await client.close();
    expect(key.length).toBe(32);
    expect(key.some((b) => b !== 0)).toBe(true);
    expect(received).toHaveLength(1);
    expect(received[0]!.length).toBe(32);
    expect(received[0]!.every((b) => b === 0)).toBe(true);
  });

  test('a response damaged in transit (CRC32C mismatch) is retried', async () => {
    kms.corruptResponses(1);
    await expect(load(doc)).resolves.toBeDefined();
    expect(kms.calls.decrypt).toBe(3);
  });

  test('KMS unreachable: fails after retries within the time limit, naming the key and what to check', async () => {
    const dead = new GcpKmsWrapper({ clientOptions: { ...kms.clientOptions(), port: 1 } });
    const started = Date.now();
    const e = await failure(keyringFromDocument(doc, { wrappers: { 'gcp-kms': dead }, retry: { ...FAST_RETRY, totalTimeoutMs: 400 } }));
    const elapsed = Date.now() - started;
    await dead.close();
    expect(e.failure).toBe('unreachable');
    expect(e.keyId).toBe('d1');
    expect(e.attempts).toBeGreaterThanOrEqual(2);
    // It kept trying for most of the limit, and stopped near it (generous bounds: a loaded CI machine).
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(elapsed).toBeLessThan(3000);
    expect(e.message).toMatch(/^key 'd1': cannot unwrap with gcp-kms key projects\/.*\/cryptoKeys\/pce: the key-management service is unreachable \(UNAVAILABLE\) after \d+ attempts/);
    expect(e.message).toContain('Check network access to the KMS endpoint');
  });

  test('KMS too slow: each attempt hits its deadline, the overall limit ends it', async () => {
    kms.setLatency(500);
    const started = Date.now();
    const e = await failure(load(doc, { retry: { ...FAST_RETRY, attemptTimeoutMs: 100, totalTimeoutMs: 450 } }));
    expect(e.failure).toBe('timeout');
    expect(e.status).toBe('DEADLINE_EXCEEDED');
    expect(e.attempts).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('permission denied: no retry, the message names the IAM role', async () => {
    kms.deny(kmsKey);
    const e = await failure(load(doc));
    expect(e).toMatchObject({ failure: 'permission-denied', status: 'PERMISSION_DENIED', keyId: 'd1', transient: false, attempts: 1 });
    expect(kms.calls.decrypt).toBe(2);
    expect(e.message).toContain(`roles/cloudkms.cryptoKeyEncrypterDecrypter (or the source's equivalent) on ${kmsKey}`);
  });

  test('wrong KMS key name: NOT_FOUND from KMS, or refused locally when malformed', async () => {
    const missing = kmsKey.replace(/pce$/, 'nope');
    const e = await failure(load(replace(doc, 'i1', { kmsKeyName: missing })));
    expect(e).toMatchObject({ failure: 'kms-key-not-found', keyId: 'i1', kmsKeyName: missing });
    expect(e.message).toContain('Check the kmsKeyName in the keyring file');
    kms.reset();
    const bad = await failure(load(replace(doc, 'd1', { kmsKeyName: 'pce' })));
    expect(bad).toMatchObject({ failure: 'invalid-kms-key-name', keyId: 'd1' });
    expect(bad.message).toContain('projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>');
  });

  test('corrupted wrapped key, or one copied from another entry, fails as corrupted', async () => {
    const bytes = Buffer.from(entry(doc, 'd1').wrappedKey, 'base64');
    bytes[bytes.length - 3]! ^= 0x01;
    const e = await failure(load(replace(doc, 'd1', { wrappedKey: bytes.toString('base64') })));
    expect(e).toMatchObject({ failure: 'corrupted', status: 'INVALID_ARGUMENT', keyId: 'd1' });
    expect(e.message).toContain('was not edited or copied from another entry');
    // The wrapped bytes are bound to key id and purpose: i1's blob under d1's entry does not unwrap.
    const swapped = await failure(load(replace(doc, 'd1', { wrappedKey: entry(doc, 'i1').wrappedKey })));
    expect(swapped.failure).toBe('corrupted');
  });

  test('an edited fingerprint is caught after unwrapping; a wrapped key without one is refused', async () => {
    const e = await failure(load(replace(doc, 'd1', { fingerprint: '0123456789abcdef' })));
    expect(e).toMatchObject({ failure: 'corrupted', keyId: 'd1' });
    // Built in code rather than parsed (the parser already requires it): still refused.
    const missing = await failure(load(replace(doc, 'd1', { fingerprint: undefined as unknown as string })));
    expect(missing).toMatchObject({ failure: 'corrupted', keyId: 'd1' });
  });

  test('a disabled KMS key version fails with what to check', async () => {
    const key = kms.createKey('app', 'disabled');
    const d = (await generateKey(doc, { purpose: 'data', id: 'dx', source: { kind: 'gcp-kms', kmsKeyName: key } }, ctx)).doc;
    kms.disableVersion(`${key}/cryptoKeyVersions/1`);
    const e = await failure(load(d));
    expect(e).toMatchObject({ failure: 'kms-key-disabled', status: 'FAILED_PRECONDITION', keyId: 'dx' });
    expect(e.message).toContain('is enabled');
  });

  test('generate fails cleanly when KMS denies encryption', async () => {
    kms.deny(kmsKey);
    const e = await failure(generateKey(doc, { purpose: 'data', id: 'd9', source: { kind: 'gcp-kms', kmsKeyName: kmsKey } }, ctx));
    expect(e).toMatchObject({ failure: 'permission-denied', operation: 'wrap', keyId: 'd9' });
  });

  test('a wrap response with a wrong CRC32C is a transient integrity failure', async () => {
    const plain = Buffer.alloc(32, 7);
    await expect(wrapper.wrap(plain, { kmsKeyName: kmsKey, keyId: 'x', purpose: 'data' }, { timeoutMs: 500 })).resolves.toMatchObject({
      kmsKeyVersion: `${kmsKey}/cryptoKeyVersions/1`,
    });
    kms.corruptResponses(1);
    const e = await failure(wrapper.wrap(plain, { kmsKeyName: kmsKey, keyId: 'x', purpose: 'data' }, { timeoutMs: 500 }));
    expect(e).toMatchObject({ failure: 'integrity', transient: true });
  });

  test('the client built from PCE_KMS_ENDPOINT (loopback: plaintext, no credentials) reaches the server', async () => {
    const keyring = await loadKeyring({ file: writeDoc(doc), env: { PCE_KMS_ENDPOINT: `127.0.0.1:${kms.port}` }, retry: KMS_RETRY });
    expect(keyring.describe()).toHaveLength(2);
  });

  test('a caller-provided client is used and not closed', async () => {
    const client = kmsClient(kms);
    await loadKeyring({ file: writeDoc(doc), gcpKms: { client }, retry: KMS_RETRY });
    await expect(loadKeyring({ file: writeDoc(doc), gcpKms: { client }, retry: KMS_RETRY })).resolves.toBeDefined();
    await client.close();
  });

  test('no Google credentials (remote TLS endpoint): a typed unauthenticated error, not a crash, and no retry', async () => {
    const noCreds = new GcpKmsWrapper({ clientOptions: { apiEndpoint: 'kms.example.invalid', port: 443, keyFilename: dir.file('no-such-key.json'), projectId: 'p' } });
    try {
      const target = { kmsKeyName: kmsKey, keyId: 'd1', purpose: 'data' as const };
      const e = await failure(noCreds.unwrap(Buffer.from(entry(doc, 'd1').wrappedKey, 'base64'), target, { timeoutMs: 2000 }));
      expect(e).toMatchObject({ failure: 'unauthenticated', operation: 'unwrap', keyId: 'd1', transient: false });
      expect(e.message).toContain('no valid credentials');
      expect(e.message).toContain('Check GOOGLE_APPLICATION_CREDENTIALS');
      // Later calls fail the same way, without touching the half-set-up client again.
      await expect(noCreds.wrap(Buffer.alloc(32, 1), target, { timeoutMs: 2000 })).rejects.toMatchObject({ failure: 'unauthenticated', operation: 'wrap' });
    } finally {
      await noCreds.close();
    }
  });

  test('PCE_KMS_ENDPOINT: only loopback hosts get plaintext gRPC; look-alike and remote hosts keep TLS and credentials', () => {
    for (const endpoint of ['127.0.0.1:9000', 'localhost:9000', '[::1]:9000']) {
      const o = gcpKmsClientOptionsFromEnv({ PCE_KMS_ENDPOINT: endpoint });
      expect(o.sslCreds).toBeDefined();
      expect(o.port).toBe(9000);
    }
    for (const [endpoint, host, port] of [
      ['europe-west1-kms.googleapis.com', 'europe-west1-kms.googleapis.com', 443],
      ['127.0.0.1.evil.example:443', '127.0.0.1.evil.example', 443],
      ['localhost.evil.example:8443', 'localhost.evil.example', 8443],
      ['10.0.0.5:9000', '10.0.0.5', 9000],
    ] as const) {
      expect(gcpKmsClientOptionsFromEnv({ PCE_KMS_ENDPOINT: endpoint })).toEqual({ apiEndpoint: host, port });
    }
    expect(gcpKmsClientOptionsFromEnv({})).toEqual({});
    expect(() => gcpKmsClientOptionsFromEnv({ PCE_KMS_ENDPOINT: 'http://x:1/' })).toThrow('PCE_KMS_ENDPOINT must be host or host:port');
  });

  test('rewrap unwraps each newly wrapped key before accepting it: encrypt-only permission on the new KMS key fails', async () => {
    const target = kms.createKey('app', 'encrypt-only');
    kms.deny(target, 'decrypt');
    const e = await failure(rewrapKeys(doc, ctx, { kmsKeyName: target }));
    expect(e).toMatchObject({ failure: 'permission-denied', operation: 'unwrap', keyId: 'd1', kmsKeyName: target });
    expect(kms.calls.encrypt).toBe(1);
  });

  test('rewrap --skip-retired leaves retired keys alone (their KMS key version may be gone)', async () => {
    const key = kms.createKey('app', 'skip');
    let d = (await generateKey(doc, { purpose: 'data', id: 'old', source: { kind: 'gcp-kms', kmsKeyName: key } }, ctx)).doc;
    d = replace(d, 'old', { status: 'retired', retiredAt: '2026-01-01T00:00:00.000Z' });
    kms.disableVersion(`${key}/cryptoKeyVersions/1`);
    kms.rotate(kmsKey);
    expect((await failure(rewrapKeys(d, ctx))).keyId).toBe('old');
    const { doc: next, results, skipped } = await rewrapKeys(d, ctx, { skipRetired: true });
    expect(results.map((r) => [r.id, r.toVersion])).toEqual([
      ['d1', `${kmsKey}/cryptoKeyVersions/2`],
      ['i1', `${kmsKey}/cryptoKeyVersions/2`],
    ]);
    expect(skipped).toEqual(['old']);
    expect(entry(next, 'old')).toBe(entry(d, 'old'));
    await expect(load(next)).resolves.toBeDefined();
  });

  test('a local entry in a keyring file loads with a warning event', async () => {
    const cap = captureLogger();
    const withLocal = (await generateKey(doc, { purpose: 'data', id: 'dev', source: { kind: 'local' } }, ctx)).doc;
    const file = writeDoc(withLocal);
    await loadKeyring({ file, wrappers: { 'gcp-kms': wrapper }, logger: cap.logger });
    expect(cap.events().filter((e) => e.event === 'pce.keys.local_in_keyring')).toEqual([expect.objectContaining({ level: 40, origin: file, keyIds: ['dev'] })]);
    const inline = captureLogger();
    await loadKeyring({ env: { PCE_KEYRING_JSON: JSON.stringify(withLocal) }, wrappers: { 'gcp-kms': wrapper }, logger: inline.logger });
    expect(inline.events().find((e) => e.event === 'pce.keys.local_in_keyring')).toMatchObject({ origin: 'PCE_KEYRING_JSON', keyIds: ['dev'] });
    const none = captureLogger();
    await load(doc, { logger: none.logger });
    expect(none.events().filter((e) => e.event === 'pce.keys.local_in_keyring')).toEqual([]);
  });

  let n = 0;
  function writeDoc(d: KeyringDocument): string {
    const file = dir.file(`k${++n}.json`);
    writeFileSync(file, JSON.stringify(d));
    return file;
  }
});
