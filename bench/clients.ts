import { PrismaPg } from '@prisma/adapter-pg';
import pino from 'pino';
import { PrismaClient } from '../generated/postgres/client/client';
import { encryptedFields } from '../generated/postgres/encryption';
import { columnEncryption, type Keyring } from '../dist';
import { peerExtension, type PeerDmmf } from './peer/fieldEncryption';

export type Client = PrismaClient;

/** The clients one run compares. plain, hook and extension share one base client and database. */
export interface Clients {
  /** Prisma 7 without any extension: the floor. */
  readonly plain: Client;
  /** An extension whose query hook only forwards: what Prisma's extension mechanism alone costs. */
  readonly hook: Client;
  /** This project's extension, on the process's default crypto backend (native where it loads). */
  readonly extension: Client;
  /** The same extension forced onto node:crypto (`cryptoBackend: 'node'`), for both figures in one run. */
  readonly extensionNode: Client;
  /** prisma-field-encryption on its own database (its column format differs). */
  readonly peer: Client;
  close(): Promise<void>;
}

function baseClient(url: string): Client {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
}

export function createClients(oursUrl: string, peerUrl: string, keyring: Keyring, peerDmmf: PeerDmmf, peerKey: string): Clients {
  const base = baseClient(oursUrl);
  const peerBase = baseClient(peerUrl);
  const hook = base.$extends({
    query: {
      $allModels: {
        async $allOperations({ args, query }) {
          return query(args);
        },
      },
    },
  });
  const extension = base.$extends(columnEncryption({ fields: encryptedFields, keys: keyring, logger: pino({ level: 'silent' }) }));
  const extensionNode = base.$extends(columnEncryption({ fields: encryptedFields, keys: keyring, logger: pino({ level: 'silent' }), cryptoBackend: 'node' }));
  const peer = peerBase.$extends(peerExtension(peerDmmf, peerKey));
  return {
    plain: base,
    hook: hook as unknown as Client,
    extension: extension as unknown as Client,
    extensionNode: extensionNode as unknown as Client,
    peer: peer as unknown as Client,
    async close() {
      await Promise.all([base.$disconnect(), peerBase.$disconnect()]);
    },
  };
}
