import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/embeddedPostgres';
import { makeServerCertificate } from './certificate';

/** A second, throw-away MariaDB server with TLS on, in a temporary folder. */
export interface TlsMariaDb {
  /** `mysql://root@127.0.0.1:<port>/` without TLS parameters (the server accepts both). */
  readonly adminUrl: string;
  /** The server certificate, to verify it with (`sslcert=` / `ssl.ca`). */
  readonly cert: string;
  stop(): Promise<void>;
}

const SERVER = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((p) => existsSync(p));

/** Why a TLS MariaDB cannot be started here, or `undefined` when it can. */
export function whyNoMariaDbServer(): string | undefined {
  if (!SERVER) return 'no mariadbd binary (install mariadb-server)';
  if (process.getuid?.() !== 0) return 'mariadb-install-db and mariadbd --user=root need root here';
  return undefined;
}

/**
 * Initialises a data folder with mariadb-install-db, makes a certificate, and starts mariadbd on a
 * free loopback port with `--ssl-cert`/`--ssl-key`. About 5 s. The server is stopped and the folder
 * removed by `stop()`.
 */
export async function startTlsMariaDb(): Promise<TlsMariaDb> {
  const dir = mkdtempSync(join(tmpdir(), 'pce-mariadb-'));
  const data = join(dir, 'data');
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
  const { cert, key } = makeServerCertificate(dir);
  const port = await freePort();
  const child: ChildProcess = spawn(
    SERVER!,
    ['--no-defaults', `--datadir=${data}`, '--user=root', `--port=${port}`, '--bind-address=127.0.0.1', `--socket=${join(dir, 'sock')}`, `--pid-file=${join(dir, 'pid')}`, `--ssl-cert=${cert}`, `--ssl-key=${key}`, '--skip-log-bin', '--innodb-buffer-pool-size=16M'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`mariadbd did not start in 30 s: ${log.slice(-500)}`)), 30000);
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('ready for connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mariadbd exited with code ${code}: ${log.slice(-500)}`));
    });
  });
  return {
    adminUrl: `mysql://root@127.0.0.1:${port}/`,
    cert,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
