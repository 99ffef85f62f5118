import { randomBytes } from 'node:crypto';
import { columnEncryption, ConfigurationError, KeyringError, localKeys, localKeysFromEnv, UnsupportedQueryError } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { testWrapKey } from '../support/keys';

/**
 * Regression tests for the security review: each case silently stored plaintext, lost rows,
 * created duplicates or leaked key material before it was fixed.
 */
const b64 = () => randomBytes(32).toString('base64');
const keyA = b64();
const index1 = b64();
const index2 = b64();
/** The test schema has subject models: a client over it needs a wrap key. */
const wrap = [testWrapKey()];

describe.each(providers())('review regressions on %s', (provider) => {
  let h: Harness;
  let both: Harness['prisma'];
  beforeAll(async () => {
    h = await createHarness(provider, { keys: localKeys({ data: [{ id: 'A', key: keyA }], index: [{ id: 'i1', key: index1 }], wrap }) });
    // A re-index in progress: i2 is the new primary index key, rows written so far carry i1.
    both = h.extend({ keys: localKeys({ data: [{ id: 'A', key: keyA }], index: [{ id: 'i2', key: index2 }, { id: 'i1', key: index1 }], wrap }) });
  });
  afterAll(async () => {
    await h?.close();
  });

  test('a nested to-one update in the { data } wrapper encrypts, even when the target has a field named data', async () => {
    const u = await h.prisma.user.create({ data: { email: 'wrapper@x.org', profile: { create: { birthDate: '2000-01-01' } } } });
    await h.prisma.user.update({ where: { id: u.id }, data: { profile: { update: { data: { birthPlace: 'TOP-SECRET-PLACE', data: 'plain extra' } } } } });
    const [raw] = await h.sql(`SELECT ${h.q('birthPlace')}, ${h.q('data')} FROM ${h.q('Profile')} WHERE ${h.q('userId')} = $1`, [u.id]);
    expect(String(raw!.birthPlace)).toMatch(/^pce:v1:A:/);
    expect(raw!.data).toBe('plain extra');
    expect((await h.prisma.profile.findFirst({ where: { userId: u.id } }))?.birthPlace).toBe('TOP-SECRET-PLACE');
  });

  test('upsert through an index field finds a row indexed under an older index key instead of creating a duplicate', async () => {
    await h.prisma.user.create({ data: { email: 'old-key@x.org', name: 'Before' } });
    const result = await both.user.upsert({ where: { emailIndex: 'old-key@x.org' }, create: { email: 'old-key@x.org', name: 'Duplicate' }, update: { name: 'After' } });
    expect(result.name).toBe('After');
    expect(await both.user.count({ where: { email: 'old-key@x.org' } })).toBe(1);
  });

  test('nested connectOrCreate and connect find records indexed under different index keys in one query', async () => {
    const owner = await h.prisma.user.create({ data: { email: 'tags-owner@x.org' } });
    await h.prisma.tag.create({ data: { label: 'saturn' } }); // indexed under i1
    await both.tag.create({ data: { label: 'venus' } }); // indexed under i2
    const reading = await both.reading.create({
      data: { userId: owner.id, title: 't', body: 'b', tags: { connectOrCreate: [{ where: { labelIndex: 'Saturn' }, create: { label: 'Saturn' } }], connect: [{ labelIndex: 'venus' }] } },
      include: { tags: true },
    });
    expect(reading.tags.map((t) => t.label).sort()).toEqual(['saturn', 'venus']);
    expect(await both.tag.count()).toBe(2);
    // A unique lookup on a row under i1 nested inside a top-level lookup on a row under i2.
    await both.user.update({
      where: { emailIndex: 'tags-owner@x.org' },
      data: { readings: { update: { where: { id: reading.id }, data: { tags: { disconnect: [{ labelIndex: 'saturn' }] } } } } },
    });
    expect((await both.reading.findUnique({ where: { id: reading.id }, include: { tags: true } }))?.tags.map((t) => t.label)).toEqual(['venus']);
  });

  test('passthrough mode keeps legacy rows under NOT, every and none', async () => {
    await h.sql(`INSERT INTO ${h.q('LegacyContact')} (${h.q('email')}) VALUES ($1)`, ['legacy-not@x.org']);
    const modern = await h.prisma.legacyContact.create({ data: { email: 'modern-not@x.org' } });
    const ids = async (where: object) => (await h.prisma.legacyContact.findMany({ where, orderBy: { id: 'asc' } })).map((r) => r.email);
    expect(await ids({ NOT: { email: 'someone-else@x.org' }, email: { not: null } })).toEqual(['legacy-not@x.org', 'modern-not@x.org']);
    expect(await ids({ email: { not: { equals: 'modern-not@x.org' } } })).toEqual(['legacy-not@x.org']);
    expect(await ids({ NOT: { email: 'legacy-not@x.org' } })).toEqual(['modern-not@x.org']);
    expect(modern.email).toBe('modern-not@x.org');
  });

  test('comparing a column with an encrypted or index column is refused', async () => {
    const error = await h.prisma.user.findMany({ where: { nickname: { equals: h.prisma.user.fields.email } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedQueryError);
    expect(error).toMatchObject({ model: 'User', field: 'email', operator: 'field reference' });
  });

  test('{ set: undefined } leaves an encrypted field alone; unknown operators are not echoed', async () => {
    const u = await h.prisma.user.create({ data: { email: 'set-undefined@x.org', name: 'Kept' } });
    await h.prisma.user.update({ where: { id: u.id }, data: { name: { set: undefined }, nickname: 'n' } });
    expect((await h.prisma.user.findUnique({ where: { id: u.id } }))?.name).toBe('Kept');
    const error = (await h.prisma.user.update({ where: { id: u.id }, data: { name: { 'alice@secret.org': 1 } as never } }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(UnsupportedQueryError);
    expect(error.message).not.toContain('alice@secret.org');
  });
});

describe('start-up checks', () => {
  test('a map that is not the generated one fails when the extension is made', () => {
    const keys = localKeys({ data: [{ id: 'A', key: b64() }], index: [{ id: 'i', key: b64() }] });
    expect(() => columnEncryption({ fields: {} as never, keys })).toThrow(ConfigurationError);
  });

  test('a key pasted where the id belongs is rejected without echoing it', () => {
    const key = randomBytes(32).toString('base64url');
    let error: unknown;
    try {
      localKeysFromEnv({ PCE_DATA_KEYS: `${key}:d1`, PCE_INDEX_KEYS: `i1:${b64()}` });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyringError);
    expect((error as Error).message).not.toContain(key);
    expect((error as Error).message).not.toContain(key.slice(0, 12));
  });

  test('a password-like key is rejected as weak', () => {
    const password = Buffer.from('correct horse battery staple 123').toString('base64');
    expect(() => localKeys({ data: [{ id: 'A', key: password }], index: [{ id: 'i', key: b64() }] })).toThrow(/too weak/);
  });
});

describe('keys given as a loader function', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('postgres');
  });
  afterAll(async () => {
    await h?.close();
  });

  test('a failed load fails the query with its error and is retried by the next query', async () => {
    const ring = localKeys({ data: [{ id: 'A', key: keyA }], index: [{ id: 'i1', key: index1 }], wrap });
    let kmsDown = true;
    let calls = 0;
    const prisma = h.extend({
      keys: async () => {
        calls++;
        if (kmsDown) throw new KeyringError('A', 'KMS unreachable (simulated transient start-up failure)');
        return ring;
      },
    });
    await expect(prisma.user.count()).rejects.toThrow(/KMS unreachable/);
    kmsDown = false;
    const created = await prisma.user.create({ data: { email: 'after-retry@x.org' } });
    expect(created.email).toBe('after-retry@x.org');
    const loads = calls;
    await prisma.user.count();
    expect(calls).toBe(loads); // loaded once it worked, then kept
  });
});
