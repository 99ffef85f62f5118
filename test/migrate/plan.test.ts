import { localKeys } from '../../src';
import { FieldCodec } from '../../src/extension/fieldCodec';
import { decodeKey, encodeKey } from '../../src/migrate/keyCodec';
import { planRow, type PlannedField } from '../../src/migrate/plan';
import { keyringFromSnapshot, planRows, snapshotKeyring } from '../../src/migrate/planner';
import type { FieldTarget } from '../../src/migrate/scope';
import { randomKey } from '../support/keys';

const [d1, d2, i1, i2] = [randomKey(), randomKey(), randomKey(), randomKey()];
const before = localKeys({ data: [{ id: 'd1', key: d1 }], index: [{ id: 'i1', key: i1 }] });
const after = localKeys({ data: [{ id: 'd2', key: d2 }, { id: 'd1', key: d1 }], index: [{ id: 'i2', key: i2 }, { id: 'i1', key: i1 }] });
const primary = { dataKey: 'd2', indexKey: 'i2' };
const spec = { index: 'emailIndex', normalize: ['trim', 'lowercase'] as const, readMode: 'passthrough' as const };
const field = (keyring: typeof after): PlannedField => ({ codec: new FieldCodec('C', 'email', spec, keyring, () => undefined), column: 'email', indexColumn: 'email_index' });
const row = (value: string | null, index: string | null) => ({ key: [1], values: [value], indexes: [index] });

describe('planRow', () => {
  const old = field(before);
  const now = field(after);

  test('rotate re-encrypts a value under an old key and reindexes it; the result decrypts to the same text', () => {
    const stored = old.codec.encrypt('Ada@Example.org');
    const plan = planRow('rotate', [now], row(stored, old.codec.indexForWrite('Ada@Example.org')), primary);
    const [[, , value], [, , index]] = plan.write!.columns as [[string, string, string], [string, string, string]];
    expect(value).toMatch(/^pce:v1:d2:/);
    expect(now.codec.decrypt(value)).toBe('Ada@Example.org');
    expect(index).toBe(now.codec.indexForWrite('ada@example.org'));
  });

  test('rotate leaves values under the primary keys, plaintext and nulls alone', () => {
    const current = now.codec.encrypt('x');
    expect(planRow('rotate', [now], row(current, now.codec.indexForWrite('x')), primary).write).toBeUndefined();
    expect(planRow('rotate', [now], row('legacy plaintext', null), primary).write).toBeUndefined();
    expect(planRow('rotate', [now], row(null, null), primary).write).toBeUndefined();
  });

  test('encrypt-existing never treats a value with the envelope prefix as plaintext', () => {
    const ciphertext = old.codec.encrypt('secret');
    // Indexed: nothing to do, even though it is under an old key (that is rotate's job).
    expect(planRow('encrypt-existing', [now], row(ciphertext, old.codec.indexForWrite('secret')), primary).write).toBeUndefined();
    // Not indexed: only the index is filled, the value is kept byte for byte.
    const filled = planRow('encrypt-existing', [now], row(ciphertext, null), primary).write!.columns;
    expect(filled[0]).toEqual(['email', ciphertext, ciphertext]);
    expect(filled[1]![2]).toBe(now.codec.indexForWrite('secret'));
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

describe('planner worker support', () => {
  test('a keyring rebuilt from a snapshot encrypts and indexes exactly like the original', () => {
    const target: FieldTarget = { field: 'email', column: 'email', spec, indexField: 'emailIndex', indexColumn: 'email_index' };
    const setup = { mode: 'rotate' as const, model: 'C', fields: [target], primary };
    const clone = keyringFromSnapshot(structuredClone(snapshotKeyring(after, setup)));
    const viaClone = new FieldCodec('C', 'email', spec, clone, () => undefined);
    const original = new FieldCodec('C', 'email', spec, after, () => undefined);
    expect(viaClone.indexForWrite('Q@x.org')).toBe(original.indexForWrite('Q@x.org'));
    expect(original.decrypt(viaClone.encrypt('round trip'))).toBe('round trip');
    const [planned] = planRows('rotate', [{ codec: viaClone, column: 'email', indexColumn: 'email_index' }], primary, [[field(before).codec.encrypt('z')]], [[null]]);
    expect(original.decrypt(planned!.next![0]!)).toBe('z');
  });

  test('checkpoint keys keep their driver types through text', () => {
    const key = [42n, new Date('2026-01-02T03:04:05.678Z'), Buffer.from([1, 2, 3]), 'o1', 7, null];
    expect(decodeKey(encodeKey(key))).toEqual(key);
  });
});
