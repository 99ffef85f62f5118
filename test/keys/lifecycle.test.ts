import { KeyringError } from '../../src/errors';
import { wrapperLookup } from '../../src/keys/entryBytes';
import { emptyKeyring, parseKeyringDocument, type KeyringDocument } from '../../src/keys/keyringFile';
import { keyUsage } from '../../src/keys/keyUsage';
import type { FieldStatus } from '../../src/migrate/status';
import { generateKey, KeyInUseError, NothingScannedError, promoteKey, reactivateKey, retireKey, type LifecycleContext } from '../../src/keys/lifecycle';
import { keyringFromDocument } from '../../src/keys/loadKeyring';
import { retryPolicy } from '../../src/keys/retry';

/** Keyring documents and lifecycle steps with local keys: no KMS, no database. */
const ctx: LifecycleContext = { wrappers: wrapperLookup({}), retry: retryPolicy() };

async function ring(): Promise<KeyringDocument> {
  let doc = emptyKeyring();
  for (const [purpose, id] of [['data', 'd1'], ['index', 'i1'], ['data', 'd2']] as const) {
    doc = (await generateKey(doc, { purpose, id, source: { kind: 'local' } }, ctx)).doc;
  }
  return doc;
}

const status = (doc: KeyringDocument) => Object.fromEntries(doc.keys.map((k) => [k.id, k.status]));
/** A scan of one encrypted field with `rows` rows, none of them under any key. */
const noUse = (id: string, purpose: 'data' | 'index' = 'data', rows = 3) =>
  keyUsage([{ model: 'User', field: 'email', byKey: {}, indexByKey: {}, plaintext: 0, nulls: rows }], id, purpose);

describe('keyring lifecycle', () => {
  test('the first key of a purpose is primary; later ones are active unless --primary', async () => {
    const doc = await ring();
    expect(status(doc)).toEqual({ d1: 'primary', i1: 'primary', d2: 'active' });
    const { doc: next, primaryChange } = await generateKey(doc, { purpose: 'data', id: 'd3', primary: true, source: { kind: 'local' } }, ctx);
    expect(primaryChange).toEqual({ purpose: 'data', from: 'd1', to: 'd3' });
    expect(status(next)).toEqual({ d1: 'active', i1: 'primary', d2: 'active', d3: 'primary' });
    await expect(generateKey(next, { purpose: 'data', id: 'd3', source: { kind: 'local' } }, ctx)).rejects.toThrow("key 'd3': already exists");
    await expect(generateKey(next, { purpose: 'data', id: 'bad:id', source: { kind: 'local' } }, ctx)).rejects.toThrow(KeyringError);
  });

  test('generated ids are short and distinct; keys are 32 random bytes with matching fingerprints', async () => {
    const a = await generateKey(emptyKeyring(), { purpose: 'index', source: { kind: 'local' } }, ctx);
    const b = await generateKey(a.doc, { purpose: 'index', source: { kind: 'local' } }, ctx);
    expect(a.entry.id).toMatch(/^i-[0-9a-f]{6}$/);
    expect(b.entry.id).not.toBe(a.entry.id);
    const keyring = await keyringFromDocument((await generateKey(b.doc, { purpose: 'data', source: { kind: 'local' } }, ctx)).doc);
    expect(keyring.describe().find((k) => k.id === a.entry.id)?.fingerprint).toBe(a.entry.fingerprint);
  });

  test('promote moves primary and keeps the old primary active; retired keys cannot be promoted', async () => {
    const doc = await ring();
    const { doc: next, change } = promoteKey(doc, 'd2');
    expect(change).toEqual({ purpose: 'data', from: 'd1', to: 'd2' });
    expect(status(next)).toEqual({ d1: 'active', i1: 'primary', d2: 'primary' });
    expect(promoteKey(next, 'd2').change).toBeUndefined();
    expect(() => promoteKey(next, 'nope')).toThrow("key 'nope': is not in the keyring (known: d1, i1, d2)");
    const retired = retireKey(next, 'd1', noUse('d1')).doc;
    expect(() => promoteKey(retired, 'd1')).toThrow('is retired and cannot become primary (run `keys reactivate` first)');
  });

  test('retire is refused for the primary and while values use the key, with counts per field', async () => {
    const doc = await ring();
    expect(() => retireKey(doc, 'd1', noUse('d1'))).toThrow("key 'd1': is the primary data key: promote another key first");
    const counts: FieldStatus[] = [
      { model: 'User', field: 'email', byKey: { d1: 2, d2: 5 }, indexByKey: { i1: 7 }, plaintext: 0, nulls: 0 },
      { model: 'User', field: 'name', byKey: { d2: 1 }, indexByKey: {}, plaintext: 4, nulls: 2 },
      { model: 'Profile', field: 'birthPlace', byKey: {}, indexByKey: {}, plaintext: 0, nulls: 3 },
    ];
    const usage = keyUsage(counts, 'd2', 'data');
    expect(usage).toEqual({
      keyId: 'd2',
      purpose: 'data',
      values: 6,
      fields: [{ model: 'User', field: 'email', values: 5 }, { model: 'User', field: 'name', values: 1 }],
      scannedFields: 3,
      // User: 7 rows (every field of a model counts the same rows), Profile: 3.
      scannedRows: 10,
    });
    let error: unknown;
    try {
      retireKey(doc, 'd2', usage);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyInUseError);
    expect((error as Error).message).toBe(
      "key 'd2': is still used by 6 stored encrypted values (User.email: 5, User.name: 1); re-encrypt them under the primary key first (prisma-column-encryption rotate), then retire",
    );
    expect(keyUsage(counts, 'i1', 'index').values).toBe(7);
    // A data key's id appearing only as an index prefix does not count, and vice versa.
    expect(keyUsage(counts, 'i1', 'data').values).toBe(0);
    const { doc: next, changed } = retireKey(doc, 'd2', keyUsage(counts.map((c) => ({ ...c, byKey: {} })), 'd2', 'data'), new Date('2026-01-02T00:00:00Z'));
    expect(changed).toBe(true);
    expect(next.keys.find((k) => k.id === 'd2')).toMatchObject({ status: 'retired', retiredAt: '2026-01-02T00:00:00.000Z' });
    expect(retireKey(next, 'd2', noUse('d2')).changed).toBe(false);
  });

  test('retire is refused when the scan covered no encrypted field: zero values then proves nothing', async () => {
    const doc = await ring();
    const nothing = keyUsage([], 'd2', 'data');
    expect(nothing).toMatchObject({ values: 0, scannedFields: 0, scannedRows: 0 });
    expect(() => retireKey(doc, 'd2', nothing)).toThrow(NothingScannedError);
    expect(() => retireKey(doc, 'd2', nothing)).toThrow(
      "key 'd2': was not retired: the database scan found no encrypted field to count. Check --schema (it must be the schema with the @encrypted annotations) and the database URL",
    );
    // A scan of fields with no rows at all (a new, empty database) is still a scan.
    expect(retireKey(doc, 'd2', noUse('d2', 'data', 0)).changed).toBe(true);
  });

  test('a retired key is not loaded, but the keyring knows it is retired', async () => {
    const doc = retireKey(await ring(), 'd2', noUse('d2')).doc;
    const keyring = await keyringFromDocument(doc);
    expect(keyring.dataKey('d2')).toBeUndefined();
    expect(keyring.dataKey('d1')).toBeDefined();
    expect(keyring.isRetired('d2')).toBe(true);
    expect(keyring.isRetired('d1')).toBe(false);
    expect(keyring.isRetired('zz')).toBe(false);
  });

  test('reactivate undoes a retire: the key is active and loaded again; other statuses are left alone', async () => {
    const retired = retireKey(await ring(), 'd2', noUse('d2'), new Date('2026-01-02T00:00:00Z')).doc;
    const { doc, changed } = await reactivateKey(retired, 'd2', ctx);
    expect(changed).toBe(true);
    expect(doc.keys.find((k) => k.id === 'd2')).toEqual(expect.objectContaining({ status: 'active' }));
    expect(doc.keys.find((k) => k.id === 'd2')).not.toHaveProperty('retiredAt');
    expect((await keyringFromDocument(doc)).dataKey('d2')).toBeDefined();
    expect((await reactivateKey(doc, 'd2', ctx)).changed).toBe(false);
    expect((await reactivateKey(doc, 'd1', ctx)).doc).toBe(doc);
    await expect(reactivateKey(doc, 'nope', ctx)).rejects.toThrow("key 'nope': is not in the keyring");
  });

  test('reactivate checks the key still loads: a damaged local key stays retired', async () => {
    const retired = retireKey(await ring(), 'd2', noUse('d2')).doc;
    const damaged = { ...retired, keys: retired.keys.map((k) => (k.id === 'd2' ? { ...k, fingerprint: '0123456789abcdef' } : k)) };
    await expect(reactivateKey(damaged, 'd2', ctx)).rejects.toThrow("key 'd2': local key does not match its recorded fingerprint");
  });
});

describe('keyring file validation', () => {
  const valid = () => JSON.parse(JSON.stringify({
    format: 'prisma-column-encryption/keyring',
    version: 1,
    keys: [
      { id: 'd1', purpose: 'data', status: 'primary', source: 'local', key: 'A'.repeat(43) + '=', createdAt: '2026-01-01T00:00:00Z' },
      { id: 'k1', purpose: 'index', status: 'primary', source: 'gcp-kms', kmsKeyName: 'projects/p/locations/l/keyRings/r/cryptoKeys/k', kmsKeyVersion: 'projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1', wrappedKey: 'AAAA', fingerprint: '00112233445566ff', createdAt: '2026-01-01T00:00:00Z' },
    ],
  })) as { keys: Array<Record<string, unknown>> } & Record<string, unknown>;

  test('accepts a well-formed document; a local entry may omit its fingerprint', () => {
    expect(parseKeyringDocument(valid(), 'f.json').keys.map((k) => k.id)).toEqual(['d1', 'k1']);
    const d = valid();
    d.keys[0]!.createdAt = '2026-01-01T10:00:00.123+02:00';
    expect(parseKeyringDocument(d, 'f.json').keys[0]).not.toHaveProperty('fingerprint');
  });

  test.each([
    ['wrong format', (d: ReturnType<typeof valid>) => void (d.format = 'x'), 'f.json: "format" must be "prisma-column-encryption/keyring"'],
    ['future version', (d: ReturnType<typeof valid>) => void (d.version = 2), '"version" must be 1'],
    ['duplicate id', (d: ReturnType<typeof valid>) => void d.keys.push({ ...d.keys[0] }), "key 'd1': f.json: appears twice"],
    ['unknown source', (d: ReturnType<typeof valid>) => void (d.keys[1]!.source = 'aws-kms'), "unknown \"source\" 'aws-kms' (this release knows local, gcp-kms)"],
    ['bad purpose', (d: ReturnType<typeof valid>) => void (d.keys[0]!.purpose = 'both'), '"purpose" must be one of data, index'],
    ['bad status', (d: ReturnType<typeof valid>) => void (d.keys[0]!.status = 'old'), '"status" must be one of primary, active, retired'],
    ['no wrapped key', (d: ReturnType<typeof valid>) => void delete d.keys[1]!.wrappedKey, "key 'k1': f.json: \"wrappedKey\" must be a non-empty string"],
    ['wrapped key not base64', (d: ReturnType<typeof valid>) => void (d.keys[1]!.wrappedKey = 'not base64!'), '"wrappedKey" is not valid base64'],
    ['two primaries', (d: ReturnType<typeof valid>) => void d.keys.push({ ...d.keys[0], id: 'd2' }), 'more than one primary data key (d1, d2)'],
    ['active without primary', (d: ReturnType<typeof valid>) => void (d.keys[0]!.status = 'active'), 'no primary data key among the active ones'],
    // A wrapped key without its fingerprint could be swapped for another key the KMS will unwrap.
    ['wrapped key without fingerprint', (d: ReturnType<typeof valid>) => void delete d.keys[1]!.fingerprint, "key 'k1': f.json: \"fingerprint\" must be a non-empty string"],
    ['KMS key version of another KMS key', (d: ReturnType<typeof valid>) => void (d.keys[1]!.kmsKeyVersion = 'projects/p/locations/l/keyRings/r/cryptoKeys/other/cryptoKeyVersions/1'), '"kmsKeyVersion" must be a version of "kmsKeyName"'],
    ['KMS key version that is not a version', (d: ReturnType<typeof valid>) => void (d.keys[1]!.kmsKeyVersion = 'projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/latest'), '"kmsKeyVersion" must be a version of "kmsKeyName"'],
    ['createdAt not a date', (d: ReturnType<typeof valid>) => void (d.keys[0]!.createdAt = 'yesterday'), "key 'd1': f.json: \"createdAt\" must be an ISO 8601 time"],
    ['createdAt an impossible date', (d: ReturnType<typeof valid>) => void (d.keys[0]!.createdAt = '2026-13-45T00:00:00Z'), '"createdAt" must be an ISO 8601 time'],
    ['retiredAt not a date', (d: ReturnType<typeof valid>) => void (d.keys[0]!.retiredAt = '1.1.2026'), '"retiredAt" must be an ISO 8601 time'],
  ])('rejects %s', (_name, mutate, message) => {
    const d = valid();
    mutate(d);
    expect(() => parseKeyringDocument(d, 'f.json')).toThrow(message);
  });

  test('error messages never echo a key value', () => {
    const d = valid();
    d.keys[0]!.key = 'secret-looking-but-invalid!!';
    expect(() => parseKeyringDocument(d, 'f.json')).toThrow(/^key 'd1': f.json: "key" is not valid base64$/);
  });
});
