import type { Logger } from 'pino';
import type { KeyInfo, Keyring } from '../keys/keyring';
import { lastRotateJob } from './checkpoint';
import type { SqlConnection } from './connection';
import type { ModelTarget } from './scope';
import type { PrimaryKeyIds } from './plan';

/**
 * A keyring whose primary keys are older than the ones the last rotation wrote with (an instance
 * that missed a `keys promote`) would silently re-encrypt everything back to the old keys. The
 * checkpoint table remembers the keys of the last rotate job: warn when that run's primary is in
 * this keyring, is not its primary, and was created after this keyring's primary. After a normal
 * `keys promote` the last run's key is the older one: no warning. Keys without creation times
 * (local keys from PCE_DATA_KEYS / localKeys) cannot be ordered, so they never warn.
 * Returns the warning (also logged), or undefined.
 */
export async function staleKeyringWarning(conn: SqlConnection, keyring: Keyring, primary: PrimaryKeyIds, target: ModelTarget, logger: Logger | undefined): Promise<string | undefined> {
  const last = await lastRotateJob(conn, target.model);
  const keys = last ? / data=(\S+) index=(\S+)/.exec(last) : null;
  if (!keys) return undefined;
  const [, lastData, lastIndex] = keys as unknown as [string, string, string];
  const info = new Map(keyring.describe().map((k) => [`${k.purpose}:${k.id}`, k]));
  const stale = [
    newerThanPrimary(info.get(`data:${lastData}`), info.get(`data:${primary.dataKey}`), 'data'),
    newerThanPrimary(info.get(`index:${lastIndex}`), info.get(`index:${primary.indexKey}`), 'index'),
  ].filter((s): s is string => s !== undefined);
  if (stale.length === 0) return undefined;
  const message = `${target.model}: the last rotate wrote under ${stale.join(' and ')}: this keyring looks out of date (a keys promote it has not seen?), and this run would re-encrypt back to its older primary keys. Stop and use the current keyring, or promote the newer keys first.`;
  logger?.warn({ event: 'pce.migrate.warning', reason: 'stale-keyring', model: target.model, lastDataKey: lastData, lastIndexKey: lastIndex, dataKey: primary.dataKey, indexKey: primary.indexKey }, 'migration warning');
  return message;
}

/** Describes `last` when it is a non-primary key of this keyring created after the primary. */
function newerThanPrimary(last: KeyInfo | undefined, primary: KeyInfo | undefined, purpose: string): string | undefined {
  if (!last || !primary || last.primary || !last.createdAt || !primary.createdAt) return undefined;
  if (Date.parse(last.createdAt) <= Date.parse(primary.createdAt)) return undefined;
  return `${purpose} key ${last.id} (created ${last.createdAt}), newer than this keyring's primary ${primary.id} (created ${primary.createdAt})`;
}
