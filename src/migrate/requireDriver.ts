import { ConfigurationError } from '../errors';

/** `pg` and `mariadb` are optional peer dependencies: load the one the URL needs, with a clear message. */
export function requireDriver<T>(name: 'pg' | 'mariadb'): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch {
    throw new ConfigurationError(undefined, undefined, `the '${name}' package is needed for this database URL: npm install ${name}`);
  }
}
