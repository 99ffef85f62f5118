import fc from 'fast-check';
import { keyArray, textArrayLiteral } from '../../src/migrate/textArray';

// The pg driver's own serialisation of an array parameter: what the literal must equal exactly.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { prepareValue } = require('pg/lib/utils') as { prepareValue(value: unknown): string };

describe('textArrayLiteral', () => {
  test('equals the pg driver\'s literal for any strings and NULLs (quotes, backslashes, braces, commas, any code point)', () => {
    const element = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom('"', '\\', '{', '}', ',', ' ', 'a', 'NULL', '\u00e9') }),
      fc.constant(null),
    );
    fc.assert(
      fc.property(fc.array(element, { maxLength: 30 }), (values) => {
        expect(textArrayLiteral(values)).toBe(prepareValue(values));
      }),
      { numRuns: 2000 },
    );
    expect(textArrayLiteral([])).toBe('{}');
    expect(textArrayLiteral(['a"b\\c', null, 'NULL', ''])).toBe('{"a\\"b\\\\c",NULL,"NULL",""}');
  });

  test('the one-join path (no NULL, nothing to escape) equals the driver\'s literal too', () => {
    // Envelope-like text: what nearly every batch holds, so nearly every batch takes this path.
    const plain = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ':', '-', '_', '{', '}', ',', ' ', 'NULL', '\u00e9') });
    fc.assert(
      fc.property(fc.array(plain, { minLength: 1, maxLength: 30 }), (values) => {
        expect(textArrayLiteral(values)).toBe(prepareValue(values));
      }),
      { numRuns: 2000 },
    );
    expect(textArrayLiteral([''])).toBe('{""}');
    // One NULL or quote anywhere leaves the one-join path.
    expect(textArrayLiteral(['a', undefined])).toBe('{"a",NULL}');
    expect(textArrayLiteral(['a', 'b"'])).toBe('{"a","b\\""}');
  });
});

describe('keyArray', () => {
  test('string and number keys become the driver\'s literal; other key types stay arrays for the driver', () => {
    const key = fc.oneof(fc.string({ unit: 'binary' }), fc.integer(), fc.double({ noNaN: true }), fc.bigInt());
    fc.assert(
      fc.property(fc.array(key, { maxLength: 30 }), (values) => {
        expect(keyArray(values)).toBe(prepareValue(values));
      }),
      { numRuns: 2000 },
    );
    const dates = [new Date(0), new Date(1)];
    expect(keyArray(dates)).toBe(dates);
    const mixed = ['a', Buffer.from('b')];
    expect(keyArray(mixed)).toBe(mixed);
  });
});
