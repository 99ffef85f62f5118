import { encryptStringSync, generateKey, parseKeySync } from '@47ng/cloak';
import type { DMMF } from '@prisma/generator-helper';
import { getDMMF } from '@prisma/internals';
import fc from 'fast-check';
import { hashString } from 'prisma-field-encryption/dist/hash';
import { nodeBackend } from '../../src/codec/backend';
import { openPfeValue, parsePfeCiphertext, pfeHash, PFE_NORMALIZE, type PfeHashSpec } from '../../src/codec/pfe';
import { NORMALIZERS } from '../../src/crypto/normalize';
import { FieldCodec } from '../../src/codec/fieldCodec';
import { buildEncryptionSchema } from '../../src/generator/buildSchema';
import { NORMALIZE_EQUIVALENTS } from '../../src/generator/convertPfeSchema';
import { parseAnnotation } from '../../src/generator/annotation';
import { ConfigurationError, DecryptionError, KeyringError, pfeLegacyKeys, type EncryptedFieldSpec } from '../../src';
import { testKeyring } from '../support/keys';

/**
 * The legacy codec against the real prisma-field-encryption 1.6 and its @47ng/cloak: values it
 * encrypts decrypt here, hashes it computes are computed here byte for byte.
 */

const k1 = generateKey();
const k2 = generateKey();
const legacy = pfeLegacyKeys({ env: { PRISMA_FIELD_ENCRYPTION_KEY: k2, PRISMA_FIELD_DECRYPTION_KEYS: ` ${k1} ,` } });

describe('prisma-field-encryption ciphertext', () => {
  test('values under the encryption key and an older decryption key both decrypt', () => {
    for (const [key, text] of [[k1, 'alice@example.org'], [k2, 'Zoë 🌙 '], [k1, '']] as const) {
      const stored = encryptStringSync(text, parseKeySync(key));
      expect(openPfeValue(nodeBackend, stored, legacy)).toEqual({ plaintext: text });
    }
  });

  test('the fingerprint names the key, a padded or unpadded key text alike', () => {
    const unpadded = k1.replace(/=$/, '');
    const stored = encryptStringSync('x', parseKeySync(unpadded));
    expect(parsePfeCiphertext(stored)!.fingerprint).toBe(parseKeySync(unpadded).fingerprint);
    expect(openPfeValue(nodeBackend, stored, legacy)).toEqual({ plaintext: 'x' });
  });

  test('unknown key, tampering, damage and a missing key source are told apart', () => {
    const other = generateKey();
    const foreign = encryptStringSync('x', parseKeySync(other));
    expect(openPfeValue(nodeBackend, foreign, legacy)).toEqual({ reason: 'unknown-key', keyId: `pfe:${parseKeySync(other).fingerprint}` });
    const stored = encryptStringSync('secret value', parseKeySync(k1));
    const parts = stored.split('.');
    const body = Buffer.from(parts[4]!, 'base64url');
    body[0]! ^= 1;
    const tampered = [...parts.slice(0, 4), body.toString('base64url')].join('.');
    expect(openPfeValue(nodeBackend, tampered, legacy)).toMatchObject({ reason: 'authentication-failed' });
    for (const bad of [stored.slice(0, 30), `${stored}.x`, stored.replace('.', '!'), `${stored.slice(0, -2)}*`, 'v1.aesgcm256.zzzzzzzz.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAA']) {
      expect(openPfeValue(nodeBackend, bad, legacy)).toMatchObject({ reason: 'malformed' });
    }
    expect(openPfeValue(nodeBackend, stored, undefined)).toEqual({ reason: 'legacy-format' });
  });

  test('bad key text is refused by position, never echoed', () => {
    const secretish = 'k1.aesgcm256.not-a-real-key-but-do-not-print-it';
    expect(() => pfeLegacyKeys({ env: { PRISMA_FIELD_ENCRYPTION_KEY: k1, PRISMA_FIELD_DECRYPTION_KEYS: `${k2},${secretish}` } })).toThrow(
      new KeyringError(undefined, 'PRISMA_FIELD_DECRYPTION_KEYS entry 2 is not a prisma-field-encryption key (expected k1.aesgcm256.<base64url of 32 bytes>)'),
    );
    expect(() => pfeLegacyKeys({ env: {} })).toThrow(/no prisma-field-encryption key: set PRISMA_FIELD_ENCRYPTION_KEY/);
  });
});

describe('prisma-field-encryption hashes', () => {
  const specArb = fc.record({
    algorithm: fc.constantFrom('sha256', 'sha512'),
    normalize: fc.subarray([...PFE_NORMALIZE]),
    outputEncoding: fc.constantFrom('hex' as const, 'base64' as const),
    salt: fc.option(fc.stringMatching(/^\w{0,12}$/), { nil: undefined }),
  });

  test('equal to its hashString for any value, normalisation, salt and output encoding', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), specArb, (value, s) => {
        const spec: PfeHashSpec = { algorithm: s.algorithm, normalize: s.normalize, inputEncoding: 'utf8', outputEncoding: s.outputEncoding, ...(s.salt !== undefined ? { salt: s.salt } : {}) };
        const theirs = hashString(value, { ...spec, normalize: [...s.normalize], targetField: 'x', salt: s.salt } as never);
        expect(pfeHash(value, spec, s.salt)).toBe(theirs);
      }),
      { numRuns: 300 },
    );
  });

  test('this library has an equivalent for every normalisation, applied alike', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.subarray([...PFE_NORMALIZE]), (value, steps) => {
        const ours = steps.reduce((v, step) => NORMALIZERS[NORMALIZE_EQUIVALENTS[step]](v), value);
        const theirs = pfeHash(value, { algorithm: 'sha256', normalize: steps, inputEncoding: 'utf8', outputEncoding: 'hex' }, undefined);
        expect(pfeHash(ours, { algorithm: 'sha256', normalize: [], inputEncoding: 'utf8', outputEncoding: 'hex' }, undefined)).toBe(theirs);
      }),
      { numRuns: 300 },
    );
  });
});

describe('legacy: pfe fields', () => {
  const keyring = testKeyring();
  const hash: PfeHashSpec = { algorithm: 'sha256', normalize: ['lowercase', 'trim'], inputEncoding: 'utf8', outputEncoding: 'hex', saltEnv: 'SALT' };
  const spec = (legacyField: boolean, readMode: 'strict' | 'passthrough' = 'strict'): EncryptedFieldSpec => ({
    index: 'emailHash',
    normalize: ['lowercase', 'trim'],
    readMode,
    ...(legacyField ? { legacy: { format: 'pfe' as const, hash } } : {}),
  });
  const salted = pfeLegacyKeys({ env: { PRISMA_FIELD_ENCRYPTION_KEY: k1, SALT: 'pepper' } });
  const codec = (s: EncryptedFieldSpec, keys = salted) => new FieldCodec('PfeAccount', 'email', s, keyring, { legacyKeys: keys });
  const old = encryptStringSync('A@x.org', parseKeySync(k1));

  test('read the old format, write only the new one', () => {
    const c = codec(spec(true));
    expect(c.decrypt(old)).toBe('A@x.org');
    expect(c.encrypt('A@x.org').startsWith('pce:v1:d1:')).toBe(true);
    expect(c.decrypt(c.encrypt('A@x.org'))).toBe('A@x.org');
  });

  test('other fields never read it, whatever their read mode', () => {
    expect(() => codec(spec(false)).decrypt(old)).toThrow(new DecryptionError('PfeAccount', 'email', undefined, 'not-ciphertext'));
    expect(codec(spec(false, 'passthrough')).decrypt(old)).toBe(old);
  });

  test('without the legacy source the old value is refused with a reason that says what to load', () => {
    const c = new FieldCodec('PfeAccount', 'email', spec(true), keyring, () => undefined);
    expect(() => c.decrypt(old)).toThrow(/prisma-field-encryption's format: load its keys/);
  });

  test('lookups add the old salted hash only while the legacy source is loaded', () => {
    const theirs = hashString(' a@X.org', { ...hash, normalize: ['lowercase', 'trim'], salt: 'pepper', targetField: 'emailHash' } as never);
    const withLegacy = codec(spec(true)).indexesForLookup(' a@X.org');
    expect(withLegacy).toHaveLength(2);
    expect(withLegacy[1]).toBe(theirs);
    expect(new FieldCodec('PfeAccount', 'email', spec(true), keyring, () => undefined).indexesForLookup(' a@X.org')).toEqual([withLegacy[0]]);
    expect(codec(spec(false)).indexesForLookup(' a@X.org')).toEqual([withLegacy[0]]);
  });
});

describe('legacy: pfe annotations', () => {
  test('grammar', () => {
    expect(parseAnnotation('@encrypted(legacy: pfe)', 'M', 'f')).toEqual({ readMode: 'strict', legacy: 'pfe' });
    expect(() => parseAnnotation('@encrypted(legacy: cloak)', 'M', 'f')).toThrow(/legacy must be one of pfe/);
    expect(() => parseAnnotation('@encrypted(legacy: [pfe])', 'M', 'f')).toThrow(/legacy must be one of pfe/);
  });

  const build = async (fields: string) => {
    const dmmf = await getDMMF({ datamodel: `datasource db {\n  provider = "postgresql"\n}\nmodel M {\n  id Int @id\n${fields}\n}\n` });
    return buildEncryptionSchema(dmmf.datamodel as unknown as DMMF.Datamodel, 'postgresql').models.M!.encrypted;
  };

  test("the old hash's recipe comes from the @encryption:hash line on the index field", async () => {
    const encrypted = await build(`  /// @encrypted(index: h, normalize: [trim], legacy: pfe)
  e String
  /// @encryption:hash(e)?normalize=trim&normalize=lowercase&salt=abc&outputEncoding=base64
  h String?
  /// @encrypted(legacy: pfe)
  n String?`);
    expect(encrypted.e!.legacy).toEqual({ format: 'pfe', hash: { algorithm: 'sha256', normalize: ['lowercase', 'trim'], inputEncoding: 'utf8', outputEncoding: 'base64', salt: 'abc' } });
    expect(encrypted.n!.legacy).toEqual({ format: 'pfe' });
  });

  test.each([
    ['a hash line whose field is not legacy: pfe', '  /// @encrypted(index: h)\n  e String\n  /// @encryption:hash(e)\n  h String?', /M\.h: @encryption:hash\(e\) is a prisma-field-encryption annotation/],
    ['a legacy field without its hash column as index', '  /// @encrypted(legacy: pfe)\n  e String\n  /// @encryption:hash(e)\n  h String?', /M\.e: legacy: pfe: prisma-field-encryption hashes this field into 'h'; add index: h/],
    ['an index field hashing another field', '  /// @encrypted(index: h, legacy: pfe)\n  e String\n  /// @encrypted(legacy: pfe)\n  f String\n  /// @encryption:hash(f)\n  h String?', /holds prisma-field-encryption's hash of 'f'/],
    ['an output encoding that cannot be reproduced', '  /// @encrypted(index: h, legacy: pfe)\n  e String\n  /// @encryption:hash(e)?outputEncoding=utf8\n  h String?', /M\.h: @encryption:hash: outputEncoding 'utf8' cannot be reproduced/],
    ['an unknown normalisation', '  /// @encrypted(index: h, legacy: pfe)\n  e String\n  /// @encryption:hash(e)?normalize=nfkc\n  h String?', /unknown normalize option 'nfkc'/],
  ])('refuses %s', async (_what, fields, message) => {
    const attempt = build(fields);
    await expect(attempt).rejects.toThrow(ConfigurationError);
    await expect(attempt).rejects.toThrow(message);
  });
});
