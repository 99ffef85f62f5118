import { randomBytes } from 'node:crypto';
import { associatedData, open, seal } from '../../src/crypto/aead';
import { keyIdOf, parseCiphertext } from '../../src/crypto/ciphertext';
import { importKeyBytes } from '../../src/keys/keyMaterial';

const dataKey = (id: string) => {
  const k = importKeyBytes(id, 'data', randomBytes(32), { kind: 'local' });
  return { id, key: k.secret };
};

describe('ciphertext envelope', () => {
  const key = dataKey('k1');
  const aad = associatedData('k1', 'User.email');

  test('round trips text, including empty and non-ASCII strings', () => {
    for (const text of ['', 'a', 'Zoë ♒ 水瓶座', 'x'.repeat(10_000)]) {
      const ct = seal(text, key, aad);
      const parsed = parseCiphertext(ct);
      expect(parsed.kind).toBe('ciphertext');
      if (parsed.kind !== 'ciphertext') return;
      expect(open(parsed.value, key, aad)).toBe(text);
    }
  });

  test('has the documented self-describing layout', () => {
    const ct = seal('hello', key, aad);
    const [prefix, version, keyId, nonce, body] = ct.split(':');
    expect([prefix, version, keyId]).toEqual(['pce', 'v1', 'k1']);
    expect(Buffer.from(nonce!, 'base64url')).toHaveLength(12);
    expect(Buffer.from(body!, 'base64url')).toHaveLength(5 + 16);
    expect(keyIdOf(ct)).toBe('k1');
  });

  test('uses a fresh nonce per value: equal plaintexts give different ciphertexts', () => {
    const seen = new Set(Array.from({ length: 200 }, () => seal('same', key, aad).split(':')[3]));
    expect(seen.size).toBe(200);
  });

  test('rejects a value bound to another field or model', () => {
    const parsed = parseCiphertext(seal('secret', key, aad));
    if (parsed.kind !== 'ciphertext') throw new Error('expected ciphertext');
    expect(open(parsed.value, key, associatedData('k1', 'User.birthPlace'))).toBeUndefined();
    expect(open(parsed.value, key, associatedData('k1', 'Profile.email'))).toBeUndefined();
  });

  test('rejects tampering with the body, the nonce or the key id label', () => {
    const ct = seal('secret', key, aad);
    const parts = ct.split(':');
    const flip = (b64: string) => {
      const buf = Buffer.from(b64, 'base64url');
      buf[0]! ^= 1;
      return buf.toString('base64url');
    };
    for (const bad of [
      [...parts.slice(0, 4), flip(parts[4]!)].join(':'),
      [...parts.slice(0, 3), flip(parts[3]!), parts[4]].join(':'),
    ]) {
      const parsed = parseCiphertext(bad);
      if (parsed.kind !== 'ciphertext') throw new Error('expected ciphertext');
      expect(open(parsed.value, key, aad)).toBeUndefined();
    }
    // Relabelled with another key id: the header is part of the associated data.
    const other = dataKey('k2');
    const relabelled = parseCiphertext(ct.replace(':k1:', ':k2:'));
    if (relabelled.kind !== 'ciphertext') throw new Error('expected ciphertext');
    expect(open(relabelled.value, { id: 'k2', key: key.key }, associatedData('k2', 'User.email'))).toBeUndefined();
    expect(open(relabelled.value, other, associatedData('k2', 'User.email'))).toBeUndefined();
  });

  test('classifies what is not ours, other versions and damaged values', () => {
    expect(parseCiphertext('plain text').kind).toBe('not-ciphertext');
    expect(parseCiphertext('pce:v2:k1:aaa:bbb').kind).toBe('unsupported-version');
    expect(parseCiphertext('pce:v1:k1').kind).toBe('malformed');
    expect(parseCiphertext('pce:v1:k1:short:AAAA').kind).toBe('malformed');
    expect(parseCiphertext('pce:v1:bad id!:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA').kind).toBe('malformed');
    // Characters the base64url decoder would silently skip make the value malformed.
    const ct = seal('x', key, aad);
    expect(parseCiphertext(`${ct}:junk`).kind).toBe('malformed');
    expect(parseCiphertext(`${ct} `).kind).toBe('malformed');
    expect(parseCiphertext(ct.replace(/:([^:]{16}):/, ':$1=:')).kind).toBe('malformed');
  });
});
