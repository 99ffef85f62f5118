import { encryptedFields as pgFields } from '../../generated/postgres/encryption';
import { encryptedFields as myFields } from '../../generated/mysql/encryption';
import { columnEncryption, ConfigurationError, localKeys, type Keyring } from '../../src';
import { createHarness, providers, sharedKeyFields, type Harness } from '../support/clients';
import { randomKey, testKeyring } from '../support/keys';

/**
 * A client over a schema with subject models (`@@encrypted(subject: ...)`) and a keyring without
 * a wrap key (issue 11) is refused when it is made, with a ConfigurationError naming the subject
 * models and how to make a wrap key, not on the first subject write after a deploy: with a
 * keyring given directly `columnEncryption()` throws; with a promise or a loader the load fails,
 * so every query does, before any SQL. A schema without subject models needs no wrap key.
 */
const noWrap = (): Keyring => localKeys({ data: [{ id: 'd1', key: randomKey() }], index: [{ id: 'i1', key: randomKey() }] });
const SUBJECT_MODELS = /models Person, PersonProfile, PersonReading, Client are encrypted under per-subject keys/;

function expectWrapKeyRefusal(error: unknown): void {
  expect(error).toBeInstanceOf(ConfigurationError);
  const message = (error as Error).message;
  expect(message).toMatch(/^the keyring has no wrap key/);
  expect(message).toMatch(SUBJECT_MODELS);
  expect(message).toContain('prisma-column-encryption keys generate --purpose wrap');
  expect(message).toContain('PCE_WRAP_KEYS');
}

describe.each(providers())('a keyring without a wrap key over subject models on %s', (provider) => {
  let h: Harness;
  const fields = provider === 'postgres' ? pgFields : myFields;
  beforeAll(async () => {
    h = await createHarness(provider, { keys: testKeyring() });
  });
  afterAll(() => h?.close());
  const users = async () => Number((await h.sql<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${h.q('User')}`))[0]!.n);

  test('given directly: columnEncryption() throws a ConfigurationError naming the subject models and how to make a wrap key', () => {
    let error: unknown;
    try {
      columnEncryption({ fields, keys: noWrap() });
    } catch (e) {
      error = e;
    }
    expectWrapKeyRefusal(error);
  });

  test('as a promise or a loader: every query fails with it before any SQL, shared-key models too', async () => {
    for (const keys of [Promise.resolve(noWrap()), async () => noWrap()]) {
      const client = h.extend({ keys });
      const before = await users();
      expectWrapKeyRefusal(await client.user.create({ data: { email: 'never@example.org' } }).catch((e: unknown) => e));
      expectWrapKeyRefusal(await client.person.create({ data: { email: 'never@example.org' } }).catch((e: unknown) => e));
      expectWrapKeyRefusal(await client.user.findMany().catch((e: unknown) => e));
      expect(await users()).toBe(before);
      expect((await h.sql(`SELECT key_id FROM pce_subject_keys`)).length).toBe(0);
    }
  });

  test('a single subject model is named as the error\'s model; a schema without subject models needs no wrap key', async () => {
    const only = sharedKeyFields(provider);
    const one = { ...only, models: { ...only.models, Client: fields.models.Client } } as typeof only;
    let error: unknown;
    try {
      columnEncryption({ fields: one, keys: noWrap() });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ model: 'Client', message: expect.stringMatching(/^Client: the keyring has no wrap key, and the schema's model Client is encrypted/) });

    const client = h.extend({ keys: noWrap(), fields: only });
    const created = await client.user.create({ data: { email: 'shared@example.org', name: 'Shared' } });
    expect((await client.user.findUnique({ where: { id: created.id } }))?.name).toBe('Shared');
    const [row] = await h.sql<{ name: string }>(`SELECT name FROM ${h.q('User')} WHERE id = $1`, [created.id]);
    expect(row!.name).toMatch(/^pce:v1:d1:/);
  });
});
