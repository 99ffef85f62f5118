import { createHarness, providers, type Harness } from '../support/clients';
import { expectAtRest, expectRefused, expectTableInStep, rawRows, unique } from './shapes.support';

/** Writes at every depth: payloads are encrypted and blind indexes stay in step with the values. */
describe.each(providers())('write shapes on %s', (provider) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(provider);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('top-level create and createMany encrypt and index', async () => {
    const email = unique('Create@Example.org');
    const user = await h.prisma.user.create({ data: { email, name: 'Ada Lovelace', phone: '+44 1234 5678' } });
    expect(user).toMatchObject({ email, name: 'Ada Lovelace', phone: '+44 1234 5678' });
    await expectAtRest(h, 'User', user.id, { email, name: 'Ada Lovelace', phone: '+44 1234 5678' });

    const emails = [unique('many-a@example.org'), unique('many-b@example.org')];
    const { count } = await h.prisma.user.createMany({ data: emails.map((e) => ({ email: e, name: `name of ${e}` })) });
    expect(count).toBe(2);
    for (const e of emails) {
      const found = await h.prisma.user.findUniqueOrThrow({ where: { emailIndex: e } });
      await expectAtRest(h, 'User', found.id, { email: e, name: `name of ${e}`, phone: null });
    }
  });

  (provider === 'postgres' ? test : test.skip)('createManyAndReturn and updateManyAndReturn return plaintext (PostgreSQL only)', async () => {
    const emails = [unique('cmar-a@example.org'), unique('cmar-b@example.org')];
    const created = await h.prisma.user.createManyAndReturn({ data: emails.map((email) => ({ email, name: 'Returned Name' })) });
    expect(created.map((u) => u.email).sort()).toEqual([...emails].sort());
    for (const u of created) await expectAtRest(h, 'User', u.id, { email: u.email, name: 'Returned Name' });

    const updated = await h.prisma.user.updateManyAndReturn({
      where: { email: { in: emails } },
      data: { name: 'Renamed Name' },
      select: { id: true, email: true, name: true },
    });
    expect(updated.map((u) => u.name)).toEqual(['Renamed Name', 'Renamed Name']);
    for (const u of updated) await expectAtRest(h, 'User', u.id, { email: u.email, name: 'Renamed Name' });
  });

  test('update with a value, with { set } and to null keeps the index in step', async () => {
    const user = await h.prisma.user.create({ data: { email: unique('upd@example.org'), phone: '+1 555 0100' } });
    const email = unique('Updated@Example.org');
    const updated = await h.prisma.user.update({ where: { id: user.id }, data: { email, phone: { set: '+1 555 0199' }, name: 'Set Name' } });
    expect(updated).toMatchObject({ email, phone: '+1 555 0199', name: 'Set Name' });
    await expectAtRest(h, 'User', user.id, { email, phone: '+1 555 0199', name: 'Set Name' });

    await h.prisma.user.update({ where: { id: user.id }, data: { phone: null, name: { set: null } } });
    await expectAtRest(h, 'User', user.id, { email, phone: null, name: null });
  });

  test('updateMany setting an encrypted field writes ciphertext and the new index to every matched row', async () => {
    const nick = unique('bulk');
    await h.prisma.user.createMany({ data: [1, 2, 3].map((i) => ({ email: unique(`bulk${i}@example.org`), nickname: nick, phone: `+1 555 000${i}` })) });
    const { count } = await h.prisma.user.updateMany({ where: { nickname: nick }, data: { phone: '+49 30 1234', name: 'Bulk Name' } });
    expect(count).toBe(3);
    const rows = await rawRows(h, 'User', 'nickname', nick);
    expect(rows).toHaveLength(3);
    for (const row of rows) await expectAtRest(h, 'User', row.id, { phone: '+49 30 1234', name: 'Bulk Name' });
    // Prisma sends one value for all matched rows, so they share one ciphertext (test/README.md, note 3).
    expect(new Set(rows.map((r) => r.name)).size).toBe(1);
    const found = await h.prisma.user.findMany({ where: { phone: '+4930 1234' } });
    expect(found.map((u) => u.id).sort()).toEqual(rows.map((r) => r.id).sort());
  });

  test('top-level upsert: create branch, then update branch, found through the index field', async () => {
    const email = unique('Upsert@Example.org');
    const created = await h.prisma.user.upsert({
      where: { emailIndex: email },
      create: { email, name: 'Created By Upsert', readings: { create: { title: 't', body: 'upsert created body' } } },
      update: { name: 'never' },
      include: { readings: true },
    });
    expect(created.name).toBe('Created By Upsert');
    expect(created.readings[0]!.body).toBe('upsert created body');
    await expectAtRest(h, 'User', created.id, { email, name: 'Created By Upsert' });

    const updated = await h.prisma.user.upsert({
      where: { emailIndex: email.toUpperCase() },
      create: { email: 'never@example.org' },
      update: { name: 'Updated By Upsert', readings: { create: { title: 't2', body: 'upsert updated body', topic: 'Career' } } },
      include: { readings: { orderBy: { id: 'asc' } } },
    });
    expect(updated.id).toBe(created.id);
    expect(updated.readings.map((r) => r.body)).toEqual(['upsert created body', 'upsert updated body']);
    await expectAtRest(h, 'User', created.id, { email, name: 'Updated By Upsert' });
    await expectAtRest(h, 'Reading', updated.readings[1]!.id, { body: 'upsert updated body', topic: 'Career' });
  });

  test('delete through the index field returns the decrypted record; deleteMany filters by equality', async () => {
    const email = unique('Delete@Example.org');
    const user = await h.prisma.user.create({ data: { email, name: 'Deleted Name', readings: { create: [{ title: 'a', body: 'x', topic: 'gone' }, { title: 'b', body: 'y', topic: 'kept' }] } } });
    const { count } = await h.prisma.reading.deleteMany({ where: { userId: user.id, topic: 'GONE ' } });
    expect(count).toBe(1);
    expect((await rawRows(h, 'Reading', 'userId', user.id)).length).toBe(1);
    const deleted = await h.prisma.user.delete({ where: { emailIndex: email } });
    expect(deleted).toMatchObject({ id: user.id, email, name: 'Deleted Name' });
    expect(await rawRows(h, 'User', 'id', user.id)).toEqual([]);
  });

  test('nested create, three levels deep, to-one and to-many, in create', async () => {
    const email = unique('deep@example.org');
    const user = await h.prisma.user.create({
      data: {
        email,
        profile: { create: { birthDate: '1990-01-01', birthPlace: ' Paris ', sunSign: 'Capricorn' } },
        readings: {
          create: [
            {
              title: 'one',
              body: 'deep body one',
              topic: 'Love',
              notes: { create: [{ text: 'deep note one' }, { text: 'deep note two' }] },
              tags: { create: [{ label: unique('Deep Tag') }] },
            },
          ],
        },
      },
      include: { profile: true, readings: { include: { notes: { orderBy: { id: 'asc' } }, tags: true } } },
    });
    expect(user.profile).toMatchObject({ birthDate: '1990-01-01', birthPlace: ' Paris ', sunSign: 'Capricorn' });
    const reading = user.readings[0]!;
    expect(reading).toMatchObject({ body: 'deep body one', topic: 'Love' });
    expect(reading.notes.map((n) => n.text)).toEqual(['deep note one', 'deep note two']);
    await expectAtRest(h, 'Profile', user.profile!.id, { birthDate: '1990-01-01', birthPlace: ' Paris ', sunSign: 'Capricorn', birthTime: null });
    await expectAtRest(h, 'Reading', reading.id, { body: 'deep body one', topic: 'Love' });
    for (const n of reading.notes) await expectAtRest(h, 'ReadingNote', n.id, { text: n.text });
    await expectAtRest(h, 'Tag', reading.tags[0]!.id, { label: reading.tags[0]!.label });
    // The normalised index finds the nested rows.
    expect(await h.prisma.profile.count({ where: { birthPlace: 'paris' } })).toBeGreaterThanOrEqual(1);
  });

  test('nested createMany inside a nested create', async () => {
    const user = await h.prisma.user.create({
      data: {
        email: unique('cm@example.org'),
        readings: { create: { title: 'parent', body: 'parent body', notes: { createMany: { data: [{ text: 'bulk note a' }, { text: 'bulk note b' }] } } } },
      },
      include: { readings: { include: { notes: { orderBy: { id: 'asc' } } } } },
    });
    const notes = user.readings[0]!.notes;
    expect(notes.map((n) => n.text)).toEqual(['bulk note a', 'bulk note b']);
    for (const n of notes) await expectAtRest(h, 'ReadingNote', n.id, { text: n.text });

    const more = await h.prisma.user.update({
      where: { id: user.id },
      data: { readings: { createMany: { data: [{ title: 'x', body: 'createMany body', topic: 'Health' }] } } },
      include: { readings: { where: { topic: 'health' } } },
    });
    expect(more.readings.map((r) => r.body)).toEqual(['createMany body']);
    await expectAtRest(h, 'Reading', more.readings[0]!.id, { body: 'createMany body', topic: 'Health' });
  });

  test('nested connectOrCreate on to-one (through the unique index field) and on many-to-many', async () => {
    const email = unique('Owner@Example.org');
    const reading = await h.prisma.reading.create({
      data: { title: 'coc', body: 'coc body', user: { connectOrCreate: { where: { emailIndex: email }, create: { email, name: 'Made By COC' } } } },
      include: { user: true },
    });
    expect(reading.user).toMatchObject({ email, name: 'Made By COC' });
    await expectAtRest(h, 'User', reading.userId, { email, name: 'Made By COC' });

    // Same where, different case: the normalised index connects the existing user.
    const second = await h.prisma.reading.create({
      data: { title: 'coc2', body: 'coc body 2', user: { connectOrCreate: { where: { emailIndex: email.toUpperCase() }, create: { email: 'never@example.org' } } } },
    });
    expect(second.userId).toBe(reading.userId);

    const label = unique('Shared Label');
    const tagged = await h.prisma.reading.update({
      where: { id: reading.id },
      data: { tags: { connectOrCreate: [{ where: { labelIndex: label }, create: { label } }] } },
      include: { tags: true },
    });
    const again = await h.prisma.reading.update({
      where: { id: second.id },
      data: { tags: { connectOrCreate: { where: { labelIndex: ` ${label.toLowerCase()} ` }, create: { label: 'never' } } } },
      include: { tags: true },
    });
    expect(again.tags.map((t) => t.id)).toEqual(tagged.tags.map((t) => t.id));
    await expectAtRest(h, 'Tag', tagged.tags[0]!.id, { label });
    expect(await h.prisma.tag.count({ where: { label: 'never' } })).toBe(0);
  });

  test('nested upsert on to-one and to-many, both branches', async () => {
    const user = await h.prisma.user.create({ data: { email: unique('nu@example.org'), readings: { create: { title: 'r', body: 'before upsert' } } }, include: { readings: true } });
    const readingId = user.readings[0]!.id;
    const first = await h.prisma.user.update({
      where: { id: user.id },
      data: {
        profile: { upsert: { create: { birthDate: '2001-02-03', sunSign: 'Aquarius' }, update: { birthDate: 'never' } } },
        readings: {
          upsert: [
            { where: { id: readingId }, create: { title: 'n', body: 'never' }, update: { body: 'after upsert', topic: 'Money' } },
            { where: { id: 2_000_000 }, create: { title: 'n', body: 'created by nested upsert', topic: 'Travel' }, update: { body: 'never' } },
          ],
        },
      },
      include: { profile: true, readings: { orderBy: { id: 'asc' } } },
    });
    expect(first.profile).toMatchObject({ birthDate: '2001-02-03', sunSign: 'Aquarius' });
    expect(first.readings.map((r) => [r.body, r.topic])).toEqual([
      ['after upsert', 'Money'],
      ['created by nested upsert', 'Travel'],
    ]);
    const second = await h.prisma.user.update({
      where: { id: user.id },
      // To-one upsert with a where on an encrypted field (rewritten to its index).
      data: { profile: { upsert: { where: { sunSign: 'AQUARIUS' }, create: { birthDate: 'never' }, update: { sunSign: 'Pisces', birthTime: '12:30' } } } },
      include: { profile: true },
    });
    expect(second.profile).toMatchObject({ birthDate: '2001-02-03', sunSign: 'Pisces', birthTime: '12:30' });
    await expectAtRest(h, 'Profile', second.profile!.id, { birthDate: '2001-02-03', sunSign: 'Pisces', birthTime: '12:30' });
    for (const r of first.readings) await expectAtRest(h, 'Reading', r.id, { body: r.body, topic: r.topic });
  });

  test('nested update and updateMany three levels deep, selected by encrypted equality', async () => {
    const user = await h.prisma.user.create({
      data: {
        email: unique('nup@example.org'),
        profile: { create: { birthDate: '1970-01-01' } },
        readings: {
          create: [
            { title: 'a', body: 'body a', topic: 'Work', notes: { create: [{ text: 'old note' }, { text: 'other note' }] } },
            { title: 'b', body: 'body b', topic: 'Play' },
          ],
        },
      },
      include: { readings: { orderBy: { id: 'asc' }, include: { notes: { orderBy: { id: 'asc' } } } } },
    });
    const [work, play] = user.readings;
    const updated = await h.prisma.user.update({
      where: { id: user.id },
      data: {
        profile: { update: { birthPlace: 'Lyon' } },
        readings: {
          update: {
            where: { id: work!.id },
            data: { topic: 'Career', notes: { updateMany: { where: { id: work!.notes[0]!.id }, data: { text: 'new note' } } } },
          },
          updateMany: { where: { topic: 'play' }, data: { body: 'body b rewritten', topic: 'Leisure' } },
        },
      },
      include: { profile: true, readings: { orderBy: { id: 'asc' }, include: { notes: { orderBy: { id: 'asc' } } } } },
    });
    expect(updated.profile!.birthPlace).toBe('Lyon');
    expect(updated.readings.map((r) => [r.body, r.topic])).toEqual([
      ['body a', 'Career'],
      ['body b rewritten', 'Leisure'],
    ]);
    expect(updated.readings[0]!.notes.map((n) => n.text)).toEqual(['new note', 'other note']);
    await expectAtRest(h, 'Profile', updated.profile!.id, { birthPlace: 'Lyon', birthDate: '1970-01-01' });
    await expectAtRest(h, 'Reading', work!.id, { body: 'body a', topic: 'Career' });
    await expectAtRest(h, 'Reading', play!.id, { body: 'body b rewritten', topic: 'Leisure' });

    // To-one update through a nested where, then a third-level update through the to-one relation.
    await h.prisma.reading.update({
      where: { id: work!.id },
      data: { user: { update: { where: { email: user.email }, data: { name: 'Through Reading' } } } },
    });
    await expectAtRest(h, 'User', user.id, { email: user.email, name: 'Through Reading' });
  });

  test('nested set, connect and disconnect on many-to-many through the unique index field', async () => {
    const [l1, l2, l3] = [unique('Set One'), unique('Set Two'), unique('Set Three')];
    await h.prisma.tag.createMany({ data: [{ label: l1 }, { label: l2 }, { label: l3 }] });
    const user = await h.prisma.user.create({ data: { email: unique('set@example.org') } });
    const reading = await h.prisma.reading.create({
      data: { title: 's', body: 'set body', userId: user.id, tags: { connect: [{ labelIndex: l1 }, { labelIndex: l2 }] } },
      include: { tags: { orderBy: { id: 'asc' } } },
    });
    expect(reading.tags.map((t) => t.label)).toEqual([l1, l2]);
    const set = await h.prisma.reading.update({
      where: { id: reading.id },
      data: { tags: { set: [{ labelIndex: l3.toUpperCase() }] } },
      include: { tags: true },
    });
    expect(set.tags.map((t) => t.label)).toEqual([l3]);
    const disconnected = await h.prisma.reading.update({
      where: { id: reading.id },
      data: { tags: { connect: { labelIndex: l1 }, disconnect: { labelIndex: l3 } } },
      include: { tags: true },
    });
    expect(disconnected.tags.map((t) => t.label)).toEqual([l1]);
    expect(await h.prisma.tag.count({ where: { label: { in: [l1, l2, l3] } } })).toBe(3);
  });

  test('nested delete and deleteMany with encrypted filters', async () => {
    const user = await h.prisma.user.create({
      data: {
        email: unique('nd@example.org'),
        profile: { create: { birthDate: '1999-09-09' } },
        readings: { create: [{ title: 'a', body: 'keep me', topic: 'Stay' }, { title: 'b', body: 'drop me', topic: 'Drop', notes: { create: [{ text: 'drop note' }, { text: 'keep note' }] } }] },
      },
      include: { readings: { orderBy: { id: 'asc' }, include: { notes: { orderBy: { id: 'asc' } } } } },
    });
    const after = await h.prisma.user.update({
      where: { id: user.id },
      data: {
        profile: { delete: true },
        readings: {
          update: { where: { id: user.readings[1]!.id }, data: { notes: { deleteMany: { id: user.readings[1]!.notes[0]!.id } } } },
        },
      },
      include: { profile: true, readings: { include: { notes: true }, orderBy: { id: 'asc' } } },
    });
    expect(after.profile).toBeNull();
    expect(after.readings[1]!.notes.map((n) => n.text)).toEqual(['keep note']);
    const final = await h.prisma.user.update({
      where: { id: user.id },
      data: { readings: { deleteMany: { topic: { in: ['drop', 'nothing'] } } } },
      include: { readings: true },
    });
    expect(final.readings.map((r) => r.body)).toEqual(['keep me']);
    expect(await rawRows(h, 'Reading', 'userId', user.id)).toHaveLength(1);
  });

  test('nested writes inside the create and update of a parent upsert', async () => {
    const email = unique('pu@example.org');
    const args = (body: string) => ({
      where: { emailIndex: email },
      create: { email, readings: { create: { title: 'c', body, topic: 'Created', notes: { create: { text: `${body} note` } } } } },
      update: { readings: { create: { title: 'u', body, topic: 'Updated', notes: { create: { text: `${body} note` } } } } },
      include: { readings: { include: { notes: true }, orderBy: { id: 'asc' as const } } },
    });
    await h.prisma.user.upsert(args('first upsert body'));
    const user = await h.prisma.user.upsert(args('second upsert body'));
    expect(user.readings.map((r) => [r.body, r.topic, r.notes[0]!.text])).toEqual([
      ['first upsert body', 'Created', 'first upsert body note'],
      ['second upsert body', 'Updated', 'second upsert body note'],
    ]);
    for (const r of user.readings) {
      await expectAtRest(h, 'Reading', r.id, { body: r.body, topic: r.topic });
      await expectAtRest(h, 'ReadingNote', r.notes[0]!.id, { text: r.notes[0]!.text });
    }
  });

  test('after all nested writes above, every stored index matches its decrypted value', async () => {
    for (const model of ['User', 'Profile', 'Reading', 'ReadingNote', 'Tag']) {
      expect(await expectTableInStep(h, model)).toBeGreaterThan(0);
    }
  });

  test('atomic operators and direct blind-index writes are refused before anything is written', async () => {
    const user = await h.prisma.user.create({ data: { email: unique('atomic@example.org'), readings: { create: { title: 'a', body: 'atomic body' } } }, include: { readings: true } });
    const before = await rawRows(h, 'User', 'id', user.id);
    await expectRefused(() => h.prisma.user.update({ where: { id: user.id }, data: { name: { increment: 1 } as never } }), 'User', 'name', 'increment');
    await expectRefused(
      () => h.prisma.user.update({ where: { id: user.id }, data: { karma: { increment: 1 }, readings: { update: { where: { id: user.readings[0]!.id }, data: { body: { multiply: 2 } as never } } } } }),
      'Reading',
      'body',
      'multiply',
    );
    await expectRefused(() => h.prisma.user.update({ where: { id: user.id }, data: { emailIndex: 'forged' } }), 'User', 'emailIndex', 'update');
    await expectRefused(() => h.prisma.user.create({ data: { email: 'x@example.org', emailIndex: 'forged' } }), 'User', 'emailIndex', 'create');
    await expectRefused(() => h.prisma.reading.updateMany({ where: { userId: user.id }, data: { topicIndex: 'forged' } }), 'Reading', 'topicIndex', 'update');
    expect(await rawRows(h, 'User', 'id', user.id)).toEqual(before);
  });
});
