import type { Logger } from 'pino';
import type { Keyring } from '../keys/keyring';
import { lastRotateJob } from './checkpoint';
import type { SqlConnection } from './connection';
import type { ModelTarget } from './scope';

/**
 * A keyring whose primary keys are older than the ones the last rotation wrote with (an instance
 * that missed a `keys promote`) would silently re-encrypt everything back to the old keys. The
 * checkpoint table remembers the keys of the last rotate job: warn when that run's primary is in
 * this keyring but is not its primary. Returns the warning (also logged), or undefined.
 */
export async function staleKeyringWarning(conn: SqlConnection, keyring: Keyring, primary: { readonly dataKey: string; readonly indexKey: string }, target: ModelTarget, logger: Logger | undefined): Promise<string | undefined> {
  const last = await lastRotateJob(conn, target.model);
  const keys = last ? / data=(\S+) index=(\S+)/.exec(last) : null;
  if (!keys) return undefined;
  const [, lastData, lastIndex] = keys as unknown as [string, string, string];
  const known = new Map(keyring.describe().map((k) => [`${k.purpose}:${k.id}`, k.primary]));
  const stale: string[] = [];
  if (lastData !== primary.dataKey && known.get(`data:${lastData}`) === false) stale.push(`data key ${lastData} (this keyring's primary: ${primary.dataKey})`);
  if (lastIndex !== primary.indexKey && known.get(`index:${lastIndex}`) === false) stale.push(`index key ${lastIndex} (this keyring's primary: ${primary.indexKey})`);
  if (stale.length === 0) return undefined;
  const message = `${target.model}: the last rotate wrote under ${stale.join(' and ')}; this run re-encrypts back to its own primary keys. If this keyring is out of date, stop and promote the newer keys first.`;
  logger?.warn({ event: 'pce.migrate.warning', reason: 'stale-keyring', model: target.model, lastDataKey: lastData, lastIndexKey: lastIndex, dataKey: primary.dataKey, indexKey: primary.indexKey }, 'migration warning');
  return message;
}
