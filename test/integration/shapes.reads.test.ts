import { createHarness, providers, type Harness } from '../support/clients';
import { expectAtRest, rawRows, statsRecorder, unique } from './shapes.support';

/** Reads at every depth: encrypted values come back as plaintext wherever they appear. */
describe.each(providers())('read shapes on %s', (provider) => {
  let h: Harness;
  let userId: string;
  let email: string;
  let readingIds: number[];
  beforeAll(async () => {
    h = await createHarness(provider);
    email = unique('Reader@Example.org');
    const user = await h.prisma.user.create({
      data: {
        email,
        name: 'Reader Name',
        phone: '+33 1 23 45',
        karma: 7,
        profile: { create: { birthDate: '1980-05-05', birthPlace: 'Nantes', sunSign: 'Taurus' } },
        readings: {
          create: [
            { title: 'first', body: 'first body text', topic: 'Love', stars: 5, notes: { create: [{ text: 'note on first' }] }, tags: { create: { label: unique('Read Tag') } } },
            { title: 'second', body: 'second body text', topic: 'Work', stars: 2 },
          ],
        },
      },
      include: { readings: { orderBy: { id: 'asc' } } },
    });
    userId = user.id;
    readingIds = user.readings.map((r) => r.id);
    // The data really is encrypted at rest, so plaintext below can only come from decryption.
    await expectAtRest(h, 'User', userId, { email, name: 'Reader Name', phone: '+33 1 23 45' });
    await expectAtRest(h, 'Reading', readingIds[0], { body: 'first body text', topic: 'Love' });
  });
  afterAll(async () => {
    await h?.close();
  });

  test('include at depth decrypts every level', async () => {
    const user = await h.prisma.user.findUniqueOrThrow({
      where: { id: userId },
      include: { profile: true, readings: { orderBy: { id: 'asc' }, include: { notes: true, tags: true, user: { include: { profile: true } } } } },
    });
    expect(user).toMatchObject({ email, name: 'Reader Name', phone: '+33 1 23 45' });
    expect(user.profile).toMatchObject({ birthDate: '1980-05-05', birthPlace: 'Nantes', sunSign: 'Taurus' });
    expect(user.readings.map((r) => r.body)).toEqual(['first body text', 'second body text']);
    expect(user.readings[0]!.notes[0]!.text).toBe('note on first');
    expect(user.readings[0]!.tags[0]!.label).toMatch(/^Read Tag-/);
    expect(user.readings[1]!.user.email).toBe(email);
    expect(user.readings[1]!.user.profile!.birthPlace).toBe('Nantes');
  });

  test('select at depth, select inside include and include inside select', async () => {
    const selected = await h.prisma.user.findUniqueOrThrow({
      where: { id: userId },
      select: { email: true, readings: { orderBy: { id: 'asc' }, select: { body: true, notes: { select: { text: true } } } } },
    });
    expect(selected).toEqual({ email, readings: [{ body: 'first body text', notes: [{ text: 'note on first' }] }, { body: 'second body text', notes: [] }] });

    const selectInInclude = await h.prisma.reading.findUniqueOrThrow({
      where: { id: readingIds[0] },
      include: { user: { select: { name: true, profile: { select: { sunSign: true } } } } },
    });
    expect(selectInInclude.body).toBe('first body text');
    expect(selectInInclude.user).toEqual({ name: 'Reader Name', profile: { sunSign: 'Taurus' } });

    const includeInSelect = await h.prisma.profile.findFirstOrThrow({
      where: { userId },
      select: { birthDate: true, user: { include: { readings: { where: { topic: 'work' } } } } },
    });
    expect(includeInSelect.birthDate).toBe('1980-05-05');
    expect(includeInSelect.user.phone).toBe('+33 1 23 45');
    expect(includeInSelect.user.readings.map((r) => r.body)).toEqual(['second body text']);
  });

  test('omit, top-level and nested, leaves the other encrypted fields decrypted', async () => {
    const user = await h.prisma.user.findUniqueOrThrow({
      where: { id: userId },
      omit: { emailIndex: true, phone: true },
      include: { readings: { omit: { body: true }, orderBy: { id: 'asc' } } },
    });
    expect(user).not.toHaveProperty('phone');
    expect(user).not.toHaveProperty('emailIndex');
    expect(user.email).toBe(email);
    expect(user.readings[0]).not.toHaveProperty('body');
    expect(user.readings[0]!.topic).toBe('Love');
  });

  test('_count is returned untouched, including a count filtered on an encrypted field', async () => {
    const user = await h.prisma.user.findUniqueOrThrow({
      where: { id: userId },
      include: { _count: { select: { readings: { where: { topic: 'LOVE' } }, memberships: true } } },
    });
    expect(user._count).toEqual({ readings: 1, memberships: 0 });
    expect(user.name).toBe('Reader Name');
    const selected = await h.prisma.user.findUniqueOrThrow({ where: { id: userId }, select: { _count: true, email: true } });
    expect(selected._count).toMatchObject({ readings: 2, memberships: 0 });
    expect(selected.email).toBe(email);
  });

  test('a selected encrypted field whose index was not selected still decrypts', async () => {
    const user = await h.prisma.user.findFirstOrThrow({ where: { email }, select: { email: true, phone: true } });
    expect(user).toEqual({ email, phone: '+33 1 23 45' });
    const readings = await h.prisma.reading.findMany({ where: { userId }, select: { topic: true }, orderBy: { id: 'asc' } });
    expect(readings).toEqual([{ topic: 'Love' }, { topic: 'Work' }]);
  });

  test('an encrypted field that is not selected costs nothing', async () => {
    const { logger, stats } = statsRecorder();
    const client = h.extend({ logger });
    await client.user.findMany({ where: { id: userId }, select: { id: true, karma: true, readings: { select: { stars: true } } } });
    await client.user.findMany({ where: { id: userId }, select: { id: true, name: true, readings: { select: { body: true } } } });
    expect(stats.map((s) => [s.operation, s.decrypted])).toEqual([
      ['findMany', 0],
      ['findMany', 3],
    ]);
  });

  test('relation results of writes are decrypted', async () => {
    const created = await h.prisma.reading.create({
      data: { title: 'w', body: 'write result body', userId, notes: { create: { text: 'write result note' } } },
      include: { user: { include: { profile: true } }, notes: true },
    });
    expect(created.body).toBe('write result body');
    expect(created.user.email).toBe(email);
    expect(created.user.profile!.birthPlace).toBe('Nantes');
    expect(created.notes[0]!.text).toBe('write result note');
    const updated = await h.prisma.profile.update({ where: { userId }, data: { public: true }, select: { sunSign: true, user: { select: { name: true } } } });
    expect(updated).toEqual({ sunSign: 'Taurus', user: { name: 'Reader Name' } });
    const deleted = await h.prisma.reading.delete({ where: { id: created.id }, include: { notes: true } });
    // delete reads the record and its relations before removing them: all decrypted.
    expect(deleted.body).toBe('write result body');
    expect(deleted.notes.map((n) => n.text)).toEqual(['write result note']);
    expect(await rawRows(h, 'ReadingNote', 'readingId', created.id)).toEqual([]);
  });

  test('groupBy, aggregate and count without encrypted fields; groupBy by an index field', async () => {
    const byUser = await h.prisma.reading.groupBy({ by: ['userId'], where: { userId }, _sum: { stars: true }, _count: { _all: true, body: true } });
    expect(byUser).toEqual([{ userId, _sum: { stars: 7 }, _count: { _all: 2, body: 2 } }]);
    const agg = await h.prisma.reading.aggregate({ where: { userId, topic: { in: ['love', 'work'] } }, _max: { stars: true }, _count: { topic: true } });
    expect(agg).toEqual({ _max: { stars: 5 }, _count: { topic: 2 } });
    expect(await h.prisma.reading.count({ where: { userId, topic: 'Work' } })).toBe(1);
    const byTopic = await h.prisma.reading.groupBy({ by: ['topicIndex'], where: { userId }, _count: { _all: true }, orderBy: { topicIndex: 'asc' } });
    const raw = await rawRows(h, 'Reading', 'userId', userId);
    expect(byTopic.map((g) => g.topicIndex).sort()).toEqual(raw.map((r) => r.topicIndex).sort());
  });

  test('findUnique through the unique index field, with the plaintext', async () => {
    const user = await h.prisma.user.findUnique({ where: { emailIndex: ` ${email.toUpperCase()} ` }, include: { profile: true } });
    expect(user?.id).toBe(userId);
    expect(user?.profile?.sunSign).toBe('Taurus');
    expect(await h.prisma.user.findUnique({ where: { emailIndex: 'nobody@example.org' } })).toBeNull();
  });
});
