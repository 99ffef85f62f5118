import { encryptExisting, forgetSubject, type TransactionalClient } from '../../src';
import { providers, silentLogger } from '../support/clients';
import { connect, holdAppWrite, signal, waitForLockWait } from './migrateSupport';
import { emailOf, expectUnderSubjectKeys, PEOPLE, people, seedLegacy, subjectKeys, useSubjectFixture } from './subjectMigrateSupport';

/**
 * The migrator on subject-keyed models racing others (issue 11): an application write on a row the
 * batch holds, writers through the extension creating subject keys while `encrypt-existing`
 * creates them too, and a `forget` of a subject whose key the batch is creating. Nothing written
 * is lost, and an erasure always wins over the migrator.
 */
jest.setTimeout(300_000);

describe.each(providers())('the migrator on subject-keyed models racing others on %s', (provider) => {
  const f = useSubjectFixture(provider);

  test('an application write racing encrypt-existing on the same row is kept, under the subject key', async () => {
    await seedLegacy(f);
    const write = { table: 'Person', column: 'name', id: 4, value: 'Written During Migration' };
    const report = await holdAppWrite(f.h.db.url, write, () => encryptExisting({ connection: f.conn, schema: f.fields, keyring: f.keyring, batchSize: 3, lockTimeoutMs: 60_000, logger: silentLogger }));
    expect(report.failedCount).toBe(0);
    expect(report.casMisses).toBeGreaterThanOrEqual(1);
    await expectUnderSubjectKeys(f);
    expect((await f.h.prisma.person.findUnique({ where: { id: 4 } }))?.name).toBe('Written During Migration');
    expect((await f.h.prisma.person.findMany({ orderBy: { id: 'asc' } })).map((p) => p.email)).toEqual(Array.from({ length: PEOPLE }, (_, k) => emailOf(k + 1)));
  });

  test('a forget running while a batch creates the subject key wins: the batch sees the subject erased and writes nothing for it', async () => {
    await seedLegacy(f);
    const [before] = (await people(f)).filter((p) => p.id === 5);
    // The forget's transaction stops after its first statement (the placeholder key row it locks
    // the subject with) until the migrator waits for that row.
    const paused = signal();
    const gate = signal();
    const base = f.h.plain as unknown as TransactionalClient;
    const holding: TransactionalClient = {
      $queryRawUnsafe: (text, ...values) => base.$queryRawUnsafe(text, ...values),
      $executeRawUnsafe: (text, ...values) => base.$executeRawUnsafe(text, ...values),
      $transaction: (work, options) =>
        base.$transaction(async (tx) => {
          let first = true;
          const hold = async <T>(result: T): Promise<T> => {
            if (first) {
              first = false;
              paused.fire();
              await gate.fired;
            }
            return result;
          };
          return work({
            $queryRawUnsafe: async <T>(text: string, ...values: unknown[]) => hold(await tx.$queryRawUnsafe<T>(text, ...values)),
            $executeRawUnsafe: async (text: string, ...values: unknown[]) => hold(await tx.$executeRawUnsafe(text, ...values)),
          });
        }, options),
    };
    const probe = await connect(f.h.db.url);
    try {
      const forgetting = forgetSubject(holding, 5, { fields: f.fields, model: 'Person' });
      await paused.fired;
      const migrating = encryptExisting({ connection: f.conn, schema: f.fields, keyring: f.keyring, model: 'Person', lockTimeoutMs: 60_000, logger: silentLogger });
      await waitForLockWait(probe);
      gate.fire();
      await forgetting;
      const report = await migrating;
      expect(report.failures.map((f) => [f.key, f.field, f.reason])).toEqual([[{ id: 5 }, 'email', 'subject-erased']]);
      expect(report.updated).toBe(PEOPLE - 1);
    } finally {
      gate.fire();
      await probe.close();
    }
    // Untouched but for the index the forget nulled (it had none: plaintext), and no key brought back.
    expect((await people(f)).find((p) => p.id === 5)).toEqual(before);
    expect((await subjectKeys(f)).has('Person:5')).toBe(false);
    await expectUnderSubjectKeys(f, { skip: (s) => s === 'Person:5', onlyPeople: true });
  });

  test('application writes through the extension racing encrypt-existing (both creating subject keys) are never lost', async () => {
    await seedLegacy(f);
    const last = new Map<number, string>();
    let stop = false;
    let writes = 0;
    // Writer w owns people w+1, w+4, w+7, so the last write to each row is known.
    const writer = async (w: number) => {
      while (!stop) {
        const id = w + 1 + 3 * Math.floor(Math.random() * 3);
        const value = `w${w}-${writes++}`;
        // Only the id back: the row's other values may still be legacy plaintext, which the strict f.fields refuse to read.
        await f.h.prisma.person.update({ where: { id }, data: { name: value }, select: { id: true } });
        last.set(id, value);
      }
    };
    const writers = [0, 1, 2].map(writer);
    // One row per batch and a pause between batches, so the writers land inside the migration.
    const options = { connection: f.conn, schema: f.fields, keyring: f.keyring, model: 'Person', batchSize: 1, concurrency: 2, connect: () => connect(f.h.db.url), pauseMs: 40, lockTimeoutMs: 60_000, logger: silentLogger };
    let report;
    try {
      report = await encryptExisting(options);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(report.failedCount).toBe(0);
    expect(writes).toBeGreaterThan(20);
    // Rows still changing after the retries are left to the next run.
    if (!report.complete) await encryptExisting(options);
    await expectUnderSubjectKeys(f, { onlyPeople: true });
    const found = await f.h.prisma.person.findMany({ orderBy: { id: 'asc' } });
    expect(found.map((p) => p.name)).toEqual(Array.from({ length: PEOPLE }, (_, k) => last.get(k + 1) ?? (k % 3 === 1 ? null : `Name ${k + 1}`)));
    expect(found.map((p) => p.email)).toEqual(Array.from({ length: PEOPLE }, (_, k) => emailOf(k + 1)));
  });
});
