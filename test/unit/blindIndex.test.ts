import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { computeBlindIndex, deriveFieldIndexKey } from '../../src/crypto/blindIndex';
import { normalize } from '../../src/crypto/normalize';
import { importKeyBytes } from '../../src/keys/keyMaterial';

describe('blind index', () => {
  const rootBytes = randomBytes(32);
  const root = importKeyBytes('i1', 'index', Buffer.from(rootBytes), { kind: 'local' }).secret;

  test('is HMAC-SHA-256 under an HKDF-derived per-field key, labelled with the index key id', () => {
    const fieldKey = Buffer.from(hkdfSync('sha256', rootBytes, 'prisma-column-encryption/blind-index/v1', 'User.email', 32));
    const expected = createHmac('sha256', fieldKey).update('ada@example.org').digest('base64url');
    expect(computeBlindIndex(deriveFieldIndexKey(root, 'User.email'), 'i1', 'ada@example.org')).toBe(`i1:${expected}`);
  });

  test('differs per field for the same value', () => {
    const a = computeBlindIndex(deriveFieldIndexKey(root, 'User.email'), 'i1', 'x');
    const b = computeBlindIndex(deriveFieldIndexKey(root, 'Contact.email'), 'i1', 'x');
    expect(a).not.toBe(b);
  });
});

describe('normalisation', () => {
  test('applies steps in the order written', () => {
    expect(normalize('  ADA@Example.ORG ', ['trim', 'lowercase'])).toBe('ada@example.org');
    expect(normalize('ｆｏｏ', ['nfkc'])).toBe('foo');
    expect(normalize('ﬁ', ['nfkc'])).toBe('fi');
    expect(normalize('+44 20  7946', ['removeWhitespace'])).toBe('+44207946');
    expect(normalize('a \t b', ['collapseWhitespace'])).toBe('a b');
    expect(normalize('x', [])).toBe('x');
  });

  test('nfkc and nfc give exactly String.prototype.normalize, ASCII (skipped by a fast path) and any other text alike', () => {
    const text = fc.oneof(fc.string({ unit: 'binary-ascii' }), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme-composite' }));
    fc.assert(
      fc.property(text, (v) => {
        expect(normalize(v, ['nfkc'])).toBe(v.normalize('NFKC'));
        expect(normalize(v, ['nfc'])).toBe(v.normalize('NFC'));
      }),
      { numRuns: 2000 },
    );
    // Every ASCII character, and the first ones past it (U+0080 is where the fast path stops).
    const ascii = Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join('');
    expect(normalize(ascii, ['nfkc'])).toBe(ascii);
    for (const v of ['\u0080', 'a\u00a0b', 'e\u0301', '\u212b', '\uff21']) expect(normalize(v, ['nfkc'])).toBe(v.normalize('NFKC'));
  });
});
