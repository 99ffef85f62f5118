import type { TlsFinding } from './tlsPolicy';

/**
 * Asks the server how the current session is protected. `run` executes one statement on the
 * session being checked and returns its rows: the migrator's connection, or Prisma's raw query.
 */
export type RunSql = (sql: string) => Promise<ReadonlyArray<Record<string, unknown>>>;

/** PostgreSQL: the session's own row of pg_stat_ssl. MySQL/MariaDB: the session's Ssl_version and Ssl_cipher. */
export async function probeTls(dialect: 'postgres' | 'mysql', run: RunSql): Promise<TlsFinding> {
  if (dialect === 'postgres') {
    const [row] = await run('SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    const encrypted = row?.ssl === true;
    return { encrypted, version: encrypted ? String(row!.version) : null, cipher: encrypted && row!.cipher ? String(row!.cipher) : null };
  }
  const rows = await run("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')");
  const value = (name: string) => {
    const row = rows.find((r) => String(r.Variable_name ?? r.variable_name) === name);
    const v = row ? String(row.Value ?? row.value ?? '') : '';
    return v === '' ? null : v;
  };
  const version = value('Ssl_version');
  return { encrypted: version !== null, version, cipher: value('Ssl_cipher') };
}
