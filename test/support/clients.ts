import { PrismaMariaDb } from '@prisma/adapter-mariadb';
import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';
import pino from 'pino';
import { PrismaClient as PgClient } from '../../generated/postgres/client/client';
import { PrismaClient as MyClient } from '../../generated/mysql/client/client';
import { encryptedFields as pgFields } from '../../generated/postgres/encryption';
import { encryptedFields as myFields } from '../../generated/mysql/encryption';
import { columnEncryption, type ColumnEncryptionOptions, type EncryptionSchema, type Keyring } from '../../src';
import { createDatabase, mysqlOptions, type Provider, type TestDatabase } from './databases';
import { testKeyring } from './keys';

/** The clients one integration test works with, on one fresh database. */
export interface Harness {
  readonly provider: Provider;
  readonly db: TestDatabase;
  /** Prisma without the extension: to see what is really stored, and as a plaintext mirror. */
  readonly plain: PgClient;
  /** Prisma with the extension. */
  readonly prisma: PgClient;
  readonly keyring: Keyring;
  /** Raw SQL with the provider's quoting already applied by the caller; returns rows. */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  /** Quotes an identifier for this provider. */
  q(identifier: string): string;
  /** A second extended client over the same database with other options (e.g. another keyring); `poolSize` caps its connections. */
  extend(options: Partial<ColumnEncryptionOptions>, poolSize?: number): PgClient;
  close(): Promise<void>;
}

export const silentLogger = pino({ level: 'silent' });

/** Providers to run integration suites on: PostgreSQL always, MySQL/MariaDB when MYSQL_URL is set. */
export function providers(): Provider[] {
  return process.env.MYSQL_URL ? ['postgres', 'mysql'] : ['postgres'];
}

function adapterFor(provider: Provider, url: string, poolSize?: number) {
  if (provider === 'postgres') return new PrismaPg({ connectionString: url, ...(poolSize ? { max: poolSize } : {}) });
  const o = mysqlOptions(url);
  return new PrismaMariaDb({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database!, connectionLimit: poolSize ?? 5 });
}

function newClient(provider: Provider, url: string, poolSize?: number): PgClient {
  const adapter = adapterFor(provider, url, poolSize);
  // Both generated clients expose the same model API; tests are typed against the PostgreSQL one.
  return (provider === 'postgres' ? new PgClient({ adapter }) : (new MyClient({ adapter: adapter as never }) as unknown as PgClient));
}

/**
 * The generated map without its subject models (`@@encrypted(subject: ...)`), for tests of
 * shared-key models whose keyring deliberately has no wrap key (a client over subject models
 * refuses such a keyring when it is made). A client over this map does not encrypt the subject
 * models at all: pass it only to a harness whose test never touches them.
 */
export function sharedKeyFields(provider: Provider): EncryptionSchema {
  const fields = (provider === 'postgres' ? pgFields : myFields) as unknown as EncryptionSchema;
  return { ...fields, models: Object.fromEntries(Object.entries(fields.models).filter(([, m]) => !m.subject)) };
}

export async function createHarness(provider: Provider, options: Partial<ColumnEncryptionOptions> = {}): Promise<Harness> {
  const adminUrl = provider === 'postgres' ? process.env.PCE_TEST_POSTGRES_ADMIN_URL : process.env.MYSQL_URL;
  if (!adminUrl) throw new Error(`no ${provider} server configured for tests`);
  const db = await createDatabase(provider, adminUrl);
  const keyring = (options.keys as Keyring | undefined) ?? testKeyring();
  const fields = provider === 'postgres' ? pgFields : myFields;
  const clients: PgClient[] = [];
  const extend = (more: Partial<ColumnEncryptionOptions>, poolSize?: number): PgClient => {
    const base = newClient(provider, db.url, poolSize);
    clients.push(base);
    return base.$extends(columnEncryption({ fields, keys: keyring, logger: silentLogger, ...options, ...more })) as unknown as PgClient;
  };
  const plain = newClient(provider, db.url);
  clients.push(plain);
  const prisma = extend({});

  let sql: Harness['sql'];
  let closeRaw: () => Promise<void>;
  if (provider === 'postgres') {
    const raw = new Client({ connectionString: db.url });
    await raw.connect();
    sql = async (query, params) => (await raw.query(query, params)).rows;
    closeRaw = () => raw.end();
  } else {
    const mariadb = require('mariadb') as typeof import('mariadb');
    const raw = await mariadb.createConnection(mysqlOptions(db.url));
    sql = async (query, params) => {
      const rows = await raw.query(query.replace(/\$\d+/g, '?'), params);
      return Array.isArray(rows) ? [...rows] : [];
    };
    closeRaw = () => raw.end();
  }
  return {
    provider,
    db,
    plain,
    prisma,
    keyring,
    sql,
    q: (id) => (provider === 'postgres' ? `"${id}"` : `\`${id}\``),
    extend,
    async close() {
      await closeRaw();
      await Promise.all(clients.map((c) => c.$disconnect()));
      await db.drop();
    },
  };
}
