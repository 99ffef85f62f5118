/**
 * What the subject-key code needs from a Prisma client: raw SQL, and for the operations that own
 * their transaction, interactive transactions. A base client, an extended client and the
 * transaction client Prisma hands to `$transaction(async (tx) => ...)` all fit, so the store's
 * statements join whatever transaction the caller is in.
 */
export interface SqlClient {
  // `any[]`: Prisma declares its raw parameters so; values are always bound, never spliced in.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  $queryRawUnsafe<T = unknown>(query: string, ...values: any[]): PromiseLike<T>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  $executeRawUnsafe(query: string, ...values: any[]): PromiseLike<number>;
}

/** A client that can also open an interactive transaction (not a transaction client itself). */
export interface TransactionalClient extends SqlClient {
  $transaction<R>(run: (tx: SqlClient) => Promise<R>, options?: { maxWait?: number; timeout?: number }): Promise<R>;
}

/** Rows of a query. */
export async function rows<T>(db: SqlClient, statement: { text: string; values: readonly unknown[] }): Promise<T[]> {
  return (await db.$queryRawUnsafe<T[]>(statement.text, ...statement.values)) ?? [];
}

/** Rows changed by a statement. */
export async function execute(db: SqlClient, statement: { text: string; values: readonly unknown[] }): Promise<number> {
  return Number(await db.$executeRawUnsafe(statement.text, ...statement.values));
}
