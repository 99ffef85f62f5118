import { startEmbeddedPostgres } from './embeddedPostgres';

/**
 * Finds a PostgreSQL server for the run: DATABASE_URL when set (tests create and drop their own
 * databases on it), otherwise an embedded PostgreSQL started here and stopped in globalTeardown.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.DATABASE_URL) {
    process.env.PCE_TEST_POSTGRES_ADMIN_URL = process.env.DATABASE_URL;
    process.stdout.write(`\n[tests] PostgreSQL: DATABASE_URL (${new URL(process.env.DATABASE_URL).host})\n`);
  } else {
    const pg = await startEmbeddedPostgres();
    (globalThis as { __PCE_PG__?: unknown }).__PCE_PG__ = pg;
    process.env.PCE_TEST_POSTGRES_ADMIN_URL = pg.adminUrl;
    process.stdout.write(`\n[tests] PostgreSQL: embedded (${new URL(pg.adminUrl).host})\n`);
  }
  process.stdout.write(
    process.env.MYSQL_URL
      ? `[tests] MariaDB/MySQL: MYSQL_URL (${new URL(process.env.MYSQL_URL).host})\n`
      : '[tests] MariaDB/MySQL: SKIPPED - set MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/) to run the MariaDB half\n',
  );
}
