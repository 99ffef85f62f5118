import { createHarness, providers, type Harness } from '../support/clients';
import { expectRefused, rawRows, unique } from './shapes.support';

/**
 * What ciphertext cannot answer is refused with UnsupportedQueryError naming model, field and
 * operator, at the top level and nested, before any SQL runs. The allowed neighbour of each
 * refusal (the index field, the id) is shown to work, so the refusals are not blanket ones.
 */
describe.each(providers())('refused shapes on %s', (provider) => {
  let h: Harness;
  let userId: string;
  let email: string;
  beforeAll(async () => {
    h = await createHarness(provider);
    email = unique('refuse@example.org');
    const user = await h.prisma.user.create({ data: { email, name: 'Refusal Name', readings: { create: [{ title: 'a', body: 'b', topic: 'Love' }] } } });
    userId = user.id;
  });
  afterAll(async () => {
    await h?.close();
  });

  test('cursor on an encrypted field; the index field works as a cursor', async () => {
    await expectRefused(() => h.prisma.user.findMany({ cursor: { id: userId, email } }), 'User', 'email', 'cursor');
    await expectRefused(() => h.prisma.user.findUnique({ where: { id: userId } }).readings({ cursor: { id: 1, body: 'b' } }), 'Reading', 'body', 'cursor');
    const page = await h.prisma.user.findMany({ cursor: { emailIndex: email }, take: 1 });
    expect(page.map((u) => u.id)).toEqual([userId]);
  });

  test('orderBy on an encrypted field, at the top level, nested and through a relation', async () => {
    await expectRefused(() => h.prisma.user.findMany({ orderBy: { email: 'asc' } }), 'User', 'email', 'orderBy');
    await expectRefused(() => h.prisma.user.findMany({ orderBy: [{ karma: 'desc' }, { name: { sort: 'asc', nulls: 'last' } }] }), 'User', 'name', 'orderBy');
    await expectRefused(() => h.prisma.user.findMany({ include: { readings: { orderBy: { body: 'asc' } } } }), 'Reading', 'body', 'orderBy');
    await expectRefused(() => h.prisma.reading.findMany({ orderBy: { user: { phone: 'asc' } } }), 'User', 'phone', 'orderBy');
    await expectRefused(() => h.prisma.reading.groupBy({ by: ['userId'], _count: { body: true }, orderBy: { body: 'asc' } as never }), 'Reading', 'body', 'orderBy');
    expect(await h.prisma.user.findMany({ orderBy: [{ emailIndex: 'asc' }, { readings: { _count: 'desc' } }] })).toHaveLength(1);
  });

  test('distinct on an encrypted field, at the top level and nested', async () => {
    await expectRefused(() => h.prisma.user.findMany({ distinct: ['email'] }), 'User', 'email', 'distinct');
    await expectRefused(() => h.prisma.user.findMany({ select: { readings: { distinct: 'topic' } } }), 'Reading', 'topic', 'distinct');
    expect(await h.prisma.reading.findMany({ distinct: ['topicIndex'], where: { userId } })).toHaveLength(1);
  });

  test('groupBy by and having on encrypted fields; having on an index field needs an aggregate', async () => {
    await expectRefused(() => h.prisma.reading.groupBy({ by: ['topic'], _count: { _all: true } }), 'Reading', 'topic', 'groupBy');
    await expectRefused(() => h.prisma.reading.groupBy({ by: ['userId'], having: { body: { _count: { gt: 0 } } } }), 'Reading', 'body', 'having');
    await expectRefused(() => h.prisma.reading.groupBy({ by: ['userId'], having: { OR: [{ stars: { _max: { gt: 0 } } }, { topic: { _min: { equals: 'x' } } }] } }), 'Reading', 'topic', 'having');
    await expectRefused(() => h.prisma.reading.groupBy({ by: ['topicIndex'], having: { topicIndex: 'Love' } }), 'Reading', 'topicIndex', 'having');
    const groups = await h.prisma.reading.groupBy({ by: ['topicIndex'], where: { userId }, having: { topicIndex: { _count: { gt: 0 } } } });
    expect(groups).toHaveLength(1);
  });

  test('aggregates other than _count on an encrypted field', async () => {
    await expectRefused(() => h.prisma.reading.aggregate({ _min: { body: true } }), 'Reading', 'body', '_min');
    await expectRefused(() => h.prisma.user.aggregate({ _max: { email: true } }), 'User', 'email', '_max');
    await expectRefused(() => h.prisma.reading.groupBy({ by: ['userId'], _max: { topic: true } }), 'Reading', 'topic', '_max');
  });

  test.each([['contains'], ['startsWith'], ['endsWith']])('string operator %s, at the top level and in relation filters', async (op) => {
    await expectRefused(() => h.prisma.user.findMany({ where: { email: { [op]: 'refuse' } } }), 'User', 'email', op);
    await expectRefused(() => h.prisma.user.findMany({ where: { readings: { some: { topic: { [op]: 'Lo' } } } } }), 'Reading', 'topic', op);
    await expectRefused(() => h.prisma.reading.findMany({ where: { NOT: { user: { is: { name: { [op]: 'R' } } } } } }), 'User', 'name', op);
  });

  test.each([['lt'], ['lte'], ['gt'], ['gte']])('range operator %s, in where, nested include where and _count', async (op) => {
    await expectRefused(() => h.prisma.reading.findMany({ where: { topic: { [op]: 'M' } } }), 'Reading', 'topic', op);
    await expectRefused(() => h.prisma.user.findMany({ include: { readings: { where: { body: { [op]: 'a' } } } } }), 'Reading', 'body', op);
    await expectRefused(() => h.prisma.user.findMany({ select: { _count: { select: { readings: { where: { topic: { [op]: 'a' } } } } } } }), 'Reading', 'topic', op);
  });

  test('mode: insensitive (the lowercase-normalised index answers case-insensitive equality instead)', async () => {
    // Refused by the extension before Prisma validates, so MariaDB (which has no `mode`) refuses the same way.
    await expectRefused(() => h.prisma.user.findMany({ where: { email: { equals: email.toUpperCase(), mode: 'insensitive' } as never } }), 'User', 'email', 'mode: insensitive');
    // email's index normalises with lowercase: plain equality is already case-insensitive.
    expect((await h.prisma.user.findMany({ where: { email: email.toUpperCase() } })).map((u) => u.id)).toEqual([userId]);
  });

  test('equality on an encrypted field without a blind index, also inside nested writes', async () => {
    await expectRefused(() => h.prisma.user.findMany({ where: { name: 'Refusal Name' } }), 'User', 'name', 'equals');
    await expectRefused(() => h.prisma.user.findMany({ where: { name: { in: ['Refusal Name'] } } }), 'User', 'name', 'equals');
    await expectRefused(() => h.prisma.user.findMany({ where: { name: { not: 'x' } } }), 'User', 'name', 'not');
    await expectRefused(
      () => h.prisma.user.update({ where: { id: userId }, data: { readings: { deleteMany: { body: 'b' } } } }),
      'Reading',
      'body',
      'equals',
    );
    // Null tests need no index: ciphertext is null exactly when the value is.
    expect(await h.prisma.user.count({ where: { id: userId, name: { not: null } } })).toBe(1);
    expect(await rawRows(h, 'Reading', 'userId', userId)).toHaveLength(1);
  });

  test('comparing an encrypted field with another column', async () => {
    const error = await expectRefused(() => h.prisma.user.findMany({ where: { email: { equals: h.prisma.user.fields.nickname } } }), 'User', 'email', 'equals');
    expect(error.reason).toMatch(/another column/);
  });

  test('a refused write sends nothing to the database', async () => {
    const before = await rawRows(h, 'Reading', 'userId', userId);
    await expectRefused(
      () => h.prisma.user.update({ where: { id: userId }, data: { name: 'changed', readings: { create: { title: 'n', body: 'n' }, updateMany: { where: { topic: { contains: 'o' } }, data: { stars: 1 } } } } }),
      'Reading',
      'topic',
      'contains',
    );
    expect(await rawRows(h, 'Reading', 'userId', userId)).toEqual(before);
    const [user] = await rawRows(h, 'User', 'id', userId);
    expect((await h.prisma.user.findUniqueOrThrow({ where: { id: userId } })).name).toBe('Refusal Name');
    expect(user!.name).toEqual(expect.stringMatching(/^pce:v1:/));
  });
});
