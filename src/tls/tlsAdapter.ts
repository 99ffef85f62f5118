import type { Logger } from 'pino';
import { createAuditLog, type AuditLog } from '../audit/auditLog';
import { ConfigurationError, InsecureConnectionError } from '../errors';
import { probeTls, type RunSql } from './tlsProbe';
import { tlsShortfall } from './tlsPolicy';

/**
 * `requireTls` for every connection a driver adapter's pool opens. The extension sees queries,
 * not connections: a pool opens each connection on its own (later ones can differ: a pg Pool whose
 * `ssl` option was changed, a server replaced behind the same name), so the check that counts sits
 * in the pool, before a new connection's first query.
 *
 * - `@prisma/adapter-pg`: pg-pool's `onConnect` hook, awaited before the pool hands a new
 *   connection out; a refused connection is closed and the query that asked for it fails.
 * - `@prisma/adapter-mariadb`: the pool's `getConnection`, `query` and `execute` (what the
 *   adapter calls) check each connection the first time it is used.
 */

/** What this module needs from a Prisma driver adapter factory (`new PrismaPg(...)`, `new PrismaMariaDb(...)`). */
export interface DriverAdapterFactory {
  readonly provider: string;
  connect(): Promise<unknown>;
}

export interface RequireTlsOptions {
  /** Where `pce.tls.checked` events go (one per connection); the library's default logger otherwise. */
  readonly logger?: Logger;
}

/**
 * Wraps a driver adapter factory so that every database connection its pool opens is checked
 * (TLS 1.2 or later, as the server reports it) before its first query; a connection that falls
 * short is refused with an {@link InsecureConnectionError} and nothing is sent on it. Wrap the
 * factory before the client first connects: connections a pool you passed in opened before are
 * not checked.
 *
 * @example
 * const adapter = requireTlsAdapter(new PrismaPg({ connectionString: process.env.DATABASE_URL }));
 * const prisma = new PrismaClient({ adapter }).$extends(columnEncryption({ fields: encryptedFields, keys: localKeysFromEnv() }));
 */
export function requireTlsAdapter<F extends DriverAdapterFactory>(factory: F, options: RequireTlsOptions = {}): F {
  const audit = createAuditLog(options.logger);
  const dialect = factory.provider === 'mysql' ? 'mysql' : factory.provider === 'postgres' ? 'postgres' : undefined;
  if (!dialect) throw new ConfigurationError(undefined, undefined, `requireTlsAdapter knows PostgreSQL and MySQL/MariaDB adapters, not '${String(factory.provider).slice(0, 30)}'`);
  // A view of the factory: its own fields and methods (private ones included) stay on the original.
  const wrapped = Object.create(factory) as F;
  Object.defineProperty(wrapped, 'connect', {
    value: async () => {
      const adapter = (await factory.connect()) as { underlyingDriver?: () => unknown };
      const pool = adapter.underlyingDriver?.();
      if (typeof pool === 'object' && pool !== null && guardedPools.has(pool)) return adapter;
      if (dialect === 'postgres') guardPgPool(pool, audit);
      else guardMariaDbPool(pool, audit);
      guardedPools.add(pool as object);
      return adapter;
    },
  });
  return wrapped;
}

/**
 * Pools already guarded: Prisma calls `connect()` again after `$disconnect()`, and a pool passed in
 * by the application outlives that; guarding it twice would check each connection twice.
 */
const guardedPools = new WeakSet<object>();

/** Probes one connection; throws InsecureConnectionError when it falls short. */
async function verify(dialect: 'postgres' | 'mysql', run: RunSql, audit: AuditLog): Promise<void> {
  const finding = await probeTls(dialect, run);
  const shortfall = tlsShortfall(finding);
  audit.tlsChecked(undefined, finding, shortfall === undefined);
  if (shortfall !== undefined) {
    throw new InsecureConnectionError(undefined, shortfall, 'requireTlsAdapter refused this pooled connection before its first query; enable TLS in the pool settings (ssl for pg, ssl for mariadb)');
  }
}

interface PgPoolLike {
  options: { onConnect?: (client: PgClientLike) => unknown };
}
interface PgClientLike {
  query(sql: string): Promise<{ rows: Array<Record<string, unknown>> }>;
}

function guardPgPool(pool: unknown, audit: AuditLog): void {
  const p = pool as PgPoolLike | undefined;
  if (!p || typeof p.options !== 'object' || p.options === null) {
    throw new ConfigurationError(undefined, undefined, 'requireTlsAdapter: this PostgreSQL adapter does not show its pg Pool (underlyingDriver), so its connections cannot be checked');
  }
  const previous = p.options.onConnect;
  // pg-pool awaits onConnect before handing a new connection out, and closes it when it rejects.
  p.options.onConnect = async (client) => {
    if (previous) await previous(client);
    await verify('postgres', async (sql) => (await client.query(sql)).rows, audit);
  };
}

interface MariaDbConnectionLike {
  /** One object per physical connection, for its life (each getConnection wraps it anew). */
  readonly info: object | null;
  query(sql: unknown, values?: unknown): Promise<unknown>;
  execute(sql: unknown, values?: unknown): Promise<unknown>;
  batch(sql: unknown, values?: unknown): Promise<unknown>;
  release(): Promise<void> | void;
  destroy?(): void;
}
interface MariaDbPoolLike {
  getConnection(): Promise<MariaDbConnectionLike>;
  query(sql: unknown, values?: unknown): Promise<unknown>;
  execute(sql: unknown, values?: unknown): Promise<unknown>;
}

function guardMariaDbPool(pool: unknown, audit: AuditLog): void {
  const p = pool as MariaDbPoolLike | undefined;
  if (!p || typeof p.getConnection !== 'function' || typeof p.query !== 'function' || typeof p.execute !== 'function') {
    throw new ConfigurationError(undefined, undefined, 'requireTlsAdapter: this MySQL/MariaDB adapter does not show its mariadb pool (underlyingDriver), so its connections cannot be checked');
  }
  const getConnection = p.getConnection.bind(p);
  // Connections that passed, by their info object (gone with the connection); a refused connection is destroyed, never reused.
  const passed = new WeakSet<object>();
  const checked = async (): Promise<MariaDbConnectionLike> => {
    const conn = await getConnection();
    const id = typeof conn.info === 'object' ? conn.info : null;
    if (id !== null && passed.has(id)) return conn;
    try {
      await verify('mysql', async (sql) => (await conn.query(sql)) as Array<Record<string, unknown>>, audit);
    } catch (error) {
      // Not back into the pool: the next getConnection must not be handed the same connection.
      if (conn.destroy) conn.destroy();
      else await conn.release();
      throw error;
    }
    if (id !== null) passed.add(id);
    return conn;
  };
  const onOne = (method: 'query' | 'execute' | 'batch') => async (sql: unknown, values?: unknown) => {
    const conn = await checked();
    try {
      return await conn[method](sql, values);
    } finally {
      await conn.release();
    }
  };
  Object.assign(p, { getConnection: checked, query: onOne('query'), execute: onOne('execute'), batch: onOne('batch') });
}
