import type { SqlConnection, SqlRow } from './connection';
import { mysqlConnectionOptions } from './mysqlConnectionOptions';
import { requireDriver } from './requireDriver';

const quoteMy = (id: string) => `\`${id.replace(/`/g, '``')}\``;

/** One `mariadb` connection (MySQL 8 or MariaDB 10.6+) as a {@link SqlConnection}. */
export async function openMysql(url: string): Promise<SqlConnection> {
  const mariadb = requireDriver<typeof import('mariadb')>('mariadb');
  const connection = await mariadb.createConnection({
    ...mysqlConnectionOptions(url),
    // UPDATE counts must be rows matched, so a compare-and-set that found its row counts as done.
    foundRows: true,
    // Error messages must not carry query parameters: they can be stored values.
    logParam: false,
  });
  connection.on('error', () => undefined);
  let inTransaction = false;
  const run = async (sql: string, params: readonly unknown[]) => connection.query({ sql, namedPlaceholders: false }, params as unknown[]);
  const conn: SqlConnection = {
    dialect: 'mysql',
    async query<T extends SqlRow>(sql: string, params: readonly unknown[] = []) {
      const result = await run(sql, params);
      return (Array.isArray(result) ? [...result] : []) as T[];
    },
    async execute(sql, params = []) {
      const result = (await run(sql, params)) as { affectedRows?: number | bigint };
      return Number(result.affectedRows ?? 0);
    },
    quote: quoteMy,
    placeholder: () => '?',
    async transaction(fn, options = {}) {
      if (inTransaction) throw new Error('transactions do not nest');
      inTransaction = true;
      // innodb_lock_wait_timeout has no transaction scope: set it for the transaction, then put the session's value back.
      let restoreLockWait: unknown;
      try {
        if (options.lockTimeoutMs !== undefined) {
          const [row] = (await connection.query('SELECT @@SESSION.innodb_lock_wait_timeout AS t')) as Array<{ t: unknown }>;
          restoreLockWait = row?.t;
          await connection.query('SET SESSION innodb_lock_wait_timeout = ?', [Math.max(1, Math.ceil(options.lockTimeoutMs / 1000))]);
        }
        // READ COMMITTED: no gap locks, so the migrator does not block the application's inserts.
        await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        await connection.beginTransaction();
        try {
          const result = await fn(conn);
          await connection.commit();
          return result;
        } catch (error) {
          await connection.rollback().catch(() => undefined);
          throw error;
        }
      } finally {
        inTransaction = false;
        if (restoreLockWait !== undefined) await connection.query('SET SESSION innodb_lock_wait_timeout = ?', [Number(restoreLockWait)]).catch(() => undefined);
      }
    },
    isTransient: (error) => {
      const errno = (error as { errno?: unknown } | null)?.errno;
      // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
      return errno === 1213 || errno === 1205;
    },
    // ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME
    isUniqueViolation: (error) => [1062, 1586].includes((error as { errno?: unknown } | null)?.errno as number),
    close: () => connection.end(),
  };
  return conn;
}
