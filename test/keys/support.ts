import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { GcpKmsWrapper } from '../../src/keys/gcpKms';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import type { RetryPolicy } from '../../src/keys/retry';
import type { FakeKms } from '../kms/fakeKms';

/** Short limits so failure paths finish in well under a second. */
export const FAST_RETRY: Partial<RetryPolicy> = { attemptTimeoutMs: 300, totalTimeoutMs: 1000, initialBackoffMs: 10, maxBackoffMs: 40 };

/**
 * For tests where the fake KMS answers: short backoffs, but attempt deadlines a loaded CI machine
 * cannot miss (a 300 ms deadline failed a happy path at load 15). Failure paths keep FAST_RETRY.
 */
export const KMS_RETRY: Partial<RetryPolicy> = { attemptTimeoutMs: 10_000, totalTimeoutMs: 30_000, initialBackoffMs: 10, maxBackoffMs: 40 };

/** A pino logger at trace level whose output the test can read. */
export function captureLogger(): { logger: Logger; text: () => string; events: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => void chunks.push(s) });
  return {
    logger,
    text: () => chunks.join(''),
    events: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** The real Cloud KMS client pointed at the fake server. */
export function kmsClient(kms: FakeKms): KeyManagementServiceClient {
  return new KeyManagementServiceClient(kms.clientOptions());
}

export function gcpWrapper(kms: FakeKms): GcpKmsWrapper {
  return new GcpKmsWrapper({ clientOptions: kms.clientOptions() });
}

/** A temporary directory removed after the suite. */
export function tempDir(): { path: string; file: (name: string) => string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'pce-keys-'));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}
