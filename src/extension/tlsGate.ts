import type { AuditLog } from '../audit/auditLog';
import { InsecureConnectionError } from '../errors';
import { probeTls } from '../tls/tlsProbe';
import { tlsShortfall } from '../tls/tlsPolicy';

/** What the gate needs from the client below the extension. */
export interface RawQueryClient {
  $queryRawUnsafe(sql: string): Promise<unknown>;
}

/**
 * `requireTls`: before the first query of a client, asks the database how the session is
 * protected, logs the negotiated version, and refuses every query with an
 * {@link InsecureConnectionError} when it is not TLS 1.2 or later. A verdict is kept for the
 * client's life; a probe that fails (database unreachable) is retried by the next query.
 */
export function tlsGate(dialect: 'postgres' | 'mysql', audit: AuditLog): (client: RawQueryClient) => Promise<void> {
  let verdict: Promise<void> | undefined;
  return (client) =>
    (verdict ??= probeTls(dialect, async (sql) => (await client.$queryRawUnsafe(sql)) as Array<Record<string, unknown>>).then(
      (finding) => {
        const shortfall = tlsShortfall(finding);
        audit.tlsChecked(undefined, finding, shortfall === undefined);
        if (shortfall !== undefined) {
          throw new InsecureConnectionError(undefined, shortfall, 'requireTls is set, so no query is sent; enable TLS in the database URL (sslmode=verify-full for PostgreSQL, sslaccept=strict for MySQL/MariaDB)');
        }
      },
      (error: unknown) => {
        verdict = undefined;
        throw error;
      },
    ));
}
