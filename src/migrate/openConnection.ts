import { ConfigurationError } from '../errors';
import { probeTls } from '../tls/tlsProbe';
import { checkConnectionSecurity, type TlsFinding } from '../tls/tlsPolicy';
import type { Dialect, SqlConnection } from './connection';
import { openMysql } from './mysqlConnection';
import { openPostgres } from './postgresConnection';

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
