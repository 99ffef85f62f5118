import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { encryptedFields } from '../generated/postgres/encryption';
import { columnEncryption, localKeys, SubjectKeyStore } from '../dist';
import { FieldCodec } from '../dist/codec/fieldCodec';
import type { Experiment } from './beyondFloor';
import type { Client } from './clients';
import { runRounds } from './support/rounds';
import { summarize } from './support/stats';

/** The target: 1000 rows of 1000 subjects at most this many times the same rows under the shared key. */
export const SUBJECT_READ_TARGET = 1.5;
const ROWS = 1000;

/**
 * findMany of 1000 PersonReading rows, each of another person (1000 subject keys, loaded in one
 * SQL read and unwrapped, then cached), against 1000 rows of the same model and shape whose
 * values are under the keyring's shared key (as rows written before the model had a subject
 * are): the same query path, only the keys differ. Rounds alternate the two. The warm figure
 * is the target (keys cached, as in a running service); the cold one clears the store's cache
 * before every round, so each read loads and unwraps all 1000 keys.
 */
export async function measureSubjectReads(plain: Client, scale: number): Promise<Experiment[]> {
  const b64 = () => randomBytes(32).toString('base64');
  const keyring = localKeys({ data: [{ id: 'd1', key: b64() }], index: [{ id: 'i1', key: b64() }], wrap: [{ id: 'w1', key: b64() }] });
  const store = new SubjectKeyStore({ keys: keyring, provider: 'postgresql' });
  const client = plain.$extends(columnEncryption({ fields: encryptedFields, keys: keyring, logger: pino({ level: 'silent' }), subjectKeyStore: store })) as unknown as Client;

  await plain.person.createMany({ data: Array.from({ length: 2 * ROWS }, (_, i) => ({ email: `bench-${i}@example.com` })) });
  const ids = (await plain.person.findMany({ select: { id: true }, orderBy: { id: 'asc' }, take: 2 * ROWS })).map((p) => p.id);
  const subjectIds = ids.slice(0, ROWS);
  const sharedIds = ids.slice(ROWS);
  const text = (i: number) => `Reading number ${i}: Venus trine Jupiter, a good week for plans.`;
  // Under subject keys: through the extension, one key per person (created on this first write).
  for (let i = 0; i < ROWS; i += 100) {
    await client.personReading.createMany({ data: subjectIds.slice(i, i + 100).map((personId, j) => ({ personId, text: text(i + j), topic: 'Career' })) });
  }
  // Under the shared key: the same values, sealed by the shared-key codec and inserted as stored text.
  const spec = encryptedFields.models.PersonReading.encrypted;
  const textCodec = new FieldCodec('PersonReading', 'text', spec.text, keyring);
  const topicCodec = new FieldCodec('PersonReading', 'topic', spec.topic, keyring);
  await plain.personReading.createMany({
    data: sharedIds.map((personId, i) => ({ personId, text: textCodec.encrypt(text(i)), topic: topicCodec.encrypt('Career'), topicIndex: topicCodec.indexForWrite('Career') })),
  });

  const lo = (set: number[]) => ({ where: { personId: { gte: set[0]!, lte: set[set.length - 1]! } } });
  const check = await client.personReading.findMany(lo(subjectIds));
  if (check.length !== ROWS || check.some((r) => !r.text.startsWith('Reading number'))) throw new Error('subject rows did not read back');
  const r = (n: number) => Math.max(3, Math.round(n * scale));
  const run = async (cold: boolean) => {
    const samples = await runRounds(
      [
        { name: 'shared', run: () => client.personReading.findMany(lo(sharedIds)) },
        { name: 'subject', run: () => client.personReading.findMany(lo(subjectIds)), ...(cold ? { before: () => store.clear() } : {}) },
      ],
      { warmup: r(30), rounds: r(80) },
    );
    return { baseline: summarize(samples.get('shared')!), variant: summarize(samples.get('subject')!) };
  };
  const warm = await run(false);
  const cold = await run(true);
  return [
    { name: `findMany ${ROWS} rows x 2 fields: shared key vs ${ROWS} subjects' keys (cached)`, unit: 'ms', ...warm, note: 'keys cached in the store (LRU, 5 min)' },
    { name: `findMany ${ROWS} rows x 2 fields: shared key vs ${ROWS} subjects' keys (cold cache)`, unit: 'ms', ...cold, note: 'cache cleared before each round: one SQL read of 1000 keys and 1000 unwraps' },
  ];
}
