import { randomBytes } from 'node:crypto';
import { localKeys, type LocalKeysOptions } from '../../src';

/** Fresh random key material for one test file. */
export function randomKey(): string {
  return randomBytes(32).toString('base64');
}

/**
 * A fresh keyring with a data, an index and a wrap key: the test schema has subject models
 * (`@@encrypted(subject: ...)`), and a client over it needs a wrap key.
 */
export function testKeyring(overrides: Partial<LocalKeysOptions> = {}) {
  return localKeys({ data: [{ id: 'd1', key: randomKey() }], index: [{ id: 'i1', key: randomKey() }], wrap: [testWrapKey()], ...overrides });
}

/** A fresh wrap key (`w1`), for keyrings a test builds itself over the test schema. */
export function testWrapKey(): { id: string; key: string } {
  return { id: 'w1', key: randomKey() };
}
