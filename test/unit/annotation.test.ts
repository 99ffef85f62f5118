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
    ['@encryptedd', undefined],
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
  test('the tag must start a line: prose mentioning it is not an annotation', () => {
    expect(parse('This is not @encrypted because it is public.')).toBeUndefined();
    expect(parse('Public.\n  @encrypted(index: emailIndex)')).toEqual({ index: 'emailIndex', readMode: 'strict' });
  });

  test('Unicode normalisation comes first, and only one form', () => {
    expect(() => parse('@encrypted(index: i, normalize: [lowercase, nfkc])')).toThrow(/nfkc must be the first normalize step/);
    expect(() => parse('@encrypted(index: i, normalize: [nfc, nfkc])')).toThrow(/not both/);
  });
});
