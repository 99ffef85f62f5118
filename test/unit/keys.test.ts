import { randomBytes } from 'node:crypto';
import { KeyringError, loadKeyring, localKeys, localKeysFromEnv } from '../../src';

const key = () => randomBytes(32).toString('base64');

describe('local keys', () => {
  test('first key of each kind is primary unless named', () => {
    const ring = localKeys({ data: [{ id: 'a', key: key() }, { id: 'b', key: key() }], index: [{ id: 'i', key: key() }] });
    expect(ring.primaryData.id).toBe('a');
    const ring2 = localKeys({ data: [{ id: 'a', key: key() }, { id: 'b', key: key() }], index: [{ id: 'i', key: key() }], primaryDataKey: 'b' });
    expect(ring2.primaryData.id).toBe('b');
    expect(ring2.dataKey('a')).toBeDefined();
  });

  test.each([
    ['too short', Buffer.alloc(16, 7).toString('base64'), /exactly 32 bytes/],
    ['all zero', Buffer.alloc(32).toString('base64'), /too weak/],
    ['a repeated pattern', Buffer.from('abcdabcdabcdabcdabcdabcdabcdabcd').toString('base64'), /too weak/],
    ['not base64', 'not a key!', /not valid base64/],
  ])('rejects a key that is %s, naming the key and never the bytes', (_what, bad, message) => {
    let error: unknown;
    try {
      localKeys({ data: [{ id: 'weak', key: bad }], index: [{ id: 'i', key: key() }] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyringError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain("'weak'");
    expect((error as Error).message).not.toContain(bad);
  });

  test('rejects duplicate ids, a reused key, a missing index key and an unknown primary', () => {
    const k = key();
    expect(() => localKeys({ data: [{ id: 'a', key: key() }, { id: 'a', key: key() }], index: [{ id: 'i', key: key() }] })).toThrow(/twice/);
    expect(() => localKeys({ data: [{ id: 'a', key: k }], index: [{ id: 'i', key: k }] })).toThrow(/same key bytes/);
    expect(() => localKeys({ data: [{ id: 'a', key: key() }], index: [] })).toThrow(/no index key/);
    expect(() => localKeys({ data: [{ id: 'a', key: key() }], index: [{ id: 'i', key: key() }], primaryDataKey: 'zz' })).toThrow(KeyringError);
    expect(() => localKeys({ data: [{ id: 'bad:id', key: key() }], index: [{ id: 'i', key: key() }] })).toThrow(/invalid key id/);
  });

  test('reads id:base64 lists from the environment, primary first', () => {
    const ring = localKeysFromEnv({ PCE_DATA_KEYS: `new:${key()}, old:${key()}`, PCE_INDEX_KEYS: `i1:${key()}` });
    expect(ring.primaryData.id).toBe('new');
    expect(ring.dataKey('old')).toBeDefined();
    expect(() => localKeysFromEnv({})).toThrow(/PCE_DATA_KEYS is not set/);
  });

  test('loadKeyring with no key source configured: the error lists all three', async () => {
    const error = (await loadKeyring({ env: { PCE_DATA_KEYS: ' ' } }).catch((e: unknown) => e)) as KeyringError;
    expect(error).toBeInstanceOf(KeyringError);
    for (const name of ['PCE_KEYRING_FILE', 'PCE_KEYRING_JSON', 'PCE_DATA_KEYS and PCE_INDEX_KEYS']) expect(error.message).toContain(name);
    // Half of the local pair names the missing half; the pair loads local keys.
    await expect(loadKeyring({ env: { PCE_INDEX_KEYS: `i1:${key()}` } })).rejects.toThrow(/PCE_DATA_KEYS is not set/);
    expect((await loadKeyring({ env: { PCE_DATA_KEYS: `d1:${key()}`, PCE_INDEX_KEYS: `i1:${key()}` } })).primaryData.id).toBe('d1');
  });

  test('describe() lists fingerprints, never key material', () => {
    const k = key();
    const ring = localKeys({ data: [{ id: 'a', key: k }], index: [{ id: 'i', key: key() }] });
    const text = JSON.stringify(ring.describe());
    expect(text).not.toContain(k);
    expect(ring.describe()[0]).toMatchObject({ id: 'a', purpose: 'data', primary: true, source: { kind: 'local' } });
    expect(ring.describe()[0]!.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });
});
