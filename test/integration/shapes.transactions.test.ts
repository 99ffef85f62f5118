import { UnsupportedQueryError } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { expectAtRest, rawRows, unique } from './shapes.support';

/** Batched and interactive transactions, and the fluent API, go through the extension too. */
describe.each(providers())('transactions and fluent API on %s', (provider) => {
  let h: Harness;
  let userId: string;
  let email: string;
  beforeAll(async () => {
    h = await createHarness(provider);
    email = unique('fluent@example.org');
    const user = await h.prisma.user.create({
      data: {
        email,
        name: 'Fluent Name',
        profile: { create: { birthDate: '1985-08-08', sunSign: 'Leo' } },
        readings: { create: [{ title: 'f', body: 'fluent body', topic: 'Dreams', notes: { create: { text: 'fluent note' } } }] },
      },
    });
    userId = user.id;
  });
  afterAll(async () => {
    await h?.close();
  });

  test('fluent API: to-many, to-one, chained, with arguments, from a write', async () => {
    const readings = await h.prisma.user.findUnique({ where: { id: userId } }).readings();
    expect(readings?.map((r) => [r.body, r.topic])).toEqual([['fluent body', 'Dreams']]);
    const profile = await h.prisma.user.findUniqueOrThrow({ where: { emailIndex: email } }).profile();
    expect(profile).toMatchObject({ birthDate: '1985-08-08', sunSign: 'Leo' });
    const owner = await h.prisma.profile.findFirst({ where: { sunSign: 'leo', userId } }).user();
    expect(owner).toMatchObject({ email, name: 'Fluent Name' });
    const notes = await h.prisma.user.findUnique({ where: { id: userId } }).profile().user().readings({ where: { topic: 'dreams' }, include: { notes: true } });
    expect(notes?.[0]?.notes.map((n) => n.text)).toEqual(['fluent note']);
    const created = await h.prisma.reading.create({ data: { title: 'c', body: 'fluent created', userId } }).user();
    expect(created.name).toBe('Fluent Name');
    await expect(h.prisma.user.findUnique({ where: { id: userId } }).readings({ where: { body: { contains: 'x' } } })).rejects.toBeInstanceOf(UnsupportedQueryError);
  });

  test('$transaction([...]) batch of writes and reads', async () => {
    const batchEmail = unique('Batch@Example.org');
    const [created, found, count, updated] = await h.prisma.$transaction([
      h.prisma.user.create({ data: { email: batchEmail, name: 'Batch Name', readings: { create: { title: 'b', body: 'batch body', topic: 'Batch' } } } }),
      h.prisma.user.findMany({ where: { email: { in: [email, 'nobody@example.org'] } }, include: { readings: true } }),
      h.prisma.reading.count({ where: { topic: 'dreams' } }),
      h.prisma.profile.update({ where: { userId }, data: { birthPlace: 'Batch Town' } }),
    ]);
    expect(created).toMatchObject({ email: batchEmail, name: 'Batch Name' });
    expect(found.map((u) => u.readings.map((r) => r.body).sort())).toEqual([['fluent body', 'fluent created']]);
    expect(count).toBe(1);
    expect(updated.birthPlace).toBe('Batch Town');
    await expectAtRest(h, 'User', created.id, { email: batchEmail, name: 'Batch Name' });
    await expectAtRest(h, 'Profile', updated.id, { birthPlace: 'Batch Town', sunSign: 'Leo' });
  });

  test('a batch with a refused query fails before anything is written', async () => {
    const batchEmail = unique('refused-batch@example.org');
    await expect(
      h.prisma.$transaction([h.prisma.user.create({ data: { email: batchEmail } }), h.prisma.user.findMany({ orderBy: { email: 'asc' } })]),
    ).rejects.toBeInstanceOf(UnsupportedQueryError);
    expect(await h.prisma.user.count({ where: { email: batchEmail } })).toBe(0);
  });

  test('interactive transaction: writes and reads inside see plaintext and commit ciphertext', async () => {
    const txEmail = unique('Tx@Example.org');
    const result = await h.prisma.$transaction(async (tx) => {
      const user = await tx.user.create({ data: { email: txEmail, phone: '+1 555 4242', readings: { create: { title: 't', body: 'tx body', topic: 'Tx' } } } });
      const again = await tx.user.findUniqueOrThrow({ where: { emailIndex: txEmail }, include: { readings: true } });
      await tx.reading.updateMany({ where: { userId: user.id, topic: 'tx' }, data: { body: 'tx body updated' } });
      const readings = await tx.user.findUnique({ where: { id: user.id } }).readings();
      return { user, again, readings };
    });
    expect(result.again.readings[0]!.body).toBe('tx body');
    expect(result.readings?.map((r) => r.body)).toEqual(['tx body updated']);
    await expectAtRest(h, 'User', result.user.id, { email: txEmail, phone: '+1 555 4242' });
    await expectAtRest(h, 'Reading', result.readings![0]!.id, { body: 'tx body updated', topic: 'Tx' });
  });

  test('interactive transaction rolls back when a query inside is refused', async () => {
    const txEmail = unique('rollback@example.org');
    const before = await rawRows(h, 'User');
    await expect(
      h.prisma.$transaction(async (tx) => {
        await tx.user.create({ data: { email: txEmail, name: 'Rolled Back' } });
        await tx.user.findMany({ where: { name: { startsWith: 'Rolled' } } });
      }),
    ).rejects.toMatchObject({ model: 'User', field: 'name', operator: 'startsWith' });
    expect(await rawRows(h, 'User')).toHaveLength(before.length);
    expect(await h.prisma.user.findUnique({ where: { emailIndex: txEmail } })).toBeNull();
  });
});
