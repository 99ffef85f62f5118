import { createHarness, providers, type Harness } from '../support/clients';
import { expectAtRest, rawRows, unique } from './shapes.support';

/**
 * Equality on indexed encrypted fields wherever a `where` can appear. Each lookup is checked
 * against the exact set of rows it must return; the fixture's values are all ciphertext at rest.
 */
describe.each(providers())('filter shapes on %s', (provider) => {
  let h: Harness;
  const tag = unique('f');
  // Three users: ana (phone, two readings), bob (no phone, one reading), cy (no readings, no profile).
  const users = { ana: '', bob: '', cy: '' };
  const emails = { ana: `ana.${tag}@example.org`, bob: `bob.${tag}@example.org`, cy: `cy.${tag}@example.org` };
  const reading: Record<string, number> = {};

  const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id).sort();
  const names = (...keys: Array<keyof typeof users>) => keys.map((k) => users[k]).sort();
  const mine = { nickname: tag };

  beforeAll(async () => {
    h = await createHarness(provider);
    const ana = await h.prisma.user.create({
      data: {
        email: emails.ana,
        nickname: tag,
        phone: '+1 555 1000',
        profile: { create: { birthDate: '1991-01-01', birthPlace: 'Oslo', sunSign: 'Aries' } },
        readings: { create: [{ title: 'a1', body: 'ana love', topic: 'Love' }, { title: 'a2', body: 'ana work', topic: 'Work' }] },
      },
      include: { readings: true },
    });
    const bob = await h.prisma.user.create({
      data: { email: emails.bob, nickname: tag, profile: { create: { birthDate: '1992-02-02', birthPlace: 'Rome' } }, readings: { create: [{ title: 'b1', body: 'bob love', topic: 'Love' }] } },
      include: { readings: true },
    });
    const cy = await h.prisma.user.create({ data: { email: emails.cy, nickname: tag, phone: '+1 555 3000' } });
    Object.assign(users, { ana: ana.id, bob: bob.id, cy: cy.id });
    for (const r of [...ana.readings, ...bob.readings]) reading[r.title] = r.id;
    await expectAtRest(h, 'User', ana.id, { email: emails.ana, phone: '+1 555 1000' });
    await expectAtRest(h, 'User', bob.id, { email: emails.bob, phone: null });
  });
  afterAll(async () => {
    await h?.close();
  });

  test('equals, shorthand, normalised', async () => {
    expect(ids(await h.prisma.user.findMany({ where: { email: emails.ana } }))).toEqual(names('ana'));
    expect(ids(await h.prisma.user.findMany({ where: { email: { equals: ` ${emails.bob.toUpperCase()}` } } }))).toEqual(names('bob'));
    expect(ids(await h.prisma.user.findMany({ where: { phone: '+15551000' } }))).toEqual(names('ana'));
    expect(await h.prisma.user.findMany({ where: { email: 'nobody@example.org' } })).toEqual([]);
  });

  test('in and notIn', async () => {
    expect(ids(await h.prisma.user.findMany({ where: { email: { in: [emails.ana, emails.cy, 'x@example.org'] } } }))).toEqual(names('ana', 'cy'));
    expect(await h.prisma.user.findMany({ where: { email: { in: [] } } })).toEqual([]);
    // notIn, like SQL, leaves out rows whose value is null.
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, phone: { notIn: ['+1 555 3000'] } } }))).toEqual(names('ana'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, email: { notIn: [emails.ana] } } }))).toEqual(names('bob', 'cy'));
  });

  test('not, with a value and with a nested filter', async () => {
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, email: { not: emails.bob } } }))).toEqual(names('ana', 'cy'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, phone: { not: '+1 555 1000' } } }))).toEqual(names('cy'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, email: { not: { in: [emails.ana, emails.bob] } } } }))).toEqual(names('cy'));
  });

  test('null equality and its negation', async () => {
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, phone: null } }))).toEqual(names('bob'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, phone: { equals: null } } }))).toEqual(names('bob'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, phone: { not: null } } }))).toEqual(names('ana', 'cy'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, name: null } }))).toEqual(names('ana', 'bob', 'cy'));
  });

  test('AND, OR and NOT', async () => {
    expect(ids(await h.prisma.user.findMany({ where: { OR: [{ email: emails.ana }, { phone: '+1 555 3000' }] } }))).toEqual(names('ana', 'cy'));
    expect(ids(await h.prisma.user.findMany({ where: { AND: [{ email: emails.ana }, { phone: '+1 555 1000' }] } }))).toEqual(names('ana'));
    expect(await h.prisma.user.findMany({ where: { AND: { email: emails.ana, phone: '+1 555 3000' } } })).toEqual([]);
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, NOT: [{ email: emails.ana }, { email: emails.cy }] } }))).toEqual(names('bob'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, NOT: { OR: [{ phone: null }, { email: emails.cy }] } } }))).toEqual(names('ana'));
  });

  test('relation filters: some, every, none on to-many', async () => {
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, readings: { some: { topic: 'love' } } } }))).toEqual(names('ana', 'bob'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, readings: { some: { topic: 'work' } } } }))).toEqual(names('ana'));
    // every is vacuously true for cy, who has no readings.
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, readings: { every: { topic: 'love' } } } }))).toEqual(names('bob', 'cy'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, readings: { none: { topic: { in: ['work'] } } } } }))).toEqual(names('bob', 'cy'));
  });

  test('relation filters: is, isNot and the to-one shorthand, in both directions', async () => {
    const readingsOfAna = await h.prisma.reading.findMany({ where: { user: { is: { email: emails.ana } } } });
    expect(readingsOfAna.map((r) => r.id).sort()).toEqual([reading.a1, reading.a2].sort());
    const shorthand = await h.prisma.reading.findMany({ where: { user: { email: emails.bob } } });
    expect(shorthand.map((r) => r.id)).toEqual([reading.b1]);
    const notAna = await h.prisma.reading.findMany({ where: { user: { isNot: { email: emails.ana } }, AND: { user: { nickname: tag } } } });
    expect(notAna.map((r) => r.id)).toEqual([reading.b1]);
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, profile: { is: { birthPlace: 'oslo' } } } }))).toEqual(names('ana'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, profile: { isNot: { birthPlace: 'OSLO' } } } }))).toEqual(names('bob', 'cy'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, profile: { is: null } } }))).toEqual(names('cy'));
    // Two hops: readings whose user's profile was born in Rome.
    const twoHops = await h.prisma.reading.findMany({ where: { user: { profile: { birthPlace: 'Rome' } } } });
    expect(twoHops.map((r) => r.id)).toEqual([reading.b1]);
  });

  test('nested where in include and select, and in _count', async () => {
    const ana = await h.prisma.user.findUniqueOrThrow({
      where: { id: users.ana },
      include: { readings: { where: { topic: { not: 'LOVE' } } }, _count: { select: { readings: { where: { topic: 'love' } } } } },
    });
    expect(ana.readings.map((r) => r.id)).toEqual([reading.a2]);
    expect(ana._count.readings).toBe(1);
    const selected = await h.prisma.profile.findMany({
      where: { user: { nickname: tag } },
      select: { birthPlace: true, user: { select: { readings: { where: { OR: [{ topic: 'work' }, { user: { email: emails.bob } }] }, select: { id: true } } } } },
      orderBy: { id: 'asc' },
    });
    expect(selected).toEqual([
      { birthPlace: 'Oslo', user: { readings: [{ id: reading.a2 }] } },
      { birthPlace: 'Rome', user: { readings: [{ id: reading.b1 }] } },
    ]);
  });

  test('update, delete and upsert targets with encrypted equality', async () => {
    const extra = await h.prisma.user.create({ data: { email: unique('target@example.org'), phone: '+1 555 7777', nickname: unique('t') } });
    // A unique where may carry extra filters (Prisma's WhereUniqueInput): the encrypted one is rewritten.
    const updated = await h.prisma.user.update({ where: { id: extra.id, phone: '+15557777' }, data: { name: 'Targeted' } });
    expect(updated.name).toBe('Targeted');
    await expect(h.prisma.user.update({ where: { id: extra.id, phone: '+1 555 0000' }, data: { name: 'never' } })).rejects.toMatchObject({ code: 'P2025' });
    const upserted = await h.prisma.user.upsert({ where: { emailIndex: extra.email.toUpperCase() }, create: { email: 'never@example.org' }, update: { name: 'Upserted' } });
    expect(upserted.id).toBe(extra.id);
    const { count } = await h.prisma.user.updateMany({ where: { email: extra.email, phone: { not: null } }, data: { karma: 3 } });
    expect(count).toBe(1);
    const deleted = await h.prisma.user.delete({ where: { id: extra.id, email: extra.email } });
    expect(deleted).toMatchObject({ name: 'Upserted', karma: 3 });
    expect(await rawRows(h, 'User', 'id', extra.id)).toEqual([]);
  });

  test('connect and connectOrCreate targets through the unique index field', async () => {
    const created = await h.prisma.reading.create({ data: { title: 'c', body: 'connected body', user: { connect: { emailIndex: emails.cy.toUpperCase() } } } });
    expect(created.userId).toBe(users.cy);
    const moved = await h.prisma.reading.update({ where: { id: created.id }, data: { user: { connect: { emailIndex: emails.bob } } } });
    expect(moved.userId).toBe(users.bob);
    await h.prisma.reading.delete({ where: { id: created.id } });
  });

  test('findUnique and findFirst through the index field take the plaintext', async () => {
    expect((await h.prisma.user.findUnique({ where: { emailIndex: emails.ana } }))?.id).toBe(users.ana);
    expect((await h.prisma.user.findUniqueOrThrow({ where: { emailIndex: { equals: emails.bob } } as never })).id).toBe(users.bob);
    expect(ids(await h.prisma.user.findMany({ where: { phoneIndex: '+1 555 3000' } }))).toEqual(names('cy'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, phoneIndex: { in: ['+1 555 1000', '+1 555 3000'] } } }))).toEqual(names('ana', 'cy'));
    expect(ids(await h.prisma.user.findMany({ where: { ...mine, phoneIndex: null } }))).toEqual(names('bob'));
  });

  test('concurrent findUnique calls, which Prisma batches into one query, each get their own row', async () => {
    const [cy, ana, nobody, bobReadings] = await Promise.all([
      h.prisma.user.findUnique({ where: { emailIndex: emails.cy } }),
      h.prisma.user.findUnique({ where: { emailIndex: emails.ana.toUpperCase() } }),
      h.prisma.user.findUnique({ where: { emailIndex: 'nobody@example.org' } }),
      h.prisma.user.findUnique({ where: { emailIndex: emails.bob } }).readings(),
    ]);
    expect([cy?.email, ana?.email, nobody]).toEqual([emails.cy, emails.ana, null]);
    expect(bobReadings).toEqual([expect.objectContaining({ id: reading.b1, body: 'bob love', topic: 'Love' })]);
  });

  test('count, aggregate and groupBy where clauses are rewritten too', async () => {
    expect(await h.prisma.reading.count({ where: { topic: 'love', user: { nickname: tag } } })).toBe(2);
    const agg = await h.prisma.reading.aggregate({ where: { topic: 'love', user: { nickname: tag } }, _count: { _all: true } });
    expect(agg._count._all).toBe(2);
    const groups = await h.prisma.reading.groupBy({ by: ['userId'], where: { topic: 'LOVE', user: { nickname: tag } }, _count: { _all: true }, orderBy: { userId: 'asc' } });
    expect(groups.map((g) => g.userId)).toEqual([users.ana, users.bob].sort());
  });
});
