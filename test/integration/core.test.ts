import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { DecryptionError, EncryptionError, localKeys, UnsupportedQueryError } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { testWrapKey } from '../support/keys';

const b64 = () => randomBytes(32).toString('base64');
const keyA = b64();
const keyB = b64();
const index1 = b64();
const index2 = b64();
/** The test schema has subject models: a client over it needs a wrap key. */
const wrap = [testWrapKey()];

/** Blind index recomputed independently of the library, from the documented construction. */
function expectedIndex(rootB64: string, indexKeyId: string, binding: string, normalized: string): string {
  const fieldKey = Buffer.from(hkdfSync('sha256', Buffer.from(rootB64, 'base64'), 'prisma-column-encryption/blind-index/v1', binding, 32));
  return `${indexKeyId}:${createHmac('sha256', fieldKey).update(normalized).digest('base64url')}`;
}

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the operation to fail');
}

describe.each(providers())('core behaviour on %s', (provider) => {
  let h: Harness;
  const ringA = () => localKeys({ data: [{ id: 'A', key: keyA }], index: [{ id: 'i1', key: index1 }], wrap });
  beforeAll(async () => {
    h = await createHarness(provider, { keys: ringA() });
  });
  afterAll(async () => {
    await h?.close();
  });
  const rawUser = async (id: string) => (await h.sql(`SELECT * FROM ${h.q('User')} WHERE ${h.q('id')} = $1`, [id]))[0]!;

  test('every write operation stores ciphertext and a blind index of the normalised value', async () => {
    const created = await h.prisma.user.create({ data: { email: ' Ada@Example.ORG', name: 'Ada Lovelace', phone: '+44 20 7946 0000', nickname: 'ada' } });
    expect(created).toMatchObject({ email: ' Ada@Example.ORG', name: 'Ada Lovelace', phone: '+44 20 7946 0000' });
    const raw = await rawUser(created.id);
    for (const field of ['email', 'name', 'phone']) expect(String(raw[field])).toMatch(/^pce:v1:A:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
    expect(raw.nickname).toBe('ada');
    expect(raw.emailIndex).toBe(expectedIndex(index1, 'i1', 'User.email', 'ada@example.org'));
    expect(raw.phoneIndex).toBe(expectedIndex(index1, 'i1', 'User.phone', '+442079460000'));
    expect(JSON.stringify(raw)).not.toMatch(/Ada|Lovelace|7946/);

    await h.prisma.user.createMany({ data: [{ email: 'm1@x.org', name: 'Many One' }, { email: 'm2@x.org' }] });
    const many = await h.sql(`SELECT ${h.q('email')}, ${h.q('name')}, ${h.q('emailIndex')} FROM ${h.q('User')} WHERE ${h.q('emailIndex')} IN ($1, $2)`, [
      expectedIndex(index1, 'i1', 'User.email', 'm1@x.org'),
      expectedIndex(index1, 'i1', 'User.email', 'm2@x.org'),
    ]);
    expect(many).toHaveLength(2);
    for (const row of many) expect(String(row.email)).toMatch(/^pce:v1:A:/);

    const updated = await h.prisma.user.update({ where: { id: created.id }, data: { email: { set: 'ada@lovelace.dev' }, name: null } });
    expect(updated).toMatchObject({ email: 'ada@lovelace.dev', name: null });
    const afterUpdate = await rawUser(created.id);
    expect(afterUpdate.emailIndex).toBe(expectedIndex(index1, 'i1', 'User.email', 'ada@lovelace.dev'));
    expect(afterUpdate.name).toBeNull();

    const upserted = await h.prisma.user.upsert({ where: { emailIndex: 'NEW@x.org' }, create: { email: 'new@x.org', name: 'New' }, update: { name: 'Old' } });
    expect(upserted.name).toBe('New');
    const again = await h.prisma.user.upsert({ where: { emailIndex: 'new@x.org' }, create: { email: 'new@x.org', name: 'New' }, update: { name: 'Updated' } });
    expect(again.id).toBe(upserted.id);
    expect(String((await rawUser(upserted.id)).name)).toMatch(/^pce:v1:A:/);

    const count = await h.prisma.user.updateMany({ where: { email: { in: ['m1@x.org', 'm2@x.org'] } }, data: { phone: '0800 000' } });
    expect(count.count).toBe(2);
    const phones = await h.sql(`SELECT ${h.q('phone')}, ${h.q('phoneIndex')} FROM ${h.q('User')} WHERE ${h.q('phoneIndex')} = $1`, [
      expectedIndex(index1, 'i1', 'User.phone', '0800000'),
    ]);
    expect(phones).toHaveLength(2);
    for (const row of phones) expect(String(row.phone)).toMatch(/^pce:v1:A:/);
  });

  test('equality filters go through the blind index in every operation', async () => {
    const u = await h.prisma.user.create({ data: { email: 'Grace@Navy.mil', name: 'Grace' } });
    expect((await h.prisma.user.findFirst({ where: { email: '  grace@navy.MIL ' } }))?.id).toBe(u.id);
    expect((await h.prisma.user.findFirst({ where: { email: { equals: 'GRACE@navy.mil' } } }))?.id).toBe(u.id);
    expect((await h.prisma.user.findMany({ where: { email: 'grace@navy.mil' } })).map((x) => x.name)).toEqual(['Grace']);
    expect((await h.prisma.user.findUnique({ where: { emailIndex: 'Grace@Navy.mil' } }))?.name).toBe('Grace');
    expect((await h.prisma.user.findUniqueOrThrow({ where: { emailIndex: 'grace@navy.mil' } })).email).toBe('Grace@Navy.mil');
    expect(await h.prisma.user.count({ where: { email: 'grace@navy.mil' } })).toBe(1);
    expect(await h.prisma.user.findFirst({ where: { email: 'nobody@navy.mil' } })).toBeNull();
    await h.prisma.user.update({ where: { emailIndex: 'grace@navy.mil' }, data: { nickname: 'amazing' } });
    expect((await rawUser(u.id)).nickname).toBe('amazing');
    await h.prisma.user.delete({ where: { emailIndex: 'grace@navy.mil' } });
    expect(await h.prisma.user.count({ where: { email: 'grace@navy.mil' } })).toBe(0);
  });

  test('null writes clear the blind index and null filters work', async () => {
    const u = await h.prisma.user.create({ data: { email: 'null@x.org', phone: '123' } });
    expect((await rawUser(u.id)).phoneIndex).not.toBeNull();
    await h.prisma.user.update({ where: { id: u.id }, data: { phone: null } });
    const raw = await rawUser(u.id);
    expect(raw.phone).toBeNull();
    expect(raw.phoneIndex).toBeNull();
    const withoutPhone = await h.prisma.user.findMany({ where: { phone: null, email: 'null@x.org' } });
    expect(withoutPhone.map((x) => x.id)).toEqual([u.id]);
  });

  test('what ciphertext cannot answer is refused with a typed error, before anything runs', async () => {
    const cases: Array<[() => Promise<unknown>, string, string]> = [
      [() => h.prisma.user.findMany({ where: { email: { contains: 'x' } } }), 'email', 'contains'],
      [() => h.prisma.user.findMany({ where: { name: 'Ada' } }), 'name', 'equals'],
      [() => h.prisma.user.findMany({ orderBy: { email: 'asc' } }), 'email', 'orderBy'],
      [() => h.prisma.user.findMany({ where: { email: { gt: 'a' } } }), 'email', 'gt'],
      [() => h.prisma.user.update({ where: { emailIndex: 'x@x.org' }, data: { emailIndex: 'forged' } }), 'emailIndex', 'update'],
    ];
    for (const [run, field, operator] of cases) {
      const error = await errorOf(run());
      expect(error).toBeInstanceOf(UnsupportedQueryError);
      expect(error).toMatchObject({ model: 'User', field, operator });
      expect(error.message).toContain(`User.${field}`);
    }
  });

  test('a failed encryption writes nothing', async () => {
    const before = await h.sql(`SELECT COUNT(*) AS n FROM ${h.q('User')}`);
    const error = await errorOf(h.prisma.user.createMany({ data: [{ email: 'ok@x.org' }, { email: 42 as unknown as string }] }));
    expect(error).toBeInstanceOf(EncryptionError);
    expect(error).toMatchObject({ model: 'User', field: 'email' });
    const after = await h.sql(`SELECT COUNT(*) AS n FROM ${h.q('User')}`);
    expect(Number(after[0]!.n)).toBe(Number(before[0]!.n));
  });

  test('ciphertext moved to another field or model, tampered, or plaintext in a strict column is rejected', async () => {
    const u = await h.prisma.user.create({ data: { email: 'swap@x.org', name: 'Swap', phone: '555' } });
    const raw = await rawUser(u.id);
    const setColumn = (column: string, value: unknown) =>
      h.sql(`UPDATE ${h.q('User')} SET ${h.q(column)} = $1 WHERE ${h.q('id')} = $2`, [value, u.id]);

    await setColumn('name', raw.email); // User.email ciphertext pasted into User.name
    let error = await errorOf(h.prisma.user.findUnique({ where: { id: u.id } }));
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error).toMatchObject({ model: 'User', field: 'name', keyId: 'A', reason: 'authentication-failed' });
    expect(error.message).not.toContain('swap@x.org');

    const profileOwner = await h.prisma.user.create({ data: { email: 'owner@x.org', profile: { create: { birthDate: '1815-12-10' } } } });
    await h.sql(`UPDATE ${h.q('Profile')} SET ${h.q('birthTime')} = $1 WHERE ${h.q('userId')} = $2`, [raw.phone, profileOwner.id]);
    error = await errorOf(h.prisma.profile.findFirst({ where: { userId: profileOwner.id } }));
    expect(error).toMatchObject({ model: 'Profile', field: 'birthTime', reason: 'authentication-failed' });

    const tampered = String(raw.name).slice(0, -2) + (String(raw.name).endsWith('AA') ? 'BA' : 'AA');
    await setColumn('name', tampered);
    error = await errorOf(h.prisma.user.findUnique({ where: { id: u.id } }));
    expect(error).toMatchObject({ field: 'name', reason: 'authentication-failed' });

    await setColumn('name', 'Plain Text');
    error = await errorOf(h.prisma.user.findUnique({ where: { id: u.id } }));
    expect(error).toMatchObject({ field: 'name', reason: 'not-ciphertext' });

    await setColumn('name', String(raw.name).replace('pce:v1:A:', 'pce:v1:Z:'));
    error = await errorOf(h.prisma.user.findUnique({ where: { id: u.id } }));
    expect(error).toMatchObject({ field: 'name', keyId: 'Z', reason: 'unknown-key' });
    expect(error.message).toContain("key id 'Z'");
    await h.prisma.user.deleteMany({ where: { id: u.id } });
  });

  test('values written under key A stay readable after key B becomes primary', async () => {
    const old = await h.prisma.user.create({ data: { email: 'rotate@x.org', name: 'Under A' } });
    const rotated = h.extend({ keys: localKeys({ data: [{ id: 'B', key: keyB }, { id: 'A', key: keyA }], index: [{ id: 'i1', key: index1 }], wrap }) });
    expect((await rotated.user.findUnique({ where: { id: old.id } }))?.name).toBe('Under A');
    const fresh = await rotated.user.create({ data: { email: 'fresh@x.org', name: 'Under B' } });
    expect(String((await rawUser(fresh.id)).name)).toMatch(/^pce:v1:B:/);
    expect((await rotated.user.findFirst({ where: { email: 'rotate@x.org' } }))?.id).toBe(old.id);
    // A client that only knows key A cannot read B's rows and says which key it lacks.
    const error = await errorOf(h.prisma.user.findUnique({ where: { id: fresh.id } }));
    expect(error).toMatchObject({ field: 'email', keyId: 'B', reason: 'unknown-key' });
    await rotated.user.delete({ where: { id: fresh.id } });
  });

  test('lookups find rows indexed under an older index key while a re-index is in progress', async () => {
    const u = await h.prisma.user.create({ data: { email: 'reindex@x.org', name: 'Old index' } });
    const both = h.extend({ keys: localKeys({ data: [{ id: 'A', key: keyA }], index: [{ id: 'i2', key: index2 }, { id: 'i1', key: index1 }], wrap }) });
    expect((await both.user.findFirst({ where: { email: 'reindex@x.org' } }))?.id).toBe(u.id);
    expect((await both.user.findUnique({ where: { emailIndex: 'reindex@x.org' } }))?.id).toBe(u.id);
    await both.user.update({ where: { emailIndex: 'reindex@x.org' }, data: { nickname: 'found' } });
    const n = await both.user.create({ data: { email: 'new-index@x.org' } });
    expect((await rawUser(n.id)).emailIndex).toBe(expectedIndex(index2, 'i2', 'User.email', 'new-index@x.org'));
    expect((await both.user.findUnique({ where: { emailIndex: 'new-index@x.org' } }))?.id).toBe(n.id);
    expect(await both.user.count({ where: { email: { in: ['reindex@x.org', 'new-index@x.org'] } } })).toBe(2);
  });

  test('passthrough read mode serves legacy plaintext and finds it by equality', async () => {
    await h.sql(`INSERT INTO ${h.q('LegacyContact')} (${h.q('email')}, ${h.q('notes')}) VALUES ($1, $2)`, ['legacy@x.org', 'legacy note']);
    const created = await h.prisma.legacyContact.create({ data: { email: 'Modern@x.org', notes: 'encrypted note' } });
    const rows = await h.prisma.legacyContact.findMany({ orderBy: { id: 'asc' } });
    expect(rows.map((r) => [r.email, r.notes])).toEqual([
      ['legacy@x.org', 'legacy note'],
      ['Modern@x.org', 'encrypted note'],
    ]);
    expect((await h.prisma.legacyContact.findFirst({ where: { email: 'legacy@x.org' } }))?.notes).toBe('legacy note');
    expect((await h.prisma.legacyContact.findFirst({ where: { email: 'modern@x.org' } }))?.id).toBe(created.id);
    expect((await h.prisma.legacyContact.findMany({ where: { email: { not: 'legacy@x.org' } } })).map((r) => r.id)).toEqual([created.id]);
    // Values that look like ciphertext are never passed through: tampering still fails.
    const [raw] = await h.sql(`SELECT ${h.q('notes')} FROM ${h.q('LegacyContact')} WHERE ${h.q('id')} = $1`, [created.id]);
    await h.sql(`UPDATE ${h.q('LegacyContact')} SET ${h.q('notes')} = $1 WHERE ${h.q('id')} = $2`, [String(raw!.notes).replace(':A:', ':Q:'), created.id]);
    expect(await errorOf(h.prisma.legacyContact.findUnique({ where: { id: created.id } }))).toMatchObject({ reason: 'unknown-key' });
  });
});
