import { Decimal } from '@prisma/client/runtime/client';
import { DecryptionError, EncryptionError } from '../../src';
import { FieldCodec } from '../../src/codec/fieldCodec';
import { canonicalJson } from '../../src/codec/typedEncodings';
import type { ValueType } from '../../src/crypto/ciphertext';
import type { ColumnShape } from '../../src/schema';
import { testKeyring } from '../support/keys';

/** Canonical encodings of typed values: what is encrypted, what the blind index hashes, and refusals. */

const keyring = testKeyring();
const codec = (type: ValueType, column?: ColumnShape, field = 'f') =>
  new FieldCodec('M', field, { readMode: 'strict', index: 'fIndex', type, ...(type === 'String' ? {} : { storage: 'fCipher' }), ...(column ? { column } : {}) }, keyring);
const sameIndex = (c: FieldCodec, a: unknown, b: unknown) => c.indexForWrite(a) === c.indexForWrite(b);

describe('typed value encodings', () => {
  test('equal values have one canonical form', () => {
    const dec = codec('Decimal');
    expect(sameIndex(dec, new Decimal('1.5'), new Decimal('1.50'))).toBe(true);
    expect(sameIndex(dec, '1.5', 1.5)).toBe(true);
    expect(sameIndex(dec, '-0.000', 0)).toBe(true);
    expect(sameIndex(dec, '1.5', '1.51')).toBe(false);
    const json = codec('Json');
    expect(sameIndex(json, { b: 1, a: [1, { d: 2, c: 3 }] }, { a: [1, { c: 3, d: 2 }], b: 1 })).toBe(true);
    expect(sameIndex(json, [1, 2], [2, 1])).toBe(false);
    // RFC 8785 order: UTF-16 code units, so 'Z' < 'a' < 'é' < an astral character; numbers in ECMAScript form.
    expect(canonicalJson({ é: 1, e: 2, '\u{1F600}': 3, Z: 4, a: -0, s: 'a"\u2028', n: 1e21 })).toBe('{"Z":4,"a":0,"e":2,"n":1e+21,"s":"a\\"\u2028","é":1,"\u{1F600}":3}');
    const float = codec('Float');
    expect(sameIndex(float, -0, 0)).toBe(true);
    expect(sameIndex(float, Number.NaN, Number.NaN)).toBe(true);
    expect(sameIndex(float, Infinity, -Infinity)).toBe(false);
    const date = codec('DateTime');
    expect(sameIndex(date, new Date('2020-01-01T02:00:00.000+02:00'), '2020-01-01T00:00:00Z')).toBe(true);
    const day = codec('DateTime', { precision: 'date' });
    expect(sameIndex(day, new Date('2020-01-01T23:59:59.999Z'), new Date('2020-01-01T00:00:00Z'))).toBe(true);
    expect(sameIndex(day, new Date('1969-12-31T23:59:59.999Z'), new Date('1969-12-31T00:00:00Z'))).toBe(true);
    const seconds = codec('DateTime', { precision: 0 });
    expect(seconds.decrypt(seconds.encrypt(new Date('2020-01-01T00:00:00.500Z')))).toEqual(new Date('2020-01-01T00:00:01Z'));
    expect(seconds.decrypt(seconds.encrypt(new Date(-1500)))).toEqual(new Date(-2000));
    // PostgreSQL rounds ties away from 2000-01-01, its epoch: between 1970 and 2000 a tie goes to the earlier second.
    expect(seconds.decrypt(seconds.encrypt(new Date('1985-06-01T00:00:00.500Z')))).toEqual(new Date('1985-06-01T00:00:00Z'));
    expect(seconds.decrypt(seconds.encrypt(new Date('1985-06-01T00:00:00.501Z')))).toEqual(new Date('1985-06-01T00:00:01Z'));
    // MariaDB drops the digits (towards the earlier instant, before 1970 too).
    const truncated = codec('DateTime', { precision: 0, excess: 'truncate' });
    expect(truncated.decrypt(truncated.encrypt(new Date('2020-01-01T00:00:00.999Z')))).toEqual(new Date('2020-01-01T00:00:00Z'));
    expect(truncated.decrypt(truncated.encrypt(new Date('1969-12-31T23:59:59.999Z')))).toEqual(new Date('1969-12-31T23:59:59Z'));
    expect(sameIndex(codec('BigInt'), 5n, 5)).toBe(true);
    expect(sameIndex(codec('Bytes'), new Uint8Array([1, 2]), Buffer.from([1, 2]))).toBe(true);
  });

  test('round trips keep the value and its JavaScript type, -0, NaN, the infinities and empty bytes included', () => {
    const cases: Array<[ValueType, unknown]> = [
      ['Int', -(2 ** 31)],
      ['Int', 2 ** 31 - 1],
      ['BigInt', -(2n ** 63n)],
      ['BigInt', 2n ** 63n - 1n],
      ['Float', -0],
      ['Float', Number.NaN],
      ['Float', -Infinity],
      ['Float', 5e-324],
      ['Float', Number.MAX_VALUE],
      ['Boolean', false],
      ['Json', null],
      ['Json', 'text'],
      ['Json', [[], {}, [{ 'ключ': '\ud800' }]]],
      ['Bytes', new Uint8Array()],
      ['DateTime', new Date(-8.64e15)],
      ['DateTime', new Date(8.64e15)],
    ];
    for (const [type, value] of cases) {
      const c = codec(type);
      expect({ type, back: c.decrypt(c.encrypt(value)) }).toEqual({ type, back: value });
    }
    const dec = codec('Decimal');
    expect((dec.decrypt(dec.encrypt('12345678901234567890123456789012345.1234567890123456789012345678915')) as Decimal).toFixed()).toBe('12345678901234567890123456789012345.123456789012345678901234567892');
    expect(dec.decrypt(dec.encrypt(1))).toBeInstanceOf(Decimal);
    const bytes = codec('Bytes').decrypt(codec('Bytes').encrypt(Buffer.from('hi')));
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(bytes)).toBe(false);
  });

  const refusals: Array<[ValueType, unknown, RegExp, ColumnShape?]> = [
    ['Int', 2 ** 31, /outside the 32-bit range/],
    ['Int', 1.5, /an integer number, got number/],
    ['BigInt', 2n ** 63n, /outside the 64-bit range/],
    ['BigInt', 2 ** 53, /a bigint or a safe integer number/],
    ['Float', '1', /a number, got string/],
    ['Decimal', Number.NaN, /got number/],
    ['Decimal', 'abc', /not a decimal number/],
    ['Decimal', '1000', /more integer digits than the column's precision/, { digits: 5, scale: 2 }],
    ['Boolean', 'true', /a boolean, got string/],
    ['DateTime', '2020-01-01', /a Date or an ISO 8601 date-time string/],
    ['DateTime', new Date('x'), /the date is invalid/],
    ['Json', { a: undefined, b: () => 1 }, /cannot contain a function/],
    ['Json', { d: new Date() }, /plain objects/],
    ['Json', [Number.POSITIVE_INFINITY], /finite/],
    ['Bytes', [1, 2], /a Uint8Array, got array/],
  ];
  test('a value of the wrong type or out of range is an EncryptionError naming model and field, on write and on lookup', () => {
    for (const [type, value, reason, column] of refusals) {
      const c = codec(type, column);
      for (const attempt of [() => c.encrypt(value), () => c.indexesForLookup(value)]) {
        let caught: unknown;
        try {
          attempt();
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(EncryptionError);
        const { model, field, reason: why } = caught as EncryptionError;
        expect({ type, model, field, why }).toEqual({ type, model: 'M', field: 'f', why: expect.stringMatching(reason) });
      }
    }
  });

  test('a cycle in a Json value is refused', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => codec('Json').encrypt(a)).toThrow(/cycle/);
  });

  test('the type is authenticated: a value of one type never decrypts as another', () => {
    const asInt = codec('Int').encrypt(42);
    expect(asInt).toMatch(/^pce:v2:i:k:d1:/);
    for (const other of ['String', 'Json', 'Float'] as ValueType[]) {
      expect(() => codec(other).decrypt(asInt)).toThrow(DecryptionError);
    }
    // Relabelling the header's type letter breaks the tag, since the header is in the associated data.
    expect(() => codec('Float').decrypt(asInt.replace('pce:v2:i:', 'pce:v2:f:'))).toThrow(expect.objectContaining({ reason: 'authentication-failed' }));
    // A String value (v1) in a typed storage column fails too.
    expect(() => codec('Json').decrypt(codec('String').encrypt('{}'))).toThrow(expect.objectContaining({ reason: 'authentication-failed' }));
    // Text that is not ciphertext in a storage column is never passed through, even in passthrough mode.
    const passthrough = new FieldCodec('M', 'f', { readMode: 'passthrough', type: 'Int', storage: 'fCipher' }, keyring);
    expect(() => passthrough.decrypt('42')).toThrow(expect.objectContaining({ reason: 'not-ciphertext' }));
  });
});
