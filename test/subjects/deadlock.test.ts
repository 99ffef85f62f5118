import { randomBytes } from 'node:crypto';
import { forgetSubject, localKeys, SubjectErasedError, SubjectKeyStore, WriteDeadlockError, type TransactionalClient } from '../../src';
import { createHarness, providers, type Harness } from '../support/clients';
import { pausingAfterFirstStatement, prismaProvider, subjectFields } from './subjectSupport';

/**
 * A first write for a subject racing `forgetSubject` for the same subject, through the extension
 * (issue 11). Forget holds the subject's key row from its first statement on; a first write that
 * arrives then waits on it. On MariaDB the waiting write can lose an InnoDB deadlock (errno 1213)
 * against forget's next statements. In a transaction of the extension's own the write is run
 * again and meets the committed erasure: the caller sees SubjectErasedError, as on PostgreSQL,
 * never the database's deadlock. Inside the caller's interactive transaction it cannot be retried:
 * the caller gets a WriteDeadlockError that says to run the transaction again.
 */
const b64 = () => randomBytes(32).toString('base64');
const keyring = localKeys({ data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }], wrap: [{ id: 'w1', key: b64() }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROUNDS = 6;

describe.each(providers())('a first write racing forget on %s', (provider) => {
  let h: Harness;
  const fields = subjectFields(provider);

  beforeAll(async () => {
    h = await createHarness(provider, { keys: keyring, subjectKeyStore: new SubjectKeyStore({ keys: keyring, provider: prismaProvider(provider) }) });
  });
  afterAll(() => h?.close());

  /** Starts forgetting a Client id that has no key yet; resolves once forget holds its key row (paused for `ms`), with the running erasure. */
  async function forgetHolding(id: string, ms: number): Promise<{ done: Promise<unknown> }> {
    let paused = false;
    const done = forgetSubject(pausingAfterFirstStatement(h.plain as unknown as TransactionalClient, ms, () => (paused = true)), id, { fields, model: 'Client' });
    while (!paused) await sleep(5);
    return { done };
  }

  const leftBehind = async (id: string) => ({
    keys: (await h.sql(`SELECT key_id FROM pce_subject_keys WHERE subject_id = $1`, [`Client:${id}`])).length,
    rows: (await h.sql(`SELECT id FROM ${h.q('Client')} WHERE id = $1`, [id])).length,
  });

  test('in a transaction of the extension\'s own, the write is refused with SubjectErasedError every time, never a deadlock', async () => {
    const outcomes: unknown[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const id = `dl-${randomBytes(4).toString('hex')}`;
      const forget = await forgetHolding(id, 400);
      const write = h.prisma.client.create({ data: { id, email: `${id}@example.org`, name: 'Racer' } }).catch((e: unknown) => e);
      await forget.done;
      const outcome = await write;
      outcomes.push(outcome);
      expect(await leftBehind(id)).toEqual({ keys: 0, rows: 0 });
    }
    expect(outcomes.map((o) => (o as Error).constructor.name)).toEqual(Array(ROUNDS).fill('SubjectErasedError'));
  });

  test('inside the caller\'s interactive transaction, a lost deadlock is a WriteDeadlockError (no SQL, ids or values), else SubjectErasedError', async () => {
    const seen = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      const id = `dl-${randomBytes(4).toString('hex')}`;
      const forget = await forgetHolding(id, 400);
      const write = h.prisma.$transaction(async (tx) => tx.client.create({ data: { id, email: `${id}@example.org` } }), { timeout: 20_000 }).catch((e: unknown) => e);
      await forget.done;
      const outcome = await write;
      if (outcome instanceof WriteDeadlockError) {
        expect(outcome).toMatchObject({ code: 'PCE_WRITE_DEADLOCK', model: 'Client', inCallersTransaction: true });
        expect(outcome.message).toMatch(/^Client: the interactive transaction lost a deadlock .* run the whole \$transaction again$/);
        expect(outcome.message).not.toMatch(new RegExp(`${id}|INSERT|SELECT|pce_subject_keys|1213`));
      } else {
        expect(outcome).toBeInstanceOf(SubjectErasedError);
      }
      seen.add((outcome as Error).constructor.name);
      expect(await leftBehind(id)).toEqual({ keys: 0, rows: 0 });
    }
    // PostgreSQL never deadlocks here: the write waits, then finds the erasure.
    if (provider === 'postgres') expect([...seen]).toEqual(['SubjectErasedError']);
  });
});
