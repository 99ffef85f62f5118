import { createHarness, providers, type Harness } from '../support/clients';

/**
 * An upsert of a model whose subject id is generated (Person: autoincrement, Client: cuid)
 * reserves a key for its create branch before it knows which branch runs (issue 11). When the row
 * exists and the update branch runs, that key is never bound: it is deleted in the same
 * transaction, so no pending key is left in pce_subject_keys.
 */
describe.each(providers())('upserts leave no pending subject key on %s', (provider) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(provider);
  });
  afterAll(() => h?.close());

  const pending = async () => Number((await h.sql<{ n: unknown }>(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE subject_id IS NULL AND wrapped_key IS NOT NULL`))[0]!.n);
  const keysOf = async (subject: string) => (await h.sql<{ key_id: string }>(`SELECT key_id FROM pce_subject_keys WHERE subject_id = $1`, [subject])).map((r) => r.key_id);

  test('the update branch (row exists) deletes the key reserved for the create branch; the create branch binds it', async () => {
    const client = await h.prisma.client.create({ data: { email: 'pending@example.org', name: 'First' } });
    const person = await h.prisma.person.create({ data: { email: 'pending@example.org', name: 'First' } });
    expect(await pending()).toBe(0);
    const clientKeys = await keysOf(`Client:${client.id}`);
    const personKeys = await keysOf(`Person:${person.id}`);

    // Update branch, with and without a selection that leaves out the subject field.
    const updated = await h.prisma.client.upsert({ where: { id: client.id }, create: { email: 'never@example.org' }, update: { name: 'Second' } });
    expect(updated).toMatchObject({ id: client.id, name: 'Second' });
    const selected = await h.prisma.person.upsert({ where: { id: person.id }, create: { email: 'never@example.org' }, update: { name: 'Second' }, select: { name: true } });
    expect(selected).toEqual({ name: 'Second' });
    expect(await pending()).toBe(0);
    expect(await keysOf(`Client:${client.id}`)).toEqual(clientKeys);
    expect(await keysOf(`Person:${person.id}`)).toEqual(personKeys);
    expect((await h.prisma.person.findUnique({ where: { id: person.id } }))?.name).toBe('Second');

    // Inside the caller's interactive transaction too.
    await h.prisma.$transaction(async (tx) => {
      await tx.client.upsert({ where: { id: client.id }, create: { email: 'never@example.org' }, update: { name: 'Third' } });
      await tx.person.upsert({ where: { id: person.id }, create: { email: 'never@example.org' }, update: { name: 'Third' } });
    });
    expect(await pending()).toBe(0);

    // Create branch: the reserved key is bound to the new id, nothing pending either.
    const made = await h.prisma.client.upsert({ where: { id: 'no-such-client' }, create: { email: 'made@example.org', name: 'Made' }, update: { name: 'never' } });
    expect(await keysOf(`Client:${made.id}`)).toHaveLength(1);
    expect(await pending()).toBe(0);
    expect((await h.prisma.client.findUnique({ where: { id: made.id } }))?.name).toBe('Made');
  });
});
