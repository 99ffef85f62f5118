import { ConfigurationError } from '../errors';

/** SQL dialects the migrator speaks. `mysql` covers MySQL 8 and MariaDB 10.6+. */
export type Dialect = 'postgres' | 'mysql';

export type SqlRow = Record<string, unknown>;

/**
 * One dedicated database connection, just enough for the migrator: parameterised queries,
 * identifier quoting, and transactions. It is a single session (not a pool), so a transaction
 * opened with {@link SqlConnection.transaction} covers every statement issued inside it.
 */
export interface SqlConnection {
  readonly dialect: Dialect;
  /** Runs a statement and returns its rows (empty for statements that return none). */
  query<T extends SqlRow = SqlRow>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement and returns the number of rows it changed. */
  execute(sql: string, params?: readonly unknown[]): Promise<number>;
  /** Quotes an identifier (table or column name) for this dialect. */
  quote(identifier: string): string;
  /** The placeholder for the n-th parameter (1-based): `$n` on PostgreSQL, `?` on MySQL. */
  placeholder(n: number): string;
  /**
   * Runs `fn` in a READ COMMITTED transaction: committed when it resolves, rolled back when it
   * throws. Transactions do not nest.
   */
  transaction<T>(fn: (tx: SqlConnection) => Promise<T>): Promise<T>;
  /** True for errors worth retrying the whole transaction for (deadlock, serialization, lock timeout). */
  isTransient(error: unknown): boolean;
  close(): Promise<void>;
}

/** `pg` and `mariadb` are optional peer dependencies: load the one the URL needs, with a clear message. */
function requireDriver<T>(name: 'pg' | 'mariadb'): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch {
    throw new ConfigurationError(undefined, undefined, `the '${name}' package is needed for this database URL: npm install ${name}`);
  }
}

/** The dialect a DATABASE_URL-style URL names. */
export function dialectOf(url: string): Dialect {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new ConfigurationError(undefined, undefined, 'the database URL is not a valid URL');
  }
  switch (protocol) {
    case 'postgres:':
    case 'postgresql:':
      return 'postgres';
    case 'mysql:':
    case 'mariadb:':
      return 'mysql';
    default:
      throw new ConfigurationError(undefined, undefined, `unsupported database URL scheme '${protocol}' (use postgresql:// or mysql:// / mariadb://)`);
  }
}

/**
 * Opens one connection from a DATABASE_URL-style URL: `postgres://` / `postgresql://` with `pg`,
 * `mysql://` / `mariadb://` with `mariadb`. A PostgreSQL `?schema=` parameter (Prisma's
 * convention) becomes the session's search_path.
 */
export async function openConnection(url: string): Promise<SqlConnection> {
  return dialectOf(url) === 'postgres' ? openPostgres(url) : openMysql(url);
}

const quotePg = (id: string) => `"${id.replace(/"/g, '""')}"`;
const quoteMy = (id: string) => `\`${id.replace(/`/g, '``')}\``;

async function openPostgres(url: string): Promise<SqlConnection> {
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
    async query<T extends SqlRow>(sql: string, params: readonly unknown[] = []) {
      return (await client.query(sql, params as unknown[])).rows as T[];
    },
    async execute(sql, params = []) {
      return (await client.query(sql, params as unknown[])).rowCount ?? 0;
    },
    quote: quotePg,
    placeholder: (n) => `$${n}`,
    async transaction(fn) {
      if (inTransaction) throw new Error('transactions do not nest');
      inTransaction = true;
      try {
        await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
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
    close: () => client.end(),
  };
  return conn;
}

async function openMysql(url: string): Promise<SqlConnection> {
  const mariadb = requireDriver<typeof import('mariadb')>('mariadb');
  const u = new URL(url);
  const connection = await mariadb.createConnection({
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    ...(u.pathname.length > 1 ? { database: decodeURIComponent(u.pathname.slice(1)) } : {}),
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
    async transaction(fn) {
      if (inTransaction) throw new Error('transactions do not nest');
      inTransaction = true;
      try {
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
      }
    },
    isTransient: (error) => {
      const errno = (error as { errno?: unknown } | null)?.errno;
      // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
      return errno === 1213 || errno === 1205;
    },
    close: () => connection.end(),
  };
  return conn;
}
