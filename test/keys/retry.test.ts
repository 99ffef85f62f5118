import { setTimeout as sleep } from 'node:timers/promises';
import { KeySourceError, type KeySourceFailure } from '../../src/keys/keySourceError';
import { MIN_ATTEMPT_MS, retryPolicy, withRetry } from '../../src/keys/retry';

/**
 * The retry loop's time limits with key sources that misbehave in ways the Cloud KMS client
 * does not: ignoring the attempt deadline, or answering after being given up. Bounds are loose
 * on purpose (a loaded 2-core machine); each test fails by seconds, not milliseconds, when broken.
 */
const subject = { keyId: 'd1', source: 'test-kms', kmsKeyName: 'k', operation: 'unwrap' as const };
const fail = (failure: KeySourceFailure) => new KeySourceError({ ...subject, failure });

describe('withRetry', () => {
  test('an attempt that ignores its deadline is given up, so the overall limit holds', async () => {
    const late: Buffer[] = [];
    const started = Date.now();
    const error = await withRetry(
      async () => {
        await sleep(4000, undefined, { ref: false });
        return Buffer.alloc(32, 7);
      },
      retryPolicy({ attemptTimeoutMs: 200, totalTimeoutMs: 600, initialBackoffMs: 10 }),
      { subject, discard: (b) => late.push(b.fill(0)) },
    ).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(error).toBeInstanceOf(KeySourceError);
    expect(error).toMatchObject({ failure: 'timeout', keyId: 'd1', transient: true });
    expect((error as KeySourceError).attempts).toBeGreaterThanOrEqual(2);
  });

  test('a result that arrives after its attempt was given up is handed to discard (to zero key bytes)', async () => {
    const discarded: Buffer[] = [];
    let calls = 0;
    const result = await withRetry(
      async () => {
        calls++;
        if (calls === 1) {
          await sleep(400);
          return Buffer.from('late');
        }
        return Buffer.from('on time');
      },
      retryPolicy({ attemptTimeoutMs: 100, totalTimeoutMs: 5000, initialBackoffMs: 10 }),
      { subject, discard: (b) => discarded.push(b) },
    );
    expect(result.toString()).toBe('on time');
    await sleep(500);
    expect(discarded.map(String)).toEqual(['late']);
  });

  test('no attempt is started with almost no time left: the real failure is reported, not a timeout', async () => {
    const deadlines: number[] = [];
    const error = await withRetry(
      async ({ timeoutMs }) => {
        deadlines.push(timeoutMs);
        // A source that honours its deadline: one too short to reach the service becomes a timeout.
        if (timeoutMs < 40) {
          await sleep(timeoutMs);
          throw fail('timeout');
        }
        await sleep(90);
        throw fail('unreachable');
      },
      retryPolicy({ attemptTimeoutMs: 1000, totalTimeoutMs: 200, initialBackoffMs: 0 }),
      { subject },
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ failure: 'unreachable' });
    expect(Math.min(...deadlines)).toBeGreaterThanOrEqual(MIN_ATTEMPT_MS);
  });

  test('permanent failures are not retried', async () => {
    let calls = 0;
    const error = await withRetry(
      async () => {
        calls++;
        throw fail('permission-denied');
      },
      retryPolicy({ totalTimeoutMs: 5000, initialBackoffMs: 10 }),
      { subject },
    ).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(error).toMatchObject({ failure: 'permission-denied', attempts: 1 });
  });
});
