import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../errors';

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
