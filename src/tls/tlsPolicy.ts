import { InsecureConnectionError } from '../errors';

/**
 * What a database session says about its encryption, and whether that is enough. Pure: the
 * probes (tlsProbe.ts) ask the server, these functions decide.
 */

/** The session's transport as the server reports it. */
export interface TlsFinding {
  readonly encrypted: boolean;
  /** `TLSv1.3`, `TLSv1.2`, ...; `null` without TLS. */
  readonly version: string | null;
  readonly cipher: string | null;
  /** True when the server would not say (the status query failed): treated like no TLS. */
  readonly unreported?: boolean;
}

/** The lowest TLS version accepted. */
export const MIN_TLS_VERSION = 'TLSv1.2';

const VERSION_ORDER = ['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Why a finding is not good enough (`no TLS`, `TLSv1.1, below TLSv1.2`), or `undefined` when it is. */
export function tlsShortfall(finding: TlsFinding): string | undefined {
  if (finding.unreported) return 'no TLS status (the server did not answer the status query)';
  if (!finding.encrypted) return 'no TLS';
  const rank = VERSION_ORDER.indexOf(finding.version ?? '');
  if (rank < 0) return `an unrecognised protocol version (${finding.version ?? 'none reported'})`;
  if (rank < VERSION_ORDER.indexOf(MIN_TLS_VERSION)) return `${finding.version}, below ${MIN_TLS_VERSION}`;
  return undefined;
}

/** `TLSv1.3 (TLS_AES_256_GCM_SHA384)` or `no TLS`. */
export function describeTls(finding: TlsFinding): string {
  return finding.encrypted ? `${finding.version ?? 'TLS'}${finding.cipher ? ` (${finding.cipher})` : ''}` : 'no TLS';
}

/**
 * True for hosts whose traffic never leaves the machine: the loopback range (`127.0.0.0/8`, also
 * IPv4-mapped), `::1`, the name `localhost`, and Unix sockets (an empty host or a path). Names that
 * merely resolve to loopback are not trusted, `*.localhost` included: RFC 6761 reserves those for
 * loopback, but a resolver need not honour it.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === '' || h.startsWith('/')) return true;
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * The migrator's and CLI's rule: a connection to a host that is not loopback must use TLS 1.2 or
 * later, unless the operator said `--allow-insecure-connection`. Throws {@link InsecureConnectionError}.
 */
export function checkConnectionSecurity(host: string, finding: TlsFinding, allowInsecure: boolean): void {
  const shortfall = tlsShortfall(finding);
  if (shortfall === undefined || allowInsecure || isLoopbackHost(host)) return;
  throw new InsecureConnectionError(host, shortfall, 'the connection crosses the network unprotected; use sslmode=verify-full (PostgreSQL) or sslaccept=strict (MySQL/MariaDB), or pass --allow-insecure-connection');
}
