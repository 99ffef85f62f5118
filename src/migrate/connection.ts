import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../errors';
import { probeTls } from '../tls/tlsProbe';
import { checkConnectionSecurity, type TlsFinding } from '../tls/tlsPolicy';

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
  /**
   * The host the driver connected to, after its own rules (pg: the last `host=` parameter,
   * PGHOST, `localhost`), when it says; the TLS check judges this one, not the URL's text.
   */
  readonly host?: string;
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
   * throws. Transactions do not nest. With `lockTimeoutMs`, a statement of the transaction that
   * waits longer than that for a row lock fails (a transient error) instead of waiting for as long
   * as the application holds the lock.
   */
  transaction<T>(fn: (tx: SqlConnection) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** True for errors worth retrying the whole transaction for (deadlock, serialization, lock timeout). */
  isTransient(error: unknown): boolean;
  /** True when a statement failed on a unique constraint (the rest of the transaction can go on after a savepoint rollback). */
  isUniqueViolation(error: unknown): boolean;
  close(): Promise<void>;
  /** How the session is protected, as the server reported it when {@link openConnection} opened it. */
  readonly tls?: TlsFinding;
}

/** Options of {@link openConnection}. */
export interface OpenConnectionOptions {
  /**
   * Accept a session without TLS 1.2 or later to a host that is not loopback (default: refused
   * with an InsecureConnectionError). Loopback hosts and Unix sockets are always accepted.
   */
  readonly allowInsecure?: boolean;
  /** Told what was found, before the connection is accepted or refused (for the audit log). */
  readonly onTls?: (host: string, finding: TlsFinding, accepted: boolean) => void;
}

export interface TransactionOptions {
  /** Longest wait for a row lock, per statement. MySQL/MariaDB round it up to whole seconds. */
  readonly lockTimeoutMs?: number;
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
export async function openConnection(url: string, options: OpenConnectionOptions = {}): Promise<SqlConnection> {
  const conn = dialectOf(url) === 'postgres' ? await openPostgres(url) : await openMysql(url);
  try {
    // A server (or proxy) that cannot answer the status query is treated as unencrypted.
    const finding: TlsFinding = await probeTls(conn.dialect, (sql) => conn.query(sql)).catch(() => ({ encrypted: false, version: null, cipher: null, unreported: true }));
    const host = conn.host ?? connectionHost(url);
    let accepted = true;
    try {
      checkConnectionSecurity(host, finding, options.allowInsecure === true);
    } catch (error) {
      accepted = false;
      throw error;
    } finally {
      options.onTls?.(host, finding, accepted);
    }
    return Object.assign(conn, { tls: finding });
  } catch (error) {
    await conn.close().catch(() => undefined);
    throw error;
  }
}

/** The host a URL connects to: a Unix socket path (`?host=` for pg, `?socket=` for MySQL) counts as local. */
function connectionHost(url: string): string {
  const u = new URL(url);
  return u.searchParams.get('host') ?? (u.searchParams.get('socket') !== null ? '' : u.hostname);
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

async function openMysql(url: string): Promise<SqlConnection> {
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

type MysqlOptions = import('mariadb').ConnectionConfig;

/**
 * mariadb connection options from a `mysql://` / `mariadb://` URL, with Prisma's query parameters
 * (`sslaccept`, `sslcert`, `sslidentity`, `sslpassword`, `socket`, `connect_timeout`,
 * `socket_timeout`; pool settings are accepted and have no effect on the migrator's single
 * connections) and `ssl=true`. Any other parameter is refused, so a setting such as TLS is never
 * silently dropped. Errors name the parameter, never the URL (it may hold a password).
 */
export function mysqlConnectionOptions(url: string): MysqlOptions {
  const u = new URL(url);
  const options: { -readonly [K in keyof MysqlOptions]: MysqlOptions[K] } = {
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    ...(u.pathname.length > 1 ? { database: decodeURIComponent(u.pathname.slice(1)) } : {}),
  };
  const ssl: { rejectUnauthorized?: boolean; ca?: Buffer; pfx?: Buffer; passphrase?: string } = {};
  let useSsl = false;
  const seconds = (name: string, value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new ConfigurationError(undefined, undefined, `database URL parameter ${name} must be a number of seconds`);
    return n * 1000;
  };
  const file = (name: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch {
      throw new ConfigurationError(undefined, undefined, `database URL parameter ${name}: cannot read the file it names`);
    }
  };
  for (const [name, value] of u.searchParams) {
    switch (name) {
      case 'ssl':
      case 'sslmode':
        if (['true', '1', 'required', 'require', 'verify-full', 'verify_identity', 'verify-ca', 'verify_ca'].includes(value.toLowerCase())) useSsl = true;
        else if (!['false', '0', 'disabled', 'disable'].includes(value.toLowerCase())) throw new ConfigurationError(undefined, undefined, `database URL parameter ${name} has an unsupported value`);
        break;
      case 'sslaccept':
        if (value !== 'strict' && value !== 'accept_invalid_certs') throw new ConfigurationError(undefined, undefined, `database URL parameter sslaccept must be strict or accept_invalid_certs`);
        useSsl = true;
        ssl.rejectUnauthorized = value === 'strict';
        break;
      case 'sslcert':
        useSsl = true;
        ssl.ca = file(name, value);
        break;
      case 'sslidentity':
        useSsl = true;
        ssl.pfx = file(name, value);
        break;
      case 'sslpassword':
        ssl.passphrase = value;
        break;
      case 'socket':
        options.socketPath = value;
        break;
      case 'connect_timeout':
        options.connectTimeout = seconds(name, value);
        break;
      case 'socket_timeout':
        options.socketTimeout = seconds(name, value);
        break;
      case 'connection_limit':
      case 'pool_timeout':
      case 'max_connection_lifetime':
      case 'max_idle_connection_lifetime':
        break;
      default:
        throw new ConfigurationError(undefined, undefined, `database URL parameter '${name}' is not supported for MySQL/MariaDB (supported: ssl, sslaccept, sslcert, sslidentity, sslpassword, socket, connect_timeout, socket_timeout)`);
    }
  }
  if (useSsl) options.ssl = { rejectUnauthorized: true, ...ssl };
  return options;
}
