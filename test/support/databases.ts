import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';

export type Provider = 'postgres' | 'mysql';

const ROOT = join(__dirname, '..', '..');

/** Migration SQL files in the order `prisma migrate deploy` applies them. */
export function migrationFiles(provider: Provider): string[] {
  const dir = join(ROOT, 'prisma', provider, 'migrations');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => join(dir, name, 'migration.sql'));
}

/** Splits a Prisma migration file into statements (Prisma writes one statement per `;` line end). */
function statements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

export interface TestDatabase {
  readonly provider: Provider;
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Creates a fresh database on the server behind `adminUrl`, applies the committed migrations, and
 * returns its URL. Names are random, so parallel runs on a shared server never collide.
 */
export async function createDatabase(provider: Provider, adminUrl: string, prefix = 'pce_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  if (provider === 'postgres') {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
    const url = withDatabase(adminUrl, name);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      for (const file of migrationFiles(provider)) await client.query(readFileSync(file, 'utf8'));
    } finally {
      await client.end();
    }
    return {
      provider,
      url,
      name,
      async drop() {
        const a = new Client({ connectionString: adminUrl });
        await a.connect();
        await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await a.end();
      },
    };
  }
  const mariadb = require('mariadb') as typeof import('mariadb');
  const admin = await mariadb.createConnection(mysqlOptions(adminUrl));
  await admin.query(`CREATE DATABASE \`${name}\``);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const conn = await mariadb.createConnection(mysqlOptions(url));
  try {
    for (const file of migrationFiles(provider)) {
      for (const stmt of statements(readFileSync(file, 'utf8'))) await conn.query(stmt);
    }
  } finally {
    await conn.end();
  }
  return {
    provider,
    url,
    name,
    async drop() {
      const a = await mariadb.createConnection(mysqlOptions(adminUrl));
      await a.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await a.end();
    },
  };
}

/** mariadb connection options from a mysql:// or mariadb:// URL. */
export function mysqlOptions(url: string): { host: string; port: number; user: string; password: string; database?: string } {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username || 'root'),
    password: decodeURIComponent(u.password),
    ...(u.pathname.length > 1 ? { database: decodeURIComponent(u.pathname.slice(1)) } : {}),
  };
}
