import { NoncePool } from '../../src/crypto/nonces';

describe('NoncePool', () => {
  test('hands out nonces of the requested size, all distinct across several refills', () => {
    const pool = new NoncePool(12, 8);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const nonce = pool.next();
      expect(nonce).toHaveLength(12);
      seen.add(nonce.toString('hex'));
    }
    expect(seen.size).toBe(100);
  });

  test('a nonce handed out earlier keeps its bytes after the block is refilled', () => {
    const pool = new NoncePool(12, 2);
    const first = pool.next();
    const copy = Buffer.from(first);
    for (let i = 0; i < 10; i++) pool.next();
    expect(first.equals(copy)).toBe(true);
  });

  test('consecutive nonces do not overlap in memory', () => {
    const pool = new NoncePool(12, 4);
    const a = pool.next();
    const b = pool.next();
    b.fill(0xff);
    expect(a.every((byte) => byte === 0xff)).toBe(false);
  });

  test('rejects sizes that are not positive integers', () => {
    expect(() => new NoncePool(0)).toThrow(RangeError);
    expect(() => new NoncePool(12, 1.5)).toThrow(RangeError);
  });
});
