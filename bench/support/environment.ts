import { randomBytes } from 'node:crypto';
import { Client as PgRaw } from 'pg';
import { localKeys, type Keyring } from '../../dist';
import { createDatabase, type TestDatabase } from '../../test/support/databases';
import { createClients, type Clients } from '../clients';
import { loadPeerDmmf, peerKey, type PeerDmmf } from '../peer/fieldEncryption';
import { startServer, type BenchServer } from './server';

/** What `npm run bench` and `npm run bench:profile` both run on. */
export interface BenchEnvironment {
  readonly server: BenchServer;
  /** This extension's (and plain Prisma's) database, and prisma-field-encryption's own. */
  readonly ours: TestDatabase;
  readonly peerDb: TestDatabase;
  /** Raw connections to the two databases, for seeding checks and settings. */
  readonly oursSql: PgRaw;
  readonly peerSql: PgRaw;
  readonly keyring: Keyring;
  readonly peerDmmf: PeerDmmf;
  /** prisma-field-encryption's key, in its own text format. */
  readonly peerKeyText: string;
  readonly clients: Clients;
  /** Disconnects everything, drops both databases and stops the server. */
  close(): Promise<void>;
}

/** Starts the server, creates two fresh databases named after `prefix`, and builds every contender's client. */
export async function openBenchEnvironment(prefix: string): Promise<BenchEnvironment> {
  const server = await startServer();
  const ours = await createDatabase('postgres', server.adminUrl, prefix);
  const peerDb = await createDatabase('postgres', server.adminUrl, `${prefix}_peer`);
  const oursSql = new PgRaw({ connectionString: ours.url });
  const peerSql = new PgRaw({ connectionString: peerDb.url });
  await Promise.all([oursSql.connect(), peerSql.connect()]);
  const b64 = () => randomBytes(32).toString('base64');
  // A wrap key too: the schema has subject models, and a client over them needs one.
  const keyring = localKeys({ data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }], wrap: [{ id: 'w1', key: b64() }] });
  const peerDmmf = loadPeerDmmf();
  const peerKeyText = peerKey();
  process.env.PRISMA_FIELD_ENCRYPTION_HASH_SALT ??= randomBytes(16).toString('hex');
  const clients = createClients(ours.url, peerDb.url, keyring, peerDmmf, peerKeyText);
  return {
    server,
    ours,
    peerDb,
    oursSql,
    peerSql,
    keyring,
    peerDmmf,
    peerKeyText,
    clients,
    async close() {
      await clients.close();
      await Promise.all([oursSql.end(), peerSql.end()]);
      await ours.drop();
      await peerDb.drop();
      await server.stop();
    },
  };
}
