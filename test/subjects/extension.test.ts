import { randomBytes } from 'node:crypto';
import { DecryptionError, localKeys, SubjectErasedError, SubjectKeyStore, UnsupportedQueryError } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { forget } from './forgetSupport';

/**
 * The extension over per-subject keys (issue 11): models annotated `@@encrypted(subject: ...)`
 * are written under their subject's own key and read back through the store's batched loads,
 * on real databases. Person (subject: its autoincrement id), PersonProfile and PersonReading
 * (subject: personId, cuid ids), Client (subject: its cuid id).
 */
const b64 = () => randomBytes(32).toString('base64');
const data = { id: 'd1', key: b64() };
const index = { id: 'i1', key: b64() };
const wrap = { id: 'w1', key: b64() };
const keyring = localKeys({ data: [data], index: [index], wrap: [wrap] });
/** The same keys during an index-key rotation: i2 is primary, i1 still loaded. */
const rotating = localKeys({ data: [data], index: [{ id: 'i2', key: b64() }, index], wrap: [wrap] });
const SUBJECT_ENVELOPE = /^pce:v2:([a-z]):s:([A-Za-z0-9_-]{22}):/;
const keyIdOf = (value: unknown) => SUBJECT_ENVELOPE.exec(String(value))?.[2];

describe.each(providers())('per-subject keys through the extension on %s', (provider) => {
  let h: Harness;
  let store: SubjectKeyStore;
  const q = (id: string) => (provider === 'postgres' ? `"${id}"` : `\`${id}\``);

  beforeAll(async () => {
    store = new SubjectKeyStore({ keys: keyring, provider: provider === 'mysql' ? 'mysql' : 'postgresql' });
    h = await createHarness(provider, { keys: keyring, subjectKeyStore: store });
  });
  afterAll(() => h?.close());

  /** Key rows of a subject: the store keys subjects by id space and id (`Person:42`). */
  const keyRowOf = async (subject: string | number, root = 'Person') =>
    (await h.sql<{ key_id: string }>(`SELECT key_id FROM pce_subject_keys WHERE subject_id = $1`, [`${root}:${subject}`])).map((r) => r.key_id);

  test('values are stored as pce:v2:<type>:s: envelopes under the subject key, with no plaintext at rest, and read back typed', async () => {
    const born = new Date('1990-03-21T04:45:00.000Z');
    const person = await h.prisma.person.create({ data: { email: 'Ada@Example.com', name: 'Ada Lovelace', birthDate: born } });
    expect(person).toMatchObject({ email: 'Ada@Example.com', name: 'Ada Lovelace', birthDate: born });
    expect(person).not.toHaveProperty('birthDateCipher');
    const [row] = await h.sql<Record<string, unknown>>(`SELECT * FROM ${q('Person')} WHERE id = $1`, [person.id]);
    const [keyId] = await keyRowOf(person.id);
    expect(keyId).toBeDefined();
    expect(SUBJECT_ENVELOPE.exec(String(row!.email))?.slice(1)).toEqual(['s', keyId]);
    expect(SUBJECT_ENVELOPE.exec(String(row!.name))?.slice(1)).toEqual(['s', keyId]);
    expect(SUBJECT_ENVELOPE.exec(String(row!.birthDateCipher))?.slice(1)).toEqual(['t', keyId]);
    expect(row!.birthDate).toBeNull();
    const stored = JSON.stringify(row);
    for (const plain of ['Ada@Example.com', 'ada@example.com', 'Ada Lovelace', '1990']) expect(stored).not.toContain(plain);
    // The key table holds the key only wrapped: no column is 32 raw bytes or their base64.
    const [keyRow] = await h.sql<Record<string, unknown>>(`SELECT * FROM pce_subject_keys WHERE key_id = $1`, [keyId]);
    expect(keyRow!.wrap_key_id).toBe('w1');
    expect(String(keyRow!.wrapped_key)).not.toMatch(/^[A-Za-z0-9+/]{43}=$/);

    const read = await h.prisma.person.findUnique({ where: { id: person.id } });
    expect(read).toEqual({ ...person, emailIndex: expect.any(String) });
    const found = await h.prisma.person.findFirst({ where: { email: '  ADA@example.com ' }, select: { name: true, birthDate: true } });
    expect(found).toEqual({ name: 'Ada Lovelace', birthDate: born });
  });

  test('a nested create gives every record the new person\'s key: autoincrement id, profile (Json) and cuid readings', async () => {
    const chart = { sun: 'Aries', houses: [1, 7], retrograde: null };
    const person = await h.prisma.person.create({
      data: { email: 'grace@example.com', name: 'Grace', profile: { create: { bio: 'Admiral', chart } }, readings: { create: [{ text: 'Mars rising', topic: 'Career' }, { text: 'Quiet week', topic: 'Rest' }] } },
      include: { profile: true, readings: true },
    });
    expect(person.profile).toMatchObject({ bio: 'Admiral', chart, personId: person.id });
    expect(person.readings.map((r) => r.text).sort()).toEqual(['Mars rising', 'Quiet week']);
    const keys = await keyRowOf(person.id);
    expect(keys).toHaveLength(1);
    const [profile] = await h.sql(`SELECT bio, ${q('chartCipher')} AS chart FROM ${q('PersonProfile')} WHERE ${q('personId')} = $1`, [person.id]);
    const readings = await h.sql(`SELECT text, topic FROM ${q('PersonReading')} WHERE ${q('personId')} = $1`, [person.id]);
    expect([profile!.bio, profile!.chart, ...readings.flatMap((r) => [r.text, r.topic])].map(keyIdOf)).toEqual(Array(6).fill(keys[0]));
    expect(SUBJECT_ENVELOPE.exec(String(profile!.chart))?.[1]).toBe('j');

    // The subject comes from a nested create whose id the database generates (child side of the relation).
    const profile2 = await h.prisma.personProfile.create({ data: { bio: 'From the profile side', person: { create: { email: 'hopper@example.com' } } }, select: { bio: true } });
    expect(profile2).toEqual({ bio: 'From the profile side' });
    const hopper = await h.prisma.person.findFirst({ where: { email: 'hopper@example.com' }, include: { profile: true } });
    expect(hopper!.profile!.bio).toBe('From the profile side');
    const [hopperKey] = await keyRowOf(hopper!.id);
    expect(keyIdOf((await h.sql(`SELECT bio FROM ${q('PersonProfile')} WHERE ${q('personId')} = $1`, [hopper!.id]))[0]!.bio)).toBe(hopperKey);

    // Known subject (the foreign key) and connect: the existing key is used, no second one made.
    await h.prisma.personReading.create({ data: { personId: person.id, text: 'By id' } });
    await h.prisma.personReading.create({ data: { person: { connect: { id: person.id } }, text: 'By connect' } });
    // connect through the unique blind index, which takes the plaintext.
    await h.prisma.personReading.create({ data: { person: { connect: { emailIndex: 'grace@example.com' } }, text: 'By email' } });
    expect(await keyRowOf(person.id)).toEqual(keys);
    const texts = await h.prisma.personReading.findMany({ where: { personId: person.id }, select: { text: true } });
    expect(texts.map((t) => t.text).sort()).toEqual(['By connect', 'By email', 'By id', 'Mars rising', 'Quiet week']);

    // A cuid subject: the id Prisma generates during the create.
    const client = await h.prisma.client.create({ data: { email: 'Buyer@Example.com', name: 'Buyer' }, select: { name: true } });
    expect(client).toEqual({ name: 'Buyer' });
    const stored = await h.prisma.client.findFirst({ where: { email: 'buyer@example.com' } });
    expect(stored).toMatchObject({ name: 'Buyer', email: 'Buyer@Example.com' });
    const [clientKey] = await keyRowOf(stored!.id, 'Client');
    expect(keyIdOf((await h.sql(`SELECT name FROM ${q('Client')} WHERE id = $1`, [stored!.id]))[0]!.name)).toBe(clientKey);
  });

  test('one findMany reads rows of several subjects with one key load, and the blind index finds rows across subjects', async () => {
    const a = await h.prisma.person.create({ data: { email: 'a@multi.example', readings: { create: [{ text: 'A1', topic: 'Love' }] } } });
    const b = await h.prisma.person.create({ data: { email: 'b@multi.example', readings: { create: [{ text: 'B1', topic: ' love ' }] } } });
    const loads = spyOnLoads(store);
    const fresh = h.extend({ subjectKeyStore: store });
    store.clear();
    const rows = await fresh.personReading.findMany({ where: { topic: 'LOVE' }, include: { person: { select: { email: true } } }, orderBy: { personId: 'asc' } });
    expect(rows.map((r) => [r.text, r.person.email])).toEqual([
      ['A1', 'a@multi.example'],
      ['B1', 'b@multi.example'],
    ]);
    expect(loads.calls).toBe(1);
    expect(new Set(loads.ids)).toEqual(new Set([...(await keyRowOf(a.id)), ...(await keyRowOf(b.id))]));
    loads.restore();
  });

  test('update, updateMany and upsert write each row under its own subject\'s key', async () => {
    const a = await h.prisma.person.create({ data: { email: 'u-a@example.com', readings: { create: [{ text: 'old', topic: 'Update' }] } } });
    const b = await h.prisma.person.create({ data: { email: 'u-b@example.com', readings: { create: [{ text: 'old', topic: 'update' }] } } });
    const result = await h.prisma.personReading.updateMany({ where: { topic: 'update' }, data: { text: 'new' } });
    expect(result).toEqual({ count: 2 });
    for (const p of [a, b]) {
      const [stored] = await h.sql(`SELECT text FROM ${q('PersonReading')} WHERE ${q('personId')} = $1`, [p.id]);
      expect(keyIdOf(stored!.text)).toBe((await keyRowOf(p.id))[0]);
    }
    expect((await h.prisma.personReading.findMany({ where: { topic: 'update' } })).map((r) => r.text)).toEqual(['new', 'new']);

    const updated = await h.prisma.person.update({ where: { id: a.id }, data: { name: 'Renamed', profile: { create: { bio: 'added later' } } }, include: { profile: true } });
    expect(updated).toMatchObject({ name: 'Renamed', profile: { bio: 'added later' } });
    const up = await h.prisma.personProfile.upsert({ where: { personId: a.id }, create: { personId: a.id, bio: 'never' }, update: { bio: 'upserted' } });
    expect(up.bio).toBe('upserted');
    const created = await h.prisma.personProfile.upsert({ where: { personId: b.id }, create: { personId: b.id, bio: 'created' }, update: { bio: 'never' } });
    expect(created.bio).toBe('created');
    const [bBio] = await h.sql(`SELECT bio FROM ${q('PersonProfile')} WHERE ${q('personId')} = $1`, [b.id]);
    expect(keyIdOf(bBio!.bio)).toBe((await keyRowOf(b.id))[0]);
    // Shared-key models in the same transaction keep their shared keys.
    const [user, person] = await h.prisma.$transaction(async (tx) => [
      await tx.user.create({ data: { email: 'shared@example.com', name: 'Shared' } }),
      await tx.person.update({ where: { id: b.id }, data: { name: 'In tx' } }),
    ]);
    expect([user.name, person.name]).toEqual(['Shared', 'In tx']);
    const [userRow] = await h.sql(`SELECT name FROM ${q('User')} WHERE id = $1`, [user.id]);
    expect(String(userRow!.name)).toMatch(/^pce:v1:d1:/);
  });

  test('an upsert that updates an existing cuid subject binds nothing; the unique guard runs on subject writes during an index rotation', async () => {
    const existing = await h.prisma.client.create({ data: { email: 'upsert@example.com', name: 'First' } });
    const updated = await h.prisma.client.upsert({ where: { id: existing.id }, create: { email: 'never@example.com' }, update: { name: 'Second' } });
    expect(updated).toMatchObject({ id: existing.id, name: 'Second', email: 'upsert@example.com' });
    expect(await keyRowOf(existing.id, 'Client')).toHaveLength(1);
    const made = await h.prisma.client.upsert({ where: { id: 'no-such-client' }, create: { email: 'made@example.com', name: 'Made' }, update: { name: 'never' } });
    expect(made.name).toBe('Made');
    expect(await keyRowOf(made.id, 'Client')).toHaveLength(1);

    // Person.emailIndex is @unique. With two index keys loaded the constraint cannot see a duplicate
    // stored under the old key; the guard checks it on the subject path too.
    await h.prisma.person.create({ data: { email: 'Unique@Example.com' } });
    const during = h.extend({ keys: rotating, subjectKeyStore: store });
    const duplicate = await during.person.create({ data: { email: 'unique@example.com' } }).catch((e: unknown) => e);
    expect(duplicate).toMatchObject({ code: 'P2002' });
    expect(Number((await h.sql(`SELECT COUNT(*) AS n FROM ${q('Person')} WHERE ${q('emailIndex')} LIKE 'i2:%'`))[0]!.n)).toBe(0);
  });

  test('writes whose subject cannot be told, or that would change a subject, are refused before any SQL', async () => {
    const p = await h.prisma.person.create({ data: { email: 'refuse@example.com', profile: { create: { bio: 'x' } } }, include: { profile: true } });
    const other = await h.prisma.person.create({ data: { email: 'other@example.com' } });
    const before = await h.sql(`SELECT COUNT(*) AS n FROM pce_subject_keys`);
    const refusals: Array<[() => Promise<unknown>, RegExp]> = [
      [() => h.prisma.person.update({ where: { id: p.id }, data: { id: 999_999 } }), /^Person\.id: 'update' is not supported on the subject field: .*old subject's key/],
      [() => h.prisma.personProfile.update({ where: { id: p.profile!.id }, data: { personId: other.id } }), /^PersonProfile\.personId: 'update' is not supported on the subject field/],
      [() => h.prisma.personProfile.update({ where: { id: p.profile!.id }, data: { person: { connect: { id: other.id } } } }), /^PersonProfile\.personId: 'nested connect'.*change the subject/],
      [() => h.prisma.person.update({ where: { id: other.id }, data: { profile: { connect: { id: p.profile!.id } } } }), /^PersonProfile\.personId: 'nested connect'.*move existing PersonProfile records/],
      [() => h.prisma.person.createMany({ data: [{ email: 'm1@example.com' }] }), /^Person\.email: 'create'.*the subject is the id of a record created inside another one|generated/],
      [
        () => h.prisma.personReading.create({ data: { text: 'x', person: { connectOrCreate: { where: { id: p.id }, create: { email: 'c@example.com' } } } } }),
        /^PersonReading\.text: 'create' is not supported on an encrypted field: the subject comes from 'person'/,
      ],
      [() => h.prisma.$transaction([h.prisma.personReading.create({ data: { personId: p.id, text: 'batch' } })]), /\$transaction\(\[\.\.\.\]\)/],
    ];
    for (const [run, message] of refusals) {
      const error = await run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedQueryError);
      expect((error as Error).message).toMatch(message);
    }
    expect(await h.sql(`SELECT COUNT(*) AS n FROM pce_subject_keys`)).toEqual(before);
    expect(await h.prisma.person.findUnique({ where: { id: p.id }, select: { id: true, profile: { select: { bio: true, personId: true } } } })).toEqual({ id: p.id, profile: { bio: 'x', personId: p.id } });
  });

  test('concurrent first writes for one subject through the client create exactly one key', async () => {
    // A person created without the extension has no key yet: the readings are its first encrypted writes.
    const p = await h.plain.person.create({ data: { email: 'not-encrypted-here' } });
    const racer = h.extend({ subjectKeyStore: new SubjectKeyStore({ keys: keyring, provider: provider === 'mysql' ? 'mysql' : 'postgresql' }) }, 8);
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => racer.personReading.create({ data: { personId: p.id, text: `race ${i}` } })));
    // A deadlock victim among the first writers (MySQL) is retried by the extension in its own transaction.
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const keys = await keyRowOf(p.id);
    expect(keys).toHaveLength(1);
    const stored = await h.sql(`SELECT text FROM ${q('PersonReading')} WHERE ${q('personId')} = $1`, [p.id]);
    expect(new Set(stored.map((r) => keyIdOf(r.text)))).toEqual(new Set(keys));
    expect((await h.prisma.personReading.findMany({ where: { personId: p.id } })).map((r) => r.text).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `race ${i}`));
  });

  test('after forget, the subject reads as subject-erased (or null by option), others are untouched, and writes are refused', async () => {
    const gone = await h.prisma.person.create({ data: { email: 'gone@example.com', name: 'Gone', birthDate: new Date('1970-01-01'), readings: { create: [{ text: 'secret', topic: 'Forget' }] } } });
    const kept = await h.prisma.person.create({ data: { email: 'kept@example.com', name: 'Kept', readings: { create: [{ text: 'still here', topic: 'forget' }] } } });
    await forget(h, store, gone.id);

    const error = await h.prisma.person.findUnique({ where: { id: gone.id } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error).toMatchObject({ reason: 'subject-erased', model: 'Person' });
    expect((error as Error).message).not.toContain('gone@example.com');
    expect(await h.prisma.person.findUnique({ where: { id: kept.id }, select: { name: true } })).toEqual({ name: 'Kept' });

    const lenient = h.extend({ subjectKeyStore: store, onErasedSubject: 'null' });
    const both = await lenient.personReading.findMany({ where: { personId: { in: [gone.id, kept.id] } }, orderBy: { personId: 'asc' } });
    expect(both.map((r) => r.text)).toEqual([null, 'still here']);
    expect(await lenient.person.findUnique({ where: { id: gone.id } })).toMatchObject({ email: null, name: null, birthDate: null });
    // The blind index was nulled: the erased subject is no longer found by value.
    expect(await h.prisma.person.findFirst({ where: { email: 'gone@example.com' } })).toBeNull();
    expect(await h.prisma.personReading.findMany({ where: { topic: 'forget' }, select: { text: true } })).toEqual([{ text: 'still here' }]);

    const writes = [
      () => h.prisma.personReading.create({ data: { personId: gone.id, text: 'again' } }),
      () => h.prisma.person.update({ where: { id: gone.id }, data: { name: 'Back' } }),
    ];
    for (const write of writes) {
      const refused = await write().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SubjectErasedError);
      expect((refused as Error).message).toMatch(/^(PersonReading|Person): /);
      expect((refused as Error).message).not.toContain(String(gone.id));
    }
    const reuse = h.extend({ subjectKeyStore: store, allowSubjectReuse: true });
    const again = await reuse.personReading.create({ data: { personId: gone.id, text: 'reused on purpose' } });
    expect(again.text).toBe('reused on purpose');
  });

  test('a write racing forget is either refused or unreadable afterwards, never readable', async () => {
    for (let round = 0; round < 4; round++) {
      const p = await h.prisma.person.create({ data: { email: `racer${round}@example.com`, name: 'Racer' } });
      const [write] = await Promise.allSettled([
        h.prisma.personReading.create({ data: { personId: p.id, text: `racing ${round}` } }),
        forget(h, store, p.id),
      ]);
      if (write.status === 'rejected') {
        expect(write.reason).toBeInstanceOf(SubjectErasedError);
        continue;
      }
      const error = await h.prisma.personReading.findUnique({ where: { id: write.value.id } }).catch((e: unknown) => e);
      expect(error).toMatchObject({ reason: 'subject-erased' });
    }
  });
});

/** Counts the store's loads (calls and key ids asked for), leaving their work untouched. */
function spyOnLoads(store: SubjectKeyStore): { calls: number; ids: string[]; restore(): void } {
  const original = store.load.bind(store);
  const spy = {
    calls: 0,
    ids: [] as string[],
    restore: () => void (store.load = original),
  };
  store.load = (db, ids) => {
    spy.calls++;
    spy.ids.push(...ids);
    return original(db, ids);
  };
  return spy;
}
