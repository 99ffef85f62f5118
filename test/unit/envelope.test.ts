import { randomBytes } from 'node:crypto';
import { nodeBackend } from '../../src/codec/backend';
import { associatedData, openValue, sealValue } from '../../src/codec/envelope';
import { headerFor, keyIdOf, parseCiphertext, TYPE_TAGS, type EnvelopeHeader, type ValueType } from '../../src/crypto/ciphertext';
import { importKeyBytes } from '../../src/keys/keyMaterial';

const dataKey = (id: string) => importKeyBytes(id, 'data', randomBytes(32), { kind: 'local' }).secret;

const key = dataKey('k1');
const v1 = headerFor('String', 'shared', 'k1');
const seal = (text: string, header: EnvelopeHeader = v1, binding = 'User.email') =>
  sealValue(nodeBackend, header, key, Buffer.from(text, 'utf8'), associatedData(header, binding));
const open = (stored: string, binding = 'User.email', k = key) => {
  const parsed = parseCiphertext(stored);
  if (parsed.kind !== 'ciphertext') throw new Error(`expected ciphertext, got ${parsed.kind}`);
  return openValue(nodeBackend, parsed.value, k, associatedData(parsed.value, binding))?.toString('utf8');
};

describe('ciphertext envelope', () => {
  test('round trips text, including empty and non-ASCII strings, in both versions', () => {
    for (const header of [v1, headerFor('Json', 'shared', 'k1'), headerFor('String', 'subject', 'k1')]) {
      for (const text of ['', 'a', 'Zoë ♒ 水瓶座', 'x'.repeat(10_000)]) expect(open(seal(text, header))).toBe(text);
    }
  });

  test('String under a shared key is written as v1, exactly as 0.1 wrote it', () => {
    const ct = seal('hello');
    const [prefix, version, keyId, nonce, body] = ct.split(':');
    expect([prefix, version, keyId]).toEqual(['pce', 'v1', 'k1']);
    expect(Buffer.from(nonce!, 'base64url')).toHaveLength(12);
    expect(Buffer.from(body!, 'base64url')).toHaveLength(5 + 16);
    expect(keyIdOf(ct)).toBe('k1');
  });

  test('every other type, and every subject-scoped value, is v2 with type and scope in the header', () => {
    for (const type of Object.keys(TYPE_TAGS) as ValueType[]) {
      for (const scope of ['shared', 'subject'] as const) {
        const header = headerFor(type, scope, 'k1');
        if (type === 'String' && scope === 'shared') continue;
        const ct = seal('1', header);
        const [prefix, version, tag, scopeTag, keyId] = ct.split(':');
        expect([prefix, version, tag, scopeTag, keyId]).toEqual(['pce', 'v2', TYPE_TAGS[type], scope === 'shared' ? 'k' : 's', 'k1']);
        const parsed = parseCiphertext(ct);
        expect(parsed.kind === 'ciphertext' && { type: parsed.value.type, scope: parsed.value.scope }).toEqual({ type, scope });
        // keyIdOf names keyring keys only: a subject key id is not one.
        expect(keyIdOf(ct)).toBe(scope === 'shared' ? 'k1' : undefined);
      }
    }
  });

  test('uses a fresh nonce per value: equal plaintexts give different ciphertexts', () => {
    const seen = new Set(Array.from({ length: 200 }, () => seal('same').split(':')[3]));
    expect(seen.size).toBe(200);
  });

  test('rejects a value bound to another field or model', () => {
    const ct = seal('secret');
    expect(open(ct, 'User.birthPlace')).toBeUndefined();
    expect(open(ct, 'Profile.email')).toBeUndefined();
  });

  test('rejects tampering with the body, the nonce, the key id, the type or the scope', () => {
    const flip = (b64: string) => {
      const buf = Buffer.from(b64, 'base64url');
      buf[0]! ^= 1;
      return buf.toString('base64url');
    };
    for (const header of [v1, headerFor('Int', 'shared', 'k1')]) {
      const ct = seal('secret', header);
      const parts = ct.split(':');
      const n = parts.length;
      for (const bad of [
        [...parts.slice(0, n - 1), flip(parts[n - 1]!)].join(':'),
        [...parts.slice(0, n - 2), flip(parts[n - 2]!), parts[n - 1]].join(':'),
      ]) {
        expect(open(bad)).toBeUndefined();
      }
      // Relabelled with another key id: the header is part of the associated data.
      expect(open(ct.replace(':k1:', ':k2:'))).toBeUndefined();
      expect(open(ct.replace(':k1:', ':k2:'), 'User.email', dataKey('k2'))).toBeUndefined();
    }
    // Relabelled type (Int -> String) or scope (shared -> subject): authentication fails.
    const int = seal('42', headerFor('Int', 'shared', 'k1'));
    expect(open(int.replace('pce:v2:i:', 'pce:v2:s:'))).toBeUndefined();
    expect(open(int.replace('pce:v2:i:k:', 'pce:v2:i:s:'))).toBeUndefined();
    // A v2 String value cannot be downgraded to v1 by rewriting its header.
    const v2String = seal('x', headerFor('String', 'subject', 'k1'));
    expect(open(v2String.replace('pce:v2:s:s:', 'pce:v1:'))).toBeUndefined();
  });

  test('classifies what is not ours, other versions and damaged values', () => {
    expect(parseCiphertext('plain text').kind).toBe('not-ciphertext');
    expect(parseCiphertext('pce:v3:k1:aaa:bbb').kind).toBe('unsupported-version');
    expect(parseCiphertext('pce:v1:k1').kind).toBe('malformed');
    expect(parseCiphertext('pce:v1:k1:short:AAAA').kind).toBe('malformed');
    expect(parseCiphertext('pce:v1:bad id!:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA').kind).toBe('malformed');
    expect(parseCiphertext('pce:v2:x:k:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA').kind).toBe('malformed');
    expect(parseCiphertext('pce:v2:s:q:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA').kind).toBe('malformed');
    expect(parseCiphertext('pce:v2:sk:k1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA').kind).toBe('malformed');
    // Characters the base64url decoder would silently skip make the value malformed.
    const ct = seal('x');
    expect(parseCiphertext(`${ct}:junk`).kind).toBe('malformed');
    expect(parseCiphertext(`${ct} `).kind).toBe('malformed');
    expect(parseCiphertext(ct.replace(/:([^:]{16}):/, ':$1=:')).kind).toBe('malformed');
  });

  test('a v1 header can only describe String under a shared key', () => {
    expect(() => associatedData({ version: 'v1', type: 'Int', scope: 'shared', keyId: 'k1' }, 'User.email')).toThrow();
  });

  test('accepts exactly one text per envelope: no extra character, no unused trailing bits', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // Bodies of every length modulo 3, so the last character carries 0, 2 or 4 unused bits, in both versions.
    for (const header of [v1, headerFor('String', 'subject', 'k1')]) {
      for (const plain of ['', 'a', 'ab', 'abc', 'abcd']) {
        const ct = seal(plain, header);
        const parsed = parseCiphertext(ct);
        if (parsed.kind !== 'ciphertext') throw new Error('expected ciphertext');
        const variants = [...alphabet].flatMap((c) => [`${ct}${c}`, `${ct.slice(0, -1)}${c}`]).filter((v) => v !== ct);
        for (const variant of variants) {
          const other = parseCiphertext(variant);
          // Another text may parse only as another envelope (which then fails authentication).
          if (other.kind === 'ciphertext') expect(other.value.sealed.equals(parsed.value.sealed)).toBe(false);
        }
      }
    }
  });
});
