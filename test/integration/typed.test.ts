import { Prisma } from '../../generated/postgres/client/client';
import { DecryptionError, EncryptionError } from '../../src';
import { TYPE_TAGS } from '../../src/crypto/ciphertext';
import type { EncryptionSchema } from '../../src/schema';
import { encryptedFields } from '../../generated/postgres/encryption';
import { createHarness, providers, type Harness } from '../support/clients';
import { codecFor, expectRefused, expectTableInStep, rawRows, unique } from './shapes.support';
import { readmeBlock } from '../consumer/readme';

/**
 * Typed encrypted fields (NatalChart: one field of every type, ciphertext in a storage column,
 * the typed column NULL at rest): round trips in Prisma's own types, selection of storage
 * columns, equality through the blind index on canonical forms, refusals and nested shapes.
 */

const schema = encryptedFields as unknown as EncryptionSchema;
const TYPED = Object.entries(schema.models.NatalChart!.encrypted).filter(([, s]) => s.index);

const sample = () => ({
  bornAt: new Date('1990-03-21T04:45:12.345Z'),
  birthDay: new Date('1990-03-21T00:00:00.000Z'),
  recordedAt: new Date('2024-05-06T07:08:09.000Z'),
  accuracy: 15,
  ephemeris: 9_007_199_254_740_993n,
  latitude: -33.0472,
  fee: new Prisma.Decimal('120.5'),
  consent: true,
  chart: { sun: 'Aries', moon: 'Leo', houses: [1, 2, { cusp: 'Ω' }] },
  portrait: new Uint8Array([0, 1, 2, 255]),
});
type Sample = ReturnType<typeof sample>;
const FIELDS = Object.keys(sample()) as Array<keyof Sample>;
const STORAGE = FIELDS.map((f) => schema.models.NatalChart!.encrypted[f]!.storage!);

describe.each(providers())('typed encrypted fields on %s', (provider) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(provider);
  });
  afterAll(async () => {
    await h?.close();
  });

  const create = (data: Prisma.NatalChartUncheckedCreateInput) => h.prisma.natalChart.create({ data });
  const ids = async (where: Prisma.NatalChartWhereInput, label: string) =>
    (await h.prisma.natalChart.findMany({ where: { AND: [where, { label }] }, select: { id: true }, orderBy: { id: 'asc' } })).map((r) => r.id);

  test('every type round-trips in its own type, with only ciphertext at rest', async () => {
    const label = unique('roundtrip');
    const created = await create({ ...sample(), label });
    expect(created).toMatchObject({ ...sample(), label });
    for (const s of STORAGE) expect(created).not.toHaveProperty(s);
    expect(created.portrait).toBeInstanceOf(Uint8Array);
    expect(created.fee).toBeInstanceOf(Prisma.Decimal);
    expect(typeof created.ephemeris).toBe('bigint');

    const found = await h.prisma.natalChart.findUniqueOrThrow({ where: { id: created.id } });
    expect(found).toEqual(created);

    const [row] = await rawRows(h, 'NatalChart', 'id', created.id);
    for (const field of FIELDS) {
      const codec = codecFor(h, 'NatalChart', field);
      expect(row![field]).toBeNull();
      const stored = row![codec.storageField!] as string;
      expect(stored).toMatch(new RegExp(`^pce:v2:${TYPE_TAGS[codec.spec.type!]}:k:d1:`));
      expect(codec.decrypt(stored)).toEqual(sample()[field]);
      expect(row![codec.indexField!]).toBe(codec.indexForWrite(sample()[field]));
    }
    for (const text of ['1990-03-21', 'Aries', '120.5', '9007199254740993', '33.0472']) expect(JSON.stringify(row, (_, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(text);
    await expectTableInStep(h, 'NatalChart');
  });

  test('values are stored at the column precision: DateTime rounded (PostgreSQL) or truncated (MariaDB, and to the day), Decimal to its scale', async () => {
    const label = unique('precision');
    const chart = await create({ label, birthDay: new Date('1990-03-21T23:59:59.999Z'), recordedAt: new Date('2024-05-06T07:08:09.500Z'), fee: new Prisma.Decimal('1.0000000000000000000000000000005') });
    expect(chart.birthDay).toEqual(new Date('1990-03-21T00:00:00.000Z'));
    // As the database would keep it: PostgreSQL rounds the tie up (after 2000), MariaDB drops the fraction.
    expect(chart.recordedAt).toEqual(new Date(provider === 'mysql' ? '2024-05-06T07:08:09.000Z' : '2024-05-06T07:08:10.000Z'));
    expect(chart.fee!.toFixed()).toBe('1.000000000000000000000000000001');
    expect(await ids({ birthDay: new Date('1990-03-21T12:00:00Z') }, label)).toEqual([chart.id]);
  });

  test('a result shows a storage column only when selected; omit of a typed field takes its storage column along', async () => {
    const label = unique('select');
    const { id } = await create({ ...sample(), label });
    const selected = await h.prisma.natalChart.findUniqueOrThrow({ where: { id }, select: { bornAt: true, chart: true } });
    expect(selected).toEqual({ bornAt: sample().bornAt, chart: sample().chart });

    const both = await h.prisma.natalChart.findUniqueOrThrow({ where: { id }, select: { bornAt: true, bornAtCipher: true } });
    expect(both.bornAt).toEqual(sample().bornAt);
    expect(both.bornAtCipher).toMatch(/^pce:v2:t:k:/);

    const cipherOnly = await h.prisma.natalChart.findUniqueOrThrow({ where: { id }, select: { feeCipher: true } });
    expect(Object.keys(cipherOnly)).toEqual(['feeCipher']);
    expect(cipherOnly.feeCipher).toMatch(/^pce:v2:d:k:/);

    const omitted = await h.prisma.natalChart.findUniqueOrThrow({ where: { id }, omit: { chart: true, bornAtCipher: true } });
    expect(omitted).not.toHaveProperty('chart');
    expect(omitted).not.toHaveProperty('chartCipher');
    expect(omitted).not.toHaveProperty('bornAtCipher');
    expect(omitted.bornAt).toEqual(sample().bornAt);
  });

  test('equality, in, notIn, not and null through the blind index, on canonical forms', async () => {
    const label = unique('filters');
    const a = await create({ ...sample(), label });
    const b = await create({
      label,
      bornAt: new Date('2001-01-01T00:00:00Z'),
      accuracy: -2_147_483_648,
      ephemeris: -(2n ** 63n),
      latitude: -0,
      fee: new Prisma.Decimal('0.001'),
      consent: false,
      chart: [null, 'x'],
      portrait: new Uint8Array(),
    });
    const c = await create({ label });

    // Canonical forms: another spelling of the same value finds the same row.
    expect(await ids({ bornAt: '1990-03-21T06:45:12.345+02:00' }, label)).toEqual([a.id]);
    expect(await ids({ fee: '120.500' }, label)).toEqual([a.id]);
    expect(await ids({ fee: 120.5 }, label)).toEqual([a.id]);
    expect(await ids({ chart: { equals: { moon: 'Leo', houses: [1, 2, { cusp: 'Ω' }], sun: 'Aries' } } }, label)).toEqual([a.id]);
    expect(await ids({ latitude: 0 }, label)).toEqual([b.id]);
    expect(await ids({ ephemeris: 9_007_199_254_740_993n }, label)).toEqual([a.id]);
    expect(await ids({ portrait: new Uint8Array() }, label)).toEqual([b.id]);
    expect(await ids({ portrait: Buffer.from([0, 1, 2, 255]) }, label)).toEqual([a.id]);
    expect(await ids({ consent: false }, label)).toEqual([b.id]);

    // Every operator on every indexed type.
    for (const [field] of TYPED) {
      const value = (a as Record<string, unknown>)[field];
      if (value === null || value === undefined) continue;
      const where = (filter: unknown) => ids({ [field]: filter } as Prisma.NatalChartWhereInput, label);
      expect({ field, ids: await where({ equals: value }) }).toEqual({ field, ids: [a.id] });
      expect({ field, ids: await where({ not: value }) }).toEqual({ field, ids: (b as Record<string, unknown>)[field] === null ? [] : [b.id] });
      expect({ field, ids: await where(null) }).toEqual({ field, ids: (b as Record<string, unknown>)[field] === null ? [b.id, c.id] : [c.id] });
      expect({ field, ids: await where({ not: null }) }).toEqual({ field, ids: (b as Record<string, unknown>)[field] === null ? [a.id] : [a.id, b.id] });
      if (field === 'chart' || field === 'consent') continue; // Json and Boolean filters have no in/notIn in Prisma
      expect({ field, ids: await where({ in: [value] }) }).toEqual({ field, ids: [a.id] });
      expect({ field, ids: await where({ notIn: [value] }) }).toEqual({ field, ids: (b as Record<string, unknown>)[field] === null ? [] : [b.id] });
    }
    // Json null markers: DbNull is SQL NULL, JsonNull the JSON value null.
    const jsonNull = await create({ label, chart: Prisma.JsonNull });
    expect(jsonNull.chart).toBeNull();
    expect(await ids({ chart: { equals: Prisma.JsonNull } }, label)).toEqual([jsonNull.id]);
    expect(await ids({ chart: { equals: Prisma.DbNull } }, label)).toEqual([c.id]);
    expect(await ids({ chart: { not: Prisma.DbNull } }, label)).toEqual([a.id, b.id, jsonNull.id]);
    const [stored] = await rawRows(h, 'NatalChart', 'id', jsonNull.id);
    expect(stored!.chartCipher).toMatch(/^pce:v2:j:k:/);
  });

  test('updates with a value, { set } and null keep ciphertext, index and the NULL typed column in step', async () => {
    const label = unique('update');
    const { id } = await create({ ...sample(), label });
    await h.prisma.natalChart.update({ where: { id }, data: { accuracy: { set: 30 }, fee: '7.25', chart: { sun: 'Leo' }, portrait: null, consent: { set: null } } });
    expect(await h.prisma.natalChart.findUniqueOrThrow({ where: { id }, select: { accuracy: true, fee: true, chart: true, portrait: true, consent: true } })).toEqual({
      accuracy: 30,
      fee: new Prisma.Decimal('7.25'),
      chart: { sun: 'Leo' },
      portrait: null,
      consent: null,
    });
    await h.prisma.natalChart.updateMany({ where: { label }, data: { chart: Prisma.DbNull, bornAt: '2020-02-02T02:02:02.000Z' } });
    const [row] = await rawRows(h, 'NatalChart', 'id', id);
    expect(row).toMatchObject({ chart: null, chartCipher: null, chartIndex: null, portraitCipher: null, consentIndex: null });
    expect(await ids({ bornAt: new Date('2020-02-02T02:02:02Z') }, label)).toEqual([id]);
    await expectTableInStep(h, 'NatalChart');
  });

  test('a value of the wrong type is an EncryptionError naming model and field, and nothing is written', async () => {
    const before = await h.prisma.natalChart.count();
    const cases: Array<[keyof Sample, unknown]> = [
      ['accuracy', '15'],
      ['accuracy', 1.5],
      ['accuracy', 2 ** 31],
      ['ephemeris', 2n ** 63n],
      ['ephemeris', 2 ** 60],
      ['latitude', '1.5'],
      ['fee', 'twelve'],
      ['fee', Number.NaN],
      ['fee', new Prisma.Decimal('1e40')],
      ['consent', 1],
      ['bornAt', 'yesterday'],
      ['bornAt', new Date(Number.NaN)],
      ['chart', { at: new Date() }],
      ['chart', { n: 1n }],
      ['portrait', 'AAEC'],
    ];
    for (const [field, value] of cases) {
      const attempt = h.prisma.user.create({ data: { email: unique('wrong@x.org'), charts: { create: { label: 'x', [field]: value } } } });
      await expect(attempt).rejects.toThrow(EncryptionError);
      await expect(attempt).rejects.toMatchObject({ code: 'PCE_ENCRYPT', model: 'NatalChart', field });
      await expect(h.prisma.natalChart.findMany({ where: { [field]: value } as Prisma.NatalChartWhereInput })).rejects.toMatchObject({ model: 'NatalChart', field });
    }
    expect(await h.prisma.natalChart.count()).toBe(before);
    expect(await h.prisma.user.count({ where: { email: { in: [] } } })).toBe(0);
  });

  test('range, JSON path, ordering and ciphertext filters are refused with the typed error', async () => {
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { bornAt: { gt: new Date() } } }), 'NatalChart', 'bornAt', 'gt');
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { accuracy: { lte: 3 } } }), 'NatalChart', 'accuracy', 'lte');
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { chart: { path: ['sun'], equals: 'Aries' } } }), 'NatalChart', 'chart', 'path');
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { chart: { equals: Prisma.AnyNull } } }), 'NatalChart', 'chart', 'equals');
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { notedAt: new Date() } }), 'NatalChart', 'notedAt', 'equals');
    await expectRefused(() => h.prisma.natalChart.findMany({ orderBy: { fee: 'asc' } }), 'NatalChart', 'fee', 'orderBy');
    await expectRefused(() => h.prisma.natalChart.findMany({ orderBy: { feeCipher: 'asc' } }), 'NatalChart', 'feeCipher', 'orderBy');
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { feeCipher: { startsWith: 'pce:' } } }), 'NatalChart', 'feeCipher', 'filter');
    await expectRefused(() => h.prisma.natalChart.aggregate({ _max: { accuracy: true } }), 'NatalChart', 'accuracy', '_max');
    await expectRefused(() => h.prisma.natalChart.create({ data: { feeCipher: 'pce:v2:d:k:d1:x:y' } }), 'NatalChart', 'feeCipher', 'create');
    await expectRefused(() => h.prisma.natalChart.findMany({ distinct: ['fee'] }), 'NatalChart', 'fee', 'distinct');
    // Lists where Prisma's own filter has none (plain Prisma rejects them too), also inside not.
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { consent: { in: [true] } } as never }), 'NatalChart', 'consent', 'in');
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { consent: { not: { notIn: [false] } } } as never }), 'NatalChart', 'consent', 'notIn');
    await expectRefused(() => h.prisma.natalChart.findMany({ where: { chart: { in: [{ sun: 'Aries' }] } } as never }), 'NatalChart', 'chart', 'in');
    await expectRefused(() => h.prisma.natalChart.groupBy({ by: ['bornAt'], _count: { _all: true } } as never), 'NatalChart', 'bornAt', 'groupBy');
    // Null tests on a storage column are answered as they are.
    expect(await h.prisma.natalChart.count({ where: { feeCipher: null, label: 'none-such' } })).toBe(0);
  });

  test("the README's typed-fields snippet runs as written", async () => {
    const snippet = readmeBlock('typed-fields');
    const run = new Function('prisma', `return (async () => {\n${snippet}\nreturn found;\n})();`) as (prisma: unknown) => Promise<{ bornAt: Date; chart: unknown } | null>;
    const found = await run(h.prisma);
    expect(found?.bornAt).toEqual(new Date('1990-03-21T04:45:00Z'));
    expect(found?.chart).toEqual({ sun: 'Aries' });
  });

  test('a storage column copied to another field, or String ciphertext moved into one, fails to decrypt', async () => {
    const label = unique('copy');
    const { id } = await create({ label, bornAt: sample().bornAt, notedAt: new Date('2000-01-01T00:00:00Z') });
    const user = await h.prisma.user.create({ data: { email: unique('copy@x.org'), name: 'Moved Name' } });
    const [u] = await rawRows(h, 'User', 'id', user.id);
    const t = h.q('NatalChart');
    await h.sql(`UPDATE ${t} SET ${h.q('notedAtCipher')} = ${h.q('bornAtCipher')} WHERE ${h.q('id')} = $1`, [id]);
    await expect(h.prisma.natalChart.findUniqueOrThrow({ where: { id }, select: { notedAt: true } })).rejects.toMatchObject({ field: 'notedAt', reason: 'authentication-failed' });
    await h.sql(`UPDATE ${t} SET ${h.q('notedAtCipher')} = $1 WHERE ${h.q('id')} = $2`, [u!.name, id]);
    await expect(h.prisma.natalChart.findUniqueOrThrow({ where: { id }, select: { notedAt: true } })).rejects.toMatchObject({ field: 'notedAt', reason: 'authentication-failed' });
    // Plaintext written behind the extension's back into a strict typed column is not returned as if decrypted.
    await h.sql(`UPDATE ${t} SET ${h.q('notedAtCipher')} = NULL, ${h.q('notedAt')} = $1 WHERE ${h.q('id')} = $2`, [new Date('2000-01-01T00:00:00Z'), id]);
    const read = h.prisma.natalChart.findUniqueOrThrow({ where: { id } });
    await expect(read).rejects.toThrow(DecryptionError);
    await expect(read).rejects.toMatchObject({ field: 'notedAt', reason: 'not-ciphertext' });
    await h.sql(`DELETE FROM ${t} WHERE ${h.q('id')} = $1`, [id]);
  });

  test('nested writes, include at depth, upsert, createMany, transactions and the fluent API', async () => {
    const label = unique('nested');
    const email = unique('typed@x.org');
    const user = await h.prisma.user.create({
      data: { email, charts: { create: [{ ...sample(), label }, { label, accuracy: 1 }] } },
      include: { charts: { orderBy: { id: 'asc' }, select: { id: true, bornAt: true, accuracy: true } } },
    });
    expect(user.charts).toEqual([
      { id: expect.any(Number), bornAt: sample().bornAt, accuracy: 15 },
      { id: expect.any(Number), bornAt: null, accuracy: 1 },
    ]);
    const [first, second] = user.charts;
    await h.prisma.user.update({
      where: { id: user.id },
      data: { charts: { update: { where: { id: second!.id }, data: { chart: { nested: true } } }, updateMany: { where: { accuracy: 15 }, data: { consent: false } } } },
    });
    const deep = await h.prisma.reading.create({
      data: { title: 't', body: 'typed depth body', user: { connect: { id: user.id } } },
      include: { user: { include: { charts: { where: { consent: false }, omit: { portrait: true } } } } },
    });
    expect(deep.user.charts).toHaveLength(1);
    expect(deep.user.charts[0]).toMatchObject({ id: first!.id, consent: false, fee: sample().fee, chart: sample().chart });
    expect(deep.user.charts[0]).not.toHaveProperty('portrait');
    expect(deep.user.charts[0]).not.toHaveProperty('feeCipher');

    const upserted = await h.prisma.natalChart.upsert({ where: { id: second!.id }, create: { label }, update: { ephemeris: 5n } });
    expect(upserted.ephemeris).toBe(5n);
    const created = await h.prisma.natalChart.upsert({ where: { id: 2_000_000_000 }, create: { label, latitude: 1.25 }, update: {} });
    expect(created.latitude).toBe(1.25);
    await h.prisma.natalChart.createMany({ data: [{ label, accuracy: 99 }, { label, accuracy: 99, chart: [1] }] });
    expect(await h.prisma.natalChart.count({ where: { label, accuracy: 99 } })).toBe(2);

    const [inBatch] = await h.prisma.$transaction([h.prisma.natalChart.findMany({ where: { label, chart: { equals: [1] } } })]);
    expect(inBatch.map((r) => r.chart)).toEqual([[1]]);
    await h.prisma.$transaction(async (tx) => {
      await tx.natalChart.update({ where: { id: created.id }, data: { latitude: 2.5 } });
      expect((await tx.natalChart.findFirstOrThrow({ where: { latitude: 2.5, label } })).id).toBe(created.id);
    });
    const fluent = await h.prisma.user.findUniqueOrThrow({ where: { id: user.id } }).charts({ where: { accuracy: 15 }, select: { bornAt: true, fee: true } });
    expect(fluent).toEqual([{ bornAt: sample().bornAt, fee: sample().fee }]);
    const owner = await h.prisma.natalChart.findUniqueOrThrow({ where: { id: first!.id } }).user({ include: { charts: { where: { id: first!.id } } } });
    expect(owner!.charts[0]!.bornAt).toEqual(sample().bornAt);
    expect(owner!.charts[0]).not.toHaveProperty('bornAtCipher');
    await expectTableInStep(h, 'NatalChart');
  });
});
