import type { SqlConnection, SqlRow } from './connection';
import { requireDriver } from './requireDriver';

const quotePg = (id: string) => `"${id.replace(/"/g, '""')}"`;

/** One `pg` client as a {@link SqlConnection}; a `?schema=` URL parameter becomes its search_path. */
export async function openPostgres(url: string): Promise<SqlConnection> {
  const pg = requireDriver<typeof import('pg')>('pg');
  const u = new URL(url);
  const schema = u.searchParams.get('schema');
  u.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  // A broken connection emits 'error' on the client; without a listener Node would crash the process.
  client.on('error', () => undefined);
  if (schema) await client.query(`SET search_path TO ${quotePg(schema)}`);
  let inTransaction = false;
  const conn: SqlConnection = {
    dialect: 'postgres',
    host: client.host,
    async query<T extends SqlRow>(sql: string, params: readonly unknown[] = []) {
      return (await client.query(sql, params as unknown[])).rows as T[];
    },
    async execute(sql, params = []) {
      return (await client.query(sql, params as unknown[])).rowCount ?? 0;
    },
    quote: quotePg,
    placeholder: (n) => `$${n}`,
    async transaction(fn, options = {}) {
      if (inTransaction) throw new Error('transactions do not nest');
      inTransaction = true;
      try {
        // SET LOCAL ends with the transaction, so the caller's session keeps its own setting.
        const lock = options.lockTimeoutMs !== undefined ? `; SET LOCAL lock_timeout = ${Math.max(1, Math.ceil(options.lockTimeoutMs))}` : '';
        await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED${lock}`);
        try {
          const result = await fn(conn);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      } finally {
        inTransaction = false;
      }
    },
    isTransient: (error) => {
      const code = (error as { code?: unknown } | null)?.code;
      // deadlock_detected, serialization_failure, lock_not_available
      return code === '40P01' || code === '40001' || code === '55P03';
    },
    isUniqueViolation: (error) => (error as { code?: unknown } | null)?.code === '23505',
    close: () => client.end(),
  };
  return conn;
}
