import { ConfigurationError } from '../errors';
import type { SqlConnection } from './connection';

/**
 * Refuses to write through a connection to a read-only server: a PostgreSQL standby or a
 * read-only session, a MySQL/MariaDB server with `read_only` (or `super_read_only`), which
 * otherwise still accepts writes from administrative users on a replica, or a read-only session.
 * The migrator's writes belong on the primary.
 */
export async function assertWritable(conn: SqlConnection): Promise<void> {
  const reason = await readOnlyReason(conn);
  if (reason) throw new ConfigurationError(undefined, undefined, `the database is read-only (${reason}): run the migrator against the primary server`);
}

async function readOnlyReason(conn: SqlConnection): Promise<string | undefined> {
  if (conn.dialect === 'postgres') {
    const [row] = await conn.query<{ recovery: boolean; ro: string }>(`SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro`);
    if (row?.recovery) return 'a standby in recovery';
    if (row?.ro === 'on') return 'transaction_read_only is on';
    return undefined;
  }
  const flag = async (expr: string): Promise<boolean | undefined> => {
    try {
      const [row] = await conn.query<{ v: unknown }>(`SELECT ${expr} AS v`);
      return Number(row?.v) === 1;
    } catch {
      return undefined; // a variable this server does not have
    }
  };
  if (await flag('@@GLOBAL.read_only')) return 'read_only is set';
  if (await flag('@@GLOBAL.super_read_only')) return 'super_read_only is set';
  // MySQL 8 and MariaDB 11.1+ call it transaction_read_only; older MariaDB tx_read_only.
  if ((await flag('@@SESSION.transaction_read_only')) ?? (await flag('@@SESSION.tx_read_only'))) return 'the session is read-only';
  return undefined;
}
