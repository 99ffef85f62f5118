import fc from 'fast-check';
import { textArrayLiteral } from '../../src/migrate/textArray';

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
});
