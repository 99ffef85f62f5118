import { randomBytes } from 'node:crypto';
import {
  ErasureLedger,
  forgetSubject,
  localKeys,
  reinstateSubject,
  replayErasures,
  rotateEpoch,
  SubjectErasedError,
  SubjectKeyStore,
  subjectRef,
  type LedgerEntry,
  type SqlClient,
  type TransactionalClient,
} from '../../src';
import { tempDir } from '../keys/support';
import { createHarness, providers, silentLogger, type Harness } from '../support/clients';
import { prismaProvider, subjectFields } from './subjectSupport';

/**
 * Attacks on per-person keys through timing (issue 11): erasure racing a write whose subject id
 * the database generates, an updateMany, a reinstatement, and a read whose key load is in flight;
 * every outcome must leave the erased person unreadable and the ledger agreeing with the database.
 */
const b64 = () => randomBytes(32).toString('base64');
const shared = { data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }] };
const w1 = { id: 'w1', key: b64() };
const keyring = localKeys({ ...shared, wrap: [w1] });
const tag = () => randomBytes(4).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const caught = (p: PromiseLike<unknown>) => Promise.resolve(p).then((v) => ({ value: v }), (e: unknown) => e);
/** MariaDB may resolve two of these transactions as an InnoDB deadlock (1213): one is rolled back, which is a refusal. */
const deadlock = (e: unknown) => /1213|deadlock/i.test(`${(e as Error)?.message} ${JSON.stringify(e)}`);

/** A SqlClient running `db`'s statements, calling `hook` once after the first statement whose text matches. */
function pausingAt(db: SqlClient, match: RegExp, hook: () => Promise<void>): SqlClient {
  let done = false;
  const after = async <T>(text: string, result: T): Promise<T> => {
    if (!done && match.test(text)) {
      done = true;
      await hook();
    }
    return result;
  };
  return {
    $queryRawUnsafe: async <T>(q: string, ...v: unknown[]) => after(q, await db.$queryRawUnsafe<T>(q, ...v)),
    $executeRawUnsafe: async (q: string, ...v: unknown[]) => after(q, await db.$executeRawUnsafe(q, ...v)),
  };
}

describe.each(providers())('erasure races on %s', (provider) => {
  let h: Harness;
  let store: SubjectKeyStore;
  const fields = subjectFields(provider);
  const dir = tempDir();
  const base = () => h.plain as unknown as TransactionalClient;
  const count = async (query: string, params: unknown[]) => Number((await h.sql<{ n: unknown }>(query, params))[0]!.n);
  const liveKeys = (ref: string) => count(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE subject_id = $1 AND wrapped_key IS NOT NULL`, [ref]);
  const erased = (ref: string) => count(`SELECT COUNT(*) AS n FROM pce_erasures WHERE subject_id = $1`, [ref]);
  const forget = (id: string | number, model: string, more: Partial<Parameters<typeof forgetSubject>[2]> = {}) => forgetSubject(base(), id, { fields, model, store, logger: silentLogger, ...more });

  beforeAll(async () => {
    store = new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) });
    h = await createHarness(provider, { keys: keyring, subjectKeyStore: store });
  });
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  test('a key bound to a generated id while forget of that id commits is erased with the rest, or refused: never live for an erased subject', async () => {
    const id = `bind${tag()}`;
    const ref = subjectRef('Client', id);
    let forgetting: Promise<unknown> | undefined;
    const writer = await caught(
      h.plain.$transaction(async (tx) => {
        const db = tx as unknown as SqlClient;
        const key = await store.reserve(db);
        // Forget starts while the bind is between its statements, and gets 400 ms to finish.
        const paused = pausingAt(db, /pce_erasures|pce_subject_keys SET subject_id/, async () => {
          forgetting = caught(forget(id, 'Client'));
          await sleep(400);
        });
        await store.bind(paused, key.id, ref);
      }, { timeout: 20_000 }),
    );
    const forgot = await forgetting;
    if (!(writer instanceof Error)) expect(writer).toEqual({ value: undefined });
    else expect(writer instanceof SubjectErasedError || (provider === 'mysql' && deadlock(writer))).toBe(true);
    if (forgot instanceof Error) expect(provider === 'mysql' && deadlock(forgot)).toBe(true);
    expect({ erased: await erased(ref), live: await liveKeys(ref) }).not.toEqual({ erased: 1, live: 1 });
  });

  test('concurrent first writes for one person from two clients, each with its own cache, create one key', async () => {
    const p = await h.plain.person.create({ data: { email: `first-${tag()}` } }); // written without the extension: no key yet
    const racers = [0, 1].map(() => h.extend({ subjectKeyStore: new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) }) }, 4));
    const writes = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => racers[i % 2]!.personReading.create({ data: { personId: p.id, text: `first ${i}` } })));
    for (const [i, w] of writes.entries()) {
      if (w.status === 'fulfilled') continue;
      expect(provider === 'mysql' && deadlock(w.reason)).toBe(true); // an InnoDB deadlock victim: retried as an application would
      await racers[i % 2]!.personReading.create({ data: { personId: p.id, text: `first ${i}` } });
    }
    expect(await count(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE subject_id = $1`, [subjectRef('Person', p.id)])).toBe(1);
    expect((await h.prisma.personReading.findMany({ where: { personId: p.id } })).map((r) => r.text).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `first ${i}`));
  });

  test('an updateMany racing forget is refused or unreadable afterwards', async () => {
    for (let round = 0; round < 4; round++) {
      const p = await h.prisma.person.create({ data: { email: `um${round}-${tag()}@race.example`, readings: { create: [{ text: 'before' }, { text: 'before' }] } } });
      const [write] = await Promise.allSettled([h.prisma.personReading.updateMany({ where: { personId: p.id }, data: { text: `after ${round}` } }), forget(p.id, 'Person')]);
      if (write.status === 'rejected') expect(write.reason instanceof SubjectErasedError || (provider === 'mysql' && deadlock(write.reason))).toBe(true);
      expect(await caught(h.prisma.personReading.findMany({ where: { personId: p.id } }))).toMatchObject({ reason: 'subject-erased' });
      expect(await liveKeys(subjectRef('Person', p.id))).toBe(0);
    }
  });

  test('a key load in flight while forget commits does not put the erased key back into the cache', async () => {
    const p = await h.prisma.person.create({ data: { email: `inflight-${tag()}@race.example`, name: 'In flight' } });
    const [{ key_id: keyId }] = (await h.sql<{ key_id: string }>(`SELECT key_id FROM pce_subject_keys WHERE subject_id = $1`, [subjectRef('Person', p.id)])) as [{ key_id: string }];
    const reader = new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) });
    // The read's SELECT has returned the live row; forget commits before the read's result is handled.
    const slowDb = pausingAt(h.plain as unknown as SqlClient, /SELECT/, () => forget(p.id, 'Person').then(() => undefined));
    const during = await reader.load(slowDb, [keyId]);
    expect(typeof during.get(keyId)).toBe('object'); // read before the erasure committed: it may decrypt
    expect((await reader.load(h.plain as unknown as SqlClient, [keyId])).get(keyId)).toBe('subject-erased');
  });

  test('reinstate racing forget leaves the ledger agreeing with the database', async () => {
    const ledger = new ErasureLedger(dir.file(`reinstate-race-${provider}.jsonl`));
    const id = `rr${tag()}`;
    const ref = subjectRef('Client', id);
    await h.prisma.client.create({ data: { id, email: `${id}@race.example` } });
    // Forget has written its ledger line and not yet committed when reinstate runs.
    let reinstating: Promise<unknown> | undefined;
    const slowLedger = Object.assign(Object.create(ErasureLedger.prototype) as ErasureLedger, {
      path: ledger.path,
      async append(entry: LedgerEntry) {
        await ledger.append(entry);
        reinstating ??= caught(reinstateSubject(base(), id, { fields, model: 'Client', ledger, logger: silentLogger }));
        await sleep(400);
      },
    });
    const forgot = await caught(forget(id, 'Client', { ledger: slowLedger }));
    const reinstated = await reinstating;
    for (const outcome of [forgot, reinstated]) if (outcome instanceof Error) expect(provider === 'mysql' && deadlock(outcome)).toBe(true);
    const { entries } = await ledger.read();
    const last = entries.filter((e) => e.subjectId === id).at(-1);
    const ledgerSaysErased = last !== undefined && 'erasedAt' in last;
    expect(ledgerSaysErased).toBe((await erased(ref)) === 1);
    // What a replay of the ledger does to this database agrees with what the database says now.
    const before = await erased(ref);
    await replayErasures(base(), ledger, { fields, store, logger: silentLogger });
    expect(await erased(ref)).toBe(before);
  });

  // Last: it moves this database's live keys to a wrap key the harness's keyring does not hold.
  test('an epoch rotation that read a key just before forget destroyed it does not re-wrap it back', async () => {
    const p = await h.prisma.person.create({ data: { email: `epoch-${tag()}@race.example`, name: 'Epoch' } });
    const ref = subjectRef('Person', p.id);
    const next = localKeys({ ...shared, wrap: [{ id: 'w2', key: b64() }, w1] }); // w2 is the new epoch
    let forgetting: Promise<unknown> | undefined;
    const rotating: TransactionalClient = {
      $queryRawUnsafe: (q, ...v) => base().$queryRawUnsafe(q, ...v),
      $executeRawUnsafe: (q, ...v) => base().$executeRawUnsafe(q, ...v),
      $transaction: (run, options) =>
        base().$transaction(
          (tx) =>
            run(
              pausingAt(tx, /wrapped_key IS NOT NULL/, async () => {
                forgetting ??= forget(p.id, 'Person');
                await forgetting;
              }),
            ),
          options,
        ),
    };
    const report = await rotateEpoch(rotating, next, { fields, logger: silentLogger });
    await forgetting;
    expect(report.failed).toEqual([]);
    expect(await liveKeys(ref)).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM pce_subject_keys WHERE wrap_key_id = $1 AND subject_id IS NULL AND wrapped_key IS NOT NULL`, ['w2'])).toBe(0);
    expect(await caught(h.prisma.person.findUnique({ where: { id: p.id } }))).toMatchObject({ reason: 'subject-erased' });
  });
});
