import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openConnection } from '../../src/migrate/openConnection';
import { startEmbeddedPostgres, type RunningPostgres } from '../support/embeddedPostgres';

/**
 * The migrator's loopback exemption must apply to the host the driver actually connected to, not
 * another one the URL names. Tests here reach loopback only (this workplace allows no other
 * target), so they check WHICH host is judged, through `onTls`; that a non-loopback host without
 * TLS is refused is the pure decision tested in tls.test.ts. Before the fix the judged host was the
 * URL's first `host=` (or its empty hostname), so these fail without it.
 */
describe('TLS: the migrator judges the host pg connected to, not another one the URL names', () => {
  let server: RunningPostgres;
  let port = '';
  const seen: string[] = [];
  const open = (url: string) => openConnection(url, { onTls: (host, _finding, accepted) => seen.push(`${host}:${accepted}`) });
  beforeAll(async () => {
    server = await startEmbeddedPostgres({
      postgresFlags: (folder) => {
        writeFileSync(join(folder, 'hba.conf'), 'local all all password\nhost all all all password\n');
        return ['-c', 'listen_addresses=127.0.0.1', '-c', `hba_file=${join(folder, 'hba.conf')}`];
      },
    });
    port = new URL(server.adminUrl).port;
  }, 60000);
  afterAll(async () => {
    await server?.stop();
  });

  test('a second host= parameter (pg takes the last) is the host judged, not the first', async () => {
    seen.length = 0;
    const conn = await open(`postgresql://postgres:postgres@127.0.0.1:${port}/postgres?host=/nonexistent&host=127.0.0.1&sslmode=disable`);
    await conn.close();
    expect(seen).toEqual(['127.0.0.1:true']);
  });

  test('an empty URL host with PGHOST set is judged by PGHOST, where pg goes', async () => {
    const saved = process.env.PGHOST;
    process.env.PGHOST = '127.0.0.1';
    seen.length = 0;
    try {
      const conn = await open(`postgresql:///postgres?user=postgres&password=postgres&port=${port}&sslmode=disable`);
      await conn.close();
      expect(seen).toEqual(['127.0.0.1:true']);
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
