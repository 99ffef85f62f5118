import type { SqlClient, TransactionalClient } from '../subjects/sqlClient';
import type { SqlConnection } from './connection';

/**
 * The migrator's connection seen as the raw-SQL part of a Prisma client, so the subject-key code
 * (written against Prisma's `$queryRawUnsafe`) runs on the CLI's own connection too.
 */
export function sqlClientOf(conn: SqlConnection): SqlClient {
  return {
    $queryRawUnsafe: <T>(query: string, ...values: unknown[]) => conn.query(query, values) as unknown as Promise<T>,
    $executeRawUnsafe: (query: string, ...values: unknown[]) => conn.execute(query, values),
  };
}

/** The connection as a client that opens transactions (READ COMMITTED, as every migrator transaction). */
export function transactionalClientOf(conn: SqlConnection): TransactionalClient {
  return {
    ...sqlClientOf(conn),
    $transaction: (run) => conn.transaction((tx) => run(sqlClientOf(tx))),
  };
}
