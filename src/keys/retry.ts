import { setTimeout as sleep } from 'node:timers/promises';
import { KeySourceError, type KeySourceErrorSubject } from './keySourceError';
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

/**
 * The limits used when none are given: 10 s per attempt, 30 s in all, backoff from 100 ms
 * doubling up to 5 s. Start-up fails after at most `totalTimeoutMs` when a KMS stays down.
 */
export const DEFAULT_RETRY: RetryPolicy = {
  attemptTimeoutMs: 10_000,
  totalTimeoutMs: 30_000,
  initialBackoffMs: 100,
  maxBackoffMs: 5_000,
  multiplier: 2,
};

/**
 * An attempt with less time than this cannot get an answer from a remote service; starting one
 * would only turn the real failure (say, unreachable) into a timeout.
 */
export const MIN_ATTEMPT_MS = 50;

/**
 * Time kept back from each attempt's deadline for the attempt's own timer: the wrapper's deadline
 * (with the service's status) normally fires first; ours ends wrappers that ignore `timeoutMs`.
 */
const RACE_GRACE_MS = 50;

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY, ...overrides };
  for (const [name, value] of Object.entries(p)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`retry.${name} must be a non-negative number`);
  }
  return p;
}

/** Called before each backoff sleep, so callers can log the retry. */
export type RetryListener = (error: KeySourceError, attempt: number, delayMs: number) => void;

/** What {@link withRetry} needs besides the call. */
export interface RetryOptions<T> {
  /** Which key and operation, for the timeout error when an attempt overruns its deadline. */
  readonly subject: KeySourceErrorSubject;
  readonly onRetry?: RetryListener;
  /** Receives a result that arrived after its attempt was given up, so secrets in it can be zeroed. */
  readonly discard?: (late: T) => void;
}

/**
 * Runs `call` until it succeeds, fails permanently, or the overall time limit is reached.
 * Only {@link KeySourceError}s with `transient` set are retried; backoff is exponential with
 * jitter (half fixed, half random) so many processes starting together do not retry in step.
 *
 * Each attempt's deadline is capped by the time left, and the attempt is raced against a timer,
 * so the overall limit holds even for a wrapper that ignores `timeoutMs`. No attempt starts with
 * less than {@link MIN_ATTEMPT_MS} left: the last real failure is reported instead.
 */
export async function withRetry<T>(call: (limits: CallLimits) => Promise<T>, policy: RetryPolicy, options: RetryOptions<T>): Promise<T> {
  const started = Date.now();
  let backoff = policy.initialBackoffMs;
  for (let attempt = 1; ; attempt++) {
    const left = policy.totalTimeoutMs - (Date.now() - started);
    const timeoutMs = Math.max(MIN_ATTEMPT_MS, Math.min(policy.attemptTimeoutMs, left - RACE_GRACE_MS));
    try {
      return await raced(call, timeoutMs, options);
    } catch (error) {
      if (!(error instanceof KeySourceError) || !error.transient) throw error;
      const delay = Math.min(backoff, policy.maxBackoffMs) * (0.5 + Math.random() * 0.5);
      const elapsed = Date.now() - started;
      if (elapsed + delay + MIN_ATTEMPT_MS + RACE_GRACE_MS > policy.totalTimeoutMs) throw error.withAttempts(attempt, elapsed);
      options.onRetry?.(error, attempt, Math.round(delay));
      await sleep(delay);
      backoff *= policy.multiplier;
    }
  }
}

async function raced<T>(call: (limits: CallLimits) => Promise<T>, timeoutMs: number, options: RetryOptions<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const attempt = call({ timeoutMs });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new KeySourceError({ ...options.subject, failure: 'timeout', status: 'attempt deadline passed' }));
    }, timeoutMs + RACE_GRACE_MS);
  });
  // A given-up attempt may still settle: keep its rejection handled and hand back its result.
  attempt.then(
    (late) => {
      if (timedOut) options.discard?.(late);
    },
    () => undefined,
  );
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
