import { randomBytes } from 'node:crypto';
import { localKeys, type LocalKeysOptions } from '../../src';

/** Fresh random key material for one test file. */
export function randomKey(): string {
  return randomBytes(32).toString('base64');
}

export function testKeyring(overrides: Partial<LocalKeysOptions> = {}) {
  return localKeys({ data: [{ id: 'd1', key: randomKey() }], index: [{ id: 'i1', key: randomKey() }], ...overrides });
}
