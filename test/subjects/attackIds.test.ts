import { randomBytes } from 'node:crypto';
import { ConfigurationError, ErasureLedger, forgetSubject, localKeys, SubjectKeyStore, subjectRef, UnsupportedQueryError, type TransactionalClient } from '../../src';
import { tempDir } from '../keys/support';
import { createHarness, providers, silentLogger, type Harness } from '../support/clients';
import { prismaProvider, subjectFields } from './subjectSupport';

/**
 * Attacks on per-person keys through the spelling of subject ids (issue 11): the id as text, number
 * or bigint; ids an integer id space cannot hold; ids too long for the key table; on MySQL/MariaDB,
 * ids that the application table's case-insensitive collation takes for another person's.
 */
const b64 = () => randomBytes(32).toString('base64');
const keyring = localKeys({ data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }], wrap: [{ id: 'w1', key: b64() }] });
const tag = () => randomBytes(4).toString('hex');
const caught = (p: PromiseLike<unknown>) => Promise.resolve(p).then((v) => ({ value: v }), (e: unknown) => e);

describe.each(providers())('subject id spellings on %s', (provider) => {
  let h: Harness;
  let store: SubjectKeyStore;
  const fields = subjectFields(provider);
  const dir = tempDir();
  const forget = (id: string | number | bigint, model = 'Person', more: Partial<Parameters<typeof forgetSubject>[2]> = {}) =>
    forgetSubject(h.plain as unknown as TransactionalClient, id, { fields, model, store, logger: silentLogger, ...more });
  const count = async (query: string, params: unknown[]) => Number((await h.sql<{ n: unknown }>(query, params))[0]!.n);
  const erased = (ref: string) => count(`SELECT COUNT(*) AS n FROM pce_erasures WHERE subject_id = $1`, [ref]);

  beforeAll(async () => {
    store = new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) });
    h = await createHarness(provider, { keys: keyring, subjectKeyStore: store });
  });
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  const person = (label: string) => h.prisma.person.create({ data: { email: `${label}@ids.example`, readings: { create: [{ text: 'r1', topic: 't' }, { text: 'r2', topic: 't' }] } } });

  test('forget takes the id as the CLI gives it (text), as a number or as a bigint alike', async () => {
    for (const as of [(n: number) => String(n), (n: number) => BigInt(n), (n: number) => n]) {
      const p = await person(`kind-${tag()}`);
      expect(await forget(as(p.id))).toMatchObject({ keysDestroyed: 1, alreadyErased: false, rowsUnindexed: { Person: 1, PersonReading: 2 } });
      expect(await caught(h.prisma.person.findUnique({ where: { id: p.id } }))).toMatchObject({ reason: 'subject-erased' });
    }
  });

  test('forget of an id an integer id space cannot hold is refused with a ConfigurationError naming the model, and records nothing', async () => {
    const p = await person(`canon-${tag()}`);
    const ledger = new ErasureLedger(dir.file(`canon-${provider}.jsonl`));
    for (const id of [`0${p.id}`, ` ${p.id}`, `${p.id} `, `+${p.id}`, `${p.id}.0`, '2147483648', '99999999999999999999', 'abc']) {
      const error = await caught(forget(id, 'PersonReading', { ledger }));
      expect([id, error]).toEqual([id, expect.any(ConfigurationError)]);
      expect((error as Error).message).toMatch(/^Person\.id: /);
      expect((error as Error).message).not.toContain(id.trim());
      expect(await erased(subjectRef('Person', id))).toBe(0);
    }
    expect(await ledger.read({ allowMissing: true })).toEqual({ entries: [], tornLastLine: false });
    expect((await h.prisma.person.findUnique({ where: { id: p.id } }))!.email).toBe(`${p.email}`);
    // Negative and boundary ids are ids.
    expect(await forget('-2147483648')).toMatchObject({ keysDestroyed: 0, alreadyErased: false });
  });

  test('a subject id too long for the key table is refused before anything is written, naming the model and its limit', async () => {
    const id = `x${'y'.repeat(189)}`; // fits the Client table (varchar(191) on MySQL), not 'Client:<id>' in 191 characters
    const keysBefore = await count(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE 1 = $1`, [1]);
    const error = await caught(h.prisma.client.create({ data: { id, email: 'long@ids.example' } }));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/^Client: .*1 to 184 characters/);
    expect((error as Error).message).not.toContain(id);
    expect(await count(`SELECT COUNT(*) AS n FROM ${h.q('Client')} WHERE id = $1`, [id])).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE 1 = $1`, [1])).toBe(keysBefore);
    const longest = `z${'y'.repeat(183)}`;
    expect((await h.prisma.client.create({ data: { id: longest, email: 'longest@ids.example' } })).id).toBe(longest);
  });

  test('a subject id the field would not store as given (a fraction or text for an Int) is refused before any SQL: its values would sit under a key no erasure reaches', async () => {
    const p = await h.plain.person.create({ data: { email: 'no-key-yet' } }); // no key: the writes below would be its first
    const writes = [
      () => h.prisma.personReading.create({ data: { personId: p.id + 0.5, text: 'fraction' } }),
      () => h.prisma.personReading.create({ data: { personId: String(p.id) as unknown as number, text: 'text' } }),
      () => h.prisma.personReading.createMany({ data: [{ personId: p.id + 1e-9, text: 'tiny fraction' }] }),
      () => h.prisma.personProfile.upsert({ where: { personId: p.id }, create: { personId: p.id + 0.5, bio: 'upsert' }, update: {} }),
      () => h.prisma.client.create({ data: { id: 42 as unknown as string, email: 'number for a String id' } }),
    ];
    for (const write of writes) {
      const error = await caught(write());
      expect(error).toBeInstanceOf(UnsupportedQueryError);
      expect((error as Error).message).toMatch(/^(PersonReading\.personId|PersonProfile\.personId|Client\.id): 'create' is not supported on the subject field: the subject id must be/);
    }
    expect(await count(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE subject_id LIKE $1`, [`Person:${p.id}%`])).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM ${h.q('PersonReading')} WHERE ${h.q('personId')} IN ($1, $2)`, [p.id, p.id + 1])).toBe(0);
    // The integer itself is fine, and forgetting the person reaches what was written for them.
    await h.prisma.personReading.create({ data: { personId: p.id, text: 'exact' } });
    await forget(p.id);
    expect(await caught(h.prisma.personReading.findMany({ where: { personId: p.id } }))).toMatchObject({ reason: 'subject-erased' });
  });

  if (provider === 'mysql') {
    test('MySQL: forgetting an id that differs from a live one only in case leaves that person indexed (the key table compares exactly)', async () => {
      const id = `Mixed${tag()}`;
      await h.prisma.client.create({ data: { id, email: `${id}@ids.example`, name: 'Mixed Case' } });
      const report = await forget(id.toUpperCase(), 'Client');
      expect(report).toEqual({ keysDestroyed: 0, alreadyErased: false, rowsUnindexed: { Client: 0 }, rowsOutsideSubjectKey: {} });
      expect((await h.prisma.client.findFirst({ where: { email: `${id}@ids.example` } }))?.name).toBe('Mixed Case');
      // And the exact id forgets them.
      expect(await forget(id, 'Client')).toEqual({ keysDestroyed: 1, alreadyErased: false, rowsUnindexed: { Client: 1 }, rowsOutsideSubjectKey: {} });
    });
  }
});
