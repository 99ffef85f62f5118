import { writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { InsecureConnectionError } from '../../src';
import { openConnection } from '../../src/migrate/connection';
import { startEmbeddedPostgres, type RunningPostgres } from '../support/embeddedPostgres';

/** This machine's own non-loopback IPv4 address: traffic to it is checked as crossing the network. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

/**
 * The migrator's loopback exemption must apply to the host the driver actually connected to. A
 * PostgreSQL of its own, without TLS, listening on loopback and on the machine's external address.
 */
describe('TLS: the migrator judges the host pg connected to, not another one the URL names', () => {
  let server: RunningPostgres;
  let port = '';
  const seen: string[] = [];
  const open = (url: string) => openConnection(url, { onTls: (host, _finding, accepted) => seen.push(`${host}:${accepted}`) });
  beforeAll(async () => {
    if (!external) throw new Error('this test needs a non-loopback IPv4 address on the machine');
    server = await startEmbeddedPostgres({
      postgresFlags: (folder) => {
        writeFileSync(join(folder, 'hba.conf'), 'local all all password\nhost all all all password\n');
        return ['-c', `listen_addresses=127.0.0.1,${external}`, '-c', `hba_file=${join(folder, 'hba.conf')}`];
      },
    });
    port = new URL(server.adminUrl).port;
  }, 60000);
  afterAll(async () => {
    await server?.stop();
  });

  test('the external address without TLS is refused (the control under attack)', async () => {
    await expect(open(`postgresql://postgres:postgres@${external}:${port}/postgres?sslmode=disable`)).rejects.toBeInstanceOf(InsecureConnectionError);
  });

  test('a second host= parameter (pg takes the last) does not pass the connection off as a Unix socket', async () => {
    seen.length = 0;
    const url = `postgresql://postgres:postgres@${external}:${port}/postgres?host=/nonexistent&host=${external}&sslmode=disable`;
    await expect(open(url)).rejects.toBeInstanceOf(InsecureConnectionError);
    expect(seen).toEqual([`${external}:false`]);
  });

  test('an empty URL host with PGHOST set is judged by PGHOST, where pg goes', async () => {
    const saved = process.env.PGHOST;
    process.env.PGHOST = external;
    try {
      await expect(open(`postgresql:///postgres?user=postgres&password=postgres&port=${port}&sslmode=disable`)).rejects.toBeInstanceOf(InsecureConnectionError);
    } finally {
      if (saved === undefined) delete process.env.PGHOST;
      else process.env.PGHOST = saved;
    }
  });

  test('loopback stays exempt', async () => {
    const conn = await open(`postgresql://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable`);
    expect(conn.tls).toMatchObject({ encrypted: false });
    await conn.close();
  });
});
