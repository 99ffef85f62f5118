import { parseAnnotation } from '../../src/generator/annotation';
import { ConfigurationError } from '../../src';

const parse = (doc: string) => parseAnnotation(doc, 'User', 'email');

describe('@encrypted annotation grammar', () => {
  test('absent annotation', () => {
    expect(parse('just a comment')).toBeUndefined();
    expect(parseAnnotation(undefined, 'User', 'email')).toBeUndefined();
  });

  test('bare and full forms', () => {
    expect(parse('@encrypted')).toEqual({ readMode: 'strict' });
    expect(parse('The address.\n@encrypted(index: emailIndex, normalize: [nfkc, trim, lowercase], readMode: passthrough)')).toEqual({
      index: 'emailIndex',
      normalize: ['nfkc', 'trim', 'lowercase'],
      readMode: 'passthrough',
    });
    expect(parse('@encrypted( normalize : lowercase , index:emailIndex )')).toEqual({ index: 'emailIndex', normalize: ['lowercase'], readMode: 'strict' });
  });

  test.each([
    ['@encrypted(idx: emailIndex)', /unknown option 'idx'/],
    ['@encrypted(index: emailIndex, index: other)', /given twice/],
    ['@encrypted(normalize: [lowercase])', /normalize only applies to a blind index/],
    ['@encrypted(index: emailIndex, normalize: [upcase])', /unknown normalization 'upcase'/],
    ['@encrypted(index: emailIndex, normalize: [trim, trim])', /step twice/],
    ['@encrypted(readMode: lenient)', /readMode must be one of strict, passthrough/],
    ['@encrypted(index: emailIndex', /missing '\)'/],
    ['@encrypted(index emailIndex)', /expected ':'/],
    ['@encrypted\n@encrypted', /more than once/],
    ['@encrypted @encrypted', /unexpected text after @encrypted: '@encrypted'/],
    ['@encrypted (index: emailIndex)', /options go in parentheses right after it/],
    ['@encrypted(index: emailIndex) trailing', /unexpected text after '\)': 'trailing'/],
    ['@encrypted(index: emailIndex) @unique', /unexpected text after '\)': '@unique'/],
    ['@encrypted() extra words', /unexpected text after '\)'/],
    ['@encryptedd', /'@encryptedd' looks like a misspelt @encrypted/],
    ['@Encrypted', /'@Encrypted' looks like a misspelt @encrypted/],
    ['@ encrypted', /'@ encrypted' looks like a misspelt @encrypted/],
    ['@ENCRYPTED(index: emailIndex)', /'@ENCRYPTED' looks like a misspelt/],
    ['@encrypt', /'@encrypt' looks like a misspelt/],
    ['@encrypt(index: emailIndex)', /'@encrypt' looks like a misspelt/],
    ['@encryption', /'@encryption' looks like a misspelt/],
    ['@encryted', /'@encryted' looks like a misspelt/],
    ['@encrpyted', /'@encrpyted' looks like a misspelt/],
    ['@ecnrypted', /'@ecnrypted' looks like a misspelt/],
    ['@enrypted', /'@enrypted' looks like a misspelt/],
    ['@encypted', /'@encypted' looks like a misspelt/],
    ['@Encrypt_me', /looks like a misspelt/],
    ['The address.\n  @crypted', /'@crypted' looks like a misspelt/],
    ['@encrypted\n@Encrypted', /'@Encrypted' looks like a misspelt/],
    ['Secret.  @encrypted', /must start a line/],
    ['@encrypted\nAlso @encrypted here', /must start a line/],
  ])('%s', (doc, message) => {
    if (!message) {
      expect(parse(doc)).toBeUndefined();
      return;
    }
    let error: unknown;
    try {
      parse(doc);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/^User\.email: @encrypted: /);
    expect((error as Error).message).toMatch(message);
  });
});

describe('@encrypted annotation placement and order', () => {
  test('the tag must start a line; in prose it is an error, since a misplaced tag would leave the field in plaintext', () => {
    expect(() => parse('This is not @encrypted because it is public.')).toThrow(/must start a line/);
    expect(parse('This is not encrypted because it is public.')).toBeUndefined();
    expect(parse('Public.\n  @encrypted(index: emailIndex)')).toEqual({ index: 'emailIndex', readMode: 'strict' });
  });

  test('other tags and addresses are not mistaken for it', () => {
    for (const doc of ['@deprecated use other', '@zod.string.email()', 'Contact: ada@encrypted.org', '@encoding utf8', '@description Encrypted at the application layer', '@see crypto docs', '@encryption:hash(email)?normalize=lowercase']) {
      expect(parse(doc)).toBeUndefined();
    }
  });

  test('Unicode normalisation comes first, and only one form', () => {
    expect(() => parse('@encrypted(index: i, normalize: [lowercase, nfkc])')).toThrow(/nfkc must be the first normalize step/);
    expect(() => parse('@encrypted(index: i, normalize: [nfc, nfkc])')).toThrow(/not both/);
  });
});
