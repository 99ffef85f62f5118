import { randomBytes } from 'node:crypto';
import { Prisma } from '../../generated/postgres/client/client';
import { encryptedFields } from '../../generated/postgres/encryption';
import { FieldCodec } from '../../src/codec/fieldCodec';
import { localKeys, UnsupportedQueryError } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { testWrapKey } from '../support/keys';

/**
 * Uniqueness of blind indexes while two index keys are loaded (issue 9 items 1, 4 and 6): a
 * value stored under the old key must stop a duplicate written under the new one, exactly as the
 * database constraint does with one key, whatever the write shape, transaction or concurrency.
 */
const b64 = () => randomBytes(32).toString('base64');
const data = [{ id: 'A', key: b64() }];
/** The test schema has subject models: a client over it needs a wrap key. */
const wrap = [testWrapKey()];
const i1 = { id: 'i1', key: b64() };
const i2 = { id: 'i2', key: b64() };

/**
 * The error Prisma gives for a unique violation. When the duplicate is under the same key the
 * database constraint raises it (meta names the index); otherwise the extension does, with the
 * constraint's fields in meta.target and the driver adapter's shape.
 */
function expectP2002(error: unknown, model: string, target: string[]): void {
  expect(error).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
  expect(error).toMatchObject({ code: 'P2002', meta: { modelName: model, driverAdapterError: { cause: { kind: 'UniqueConstraintViolation' } } } });
  const meta = (error as { meta: { target?: unknown } }).meta;
  if (meta.target !== undefined) expect(meta.target).toEqual(target);
}

const failure = (p: Promise<unknown>): Promise<unknown> => p.then(
  () => {
    throw new Error('expected the write to be refused');
  },
  (e: unknown) => e,
);

describe.each(providers())('unique blind indexes during an index-key rotation on %s', (provider) => {
  let h: Harness;
  /** An instance after `keys promote`: i2 primary, i1 still loaded. */
  let promoted: Harness['prisma'];
  /** An instance of the same deploy not yet restarted after the promote: i1 primary, i2 loaded. */
  let notYet: Harness['prisma'];
  const count = async (table: string, column: string, hashes: string[]) =>
    Number((await h.sql<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${h.q(table)} WHERE ${h.q(column)} IN (${hashes.map((_, i) => `$${i + 1}`).join(', ')})`, hashes))[0]!.n);
  // Blind indexes as a one-key instance of each key stores them, computed independently of the client under test.
  const hashUnder = (keyId: 'i1' | 'i2', email: string): string =>
    new FieldCodec('User', 'email', encryptedFields.models.User.encrypted.email as never, localKeys({ data, index: [keyId === 'i1' ? i1 : i2] }), () => undefined).indexForWrite(email);
  /** Rows holding `email` under either key. */
  const users = (email: string) => count('User', 'emailIndex', [hashUnder('i1', email), hashUnder('i2', email)]);

  beforeAll(async () => {
    h = await createHarness(provider, { keys: localKeys({ data, index: [i1], wrap }) });
    promoted = h.extend({ keys: localKeys({ data, index: [i2, i1], wrap }) });
    notYet = h.extend({ keys: localKeys({ data, index: [i1, i2], wrap }) });
  });
  afterAll(async () => {
    await h?.close();
  });

  test('a create of a value stored under the old index key is refused with P2002, naming no value', async () => {
    await h.prisma.user.create({ data: { email: 'ada@x.org' } });
    const error = await failure(promoted.user.create({ data: { email: 'ADA@x.org ' } }));
    expectP2002(error, 'User', ['emailIndex']);
    expect(error).toMatchObject({ meta: { target: ['emailIndex'], driverAdapterError: { cause: { constraint: { fields: ['emailIndex'] } } } } });
    expect((error as Error).message).not.toMatch(/ada@x\.org|i1:|i2:/i);
    expect(await users('ada@x.org')).toBe(1);
    // The instance that still writes under i1 hits the database constraint itself.
    expect((await failure(notYet.user.create({ data: { email: 'ada@x.org' } }))) as object).toMatchObject({ code: 'P2002' });
    expect(await promoted.user.count({ where: { email: 'ada@x.org' } })).toBe(1);
  });

  test('with one index key loaded the database constraint answers by itself (no check by the extension)', async () => {
    await h.prisma.user.create({ data: { email: 'one-key@x.org' } });
    const error = await failure(h.prisma.user.create({ data: { email: 'one-key@x.org' } }));
    expect(error).toMatchObject({ code: 'P2002', meta: { driverAdapterError: { cause: { constraint: { index: expect.any(String) } } } } });
    expect((error as { meta: { target?: unknown } }).meta.target).toBeUndefined();
  });

  test('a write that fails for another reason gives its lock back: the next writer of that value is not kept waiting', async () => {
    const taken = await h.prisma.user.create({ data: { email: 'lock-holder@x.org' } });
    // Fails on the primary key after the extension took the value's lock.
    expect(await failure(promoted.user.create({ data: { id: taken.id, email: 'lock-freed@x.org' } }))).toMatchObject({ code: 'P2002' });
    await expect(notYet.user.create({ data: { email: 'lock-freed@x.org' } })).resolves.toMatchObject({ email: 'lock-freed@x.org' });
  });

  test('a nested to-one update writing a duplicate is refused', async () => {
    await h.prisma.user.create({ data: { email: 'nested-taken@x.org' } });
    const owner = await h.prisma.user.create({ data: { email: 'nested-owner@x.org', profile: { create: { birthDate: '2000-01-01' } } } });
    const profile = await h.prisma.profile.findFirstOrThrow({ where: { userId: owner.id } });
    expectP2002(await failure(promoted.profile.update({ where: { id: profile.id }, data: { user: { update: { email: 'Nested-Taken@x.org' } } } })), 'User', ['emailIndex']);
    expect(await promoted.user.findUnique({ where: { id: owner.id } })).toMatchObject({ email: 'nested-owner@x.org' });
  });

  test('parallel creates of one value from instances with either key primary: one row, the others P2002', async () => {
    const email = 'race@x.org';
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? promoted : notYet).user.create({ data: { email: i % 3 === 0 ? email.toUpperCase() : email } })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expectP2002(r.reason, 'User', ['emailIndex']);
    expect(await users(email)).toBe(1);
  });

  test('parallel interactive transactions creating one value: one commits, the others fail with P2002', async () => {
    const email = 'tx-race@x.org';
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, (_, i) =>
        (i % 2 === 0 ? promoted : notYet).$transaction(async (tx) => {
          await tx.user.create({ data: { email, name: `tx ${i}` } });
          await tx.user.count();
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expectP2002(r.reason, 'User', ['emailIndex']);
    expect(await users(email)).toBe(1);
  });

  test('a refused write inside an interactive transaction is undone even when the caller catches the error and commits', async () => {
    await h.prisma.user.create({ data: { email: 'caught@x.org' } });
    const kept = await promoted.$transaction(async (tx) => {
      const error = await tx.user.create({ data: { email: 'caught@x.org', name: 'dup' } }).catch((e: unknown) => e);
      expectP2002(error, 'User', ['emailIndex']);
      return tx.user.create({ data: { email: 'after-caught@x.org' } });
    });
    expect(await users('caught@x.org')).toBe(1);
    expect(await promoted.user.findUnique({ where: { id: kept.id } })).toMatchObject({ email: 'after-caught@x.org' });
  });

  test('upsert, update, updateMany, createMany and nested creates of a duplicate are refused; writing the row its own value is not', async () => {
    const old = await h.prisma.user.create({ data: { email: 'shapes@x.org', name: 'Old' } });
    const other = await h.prisma.user.create({ data: { email: 'other@x.org' } });
    const target = ['emailIndex'];
    expectP2002(await failure(promoted.user.upsert({ where: { id: 'no-such-id' }, create: { email: 'shapes@x.org' }, update: {} })), 'User', target);
    expectP2002(await failure(promoted.user.update({ where: { id: other.id }, data: { email: 'Shapes@x.org' } })), 'User', target);
    expectP2002(await failure(promoted.user.updateMany({ where: { id: other.id }, data: { email: 'shapes@x.org' } })), 'User', target);
    expectP2002(await failure(promoted.user.createMany({ data: [{ email: 'fresh-many@x.org' }, { email: 'shapes@x.org' }] })), 'User', target);
    await expect(promoted.user.createMany({ data: [{ email: 'fresh-many@x.org' }, { email: 'shapes@x.org' }], skipDuplicates: true })).rejects.toMatchObject({ constructor: UnsupportedQueryError, operator: 'skipDuplicates' });
    expectP2002(await failure(promoted.reading.create({ data: { title: 't', body: 'b', user: { create: { email: 'shapes@x.org' } } } })), 'User', target);
    expectP2002(await failure(promoted.reading.create({ data: { title: 't', body: 'b', user: { connectOrCreate: { where: { id: 'no-such-id' }, create: { email: 'shapes@x.org' } } } } })), 'User', target);
    // Nothing of the refused writes was kept: not the fresh createMany row, not the readings.
    expect(await users('fresh-many@x.org')).toBe(0);
    expect(await promoted.reading.count({ where: { title: 't' } })).toBe(0);
    // The upsert's update branch, the row's own value rewritten under i2, and connectOrCreate's connect branch.
    await promoted.user.upsert({ where: { emailIndex: 'shapes@x.org' }, create: { email: 'shapes@x.org' }, update: { name: 'Upserted' } });
    await promoted.user.update({ where: { id: old.id }, data: { email: 'shapes@x.org' } });
    expect(await count('User', 'emailIndex', [hashUnder('i2', 'shapes@x.org')])).toBe(1);
    const reading = await promoted.reading.create({ data: { title: 'c', body: 'b', user: { connectOrCreate: { where: { emailIndex: 'other@x.org' }, create: { email: 'other@x.org' } } } } });
    expect(reading.userId).toBe(other.id);
    expect(await users('shapes@x.org')).toBe(1);
    expect(await promoted.user.findUnique({ where: { emailIndex: 'shapes@x.org' } })).toMatchObject({ id: old.id, name: 'Upserted' });
  });

  test('a unique nested to-many connectOrCreate of a tag stored under the old key connects it; a nested create of it is refused', async () => {
    const owner = await h.prisma.user.create({ data: { email: 'tag-owner@x.org' } });
    const saturn = await h.prisma.tag.create({ data: { label: 'saturn' } });
    const error = await failure(promoted.reading.create({ data: { userId: owner.id, title: 'tags', body: 'b', tags: { create: { label: 'Saturn' } } } }));
    expectP2002(error, 'Tag', ['labelIndex']);
    const reading = await promoted.reading.create({
      data: { userId: owner.id, title: 'tags', body: 'b', tags: { connectOrCreate: { where: { labelIndex: 'SATURN' }, create: { label: 'SATURN' } } } },
      include: { tags: true },
    });
    expect(reading.tags.map((t) => t.id)).toEqual([saturn.id]);
    expect(await promoted.tag.count({ where: { label: 'saturn' } })).toBe(1);
  });

  test('groupBy and distinct by an index field are refused while several index keys are loaded, allowed with one', async () => {
    await expect(promoted.user.groupBy({ by: ['emailIndex'], _count: true })).rejects.toMatchObject({ constructor: UnsupportedQueryError, field: 'emailIndex', operator: 'groupBy' });
    await expect(promoted.user.findMany({ distinct: ['emailIndex'] })).rejects.toMatchObject({ constructor: UnsupportedQueryError, field: 'emailIndex', operator: 'distinct' });
    await expect(promoted.reading.findMany({ include: { tags: { distinct: ['labelIndex'] } } })).rejects.toBeInstanceOf(UnsupportedQueryError);
    expect(Array.isArray(await h.prisma.user.groupBy({ by: ['emailIndex'], _count: true }))).toBe(true);
    // Counting non-null index values is the same whichever key a row is under.
    expect(await promoted.user.count({ select: { emailIndex: true } })).toEqual(await h.prisma.user.count({ select: { emailIndex: true } }));
  });

  test('$transaction([...]) cannot check uniqueness and refuses a unique index write while several keys are loaded', async () => {
    await expect(promoted.$transaction([promoted.user.create({ data: { email: 'batch@x.org' } })])).rejects.toBeInstanceOf(UnsupportedQueryError);
    expect(await users('batch@x.org')).toBe(0);
  });

  if (provider === 'postgres') {
    test('a caller transaction at REPEATABLE READ is refused on PostgreSQL (its snapshot would hide a concurrent duplicate)', async () => {
      const error = await failure(promoted.$transaction((tx) => tx.user.create({ data: { email: 'rr@x.org' } }), { isolationLevel: 'RepeatableRead' }));
      expect(error).toBeInstanceOf(UnsupportedQueryError);
      expect(await users('rr@x.org')).toBe(0);
    });
  }

  describe('compound @@unique([tenant, emailIdx])', () => {
    test('findUnique, upsert and create use the other fields of the compound key', async () => {
      // A's member already under i2, B's still under i1: a lookup ignoring the tenant would pick A's hash for B.
      const a = await promoted.tenantMember.create({ data: { tenant: 'A', email: 'same@x.org', name: 'In A' } });
      const b = await h.prisma.tenantMember.create({ data: { tenant: 'B', email: 'same@x.org', name: 'In B' } });
      const key = (tenant: string) => ({ tenant_emailIdx: { tenant, emailIdx: 'same@x.org' } });
      expect(await promoted.tenantMember.findUnique({ where: key('B') })).toMatchObject({ id: b.id, name: 'In B' });
      expect(await promoted.tenantMember.findUnique({ where: key('A') })).toMatchObject({ id: a.id });
      const upserted = await promoted.tenantMember.upsert({ where: key('B'), create: { tenant: 'B', email: 'same@x.org' }, update: { name: 'B again' } });
      expect(upserted).toMatchObject({ id: b.id, name: 'B again' });
      expectP2002(await failure(promoted.tenantMember.create({ data: { tenant: 'B', email: 'SAME@x.org' } })), 'TenantMember', ['tenant', 'emailIdx']);
      await promoted.tenantMember.create({ data: { tenant: 'C', email: 'same@x.org' } });
      expect(await promoted.tenantMember.count({ where: { email: 'same@x.org' } })).toBe(3);
      // Moving A's member into tenant C, which has that email under i2 already, is a duplicate there.
      expectP2002(await failure(promoted.tenantMember.update({ where: { id: a.id }, data: { tenant: 'C', email: 'same@x.org' } })), 'TenantMember', ['tenant', 'emailIdx']);
      // Without the value, the extension cannot check the move: refused until the rotation is over.
      await expect(promoted.tenantMember.update({ where: { id: a.id }, data: { tenant: 'C' } })).rejects.toMatchObject({ constructor: UnsupportedQueryError, field: 'tenant' });
      expect(await promoted.tenantMember.findUnique({ where: { id: a.id } })).toMatchObject({ tenant: 'A' });
    });
  });

  describe('lookups inside an interactive transaction', () => {
    test('see the transaction\'s own writes, also with a connection pool of one', async () => {
      const single = h.extend({ keys: localKeys({ data, index: [i2, i1], wrap }) }, 1);
      const old = await h.prisma.user.create({ data: { email: 'recreate@x.org', name: 'Before' } });
      const result = await single.$transaction(
        async (tx) => {
          await tx.user.delete({ where: { id: old.id } });
          const created = await tx.user.create({ data: { email: 'recreate@x.org', name: 'Recreated' } });
          const found = await tx.user.findUnique({ where: { emailIndex: 'recreate@x.org' } });
          const updated = await tx.user.update({ where: { emailIndex: 'recreate@x.org' }, data: { name: 'Updated' } });
          return { created, found, updated };
        },
        { timeout: 20000 },
      );
      expect(result.found?.id).toBe(result.created.id);
      expect(result.updated).toMatchObject({ id: result.created.id, name: 'Updated' });
      expect(await users('recreate@x.org')).toBe(1);
    });
  });
});
