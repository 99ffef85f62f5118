import type { Logger } from 'pino';
import { KeyringError } from '../errors';
import type { CryptoBackend } from '../codec/backend';
import type { EncryptionSchema } from '../schema';
import { subjectAudit } from './subjectAudit';
import { execute, rows, type TransactionalClient } from './sqlClient';
import { dialectOf, SubjectKeySql, type SubjectKeyRow } from './subjectKeySql';
import type { WrapKeys } from './subjectKeyStore';
import { rewrapSubjectKey } from './subjectKeyWrap';

export interface RotateEpochOptions {
  /** The generated encryption map (for its provider). */
  readonly fields: Pick<EncryptionSchema, 'provider'>;
  /** Keys re-wrapped per transaction. Default 500. */
  readonly batchSize?: number;
  readonly logger?: Logger;
  readonly backend?: CryptoBackend;
  readonly onBatch?: (progress: { readonly rewrapped: number; readonly failed: number }) => void;
}

/** A key left under an old wrap key, and why (never key material). */
export interface EpochFailure {
  readonly keyId: string;
  readonly wrapKeyId: string | null;
  readonly reason: 'unknown-key' | 'authentication-failed';
}

export interface RotateEpochReport {
  /** The epoch: the primary wrap key everything is now wrapped under. */
  readonly wrapKeyId: string;
  readonly rewrapped: number;
  /** Keys re-wrapped, by the wrap key they were under before. */
  readonly from: Readonly<Record<string, number>>;
  /** Keys that could not be re-wrapped (their wrap key is not loaded, or they do not unwrap): still under their old wrap key. */
  readonly failed: readonly EpochFailure[];
  readonly batches: number;
}

/**
 * Re-wraps every subject key that is not under the keyring's primary wrap key (the new epoch),
 * in batches of one transaction each. A key is rewritten only if it is still what was read (an
 * erasure that ran meanwhile wins), and a failed batch leaves its keys under their old wrap key,
 * still readable. Once it reports no failures and no backup older than the rotation is kept, the
 * old wrap keys can be retired and destroyed: then every subject key in older backups, including
 * those of erased subjects, is unreadable for good.
 */
export async function rotateEpoch(client: TransactionalClient, keys: WrapKeys, options: RotateEpochOptions): Promise<RotateEpochReport> {
  const epoch = keys.primaryWrap;
  if (!epoch) throw new KeyringError(undefined, 'the keyring has no wrap key: generate one (keys generate --purpose wrap --primary) before rotating the epoch');
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const sql = new SubjectKeySql(dialectOf(options.fields.provider));
  const from: Record<string, number> = {};
  const failed: EpochFailure[] = [];
  let rewrapped = 0;
  let batches = 0;
  let after = '';
  for (;;) {
    const batch = await client.$transaction(async (tx) => {
      const list = await rows<SubjectKeyRow>(tx, sql.keysNotUnder(epoch.id, after, batchSize));
      const moved: string[] = [];
      const missed: EpochFailure[] = [];
      for (const row of list) {
        const old = row.wrap_key_id === null ? undefined : keys.wrapKey(row.wrap_key_id);
        const next = old && rewrapSubjectKey(old.key, epoch.key, row.key_id, row.wrapped_key!, options.backend);
        if (!old || !next) {
          missed.push({ keyId: row.key_id, wrapKeyId: row.wrap_key_id, reason: old ? 'authentication-failed' : 'unknown-key' });
          continue;
        }
        if ((await execute(tx, sql.rewrap(row.key_id, old.id, next, epoch.id))) > 0) moved.push(old.id);
      }
      return { list, moved, missed };
    }, { maxWait: 10_000, timeout: 120_000 });
    batches++;
    for (const id of batch.moved) from[id] = (from[id] ?? 0) + 1;
    rewrapped += batch.moved.length;
    failed.push(...batch.missed);
    options.onBatch?.({ rewrapped, failed: failed.length });
    if (batch.list.length < batchSize) break;
    after = batch.list[batch.list.length - 1]!.key_id;
  }
  const report = { wrapKeyId: epoch.id, rewrapped, from, failed, batches };
  subjectAudit(options.logger).epochRotated({ wrapKeyId: epoch.id, rewrapped, failed: failed.length, batches, from });
  return report;
}
