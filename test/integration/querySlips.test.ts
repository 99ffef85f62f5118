import { DecryptionError } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { expectRefused, unique } from './shapes.support';

/**
 * Query shapes that slipped past the rewriting (issue 9 items 2, 3, 7, 8, 9): field references
 * nested in filters, groupBy aggregates, null tests on an index field, `not` inside `not`, and
 * stored values that are not the one canonical text of their envelope.
 */
describe.each(providers())('query slips on %s', (provider) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(provider);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('field references to encrypted or index columns are refused at any depth of a filter', async () => {
    const user = h.prisma.user.fields;
    const reading = h.prisma.reading.fields;
    const cases: Array<[() => Promise<unknown>, string, string]> = [
      [() => h.prisma.user.findMany({ where: { nickname: { not: { equals: user.email } } } }), 'User', 'email'],
      [() => h.prisma.user.findMany({ where: { nickname: { not: { not: { equals: user.emailIndex } } } } }), 'User', 'emailIndex'],
      [() => h.prisma.user.findMany({ where: { nickname: { not: user.phone as never } } }), 'User', 'phone'],
      [() => h.prisma.user.findMany({ where: { NOT: { nickname: { not: { equals: user.name } } } } }), 'User', 'name'],
      [() => h.prisma.user.findMany({ where: { OR: [{ karma: 1 }, { AND: [{ nickname: { not: { equals: user.phoneIndex } } }] }] } }), 'User', 'phoneIndex'],
      [() => h.prisma.user.findMany({ where: { readings: { some: { title: { not: { equals: reading.body } } } } } }), 'Reading', 'body'],
      [() => h.prisma.user.findMany({ where: { readings: { every: { title: { not: { equals: reading.topicIndex } } } } } }), 'Reading', 'topicIndex'],
      [() => h.prisma.user.findMany({ where: { readings: { none: { NOT: { title: { equals: reading.topic } } } } } }), 'Reading', 'topic'],
      [() => h.prisma.reading.findMany({ where: { user: { is: { nickname: { not: { equals: user.email } } } } } }), 'User', 'email'],
      [() => h.prisma.reading.findMany({ where: { user: { isNot: { nickname: { not: { equals: user.emailIndex } } } } } }), 'User', 'emailIndex'],
      [() => h.prisma.reading.findMany({ where: { user: { nickname: { not: { equals: user.name } } } } }), 'User', 'name'],
      [() => h.prisma.user.findMany({ include: { readings: { where: { title: { not: { equals: reading.body } } } } } }), 'Reading', 'body'],
      [() => h.prisma.reading.groupBy({ by: ['userId'], having: { title: { _max: { not: { equals: reading.topic } } } } as never }), 'Reading', 'topic'],
    ];
    await h.prisma.user.create({ data: { email: unique('ref@x.org'), nickname: 'nick', name: 'Name', readings: { create: { title: 't', body: 'b', topic: 'love' } } } });
    for (const [run, model, field] of cases) await expectRefused(run, model, field, 'field reference');
    // References to plain columns are not refused.
    expect(await h.prisma.user.count({ where: { nickname: { not: { not: { equals: user.nickname } } } } })).toBeGreaterThan(0);
  });

  test('groupBy orderBy and having refuse aggregates other than _count of encrypted and index fields', async () => {
    const u = await h.prisma.user.create({ data: { email: unique('group@x.org'), name: 'zz-last' } });
    await h.prisma.user.create({ data: { email: unique('group@x.org'), name: 'aa-first', karma: 1 } });
    await h.prisma.profile.create({ data: { userId: u.id, birthDate: 'd', sunSign: 'Leo' } });
    await expectRefused(() => h.prisma.user.groupBy({ by: ['karma'], orderBy: { _max: { name: 'desc' } }, take: 1 }), 'User', 'name', 'orderBy _max');
    await expectRefused(() => h.prisma.user.groupBy({ by: ['karma'], orderBy: [{ karma: 'asc' }, { _min: { emailIndex: 'asc' } }] }), 'User', 'emailIndex', 'orderBy _min');
    await expectRefused(() => h.prisma.user.groupBy({ by: ['karma'], orderBy: { _sum: { phone: 'asc' } } as never }), 'User', 'phone', 'orderBy _sum');
    await expectRefused(() => h.prisma.user.groupBy({ by: ['karma'], orderBy: { _avg: { phoneIndex: 'asc' } } as never }), 'User', 'phoneIndex', 'orderBy _avg');
    await expectRefused(() => h.prisma.profile.groupBy({ by: ['public'], having: { sunSignIndex: { _min: { equals: 'Leo' } } } }), 'Profile', 'sunSignIndex', 'having');
    await expectRefused(() => h.prisma.profile.groupBy({ by: ['public'], having: { NOT: { sunSignIndex: { _max: { gt: 'a' } } } } }), 'Profile', 'sunSignIndex', 'having');
    await expectRefused(() => h.prisma.profile.groupBy({ by: ['public'], having: { sunSignIndex: { _count: { gt: 0 }, _max: { gt: 'a' } } } }), 'Profile', 'sunSignIndex', 'having');
    // _count counts non-null values, which ciphertext and hashes have exactly when the plaintext has.
    const byCount = await h.prisma.user.groupBy({ by: ['karma'], where: { id: u.id }, _count: { name: true }, orderBy: { _count: { name: 'desc' } } });
    expect(byCount).toEqual([{ karma: 0, _count: { name: 1 } }]);
    expect(await h.prisma.profile.groupBy({ by: ['public'], where: { userId: u.id }, having: { sunSignIndex: { _count: { equals: 1 } } } })).toEqual([{ public: false }]);
  });

  test('null tests on an index field stay on the index field (passthrough and strict, optional and required)', async () => {
    await h.sql(`INSERT INTO ${h.q('LegacyContact')} (${h.q('email')}) VALUES ($1)`, ['legacy-null@x.org']);
    const modern = await h.prisma.legacyContact.create({ data: { email: 'modern-null@x.org' } });
    const emails = async (where: object) => (await h.prisma.legacyContact.findMany({ where, orderBy: { id: 'asc' } })).map((r) => r.email);
    // The legacy row has an email but no index yet: a null test on the index sees that.
    expect(await emails({ emailIndex: { not: null } })).toEqual(['modern-null@x.org']);
    expect(await emails({ emailIndex: { not: { equals: null } } })).toEqual(['modern-null@x.org']);
    expect(await emails({ emailIndex: null })).toEqual(['legacy-null@x.org']);
    expect(await emails({ emailIndex: { in: ['legacy-null@x.org', 'modern-null@x.org'], not: null } })).toEqual(['modern-null@x.org']);
    expect(await emails({ email: { not: { equals: null } } })).toEqual(['legacy-null@x.org', 'modern-null@x.org']);
    expect(modern.email).toBe('modern-null@x.org');
    // User.email is required, its index optional: these are valid filters on the index field.
    const email = unique('strict-null@x.org');
    const user = await h.prisma.user.create({ data: { email } });
    expect((await h.prisma.user.findMany({ where: { id: user.id, emailIndex: { not: { equals: null } } } })).map((r) => r.id)).toEqual([user.id]);
    expect((await h.prisma.user.findMany({ where: { emailIndex: { equals: email, not: null } } })).map((r) => r.id)).toEqual([user.id]);
    expect(await h.prisma.user.count({ where: { id: user.id, emailIndex: { not: { not: null } } } })).toBe(1);
  });

  /**
   * `not` inside `not` means what Prisma makes of it on a plaintext column (see collectConditions).
   * Each filter runs on the encrypted `phone` (and, passthrough, LegacyContact.email with legacy
   * rows) and, through the plain client, on `nickname` holding the same values.
   */
  test('not inside not returns what Prisma returns on a plaintext column', async () => {
    const values = ['a-val', 'b-val', null] as const;
    const tag = unique('notnot');
    const users = [];
    for (const v of values) users.push(await h.prisma.user.create({ data: { email: unique('nn@x.org'), nickname: v, phone: v, name: tag } }));
    for (const v of values.filter((x) => x !== null)) await h.sql(`INSERT INTO ${h.q('LegacyContact')} (${h.q('email')}, ${h.q('notes')}) VALUES ($1, $2)`, [v, tag]);
    for (const v of values) await h.prisma.legacyContact.create({ data: { email: v, notes: tag } });
    const a = 'a-val';
    const b = 'b-val';
    const filters: object[] = [
      { not: { not: a } },
      { not: { not: null } },
      { not: { not: { not: a } } },
      { not: { not: { equals: a } } },
      { not: { not: { equals: null } } },
      { not: { not: { in: [a, b], notIn: [a] } } },
      { not: { in: [a, b], notIn: [a] } },
      { not: { equals: a, not: b } },
      { not: { not: null, equals: a } },
      { not: { equals: null, in: [a] } },
      { not: { not: { equals: null }, in: [a] } },
      { not: { in: [a], equals: b } },
      { not: { equals: a }, equals: null },
    ];
    const ids = users.map((u) => u.id);
    for (const filter of filters) {
      const plain = await h.plain.user.findMany({ where: { id: { in: ids }, nickname: filter }, orderBy: { id: 'asc' } });
      const encrypted = await h.prisma.user.findMany({ where: { id: { in: ids }, phone: filter }, orderBy: { id: 'asc' } });
      expect({ filter, ids: encrypted.map((u) => u.id) }).toEqual({ filter, ids: plain.map((u) => u.id) });
      // Passthrough: legacy plaintext rows (null index) and encrypted rows of the same values answer alike.
      const want = plain.map((u) => u.nickname).flatMap((v) => (v === null ? [null] : [v, v])).sort();
      const got = (await h.prisma.legacyContact.findMany({ where: { notes: { not: null }, email: filter }, select: { email: true, notes: true } }))
        .filter((r) => r.notes === tag)
        .map((r) => r.email)
        .sort();
      expect({ filter, got }).toEqual({ filter, got: want });
    }
  });

  test('a stored value with an extra base64url character is malformed, not decrypted', async () => {
    // Two plaintext bytes seal to 18 bytes: 24 characters, so one more is a lone trailing character.
    const user = await h.prisma.user.create({ data: { email: unique('canon@x.org'), name: 'Zo' } });
    const [row] = await h.sql(`SELECT ${h.q('name')} FROM ${h.q('User')} WHERE ${h.q('id')} = $1`, [user.id]);
    await h.sql(`UPDATE ${h.q('User')} SET ${h.q('name')} = $1 WHERE ${h.q('id')} = $2`, [`${String(row!.name)}A`, user.id]);
    const error = await h.prisma.user.findUnique({ where: { id: user.id } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error).toMatchObject({ model: 'User', field: 'name', reason: 'malformed' });
  });
});
