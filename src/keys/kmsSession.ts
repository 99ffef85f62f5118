import type { AuditLog } from '../audit/auditLog';
import { wrapperLookup, type UnwrapContext } from './entryBytes';
import { GcpKmsWrapper, type GcpKmsOptions } from './gcpKms';
import { KeySourceError } from './keySourceError';
import type { KeyWrappers } from './keyWrapper';
import type { KmsKind } from './keyMaterial';
import { retryPolicy, type RetryPolicy } from './retry';

/** How to reach the key-management services: given wrappers, or settings for the default ones. */
export interface KmsSettings {
  readonly wrappers?: KeyWrappers;
  readonly gcpKms?: GcpKmsOptions;
  readonly retry?: Partial<RetryPolicy>;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The wrappers to use: the caller's, plus a GCP wrapper created here when gcp-kms keys need one.
 * Only wrappers created here are closed afterwards.
 */
export function defaultWrappers(settings: KmsSettings, needed: readonly KmsKind[]): { wrappers: KeyWrappers; close: () => Promise<void> } {
  const given = settings.wrappers ?? {};
  if (given['gcp-kms'] || !needed.includes('gcp-kms')) return { wrappers: given, close: async () => undefined };
  const gcp = new GcpKmsWrapper(settings.gcpKms, settings.env ?? process.env);
  return { wrappers: { ...given, 'gcp-kms': gcp }, close: () => gcp.close() };
}

/**
 * Runs `run` with wrappers for the sources it needs, retry limits, and the KMS audit events
 * (each retry, and the final failure), then closes the wrappers it created. Shared by start-up
 * (`loadKeyring`) and the `keys` commands so both behave and log alike.
 */
export async function withKmsSession<T>(
  settings: KmsSettings,
  needed: readonly KmsKind[],
  audit: AuditLog | undefined,
  run: (ctx: UnwrapContext) => Promise<T>,
): Promise<T> {
  const { wrappers, close } = defaultWrappers(settings, needed);
  const ctx: UnwrapContext = {
    wrappers: wrapperLookup(wrappers),
    retry: retryPolicy(settings.retry),
    onRetry: (e, attempt, delay) => audit?.kmsRetry(e.keyId, e.operation, e.failure, attempt, delay),
  };
  try {
    return await run(ctx);
  } catch (error) {
    if (error instanceof KeySourceError) audit?.kmsFailure(error.keyId, error.operation, error.failure, error.attempts);
    throw error;
  } finally {
    await close();
  }
}
