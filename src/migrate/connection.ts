import type { TlsFinding } from '../tls/tlsPolicy';

/*
 * What the migrator needs of a database connection, whatever the driver: openConnection.ts
 * opens one from a URL, postgresConnection.ts and mysqlConnection.ts implement it.
 */

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
  /** How the session is protected, as the server reported it when `openConnection` opened it. */
  readonly tls?: TlsFinding;
}

export interface TransactionOptions {
  /** Longest wait for a row lock, per statement. MySQL/MariaDB round it up to whole seconds. */
  readonly lockTimeoutMs?: number;
}
