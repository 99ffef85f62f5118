import { randomBytes, type KeyObject } from 'node:crypto';
import type { Client as PgRaw } from 'pg';
import type { Keyring } from '../dist';
import type { Clients } from './clients';
import { PARENTS, SEED_USERS, seedUser, userId, writtenUser, type UserValues } from './fixtures';
import { rawDecrypt, rawEncrypt, rawIndex } from './support/rawCrypto';
import type { Entrant } from './support/rounds';

/** Cryptographic operations one call of a workload performs in the extension. */
export interface CryptoOps {
  readonly encrypt: number;
  readonly decrypt: number;
  readonly hmac: number;
}

export interface Workload {
  readonly name: string;
  readonly kind: 'read' | 'write';
  readonly warmup: number;
  readonly rounds: number;
  readonly ops: CryptoOps;
  readonly entrants: readonly Entrant[];
  /** Whether a target asks this workload to be within 0.1 ms of plain. */
  readonly absoluteTarget: boolean;
}

/** What the raw node:crypto reference needs: the same keys and associated data as the extension. */
export class RawKit {
  readonly dataKey: KeyObject;
  readonly header: string;
  private readonly aads = new Map<string, Buffer>();

  constructor(private readonly keyring: Keyring) {
    this.dataKey = keyring.primaryData.key;
    this.header = `pce:v1:${keyring.primaryData.id}:`;
  }

  aad(binding: string): Buffer {
    let aad = this.aads.get(binding);
    if (!aad) this.aads.set(binding, (aad = Buffer.from(this.header + binding, 'utf8')));
    return aad;
  }

  indexKey(binding: string): KeyObject {
    return this.keyring.indexKeysFor(binding)[0]!.key;
  }

  get indexPrefix(): string {
    return `${this.keyring.primaryIndexKeyId}:`;
  }
}

interface Sealed {
  readonly aad: Buffer;
  readonly stored: string;
}

type Row = Record<string, unknown>;

const USER_ENCRYPTED = ['email', 'name', 'phone'] as const;
const READING_ENCRYPTED = ['body', 'topic'] as const;

function sealedOf(kit: RawKit, model: string, row: Row, fields: readonly string[]): Sealed[] {
  return fields.filter((f) => typeof row[f] === 'string').map((f) => ({ aad: kit.aad(`${model}.${f}`), stored: row[f] as string }));
}

function decryptAll(kit: RawKit, values: readonly Sealed[]): void {
  const headerLength = kit.header.length;
  for (const v of values) rawDecrypt(kit.dataKey, headerLength, v.aad, v.stored);
}

/** Raw work of writing one user through the extension: 3 encryptions and 2 blind indexes. */
function encryptUser(kit: RawKit, keys: { email: KeyObject; phone: KeyObject }, u: { email: string; name: string; phone: string }): Sealed[] {
  const out = [
    { aad: kit.aad('User.email'), stored: rawEncrypt(kit.dataKey, kit.header, kit.aad('User.email'), u.email) },
    { aad: kit.aad('User.name'), stored: rawEncrypt(kit.dataKey, kit.header, kit.aad('User.name'), u.name) },
    { aad: kit.aad('User.phone'), stored: rawEncrypt(kit.dataKey, kit.header, kit.aad('User.phone'), u.phone) },
  ];
  rawIndex(keys.email, kit.indexPrefix, u.email.normalize('NFKC').trim().toLowerCase());
  rawIndex(keys.phone, kit.indexPrefix, u.phone.replace(/\s+/g, ''));
  return out;
}

/** Random text shaped like a stored blind index, unique per call, for plain writes into the unique column. */
function fakeIndex(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

export interface WorkloadContext {
  readonly clients: Clients;
  readonly kit: RawKit;
  /** SQL on the database plain, hook and extension share, and on the peer's. */
  readonly oursSql: PgRaw;
  readonly peerSql: PgRaw;
  /** Scale of the repeat counts (1 = default; smaller for a quick smoke run). */
  readonly scale: number;
}

/** Builds every workload. Reads capture what plain Prisma returns so the raw reference decrypts exactly those values. */
export async function buildWorkloads(ctx: WorkloadContext): Promise<Workload[]> {
  const { clients, kit } = ctx;
  const { plain, hook, extension, extensionNode, peer } = clients;
  const r = (n: number) => Math.max(3, Math.round(n * ctx.scale));
  const seedWhere = { nickname: 'seed' };
  const keys = { email: kit.indexKey('User.email'), phone: kit.indexKey('User.phone') };
  const workloads: Workload[] = [];
  // Stored rows as the extension wrote them: plain writes reuse their text, a different row each
  // time, so the floor moves the same number of distinct ciphertext-sized strings.
  const storedUsers = (await plain.user.findMany({ where: seedWhere, orderBy: { karma: 'asc' } })) as Row[];
  const storedAt = (n: number) => storedUsers[n % storedUsers.length]!;
  const plainUser = (n: number, nickname: string) => {
    const t = storedAt(n);
    return { email: t.email as string, emailIndex: fakeIndex(kit.indexPrefix), name: t.name as string, phone: t.phone as string, phoneIndex: t.phoneIndex as string, nickname };
  };

  // Read workloads: every contender runs the same findMany; the raw reference decrypts the same values.
  const findManyEntrants = (args: object, sealed: Parameters<typeof decryptAll>[1]): Entrant[] => [
    { name: 'plain', run: () => plain.user.findMany(args) },
    { name: 'hook', run: () => hook.user.findMany(args) },
    { name: 'extension', run: () => extension.user.findMany(args) },
    { name: 'extension-node', run: () => extensionNode.user.findMany(args) },
    { name: 'peer', run: () => peer.user.findMany(args) },
    { name: 'raw', run: () => decryptAll(kit, sealed) },
  ];

  for (const take of [1, 100, 1000]) {
    const args = { where: seedWhere, take, orderBy: { karma: 'asc' as const } };
    const stored = (await plain.user.findMany(args)) as Row[];
    const sealed = stored.flatMap((row) => sealedOf(kit, 'User', row, USER_ENCRYPTED));
    workloads.push({
      name: `findMany ${take} x 3 fields`,
      kind: 'read',
      warmup: take === 1000 ? r(5) : r(20),
      rounds: take === 1000 ? r(30) : take === 100 ? r(100) : r(300),
      ops: { encrypt: 0, decrypt: sealed.length, hmac: 0 },
      absoluteTarget: false,
      entrants: findManyEntrants(args, sealed),
    });
  }

  {
    // findUnique through the unique blind index, cycling over the seeded users.
    const byId = new Map(storedUsers.map((row) => [row.id as string, row]));
    const users: UserValues[] = Array.from({ length: SEED_USERS }, (_, i) => seedUser(i));
    const cycle = () => {
      let n = 0;
      return () => users[n++ % users.length]!;
    };
    const [p, h, e, en, q, w] = [cycle(), cycle(), cycle(), cycle(), cycle(), cycle()];
    const emailKey = keys.email;
    workloads.push({
      name: 'findUnique by blind index',
      kind: 'read',
      warmup: r(30),
      rounds: r(400),
      ops: { encrypt: 0, decrypt: 3, hmac: 1 },
      absoluteTarget: true,
      entrants: [
        { name: 'plain', run: () => plain.user.findUnique({ where: { emailIndex: byId.get(p().id)!.emailIndex as string } }) },
        { name: 'hook', run: () => hook.user.findUnique({ where: { emailIndex: byId.get(h().id)!.emailIndex as string } }) },
        { name: 'extension', run: () => extension.user.findUnique({ where: { emailIndex: e().email } }) },
        { name: 'extension-node', run: () => extensionNode.user.findUnique({ where: { emailIndex: en().email } }) },
        // prisma-field-encryption rewrites equality on the encrypted field to its hash field.
        { name: 'peer', run: () => peer.user.findUnique({ where: { email: q().email } as never }) },
        {
          name: 'raw',
          run: () => {
            const u = w();
            rawIndex(emailKey, kit.indexPrefix, u.email.normalize('NFKC').trim().toLowerCase());
            decryptAll(kit, sealedOf(kit, 'User', byId.get(u.id)!, USER_ENCRYPTED));
          },
        },
      ],
    });
  }

  {
    // Single create; plain writes stored-looking text of the same sizes.
    let n = 0;
    const next = () => writtenUser(n++, 'write');
    let p = 0;
    const plainPayload = () => plainUser(p++, 'write');
    let plainData = plainPayload();
    let hookData = plainPayload();
    workloads.push({
      name: 'create (3 fields, 2 indexes)',
      kind: 'write',
      warmup: r(30),
      rounds: r(300),
      ops: { encrypt: 3, decrypt: 3, hmac: 2 },
      absoluteTarget: true,
      entrants: [
        { name: 'plain', before: () => (plainData = plainPayload()), run: () => plain.user.create({ data: plainData }) },
        { name: 'hook', before: () => (hookData = plainPayload()), run: () => hook.user.create({ data: hookData }) },
        { name: 'extension', run: () => extension.user.create({ data: next() }) },
        { name: 'extension-node', run: () => extensionNode.user.create({ data: next() }) },
        { name: 'peer', run: () => peer.user.create({ data: next() }) },
        { name: 'raw', run: () => decryptAll(kit, encryptUser(kit, keys, next())) },
      ],
    });
  }

  {
    const size = 1000;
    let n = 1_000_000;
    const batch = () => Array.from({ length: size }, () => writtenUser(n++, 'bulk'));
    const plainBatch = () => Array.from({ length: size }, (_, i) => plainUser(i, 'bulk'));
    const clearOurs = () => ctx.oursSql.query(`DELETE FROM "User" WHERE nickname = 'bulk'`);
    const clearPeer = () => ctx.peerSql.query(`DELETE FROM "User" WHERE nickname = 'bulk'`);
    let data: unknown[] = [];
    let rawData: ReturnType<typeof batch> = [];
    workloads.push({
      name: `createMany ${size} x 3 fields`,
      kind: 'write',
      warmup: r(3),
      rounds: r(20),
      ops: { encrypt: 3 * size, decrypt: 0, hmac: 2 * size },
      absoluteTarget: false,
      entrants: [
        { name: 'plain', before: async () => { await clearOurs(); data = plainBatch(); }, run: () => plain.user.createMany({ data: data as never }) },
        { name: 'hook', before: async () => { await clearOurs(); data = plainBatch(); }, run: () => hook.user.createMany({ data: data as never }) },
        { name: 'extension', before: async () => { await clearOurs(); data = batch(); }, run: () => extension.user.createMany({ data: data as never }) },
        { name: 'extension-node', before: async () => { await clearOurs(); data = batch(); }, run: () => extensionNode.user.createMany({ data: data as never }) },
        { name: 'peer', before: async () => { await clearPeer(); data = batch(); }, run: () => peer.user.createMany({ data: data as never }) },
        { name: 'raw', before: () => (rawData = batch()), run: () => { for (const u of rawData) encryptUser(kit, keys, u); } },
      ],
    });
  }

  {
    const args = { where: { nickname: 'seed', karma: { lt: PARENTS } }, include: { readings: true } };
    const stored = (await plain.user.findMany(args)) as (Row & { readings: Row[] })[];
    const sealed = stored.flatMap((u) => [...sealedOf(kit, 'User', u, USER_ENCRYPTED), ...u.readings.flatMap((rd) => sealedOf(kit, 'Reading', rd, READING_ENCRYPTED))]);
    workloads.push({
      name: `include ${PARENTS} parents x ${stored[0]?.readings.length ?? 0} children`,
      kind: 'read',
      warmup: r(5),
      rounds: r(30),
      ops: { encrypt: 0, decrypt: sealed.length, hmac: 0 },
      absoluteTarget: false,
      entrants: findManyEntrants(args, sealed),
    });
  }

  {
    // One update of two encrypted fields (one indexed); the updated row comes back decrypted.
    const target = userId(SEED_USERS - 1);
    // Plain writes stored text taken from other rows, a different payload each time like the others.
    let m = 0;
    const plainData = () => {
      const t = storedAt(m++);
      return { name: t.name as string, phone: t.phone as string, phoneIndex: t.phoneIndex as string };
    };
    let n = 0;
    const next = () => ({ name: `Renamed Person ${n}`, phone: `+44 117 496 ${String(n++ % 10000).padStart(4, '0')}` });
    const storedEmail = rawEncrypt(kit.dataKey, kit.header, kit.aad('User.email'), seedUser(SEED_USERS - 1).email);
    workloads.push({
      name: 'update (2 fields, 1 index)',
      kind: 'write',
      warmup: r(30),
      rounds: r(300),
      ops: { encrypt: 2, decrypt: 3, hmac: 1 },
      absoluteTarget: false,
      entrants: [
        { name: 'plain', run: () => plain.user.update({ where: { id: target }, data: plainData() }) },
        { name: 'hook', run: () => hook.user.update({ where: { id: target }, data: plainData() }) },
        { name: 'extension', run: () => extension.user.update({ where: { id: target }, data: next() }) },
        { name: 'extension-node', run: () => extensionNode.user.update({ where: { id: target }, data: next() }) },
        { name: 'peer', run: () => peer.user.update({ where: { id: target }, data: next() }) },
        {
          name: 'raw',
          run: () => {
            const d = next();
            const name = rawEncrypt(kit.dataKey, kit.header, kit.aad('User.name'), d.name);
            const phone = rawEncrypt(kit.dataKey, kit.header, kit.aad('User.phone'), d.phone);
            rawIndex(keys.phone, kit.indexPrefix, d.phone.replace(/\s+/g, ''));
            decryptAll(kit, [
              { aad: kit.aad('User.email'), stored: storedEmail },
              { aad: kit.aad('User.name'), stored: name },
              { aad: kit.aad('User.phone'), stored: phone },
            ]);
          },
        },
      ],
    });
  }
  return workloads;
}
