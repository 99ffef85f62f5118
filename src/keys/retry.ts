import { setTimeout as sleep } from 'node:timers/promises';
import { KeySourceError } from './keySourceError';
import type { CallLimits } from './keyWrapper';

/** How long to keep trying a key-management call that fails transiently. */
export interface RetryPolicy {
  /** Deadline of one attempt. */
  readonly attemptTimeoutMs: number;
  /** Overall limit across attempts and backoff; no attempt starts after it. */
  readonly totalTimeoutMs: number;
  /** Backoff before the second attempt; multiplied after each failure. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attemptTimeoutMs: 10_000,
  totalTimeoutMs: 30_000,
  initialBackoffMs: 100,
  maxBackoffMs: 5_000,
  multiplier: 2,
};

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY, ...overrides };
  for (const [name, value] of Object.entries(p)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`retry.${name} must be a non-negative number`);
  }
  return p;
}

/** Called before each backoff sleep, so callers can log the retry. */
export type RetryListener = (error: KeySourceError, attempt: number, delayMs: number) => void;

/**
 * Runs `call` until it succeeds, fails permanently, or the overall time limit is reached.
 * Only {@link KeySourceError}s with `transient` set are retried; backoff is exponential with
 * jitter (half fixed, half random) so many processes starting together do not retry in step.
 * Each attempt's deadline is capped by the time left.
 */
export async function withRetry<T>(
  call: (limits: CallLimits) => Promise<T>,
  policy: RetryPolicy,
  onRetry?: RetryListener,
): Promise<T> {
  const started = Date.now();
  let backoff = policy.initialBackoffMs;
  for (let attempt = 1; ; attempt++) {
    const left = policy.totalTimeoutMs - (Date.now() - started);
    try {
      return await call({ timeoutMs: Math.max(1, Math.min(policy.attemptTimeoutMs, left)) });
    } catch (error) {
      if (!(error instanceof KeySourceError) || !error.transient) throw error;
      const delay = Math.min(backoff, policy.maxBackoffMs) * (0.5 + Math.random() * 0.5);
      const elapsed = Date.now() - started;
      if (elapsed + delay >= policy.totalTimeoutMs) throw error.withAttempts(attempt, elapsed);
      onRetry?.(error, attempt, Math.round(delay));
      await sleep(delay);
      backoff *= policy.multiplier;
    }
  }
}
