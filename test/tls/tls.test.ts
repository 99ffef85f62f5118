import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaMariaDb } from '@prisma/adapter-mariadb';
import { PrismaClient as PgClient } from '../../generated/postgres/client/client';
import { PrismaClient as MyClient } from '../../generated/mysql/client/client';
import { encryptedFields as pgFields } from '../../generated/postgres/encryption';
import { encryptedFields as myFields } from '../../generated/mysql/encryption';
import { columnEncryption, InsecureConnectionError, openConnection, requireTlsAdapter } from '../../src';
import { checkConnectionSecurity, isLoopbackHost, tlsShortfall } from '../../src/tls/tlsPolicy';
import { createDatabase, mysqlOptions, type TestDatabase } from '../support/databases';
import { startEmbeddedPostgres, type RunningPostgres } from '../support/embeddedPostgres';
import { testKeyring } from '../support/keys';
import { captureLogger } from '../keys/support';
import { makeServerCertificate, postgresUser } from './certificate';
import { startTlsMariaDb, whyNoMariaDbServer, type TlsMariaDb } from './mariadbServer';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const SCHEMA = join(ROOT, 'prisma', 'postgres', 'schema.prisma');

describe('TLS policy (pure)', () => {
  test('TLS 1.2 and 1.3 pass; no TLS, older or unknown versions fall short, saying what was found', () => {
    expect(tlsShortfall({ encrypted: true, version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' })).toBeUndefined();
    expect(tlsShortfall({ encrypted: true, version: 'TLSv1.2', cipher: null })).toBeUndefined();
    expect(tlsShortfall({ encrypted: true, version: 'TLSv1.1', cipher: null })).toBe('TLSv1.1, below TLSv1.2');
    expect(tlsShortfall({ encrypted: true, version: 'SSLv3', cipher: null })).toBe('SSLv3, below TLSv1.2');
    expect(tlsShortfall({ encrypted: true, version: 'QUIC?', cipher: null })).toMatch(/unrecognised/);
    expect(tlsShortfall({ encrypted: false, version: null, cipher: null })).toBe('no TLS');
  });

  test('loopback means the loopback range, ::1, localhost and Unix sockets; nothing else, not even *.localhost', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '0:0:0:0:0:0:0:1', '[::1]', '::ffff:127.0.0.1', '', '/var/run/postgresql']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['db.example.com', '10.0.0.5', '192.168.1.2', '128.0.0.1', 'localhost.example.com', '::2', '127.0.0.1.nip.io', 'db.localhost', 'a.b.localhost', 'localhost.']) expect(isLoopbackHost(h)).toBe(false);
    // The README's promise, applied: a *.localhost name without TLS is refused like any other remote name.
    expect(() => checkConnectionSecurity('db.localhost', { encrypted: false, version: null, cipher: null }, false)).toThrow(InsecureConnectionError);
  });

  test('an unencrypted or old-TLS connection to another host is refused unless allowed', () => {
    const none = { encrypted: false, version: null, cipher: null };
    const old = { encrypted: true, version: 'TLSv1', cipher: null };
    expect(() => checkConnectionSecurity('db.example.com', none, false)).toThrow(InsecureConnectionError);
    expect(() => checkConnectionSecurity('db.example.com', old, false)).toThrow(/found TLSv1, below TLSv1.2/);
    expect(() => checkConnectionSecurity('db.example.com', none, true)).not.toThrow();
    expect(() => checkConnectionSecurity('127.0.0.1', none, false)).not.toThrow();
    expect(() => checkConnectionSecurity('db.example.com', { encrypted: true, version: 'TLSv1.3', cipher: null }, false)).not.toThrow();
    try {
      checkConnectionSecurity('db.example.com', none, false);
    } catch (e) {
      expect(e).toMatchObject({ code: 'PCE_INSECURE_CONNECTION', host: 'db.example.com', found: 'no TLS' });
      expect((e as Error).message).toMatch(/--allow-insecure-connection/);
    }
  });
});

/**
 * A PostgreSQL of its own started with `ssl = on` and a certificate made for this run: the same
 * database reached with `sslmode=verify-full` (accepted) and `sslmode=disable` (refused).
 */
describe('TLS on an embedded PostgreSQL started with ssl = on', () => {
  let server: RunningPostgres;
  let db: TestDatabase;
  let cert = '';
  let tlsUrl = '';
  let plainUrl = '';
  const clients: PgClient[] = [];
  beforeAll(async () => {
    server = await startEmbeddedPostgres({
      postgresFlags: (folder) => {
        const made = makeServerCertificate(folder, postgresUser());
        cert = made.cert;
        return ['-c', 'ssl=on', '-c', `ssl_cert_file=${made.cert}`, '-c', `ssl_key_file=${made.key}`];
      },
    });
    db = await createDatabase('postgres', server.adminUrl);
    tlsUrl = `${db.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(cert)}`;
    plainUrl = `${db.url}?sslmode=disable`;
  }, 60000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.$disconnect()));
    await db?.drop();
    await server?.stop();
  });

  const extended = (url: string, logger = captureLogger().logger) => {
    const base = new PgClient({ adapter: new PrismaPg({ connectionString: url }) });
    clients.push(base);
    return base.$extends(columnEncryption({ fields: pgFields, keys: testKeyring(), logger, requireTls: true })) as unknown as PgClient;
  };

  test('requireTls accepts a TLS session and logs the negotiated version', async () => {
    const log = captureLogger();
    const prisma = extended(tlsUrl, log.logger);
    await prisma.user.create({ data: { email: 'tls@example.org' } });
    expect((await prisma.user.findFirst({ where: { email: 'tls@example.org' } }))?.email).toBe('tls@example.org');
    const checks = log.events().filter((e) => e.event === 'pce.tls.checked');
    expect(checks).toEqual([expect.objectContaining({ encrypted: true, version: expect.stringMatching(/^TLSv1\.[23]$/), cipher: expect.any(String), accepted: true })]);
  });

  test('requireTls refuses every query on an unencrypted session, naming what it found; nothing is written', async () => {
    const log = captureLogger();
    const prisma = extended(plainUrl, log.logger);
    const error = await prisma.user.create({ data: { email: 'plain@example.org' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InsecureConnectionError);
    expect(error).toMatchObject({ code: 'PCE_INSECURE_CONNECTION', found: 'no TLS' });
    await expect(prisma.tag.findMany()).rejects.toThrow(/not encrypted with TLS 1.2 or later \(found no TLS\)/);
    const check = new PgClient({ adapter: new PrismaPg({ connectionString: tlsUrl }) });
    clients.push(check);
    expect(await check.user.count({ where: { emailIndex: { not: null } } })).toBe(1);
    expect(log.events().filter((e) => e.event === 'pce.tls.checked')).toEqual([expect.objectContaining({ encrypted: false, accepted: false, level: 50 })]);
  });

  test('requireTls inside an interactive transaction on a pool of one checks the transaction\'s own connection (no wait for a second one)', async () => {
    const oneConnection = (url: string, log = captureLogger()) => {
      const base = new PgClient({ adapter: new PrismaPg({ connectionString: url, max: 1 }) });
      clients.push(base);
      return base.$extends(columnEncryption({ fields: pgFields, keys: testKeyring(), logger: log.logger, requireTls: true })) as unknown as PgClient;
    };
    const log = captureLogger();
    const secure = oneConnection(tlsUrl, log);
    // The client's first query runs inside the transaction, which holds the pool's only connection.
    const found = await secure.$transaction(async (tx) => {
      await tx.user.create({ data: { email: 'itx-tls@example.org' } });
      return tx.user.findFirst({ where: { email: 'itx-tls@example.org' } });
    }, { maxWait: 5000, timeout: 8000 });
    expect(found?.email).toBe('itx-tls@example.org');
    expect(log.events().filter((e) => e.event === 'pce.tls.checked')).toEqual([expect.objectContaining({ encrypted: true, accepted: true })]);
    const plain = oneConnection(plainUrl);
    const error = await plain.$transaction(async (tx) => tx.user.create({ data: { email: 'itx-plain@example.org' } }), { maxWait: 5000, timeout: 8000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PCE_INSECURE_CONNECTION', found: 'no TLS' });
    expect(await secure.user.count({ where: { email: 'itx-plain@example.org' } })).toBe(0);
  });

  test('requireTlsAdapter checks every pooled connection: a pg Pool whose ssl option is changed gets its next connection refused', async () => {
    const u = new URL(db.url);
    const pool = new pg.Pool({
      host: u.hostname,
      port: Number(u.port),
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database: u.pathname.slice(1),
      ssl: { ca: readFileSync(cert, 'utf8'), rejectUnauthorized: true },
      max: 2,
    });
    const log = captureLogger();
    const base = new PgClient({ adapter: requireTlsAdapter(new PrismaPg(pool, { disposeExternalPool: true }), { logger: log.logger }) });
    clients.push(base);
    const prisma = base.$extends(columnEncryption({ fields: pgFields, keys: testKeyring(), logger: log.logger, requireTls: true })) as unknown as PgClient;
    await prisma.user.create({ data: { email: 'pool@example.org' } });
    // Later connections are made from the pool's options as they are then: without TLS from here on.
    pool.options.ssl = false;
    const outside = await prisma.$transaction(async (tx) => {
      // The transaction holds the TLS connection, so the query outside it needs a new one.
      expect((await tx.user.findFirst({ where: { email: 'pool@example.org' } }))?.email).toBe('pool@example.org');
      return prisma.user.findFirst({ where: { email: 'pool@example.org' } }).catch((e: unknown) => e);
    });
    // Prisma wraps what the driver adapter throws in a PrismaClientKnownRequestError that keeps the code and the message.
    expect(outside).toMatchObject({ code: 'PCE_INSECURE_CONNECTION', message: expect.stringMatching(/not encrypted with TLS 1\.2 or later \(found no TLS\): requireTlsAdapter refused/) });
    expect(pool.totalCount).toBe(1); // the refused connection was closed, not pooled
    const checks = log.events().filter((e) => e.event === 'pce.tls.checked');
    expect(checks.filter((e) => e.accepted === false)).toEqual([expect.objectContaining({ encrypted: false, level: 50 })]);
  });

  test('requireTlsAdapter guards a pool once, however often Prisma connects the factory again', async () => {
    const pool = new pg.Pool({ connectionString: tlsUrl, max: 1 });
    const log = captureLogger();
    const factory = requireTlsAdapter(new PrismaPg(pool), { logger: log.logger });
    await factory.connect();
    await factory.connect(); // as after $disconnect(): the application's pool is the same
    await pool.query('SELECT 1');
    await pool.end();
    expect(log.events().filter((e) => e.event === 'pce.tls.checked')).toEqual([expect.objectContaining({ encrypted: true, accepted: true })]);
  });

  test('the migrator connection reports TLS; loopback without TLS is accepted and says so', async () => {
    const tls = await openConnection(tlsUrl);
    expect(tls.tls).toMatchObject({ encrypted: true, version: expect.stringMatching(/^TLSv1\.[23]$/) });
    await tls.close();
    const seen: unknown[] = [];
    const plain = await openConnection(plainUrl, { onTls: (host, finding, accepted) => seen.push([host, finding.encrypted, accepted]) });
    expect(plain.tls).toEqual({ encrypted: false, version: null, cipher: null });
    expect(seen).toEqual([['127.0.0.1', false, true]]);
    await plain.close();
  });

  test('CLI: status over TLS logs the negotiated version; --allow-insecure-connection is accepted', async () => {
    const ok = await run(process.execPath, [BIN, 'status', '--schema', SCHEMA, '--database-url', tlsUrl, '--json'], { env: { ...process.env, PCE_LOG_LEVEL: 'info' } });
    expect(JSON.parse(ok.stdout).fields.length).toBeGreaterThan(0);
    const event = ok.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === 'pce.tls.checked');
    expect(event).toMatchObject({ host: '127.0.0.1', encrypted: true, accepted: true, version: expect.stringMatching(/^TLSv1\.[23]$/) });
    const insecure = await run(process.execPath, [BIN, 'status', '--schema', SCHEMA, '--database-url', plainUrl, '--json', '--allow-insecure-connection'], { env: process.env });
    expect(JSON.parse(insecure.stdout).fields.length).toBeGreaterThan(0);
  });
});

/**
 * The shared MariaDB on 127.0.0.1:3306 runs without TLS (have_ssl = DISABLED), so on MariaDB
 * this checks the refused case and what the probe reads; the accepted case runs on PostgreSQL.
 */
(process.env.MYSQL_URL ? describe : describe.skip)('TLS on the local MariaDB (no TLS configured)', () => {
  let db: TestDatabase;
  let base: MyClient;
  beforeAll(async () => {
    db = await createDatabase('mysql', process.env.MYSQL_URL!);
    const o = mysqlOptions(db.url);
    base = new MyClient({ adapter: new PrismaMariaDb({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database!, connectionLimit: 2 }) });
  });
  afterAll(async () => {
    await base?.$disconnect();
    await db?.drop();
  });

  test('requireTls refuses queries; the migrator connection reads Ssl_version as empty', async () => {
    const prisma = base.$extends(columnEncryption({ fields: myFields, keys: testKeyring(), logger: captureLogger().logger, requireTls: true }));
    await expect(prisma.user.create({ data: { email: 'x@example.org' } })).rejects.toMatchObject({ code: 'PCE_INSECURE_CONNECTION', found: 'no TLS' });
    const conn = await openConnection(db.url);
    expect(conn.tls).toEqual({ encrypted: false, version: null, cipher: null });
    await conn.close();
  });

  test('requireTlsAdapter refuses the pool\'s plain connection before its first query, with or without the extension', async () => {
    const o = mysqlOptions(db.url);
    const log = captureLogger();
    const guarded = new MyClient({ adapter: requireTlsAdapter(new PrismaMariaDb({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database!, connectionLimit: 2 }), { logger: log.logger }) });
    try {
      const prisma = guarded.$extends(columnEncryption({ fields: myFields, keys: testKeyring(), logger: captureLogger().logger }));
      await expect(prisma.user.create({ data: { email: 'pooled@example.org' } })).rejects.toMatchObject({ code: 'PCE_INSECURE_CONNECTION', message: expect.stringMatching(/found no TLS/) });
      await expect(guarded.tag.findMany()).rejects.toMatchObject({ code: 'PCE_INSECURE_CONNECTION' });
      expect(await base.user.count()).toBe(0);
      expect(log.events().filter((e) => e.event === 'pce.tls.checked').every((e) => e.accepted === false && e.encrypted === false)).toBe(true);
    } finally {
      await guarded.$disconnect();
    }
  });
});

/**
 * A second MariaDB, started by the test in a temporary folder with `--ssl-cert`/`--ssl-key`: the
 * same database reached with TLS (accepted, version logged) and without (refused).
 */
const noServer = whyNoMariaDbServer();
(noServer ? describe.skip : describe)(`TLS on a MariaDB started with a certificate${noServer ? ` (skipped: ${noServer})` : ''}`, () => {
  let server: TlsMariaDb;
  let db: TestDatabase;
  const bases: MyClient[] = [];
  beforeAll(async () => {
    server = await startTlsMariaDb();
    db = await createDatabase('mysql', server.adminUrl);
  }, 60000);
  afterAll(async () => {
    await Promise.all(bases.map((b) => b.$disconnect()));
    await db?.drop();
    await server?.stop();
  });

  const extended = (tls: boolean, logger = captureLogger().logger) => {
    const o = mysqlOptions(db.url);
    const ssl = tls ? { ssl: { ca: readFileSync(server.cert), rejectUnauthorized: true } } : {};
    const base = new MyClient({ adapter: new PrismaMariaDb({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database!, connectionLimit: 2, ...ssl }) });
    bases.push(base);
    return base.$extends(columnEncryption({ fields: myFields, keys: testKeyring(), logger, requireTls: true }));
  };

  test('requireTls accepts the TLS session (Ssl_version logged) and refuses the plain one', async () => {
    const log = captureLogger();
    const secure = extended(true, log.logger);
    await secure.user.create({ data: { email: 'tls@example.org' } });
    expect((await secure.user.findFirst({ where: { email: 'tls@example.org' } }))?.email).toBe('tls@example.org');
    expect(log.events().filter((e) => e.event === 'pce.tls.checked')).toEqual([
      expect.objectContaining({ encrypted: true, version: expect.stringMatching(/^TLSv1\.[23]$/), cipher: expect.any(String), accepted: true }),
    ]);
    await expect(extended(false).user.findMany()).rejects.toMatchObject({ code: 'PCE_INSECURE_CONNECTION', found: 'no TLS' });
  });

  test('requireTlsAdapter checks each pooled connection once: two connections, two checks, none repeated', async () => {
    const o = mysqlOptions(db.url);
    const log = captureLogger();
    const adapter = requireTlsAdapter(new PrismaMariaDb({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database!, connectionLimit: 2, ssl: { ca: readFileSync(server.cert), rejectUnauthorized: true } }), { logger: log.logger });
    const base = new MyClient({ adapter });
    bases.push(base);
    const prisma = base.$extends(columnEncryption({ fields: myFields, keys: testKeyring(), logger: captureLogger().logger }));
    await prisma.user.create({ data: { email: 'pooled@example.org' } });
    await prisma.$transaction(async (tx) => {
      await tx.user.findFirst({ where: { email: 'pooled@example.org' } });
      // The transaction holds one connection, so this takes the other.
      expect((await prisma.user.findFirst({ where: { email: 'pooled@example.org' } }))?.email).toBe('pooled@example.org');
    });
    for (let i = 0; i < 5; i++) await prisma.user.count();
    const checks = log.events().filter((e) => e.event === 'pce.tls.checked');
    expect(checks).toHaveLength(2);
    expect(checks).toEqual([0, 1].map(() => expect.objectContaining({ encrypted: true, version: expect.stringMatching(/^TLSv1\.[23]$/), accepted: true })));
  });

  test('the migrator connection with sslaccept=strict reports TLS; without it, no TLS', async () => {
    const tls = await openConnection(`${db.url}?sslaccept=strict&sslcert=${encodeURIComponent(server.cert)}`);
    expect(tls.tls).toMatchObject({ encrypted: true, version: expect.stringMatching(/^TLSv1\.[23]$/) });
    await tls.close();
    const plain = await openConnection(db.url);
    expect(plain.tls).toEqual({ encrypted: false, version: null, cipher: null });
    await plain.close();
  });
});
