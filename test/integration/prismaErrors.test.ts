import { PrismaClientKnownRequestError, PrismaClientValidationError } from '@prisma/client/runtime/client';
import { UnsupportedQueryError } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { codecFor, expectRefused, rawRows, unique } from './shapes.support';

/**
 * Prisma's own errors for a rewritten query (issue 9 item 11): a misspelt nested write is refused
 * before Prisma sees its plaintext, and errors that Prisma raises keep their class and code but
 * carry neither the plaintexts of protected fields nor the ciphertexts and blind indexes written
 * into the query.
 */
describe.each(providers())('Prisma errors for rewritten queries on %s', (provider) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(provider);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Everything that must not appear: the plaintexts, any envelope, and the blind index of the email. */
  function expectNoSecrets(error: unknown, plaintexts: string[], email: string): void {
    const text = `${(error as Error).message}\n${(error as Error).stack}\n${JSON.stringify((error as { meta?: unknown }).meta ?? null)}`;
    for (const p of plaintexts) expect(text).not.toContain(p);
    expect(text).not.toMatch(/pce:v[12]:/);
    for (const hash of codecFor(h, 'User', 'email').indexesForLookup(email)) {
      expect(text).not.toContain(hash);
      expect(text).not.toContain(hash.slice(hash.indexOf(':') + 1, hash.indexOf(':') + 21));
    }
  }

  test('a misspelt nested write on a model with encrypted fields is refused before Prisma sees it', async () => {
    const email = unique('misspelt@x.org');
    const secret = unique('SECRET-BIRTH-DATE');
    const error = await expectRefused(
      () => h.prisma.user.create({ data: { email, profile: { craete: { birthDate: secret } } as never } }),
      'User',
      'profile',
      'unknown nested write',
    );
    expect(error.message).not.toContain(secret);
    expect(error.message).not.toContain('craete');
    const user = await h.prisma.user.create({ data: { email, readings: { create: { title: 't', body: 'b' } } } });
    await expectRefused(
      () => h.prisma.user.update({ where: { id: user.id }, data: { readings: { updateMany: { where: {}, data: { notes: { creat: { text: secret } } } } } } as never }),
      'Reading',
      'notes',
      'unknown nested write',
    );
    await expectRefused(() => h.prisma.user.update({ where: { id: user.id }, data: { profile: { disconect: true } as never } }), 'User', 'profile', 'unknown nested write');
    expect(await rawRows(h, 'Profile', 'userId', user.id)).toEqual([]);
  });

  test('a validation error for a rewritten write keeps its class but not the plaintext, ciphertext or index', async () => {
    const email = unique('validation@x.org');
    const name = unique('SECRET-NAME');
    const error = await h.prisma.user.create({ data: { email, name, phone: '+1 555 0100', karma: 'many' as never } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PrismaClientValidationError);
    expect((error as Error).message).toMatch(/karma/);
    expectNoSecrets(error, [email, name, '+1 555 0100'], email);
  });

  test('a validation error for a rewritten filter and a misspelt field name carry no secrets', async () => {
    const email = unique('filter@x.org');
    const where = await h.prisma.user.findMany({ where: { email, karma: { gtt: 1 } as never } }).catch((e: unknown) => e);
    expect(where).toBeInstanceOf(PrismaClientValidationError);
    expectNoSecrets(where, [email], email);
    const leaked = unique('SECRET-TYPO');
    const typo = await h.prisma.user.create({ data: { email, nicknme: leaked } as never }).catch((e: unknown) => e);
    expect(typo).toBeInstanceOf(PrismaClientValidationError);
    expect((typo as Error).message).toMatch(/nicknme/);
    expectNoSecrets(typo, [email, leaked], email);
  });

  test('a unique violation keeps its code and carries no secrets', async () => {
    const email = unique('duplicate@x.org');
    await h.prisma.user.create({ data: { email } });
    const error = await h.prisma.user.create({ data: { email } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PrismaClientKnownRequestError);
    expect(error).toMatchObject({ code: 'P2002' });
    expectNoSecrets(error, [email], email);
    expect(error).not.toBeInstanceOf(UnsupportedQueryError);
  });
});
