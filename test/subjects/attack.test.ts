import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  ConfigurationError,
  DecryptionError,
  ErasureLedger,
  forgetSubject,
  KeyringError,
  localKeys,
  reinstateSubject,
  replayErasures,
  SubjectErasedError,
  SubjectKeyStore,
  subjectRef,
  type TransactionalClient,
} from '../../src';
import { captureLogger, tempDir } from '../keys/support';
import { createHarness, providers, type Harness } from '../support/clients';
import { prismaProvider, subjectFields } from './subjectSupport';

/**
 * A hostile user's and a careless application's attempts on per-person keys and erasure (issue 11),
 * on real databases: after forgetSubject no query shape reads the person and no write for them gets
 * through; keys and envelopes moved between people by raw SQL fail as typed errors; errors and
 * audit lines carry no id, value, ciphertext, wrapped key or blind index; erasure racing writes
 * and reinstatement ends consistent.
 */
const b64 = () => randomBytes(32).toString('base64');
const keyring = localKeys({ data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }], wrap: [{ id: 'w1', key: b64() }] });
const tag = () => randomBytes(4).toString('hex');
const caught = (p: PromiseLike<unknown>) => Promise.resolve(p).then((v) => ({ value: v }), (e: unknown) => e);

describe.each(providers())('attacks on per-person keys on %s', (provider) => {
  let h: Harness;
  let store: SubjectKeyStore;
  const fields = subjectFields(provider);
  const dir = tempDir();
  const log = captureLogger();
  const base = () => h.plain as unknown as TransactionalClient;
  const forget = (id: string | number, model = 'Person', more: Partial<Parameters<typeof forgetSubject>[2]> = {}) => forgetSubject(base(), id, { fields, model, store, logger: log.logger, ...more });
  const count = async (query: string, params: unknown[] = []) => Number((await h.sql<{ n: unknown }>(query, params))[0]!.n);
  const liveKeys = (ref: string) => count(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE subject_id = $1 AND wrapped_key IS NOT NULL`, [ref]);
  const erased = (ref: string) => count(`SELECT COUNT(*) AS n FROM pce_erasures WHERE subject_id = $1`, [ref]);

  beforeAll(async () => {
    store = new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) });
    h = await createHarness(provider, { keys: keyring, subjectKeyStore: store, logger: log.logger });
  });
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  /** A person with a profile and two readings, written through the extension. */
  const person = async (label: string) =>
    h.prisma.person.create({
      data: { email: `${label}@attack.example`, name: `Name ${label}`, profile: { create: { bio: `bio ${label}` } }, readings: { create: [{ text: `text ${label}`, topic: `topic ${label}` }, { text: `more ${label}`, topic: 'shared topic' }] } },
      include: { profile: true, readings: true },
    });

  test('the README path (forgetSubject without store) leaves nothing readable through the same client, nor through another client of the process', async () => {
    const app = h.extend({ subjectKeyStore: undefined });
    const other = h.extend({ subjectKeyStore: undefined });
    const p = await app.person.create({ data: { email: `readme-${tag()}@attack.example`, name: 'Readme' } });
    expect((await app.person.findUnique({ where: { id: p.id } }))!.name).toBe('Readme'); // its key is cached now
    expect((await other.person.findUnique({ where: { id: p.id } }))!.name).toBe('Readme');
    await forgetSubject(app as unknown as TransactionalClient, p.id, { fields, model: 'Person', logger: log.logger });
    for (const client of [app, other]) {
      expect(await caught(client.person.findUnique({ where: { id: p.id } }))).toMatchObject({ reason: 'subject-erased' });
    }
  });

  test('no query shape reads an erased person, and the blind index no longer finds them', async () => {
    const label = `gone-${tag()}`;
    const gone = await person(label);
    const kept = await person(`kept-${tag()}`);
    await forget(gone.id);
    const erasedReads: Array<[string, () => PromiseLike<unknown>]> = [
      ['findUnique', () => h.prisma.person.findUnique({ where: { id: gone.id } })],
      ['findUniqueOrThrow', () => h.prisma.person.findUniqueOrThrow({ where: { id: gone.id }, select: { name: true } })],
      ['findFirst of a typed field', () => h.prisma.person.findFirst({ where: { id: gone.id }, select: { birthDate: true, email: true } })],
      ['findMany', () => h.prisma.personReading.findMany({ where: { personId: gone.id } })],
      ['include', () => h.prisma.person.findUnique({ where: { id: gone.id }, omit: { email: true, name: true, birthDate: true }, include: { profile: true } })],
      ['select through a relation', () => h.prisma.personReading.findFirst({ where: { personId: gone.id }, select: { id: true, person: { select: { email: true } } } })],
      ['nested select', () => h.prisma.person.findUnique({ where: { id: gone.id }, select: { id: true, readings: { select: { text: true } } } })],
      ['fluent API', () => h.prisma.person.findUnique({ where: { id: gone.id } }).readings()],
      ['$transaction batch', () => h.prisma.$transaction([h.prisma.personProfile.findUnique({ where: { personId: gone.id } })])],
      ['interactive transaction', () => h.prisma.$transaction((tx) => tx.person.findUnique({ where: { id: gone.id } }))],
      ['a list mixing people', () => h.prisma.personReading.findMany({ where: { personId: { in: [gone.id, kept.id] } } })],
    ];
    for (const [shape, read] of erasedReads) {
      const error = await caught(read());
      expect([shape, error]).toEqual([shape, expect.any(DecryptionError)]);
      expect((error as DecryptionError).reason).toBe('subject-erased');
      const text = `${(error as Error).message} ${JSON.stringify(error)}`;
      for (const secret of [label, gone.email, String(gone.name), gone.readings[0]!.text, gone.emailIndex!]) expect(text).not.toContain(secret);
    }
    // Plain columns stay readable (they are the application's to delete); the kept person is untouched.
    expect(await h.prisma.person.findUnique({ where: { id: gone.id }, select: { id: true } })).toEqual({ id: gone.id });
    expect((await h.prisma.person.findUnique({ where: { id: kept.id }, include: { readings: true, profile: true } }))!.profile!.bio).toBe(kept.profile!.bio);
    // The blind index is gone: by value nothing finds the erased person, at any depth or in counts.
    expect(await h.prisma.person.findFirst({ where: { email: gone.email } })).toBeNull();
    expect(await h.prisma.person.findUnique({ where: { emailIndex: gone.email } })).toBeNull();
    expect(await h.prisma.personReading.findFirst({ where: { person: { email: gone.email } } })).toBeNull();
    expect(await h.prisma.personReading.count({ where: { topic: `topic ${label}` } })).toBe(0);
    expect(await h.prisma.person.count({ where: { OR: [{ email: gone.email }, { readings: { some: { topic: `topic ${label}` } } }] } })).toBe(0);
    expect(await h.prisma.personReading.groupBy({ by: ['topicIndex'], where: { personId: gone.id }, _count: { _all: true } })).toEqual([{ topicIndex: null, _count: { _all: 2 } }]);
    expect((await h.prisma.personReading.findMany({ where: { topic: 'shared topic' }, select: { personId: true } })).map((r) => r.personId)).not.toContain(gone.id);
  });

  test('a value of an erased person copied by raw SQL into a live row reads as subject-erased there too', async () => {
    const gone = await person(`copied-${tag()}`);
    const live = await person(`target-${tag()}`);
    const [row] = await h.sql<{ email: string; bio: string }>(`SELECT p.email AS email, f.bio AS bio FROM ${h.q('Person')} p JOIN ${h.q('PersonProfile')} f ON f.${h.q('personId')} = p.id WHERE p.id = $1`, [gone.id]);
    await forget(gone.id);
    await h.sql(`UPDATE ${h.q('PersonProfile')} SET bio = $1 WHERE ${h.q('personId')} = $2`, [row!.bio, live.id]);
    expect(await caught(h.prisma.personProfile.findUnique({ where: { personId: live.id } }))).toMatchObject({ reason: 'subject-erased', model: 'PersonProfile', field: 'bio' });
    expect((await h.prisma.person.findUnique({ where: { id: live.id } }))!.email).toBe(live.email);
  });

  test('no write for an erased person gets through, whatever its shape, and nothing is written', async () => {
    const gone = await person(`nowrite-${tag()}`);
    const kept = await person(`alive-${tag()}`);
    await forget(gone.id);
    const before = await h.sql(`SELECT (SELECT COUNT(*) FROM pce_subject_keys) AS k, (SELECT COUNT(*) FROM ${h.q('PersonReading')}) AS r, (SELECT COUNT(*) FROM ${h.q('PersonProfile')}) AS f`);
    const writes: Array<[string, () => PromiseLike<unknown>]> = [
      ['create by foreign key', () => h.prisma.personReading.create({ data: { personId: gone.id, text: 'x' } })],
      ['create through connect', () => h.prisma.personReading.create({ data: { text: 'x', person: { connect: { id: gone.id } } } })],
      ['createMany with a live person first', () => h.prisma.personReading.createMany({ data: [{ personId: kept.id, text: 'x' }, { personId: gone.id, text: 'y' }] })],
      ['nested create under update', () => h.prisma.person.update({ where: { id: gone.id }, data: { readings: { create: { text: 'x' } } } })],
      ['nested upsert under update', () => h.prisma.person.update({ where: { id: gone.id }, data: { profile: { upsert: { create: { bio: 'x' }, update: { bio: 'y' } } } } })],
      ['nested update under a plain update', () => h.prisma.personProfile.update({ where: { personId: gone.id }, data: { person: { update: { name: 'x' } } } })],
      ['upsert, update branch', () => h.prisma.personProfile.upsert({ where: { personId: gone.id }, create: { personId: gone.id, bio: 'x' }, update: { bio: 'y' } })],
      ['updateMany by id', () => h.prisma.personReading.updateMany({ where: { personId: gone.id }, data: { text: 'x' } })],
      ['updateMany by an in-list with a live person', () => h.prisma.personReading.updateMany({ where: { personId: { in: [kept.id, gone.id] } }, data: { text: 'x' } })],
      ['update of a typed field', () => h.prisma.person.update({ where: { id: gone.id }, data: { birthDate: new Date() } })],
    ];
    for (const [shape, write] of writes) {
      const error = await caught(write());
      expect([shape, error]).toEqual([shape, expect.any(SubjectErasedError)]);
      expect((error as Error).message).not.toContain(String(gone.id));
    }
    expect(await h.sql(`SELECT (SELECT COUNT(*) FROM pce_subject_keys) AS k, (SELECT COUNT(*) FROM ${h.q('PersonReading')}) AS r, (SELECT COUNT(*) FROM ${h.q('PersonProfile')}) AS f`)).toEqual(before);
    expect((await h.prisma.personReading.findMany({ where: { personId: kept.id } })).map((r) => r.text).sort()).toEqual(kept.readings.map((r) => r.text).sort());

    // A String id space: the erased id given again, as a number or a string, on a new record.
    const id = `c${tag()}`;
    await h.prisma.client.create({ data: { id, email: `${id}@attack.example` } });
    await forget(id, 'Client');
    await h.prisma.client.delete({ where: { id }, select: { id: true } });
    expect(await caught(h.prisma.client.create({ data: { id, email: 'again@attack.example' } }))).toBeInstanceOf(SubjectErasedError);
    expect(await caught(h.prisma.client.upsert({ where: { id }, create: { id, email: 'again@attack.example' }, update: {} }))).toBeInstanceOf(SubjectErasedError);
    const numeric = `${Date.now()}`;
    await h.prisma.client.create({ data: { id: numeric, email: 'n@attack.example' } });
    await forgetSubject(base(), Number(numeric), { fields, model: 'Client', store });
    expect(await caught(h.prisma.client.update({ where: { id: numeric }, data: { name: 'x' } }))).toBeInstanceOf(SubjectErasedError);
  });

  // DEFECT (not fixed here: src/extension/subjectWrite.ts belongs to another change): an updateMany
  // over several people runs once per person and fetches each key just before its run, so when a
  // later person is erased the earlier runs have already written; the caller's transaction, which
  // caught the refusal, commits them. Fetching every key before the first run would fix it.
  test('an updateMany over a live and an erased person, refused inside the caller\'s interactive transaction, changes nothing there', async () => {
    const kept = await person(`half-kept-${tag()}`);
    const gone = await person(`half-gone-${tag()}`);
    await forget(gone.id);
    await h.prisma.$transaction(async (tx) => {
      const refused = await caught(tx.personReading.updateMany({ where: { personId: { in: [kept.id, gone.id] } }, data: { text: 'changed' } }));
      expect(refused).toBeInstanceOf(SubjectErasedError);
    });
    expect((await h.prisma.personReading.findMany({ where: { personId: kept.id } })).map((r) => r.text).sort()).toEqual(kept.readings.map((r) => r.text).sort());
  });

  test('a forget whose ledger cannot be written erases nothing: the key, the indexes and the database record stay as they were', async () => {
    const p = await person(`ledger-${tag()}`);
    const ledger = new ErasureLedger(dir.file('no-such-folder/ledger.jsonl'));
    const error = await caught(forget(p.id, 'Person', { ledger }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/cannot open the erasure ledger/);
    expect(await liveKeys(subjectRef('Person', p.id))).toBe(1);
    expect(await erased(subjectRef('Person', p.id))).toBe(0);
    expect((await h.prisma.person.findFirst({ where: { email: p.email }, include: { readings: true } }))!.readings).toHaveLength(2);
  });

  test('a wrapped key copied from another person\'s key row fails as a typed error, with no secret in it', async () => {
    const a = await person(`victim-${tag()}`);
    const b = await person(`donor-${tag()}`);
    const keyOf = async (id: number) => (await h.sql<{ key_id: string; wrapped_key: string }>(`SELECT key_id, wrapped_key FROM pce_subject_keys WHERE subject_id = $1`, [subjectRef('Person', id)]))[0]!;
    const [ka, kb] = [await keyOf(a.id), await keyOf(b.id)];
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = $1 WHERE key_id = $2`, [kb.wrapped_key, ka.key_id]);
    const fresh = h.extend({ subjectKeyStore: new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) }) });
    const read = await caught(fresh.person.findUnique({ where: { id: a.id } }));
    expect(read).toBeInstanceOf(DecryptionError);
    expect(read).toMatchObject({ reason: 'authentication-failed' });
    const write = await caught(fresh.personReading.create({ data: { personId: a.id, text: 'x' } }));
    expect(write).toBeInstanceOf(KeyringError);
    for (const error of [read, write]) {
      const text = `${(error as Error).message} ${JSON.stringify(error)}`;
      for (const secret of [kb.wrapped_key, ka.wrapped_key, a.email, String(a.id) + '@', subjectRef('Person', a.id)]) expect(text).not.toContain(secret);
    }
    // An envelope of B moved into A's row decrypts as B's value (rows are not bound: README), and B's erasure reaches it there.
    await h.sql(`UPDATE pce_subject_keys SET wrapped_key = $1 WHERE key_id = $2`, [ka.wrapped_key, ka.key_id]);
    const [bRow] = await h.sql<{ name: string }>(`SELECT name FROM ${h.q('Person')} WHERE id = $1`, [b.id]);
    await h.sql(`UPDATE ${h.q('Person')} SET name = $1 WHERE id = $2`, [bRow!.name, a.id]);
    await forget(b.id);
    expect(await caught(h.prisma.person.findUnique({ where: { id: a.id }, select: { name: true } }))).toMatchObject({ reason: 'subject-erased' });
    expect((await h.prisma.person.findUnique({ where: { id: a.id }, select: { email: true } }))!.email).toBe(a.email);
  });

  test('errors and audit lines of the whole life cycle carry no subject id, value, ciphertext, wrapped key or blind index', async () => {
    const id = `aud${tag()}${tag()}`;
    const email = `audit-${tag()}@attack.example`;
    const lines = captureLogger();
    const app = h.extend({ subjectKeyStore: store, logger: lines.logger, accessLog: true });
    await app.client.create({ data: { id, email, name: 'Audited Name' } });
    const [row] = await h.sql<Record<string, string>>(`SELECT * FROM ${h.q('Client')} WHERE id = $1`, [id]);
    const [key] = await h.sql<{ wrapped_key: string }>(`SELECT wrapped_key FROM pce_subject_keys WHERE subject_id = $1`, [subjectRef('Client', id)]);
    const ledger = new ErasureLedger(dir.file(`audit-${provider}.jsonl`));
    await forgetSubject(base(), id, { fields, model: 'Client', store, ledger, logger: lines.logger });
    const errors = [
      await caught(app.client.findUnique({ where: { id } })),
      await caught(app.client.update({ where: { id }, data: { name: 'again' } })),
      await caught(app.client.create({ data: { id, email } })),
    ];
    await reinstateSubject(base(), id, { fields, model: 'Client', ledger, logger: lines.logger });
    // A duplicate id once reinstated: a plain column's unique violation, which MariaDB words with the
    // duplicate value (as it does without the extension); scanned for everything else.
    const duplicate = await caught(app.client.create({ data: { id, email } }));
    await replayErasures(base(), ledger, { fields, store, logger: lines.logger });
    expect([...errors, duplicate].map((e) => (e as Error).constructor.name)).toEqual(['DecryptionError', 'SubjectErasedError', 'SubjectErasedError', 'PrismaClientKnownRequestError']);
    expect(duplicate).toMatchObject({ code: 'P2002' });
    const secrets = [id, email, email.toLowerCase(), 'Audited Name', row!.email!, row!.name!, row!.emailIndex!, key!.wrapped_key, subjectRef('Client', id)];
    const said = (e: unknown) => `${(e as Error).message} ${JSON.stringify(e)}`;
    const text = `${lines.text()} ${errors.map(said).join(' ')}`;
    for (const secret of secrets.slice(1)) expect(said(duplicate)).not.toContain(secret);
    expect(lines.events().map((e) => e.event)).toEqual(expect.arrayContaining(['pce.subject.erased', 'pce.subject.reinstated', 'pce.subject.erasures_replayed', 'pce.decrypt.failed']));
    for (const secret of secrets) expect([secret, text.includes(secret)]).toEqual([secret, false]);
    expect(readFileSync(ledger.path, 'utf8')).toContain(id); // the ledger, kept apart, is where the id is
  });

  test('delete of an erased person\'s records deletes them and returns them with the erased values as null, instead of failing after the rows are gone', async () => {
    const gone = await person(`delete-${tag()}`);
    await forget(gone.id);
    const reading = gone.readings[0]!;
    expect(await h.prisma.personReading.delete({ where: { id: reading.id } })).toEqual({ ...reading, text: null, topic: null, topicIndex: null });
    expect(await count(`SELECT COUNT(*) AS n FROM ${h.q('PersonReading')} WHERE id = $1`, [reading.id])).toBe(0);
    const deleted = await h.prisma.$transaction((tx) => tx.person.delete({ where: { id: gone.id }, include: { profile: true } }));
    expect(deleted).toMatchObject({ id: gone.id, email: null, name: null, birthDate: null, profile: { bio: null } });
    expect(await count(`SELECT COUNT(*) AS n FROM ${h.q('Person')} WHERE id = $1`, [gone.id])).toBe(0);
    // Other reads keep the client's setting: an erased value is an error.
    const other = await person(`delete-other-${tag()}`);
    await forget(other.id);
    expect(await caught(h.prisma.personReading.findFirst({ where: { personId: other.id } }))).toMatchObject({ reason: 'subject-erased' });
  });
});
