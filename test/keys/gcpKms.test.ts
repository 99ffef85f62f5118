import { status } from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { KeyringError } from '../../src/errors';
import { wrapperLookup } from '../../src/keys/entryBytes';
import { GcpKmsWrapper } from '../../src/keys/gcpKms';
import { emptyKeyring, type KeyringDocument, type WrappedKeyEntry } from '../../src/keys/keyringFile';
import { KeySourceError } from '../../src/keys/keySourceError';
import { generateKey, type LifecycleContext } from '../../src/keys/lifecycle';
import { keyringFromDocument, loadKeyring } from '../../src/keys/loadKeyring';
import { retryPolicy } from '../../src/keys/retry';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, FAST_RETRY, gcpWrapper, kmsClient, tempDir } from './support';

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
    ctx = { wrappers: wrapperLookup({ 'gcp-kms': wrapper }), retry: retryPolicy(FAST_RETRY) };
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
    const keyring = await loadKeyring({ file: writeDoc(doc), gcpKms: { clientOptions: kms.clientOptions() }, retry: FAST_RETRY });
    expect(keyring.dataKey('d1')).toBeDefined();
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
    expect(e.attempts).toBeGreaterThan(2);
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThan(900);
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
    expect(Date.now() - started).toBeLessThan(1000);
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

  test('an edited fingerprint is caught after unwrapping', async () => {
    const e = await failure(load(replace(doc, 'd1', { fingerprint: '0123456789abcdef' })));
    expect(e).toMatchObject({ failure: 'corrupted', keyId: 'd1' });
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
    const keyring = await loadKeyring({ file: writeDoc(doc), env: { PCE_KMS_ENDPOINT: `127.0.0.1:${kms.port}` }, retry: FAST_RETRY });
    expect(keyring.describe()).toHaveLength(2);
  });

  test('a caller-provided client is used and not closed', async () => {
    const client = kmsClient(kms);
    await loadKeyring({ file: writeDoc(doc), gcpKms: { client }, retry: FAST_RETRY });
    await expect(loadKeyring({ file: writeDoc(doc), gcpKms: { client }, retry: FAST_RETRY })).resolves.toBeDefined();
    await client.close();
  });

  let n = 0;
  function writeDoc(d: KeyringDocument): string {
    const file = dir.file(`k${++n}.json`);
    writeFileSync(file, JSON.stringify(d));
    return file;
  }
});
