import { localKeys } from '../../src';
import { FieldCodec } from '../../src/codec/fieldCodec';
import { decodeKey, encodeKey } from '../../src/migrate/keyCodec';
import { planRow, type PlannedField } from '../../src/migrate/plan';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mysqlConnectionOptions } from '../../src/migrate/mysqlConnectionOptions';
import { keyringFromSnapshot, planRows, snapshotKeyring, threadPlanner } from '../../src/migrate/planner';
import { backendNamed } from '../../src/codec/backendChoice';
import type { CryptoBackend } from '../../src/codec/backend';
import { loadNativeCrypto } from '../../src/crypto/native';
import type { FieldTarget } from '../../src/migrate/scope';
import { randomKey } from '../support/keys';

const [d1, d2, i1, i2] = [randomKey(), randomKey(), randomKey(), randomKey()];
const before = localKeys({ data: [{ id: 'd1', key: d1 }], index: [{ id: 'i1', key: i1 }] });
const after = localKeys({ data: [{ id: 'd2', key: d2 }, { id: 'd1', key: d1 }], index: [{ id: 'i2', key: i2 }, { id: 'i1', key: i1 }] });
const primary = { dataKey: 'd2', indexKey: 'i2' };
const spec = { index: 'emailIndex', normalize: ['trim', 'lowercase'] as const, readMode: 'passthrough' as const };
const field = (keyring: typeof after): PlannedField => ({ codec: new FieldCodec('C', 'email', spec, keyring, () => undefined), column: 'email', indexColumn: 'email_index' });
const row = (value: string | null, index: string | null) => ({ values: [value], indexes: [index] });

describe('planRow', () => {
  const old = field(before);
  const now = field(after);

  test('rotate re-encrypts a value under an old key and reindexes it; the result decrypts to the same text', () => {
    const stored = old.codec.encrypt('Ada@Example.org');
    const plan = planRow('rotate', [now], row(stored, old.codec.indexForWrite('Ada@Example.org')), primary);
    const [value, index] = plan.next as [string, string];
    expect(value).toMatch(/^pce:v1:d2:/);
    expect(now.codec.decrypt(value)).toBe('Ada@Example.org');
    expect(index).toBe(now.codec.indexForWrite('ada@example.org'));
  });

  test('rotate leaves values under the primary keys, plaintext and nulls alone', () => {
    const current = now.codec.encrypt('x');
    expect(planRow('rotate', [now], row(current, now.codec.indexForWrite('x')), primary).next).toBeUndefined();
    expect(planRow('rotate', [now], row('legacy plaintext', null), primary).next).toBeUndefined();
    expect(planRow('rotate', [now], row(null, null), primary).next).toBeUndefined();
  });

  test('encrypt-existing never treats a value with the envelope prefix as plaintext', () => {
    const ciphertext = old.codec.encrypt('secret');
    // Indexed: nothing to do, even though it is under an old key (that is rotate's job).
    expect(planRow('encrypt-existing', [now], row(ciphertext, old.codec.indexForWrite('secret')), primary).next).toBeUndefined();
    // Not indexed: only the index is filled, the value is kept byte for byte.
    const filled = planRow('encrypt-existing', [now], row(ciphertext, null), primary).next;
    expect(filled).toEqual([ciphertext, now.codec.indexForWrite('secret')]);
    // Damaged envelope: reported, no write.
    expect(planRow('encrypt-existing', [now], row('pce:v1:d1:broken', null), primary)).toEqual({
      failures: [{ field: 'email', keyId: undefined, reason: 'malformed' }],
    });
  });

  test('a value under a key the keyring lacks is a failure naming the key, and the row is not written', () => {
    const stranger = field(localKeys({ data: [{ id: 'd0', key: randomKey() }], index: [{ id: 'i0', key: randomKey() }] }));
    expect(planRow('rotate', [now], row(stranger.codec.encrypt('v'), null), primary)).toEqual({
      failures: [{ field: 'email', keyId: 'd0', reason: 'unknown-key' }],
    });
  });
});

describe('planRow, more', () => {
  test('encrypt-existing reports a damaged value even when its row has nothing else to do', () => {
    const notIndexed: PlannedField = { codec: new FieldCodec('C', 'notes', { readMode: 'passthrough' }, after, () => undefined), column: 'notes' };
    expect(planRow('encrypt-existing', [notIndexed], { values: ['pce: my note'], indexes: [undefined] }, primary).failures).toHaveLength(1);
    expect(planRow('encrypt-existing', [notIndexed], { values: [notIndexed.codec.encrypt('ok')], indexes: [undefined] }, primary)).toEqual({ failures: [] });
  });

  test('reindex rewrites an index under the primary key only when it differs', () => {
    const now = field(after);
    const value = now.codec.encrypt('Ada@Example.org');
    const right = now.codec.indexForWrite('ada@example.org');
    const wrong = now.codec.indexForWrite('someone else');
    expect(planRow('rotate', [now], row(value, wrong), primary).next).toBeUndefined();
    const plan = planRow('rotate', [now], row(value, wrong), primary, { reindex: true });
    expect(plan.next).toEqual([value, right]);
    expect(planRow('rotate', [now], row(value, right), primary, { reindex: true }).next).toBeUndefined();
  });
});

describe('MySQL URL parameters', () => {
  const base = 'mysql://app:s3cret-pw@db.internal:3307/shop';
  test('maps Prisma parameters to driver options, TLS included', () => {
    expect(mysqlConnectionOptions(`${base}?sslaccept=strict`)).toMatchObject({ host: 'db.internal', port: 3307, user: 'app', database: 'shop', ssl: { rejectUnauthorized: true } });
    expect(mysqlConnectionOptions(`${base}?ssl=true&sslaccept=accept_invalid_certs`).ssl).toEqual({ rejectUnauthorized: false });
    expect(mysqlConnectionOptions(`${base}?socket=/run/mysqld.sock&connect_timeout=5&connection_limit=3`)).toMatchObject({ socketPath: '/run/mysqld.sock', connectTimeout: 5000 });
    expect(mysqlConnectionOptions(base).ssl).toBeUndefined();
  });
  test('refuses parameters it does not know, naming the parameter and never the password', () => {
    expect(() => mysqlConnectionOptions(`${base}?sslmode=required&tls_version=1.3`)).toThrow(/'tls_version' is not supported/);
    try {
      mysqlConnectionOptions(`${base}?sslcert=/nonexistent/ca.pem`);
      throw new Error('no error');
    } catch (error) {
      expect((error as Error).message).toMatch(/sslcert/);
      expect((error as Error).message).not.toContain('s3cret-pw');
    }
  });
});

/** The native backend with its calls counted: how many values went through one-value open, how many batch calls. */
function countingNative(): { backend: CryptoBackend; calls: { open: number; openTexts: number } } {
  const inner = backendNamed('native');
  const calls = { open: 0, openTexts: 0 };
  const backend: CryptoBackend = {
    name: 'counting-native',
    seal: (k, n, p, a) => inner.seal(k, n, p, a),
    hmac: (k, d) => inner.hmac(k, d),
    open: (k, n, s, a) => (calls.open++, inner.open(k, n, s, a)),
    openTexts: (...args) => (calls.openTexts++, inner.openTexts!.call(inner, ...args)),
  };
  return { backend, calls };
}

// The package ships a linux-x64 prebuild (crossBackend.test.ts holds it to loading there).
(loadNativeCrypto().loaded ? describe : describe.skip)('planRows decrypts a batch per field, not value by value', () => {
  const note = { readMode: 'strict' as const };
  const plain = Array.from({ length: 40 }, (_, i) => `person${i}@Example.org`);
  const planned = (backend: CryptoBackend): PlannedField[] => [
    { codec: new FieldCodec('C', 'email', spec, after, { backend }), column: 'email', indexColumn: 'email_index' },
    { codec: new FieldCodec('C', 'note', note, after, { backend }), column: 'note' },
  ];
  const old = [field(before).codec, new FieldCodec('C', 'note', note, before)];

  test('rotate: one batch call per field and no one-value opens; every row re-encrypted and re-indexed', () => {
    const { backend, calls } = countingNative();
    const fields = planned(backend);
    const values = plain.map((p) => [old[0]!.encrypt(p), old[1]!.encrypt(`note ${p}`)]);
    const indexes = plain.map((p) => [old[0]!.indexForWrite(p), null]);
    const rows = planRows({ mode: 'rotate', primary }, fields, values.map((v, i) => ({ values: v, indexes: indexes[i]! })));
    expect(calls).toEqual({ open: 0, openTexts: 2 });
    rows.forEach((r, i) => {
      const [email, emailIndex, noteValue] = r.next!;
      expect(r.failures).toEqual([]);
      expect(email).toMatch(/^pce:v1:d2:/);
      expect(fields[0]!.codec.decrypt(email!)).toBe(plain[i]);
      expect(emailIndex).toBe(fields[0]!.codec.indexForWrite(plain[i]));
      expect(fields[1]!.codec.decrypt(noteValue!)).toBe(`note ${plain[i]}`);
    });
    // Values already under the primary keys are not decrypted at all.
    Object.assign(calls, { open: 0, openTexts: 0 });
    const current = rows.map((r) => [r.next![0]!, r.next![2]!]);
    const again = planRows({ mode: 'rotate', primary }, fields, current.map((v, i) => ({ values: v, indexes: [rows[i]!.next![1]!, null] })));
    expect(again.every((r) => r.next === undefined && r.failures.length === 0)).toBe(true);
    expect(calls).toEqual({ open: 0, openTexts: 0 });
  });

  test('a batch with a tampered value falls back to value by value: that row fails, naming field and key, the others are planned', () => {
    const { backend } = countingNative();
    const fields = planned(backend);
    const values: string[][] = plain.map((p) => [old[0]!.encrypt(p), old[1]!.encrypt(p)]);
    const v = values[7]![1]!;
    // The second-to-last character changes (to 'B' if it is 'A', else to 'A'), so the tag never stays intact.
    values[7]![1] = `${v.slice(0, -2)}${v.at(-2) === 'A' ? 'B' : 'A'}${v.slice(-1)}`;
    const rows = planRows({ mode: 'rotate', primary }, fields, values.map((v, i) => ({ values: v, indexes: [old[0]!.indexForWrite(plain[i]!), null] })));
    expect(rows[7]).toEqual({ failures: [{ field: 'note', keyId: 'd1', reason: 'authentication-failed' }] });
    expect(rows.filter((r) => r.next !== undefined)).toHaveLength(plain.length - 1);
    expect(fields[1]!.codec.decrypt(rows[8]!.next![2]!)).toBe(plain[8]);
  });
});

describe('planner worker support', () => {
  test('a keyring rebuilt from a snapshot encrypts and indexes exactly like the original', () => {
    const target: FieldTarget = { field: 'email', column: 'email', spec, indexField: 'emailIndex', indexColumn: 'email_index' };
    const setup = { mode: 'rotate' as const, model: 'C', fields: [target], primary };
    const clone = keyringFromSnapshot(structuredClone(snapshotKeyring(after, setup)));
    const viaClone = new FieldCodec('C', 'email', spec, clone, () => undefined);
    const original = new FieldCodec('C', 'email', spec, after, () => undefined);
    expect(viaClone.indexForWrite('Q@x.org')).toBe(original.indexForWrite('Q@x.org'));
    expect(original.decrypt(viaClone.encrypt('round trip'))).toBe('round trip');
    const [planned] = planRows({ mode: 'rotate', primary }, [{ codec: viaClone, column: 'email', indexColumn: 'email_index' }], [{ values: [field(before).codec.encrypt('z')], indexes: [null] }]);
    expect(original.decrypt(planned!.next![0]!)).toBe('z');
  });

  test('a worker thread that exits without an error fails the batches waiting on it instead of hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pce-worker-'));
    const script = join(dir, 'exiting.js');
    // Takes the first batch, then ends its thread: no 'error' event, only 'exit'.
    writeFileSync(script, "require('node:worker_threads').parentPort.on('message', () => process.exit(0));\n");
    const target: FieldTarget = { field: 'email', column: 'email', spec, indexField: 'emailIndex', indexColumn: 'email_index' };
    const planner = threadPlanner({ mode: 'rotate', model: 'C', fields: [target], primary }, after, 1, script);
    try {
      const first = planner.plan([{ values: ['x'], indexes: [null] }]);
      const second = planner.plan([{ values: ['y'], indexes: [null] }]);
      await expect(first).rejects.toThrow(/exited/);
      await expect(second).rejects.toThrow(/exited/);
      await expect(planner.plan([{ values: ['z'], indexes: [null] }])).rejects.toThrow(/exited/);
    } finally {
      await planner.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('checkpoint keys keep their driver types through text', () => {
    const key = [42n, new Date('2026-01-02T03:04:05.678Z'), Buffer.from([1, 2, 3]), 'o1', 7, null];
    expect(decodeKey(encodeKey(key))).toEqual(key);
    // A floating-point key's non-finite values (JSON alone turns them into null).
    const floats = [Infinity, -Infinity, NaN, -1e300, 5e-324];
    expect(decodeKey(encodeKey(floats))).toEqual(floats);
  });
});
