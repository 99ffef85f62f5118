import type { AuditLog } from '../audit/auditLog';
import { InsecureConnectionError } from '../errors';
import { probeTls } from '../tls/tlsProbe';
import { tlsShortfall } from '../tls/tlsPolicy';

/** What the gate needs from the client below the extension (the base client, or one bound to a transaction). */
export interface RawQueryClient {
  $queryRawUnsafe(sql: string): Promise<unknown>;
}

/** Interactive transactions whose verdict is kept; older ones are probed again if they query again. */
const KEPT_TRANSACTIONS = 256;

/**
 * `requireTls`: asks the database how the session is protected, logs the negotiated version, and
 * refuses the query with an {@link InsecureConnectionError} when it is not TLS 1.2 or later.
 *
 * - Outside a transaction: before the first query of a client, through its pool (the extension
 *   cannot tell which pooled connection a query will get; {@link requireTlsAdapter} checks each).
 *   The verdict is kept for the client's life.
 * - Inside an interactive transaction (`itx` is its id): once per transaction, on the
 *   transaction's own connection, the one its queries use. Probing through the pool instead would
 *   need a second connection, which a pool of one never frees while the transaction holds it.
 *
 * A probe that fails (database unreachable) is repeated by the next query.
 */
export function tlsGate(dialect: 'postgres' | 'mysql', audit: AuditLog): (client: RawQueryClient, itx?: string) => Promise<void> {
  let verdict: Promise<void> | undefined;
  const transactions = new Map<string, Promise<void>>();
  const check = (client: RawQueryClient, forget: () => void) =>
    probeTls(dialect, async (sql) => (await client.$queryRawUnsafe(sql)) as Array<Record<string, unknown>>).then(
      (finding) => {
        const shortfall = tlsShortfall(finding);
        audit.tlsChecked(undefined, finding, shortfall === undefined);
        if (shortfall !== undefined) {
          throw new InsecureConnectionError(undefined, shortfall, 'requireTls is set, so no query is sent; enable TLS in the database URL (sslmode=verify-full for PostgreSQL, sslaccept=strict for MySQL/MariaDB)');
        }
      },
      (error: unknown) => {
        forget();
        throw error;
      },
    );
  return (client, itx) => {
    if (itx === undefined) return (verdict ??= check(client, () => (verdict = undefined)));
    let kept = transactions.get(itx);
    if (!kept) {
      kept = check(client, () => transactions.delete(itx));
      transactions.set(itx, kept);
      // Transactions end without telling the extension: keep the newest only.
      if (transactions.size > KEPT_TRANSACTIONS) transactions.delete(transactions.keys().next().value!);
    }
    return kept;
  };
}
