import fc from 'fast-check';
import { encryptedFields } from '../../generated/postgres/encryption';
import { localKeys } from '../../src';
import { FieldCodec } from '../../src/codec/fieldCodec';
import type { EncryptionSchema } from '../../src/schema';
import { providers, type Harness } from '../support/clients';
import { randomKey, testWrapKey } from '../support/keys';
import { expectTableInStep } from '../integration/shapes.support';
import { comparableWithout, mirrorPair, outcomeOf, type Side } from './mirror.support';

/**
 * Random sequences of creates, nested writes, updates, deletes and equality lookups run against
 * the encrypting client and against a plain client on a second database of the same schema (the
 * mirror). Every result must be the same, and afterwards a raw scan of every annotated column of
 * the encrypted database must find only ciphertext and no plaintext that was written.
 *
 * The mirror stores each blind-index field as the plaintext itself, so the unique constraint on
 * `User.emailIndex` and `findUnique({ where: { emailIndex } })` behave the same on both sides.
 * Pooled values are already normalised (lowercase, trimmed, no spaces), so index equality and
 * plain equality agree.
 *
 * Shapes that ciphertext cannot answer (field references to protected columns at any depth,
 * groupBy `orderBy`/`having` aggregates of protected fields) have no mirror result: the mirror
 * states the refusal the encrypting client must give (`expectedRefusal`).
 */

const schema = encryptedFields as unknown as EncryptionSchema;
/** Sequences per provider: enough to hit collisions and every command, small enough for CI (~10 s). */
const NUM_RUNS = 25;
const INDEX_FIELDS = new Set(Object.values(schema.models).flatMap((m) => Object.values(m.encrypted).flatMap((s) => (s.index ? [s.index] : []))));

// ---- arbitraries -------------------------------------------------------------------------------

const userId = fc.constantFrom('u0', 'u1', 'u2', 'u3');
const email = fc.constantFrom('ada@x.io', 'bob@x.io', 'cyd@x.io', 'dee@x.io', 'eve@x.io');
const phone = fc.constantFrom<string | null>('+15550001', '+15550002', null);
const topic = fc.constantFrom<string | null>('love', 'work', 'health', null);
const someTopic = fc.constantFrom('love', 'work', 'health');
const place = fc.constantFrom<string | null>('oslo', 'rome', null);
/** Free text (any Unicode) behind a marker, so the plaintext scan has something long enough to look for. */
const text = (marker: string) => fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }).filter((s) => !s.includes('\u0000')).map((s) => `${marker}~${s}`);

const note = fc.record({ id: fc.integer({ min: 1, max: 100_000 }), text: text('note') });
const reading = fc.record({ id: fc.integer({ min: 1, max: 100_000 }), body: text('body'), topic, notes: fc.array(note, { maxLength: 2 }) });
const profile = fc.record({ id: fc.integer({ min: 1, max: 100_000 }), birthDate: text('date'), birthPlace: place });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

// Issue 9 shapes: nested filters on phone, field references at depth, groupBy aggregates. Kept in
// their own arbitraries (the rotation state and compound uniques are separate ones).

const phoneValue = fc.constantFrom('+15550001', '+15550002', '+15550009');
/** A scalar filter with `not` nested in any way, null tests and lists: read as Prisma reads it on a plain column. */
const { phoneFilter } = fc.letrec<{ phoneFilter: Record<string, unknown> }>((tie) => ({
  phoneFilter: fc.record(
    {
      equals: fc.option(phoneValue, { nil: null }),
      in: fc.array(phoneValue, { maxLength: 2 }),
      notIn: fc.array(phoneValue, { maxLength: 2 }),
      not: fc.oneof({ depthSize: 'small', maxDepth: 3 }, fc.option(phoneValue, { nil: null }), tie('phoneFilter'), tie('phoneFilter')),
    },
    { requiredKeys: [] },
  ),
}));

/** Plain fields a reference sits on, and the fields it may reference, per model (protected ones first). */
const REF_TARGETS = {
  User: { plain: 'nickname', refs: ['email', 'emailIndex', 'name', 'phone', 'phoneIndex', 'nickname', 'id'] },
  Reading: { plain: 'title', refs: ['body', 'topic', 'topicIndex', 'title'] },
  Profile: { plain: 'data', refs: ['birthDate', 'birthPlace', 'birthPlaceIndex', 'sunSign', 'sunSignIndex', 'data'] },
} as const;
const isProtected = (model: string, field: string) =>
  field in schema.models[model]!.encrypted || Object.values(schema.models[model]!.encrypted).some((s) => s.index === field);

const fieldRefCommand = fc.record({
  kind: fc.constant('findByFieldRef' as const),
  model: fc.constantFrom('User' as const, 'Reading' as const, 'Profile' as const),
  ref: fc.nat({ max: 6 }),
  /** `not` objects around the scalar comparison. */
  nots: fc.nat({ max: 2 }),
  /** Where-level wrappers around it, innermost first (plus the relation filter for Reading and Profile). */
  wraps: fc.array(fc.constantFrom('NOT' as const, 'AND' as const, 'OR' as const), { maxLength: 2 }),
  quantifier: fc.constantFrom('some' as const, 'every' as const, 'none' as const),
  is: fc.constantFrom('is' as const, 'isNot' as const),
});
const groupCommand = fc.record({
  kind: fc.constant('groupReadings' as const),
  aggregate: fc.constantFrom('_count' as const, '_max' as const, '_min' as const),
  field: fc.constantFrom('topic', 'topicIndex', 'body', 'stars', 'title'),
  place: fc.constantFrom('orderBy' as const, 'having' as const),
  threshold: fc.integer({ min: 0, max: 2 }),
});

const createUser = fc.record({
  kind: fc.constant('createUser' as const),
  id: userId,
  email,
  name: fc.option(text('name'), { nil: null }),
  phone,
  profile: maybe(profile),
  readings: fc.array(reading, { maxLength: 3 }),
});
const command = fc.oneof(
  // Writes that add rows are weighted up so that lookups have something to find.
  { weight: 4, arbitrary: createUser },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('addReadings' as const), id: userId, readings: fc.array(reading, { minLength: 1, maxLength: 2 }) }) },
  fc.record({ kind: fc.constant('updateUser' as const), id: userId, email: maybe(email), phone: maybe(phone), name: maybe(fc.option(text('name'), { nil: null })) }),
  fc.record({ kind: fc.constant('upsertProfile' as const), id: userId, profile }),
  fc.record({ kind: fc.constant('retopicNested' as const), id: userId, from: topic, to: topic, body: text('body') }),
  fc.record({ kind: fc.constant('retopic' as const), from: topic, to: topic }),
  fc.record({ kind: fc.constant('deleteUsersByEmail' as const), email }),
  fc.record({ kind: fc.constant('deleteReadings' as const), topics: fc.array(someTopic, { maxLength: 2 }) }),
  fc.record({ kind: fc.constant('findByEmail' as const), email }),
  fc.record({ kind: fc.constant('findUniqueByIndex' as const), email }),
  fc.record({ kind: fc.constant('findByPhone' as const), phone, negate: fc.boolean() }),
  fc.record({ kind: fc.constant('findByPhones' as const), phones: fc.array(fc.constantFrom('+15550001', '+15550002', '+15550009'), { maxLength: 3 }), negate: fc.boolean() }),
  fc.record({ kind: fc.constant('findReadings' as const), topic, negate: fc.boolean() }),
  fc.record({ kind: fc.constant('findUsersByTopic' as const), topic: someTopic, quantifier: fc.constantFrom('some' as const, 'every' as const, 'none' as const) }),
  fc.record({ kind: fc.constant('findReadingsOfUser' as const), email, place }),
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('findByPhoneFilter' as const), key: fc.constantFrom('phone', 'phoneIndex'), filters: fc.array(phoneFilter, { minLength: 1, maxLength: 4 }) }) },
  fieldRefCommand,
  groupCommand,
);
type Command = typeof command extends fc.Arbitrary<infer C> ? C : never;
type Reading = Command extends infer C ? (C extends { readings: Array<infer R> } ? R : never) : never;
type Profile = Command extends infer C ? (C extends { profile: infer P } ? Exclude<P, undefined> : never) : never;

// ---- running one command on one side ----------------------------------------------------------

type Client = Harness['prisma'];
/** On the mirror, index fields hold the plaintext; the encrypting client computes them itself. */
const idx = (side: Side, fields: Record<string, string | null | undefined>) => (side === 'mirror' ? fields : {});

const readingData = (side: Side, r: Reading) => ({
  id: r.id,
  title: 't',
  body: r.body,
  topic: r.topic,
  ...idx(side, { topicIndex: r.topic }),
  notes: { create: r.notes.map((n) => ({ id: n.id, text: n.text })) },
});
const profileData = (side: Side, p: Profile) => ({ id: p.id, birthDate: p.birthDate, birthPlace: p.birthPlace, ...idx(side, { birthPlaceIndex: p.birthPlace }) });
const userInclude = { profile: true, readings: { orderBy: { id: 'asc' as const }, include: { notes: { orderBy: { id: 'asc' as const } } } } };
const topicFilter = (t: string | null, negate: boolean) => (negate ? { not: t } : t === null ? null : { equals: t });

/** The operator the encrypting client must refuse a command with, or undefined when it must answer it like the mirror. */
function expectedRefusal(c: Command): string | undefined {
  if (c.kind === 'findByFieldRef') {
    const { refs } = REF_TARGETS[c.model];
    return isProtected(c.model, refs[c.ref % refs.length]!) ? 'field reference' : undefined;
  }
  if (c.kind === 'groupReadings' && isProtected('Reading', c.field)) {
    if (c.place === 'orderBy') return c.aggregate === '_count' ? undefined : `orderBy ${c.aggregate}`;
    // _count of an index field counts non-null hashes; anything on an encrypted field is refused.
    return c.aggregate === '_count' && c.field === 'topicIndex' ? undefined : 'having';
  }
  return undefined;
}

function fieldRefWhere(db: Client, c: Extract<Command, { kind: 'findByFieldRef' }>): object {
  const { plain, refs } = REF_TARGETS[c.model];
  const fields = (c.model === 'User' ? db.user.fields : c.model === 'Reading' ? db.reading.fields : db.profile.fields) as unknown as Record<string, unknown>;
  let scalar: object = { equals: fields[refs[c.ref % refs.length]!] };
  for (let i = 0; i < c.nots; i++) scalar = { not: scalar };
  let where: object = { [plain]: scalar };
  for (const wrap of c.wraps) where = wrap === 'NOT' ? { NOT: where } : { [wrap]: [where] };
  if (c.model === 'Reading') return { readings: { [c.quantifier]: where } };
  if (c.model === 'Profile') return { profile: { [c.is]: where } };
  return where;
}

function groupArgs(c: Extract<Command, { kind: 'groupReadings' }>): object {
  const numeric = c.field === 'stars';
  if (c.place === 'orderBy') {
    return { by: ['userId'], _count: { _all: true }, orderBy: [{ [c.aggregate]: { [c.field]: 'desc' } }, { userId: 'asc' }] };
  }
  const condition = c.aggregate === '_count' || numeric ? { gte: c.threshold } : { gte: 'm' };
  return { by: ['userId'], _count: { _all: true }, having: { [c.field]: { [c.aggregate]: condition } }, orderBy: { userId: 'asc' } };
}

function run(db: Client, side: Side, c: Command): Promise<unknown> {
  switch (c.kind) {
    case 'createUser':
      return db.user.create({
        data: {
          id: c.id,
          email: c.email,
          name: c.name,
          phone: c.phone,
          ...idx(side, { emailIndex: c.email, phoneIndex: c.phone }),
          ...(c.profile ? { profile: { create: profileData(side, c.profile) } } : {}),
          readings: { create: c.readings.map((r) => readingData(side, r)) },
        },
        include: userInclude,
      });
    case 'addReadings':
      return db.user.update({ where: { id: c.id }, data: { readings: { create: c.readings.map((r) => readingData(side, r)) } }, include: userInclude });
    case 'updateUser':
      return db.user.update({
        where: { id: c.id },
        data: { email: c.email, phone: c.phone, name: c.name, ...idx(side, { emailIndex: c.email, phoneIndex: c.phone }) },
        include: userInclude,
      });
    case 'upsertProfile':
      return db.user.update({
        where: { id: c.id },
        data: { profile: { upsert: { create: profileData(side, c.profile), update: { birthPlace: c.profile.birthPlace, ...idx(side, { birthPlaceIndex: c.profile.birthPlace }) } } } },
        include: userInclude,
      });
    case 'retopicNested':
      return db.user.update({
        where: { id: c.id },
        data: { readings: { updateMany: { where: { topic: c.from }, data: { topic: c.to, body: c.body, ...idx(side, { topicIndex: c.to }) } } } },
        include: userInclude,
      });
    case 'retopic':
      return db.reading.updateMany({ where: { topic: c.from }, data: { topic: c.to, ...idx(side, { topicIndex: c.to }) } });
    case 'deleteUsersByEmail':
      return db.user.deleteMany({ where: { email: c.email } });
    case 'deleteReadings':
      return db.reading.deleteMany({ where: { topic: { in: c.topics } } });
    case 'findByEmail':
      return db.user.findMany({ where: { email: c.email }, include: userInclude, orderBy: { id: 'asc' } });
    case 'findUniqueByIndex':
      return db.user.findUnique({ where: { emailIndex: c.email }, include: userInclude });
    case 'findByPhone':
      return db.user.findMany({ where: { phone: c.negate ? { not: c.phone } : c.phone }, orderBy: { id: 'asc' } });
    case 'findByPhones':
      return db.user.findMany({ where: { phone: c.negate ? { notIn: c.phones } : { in: c.phones } }, orderBy: { id: 'asc' } });
    case 'findReadings':
      return db.reading.findMany({ where: { topic: topicFilter(c.topic, c.negate) }, include: { notes: { orderBy: { id: 'asc' } } }, orderBy: { id: 'asc' } });
    case 'findUsersByTopic':
      return db.user.findMany({ where: { readings: { [c.quantifier]: { topic: c.topic } } }, include: userInclude, orderBy: { id: 'asc' } });
    case 'findByPhoneFilter':
      return Promise.all(c.filters.map((filter) => db.user.findMany({ where: { [c.key]: filter }, select: { id: true }, orderBy: { id: 'asc' } })));
    case 'findByFieldRef':
      return db.user.findMany({ where: fieldRefWhere(db, c), select: { id: true }, orderBy: { id: 'asc' } });
    case 'groupReadings':
      return db.reading.groupBy(groupArgs(c) as never);
    case 'findReadingsOfUser':
      return db.reading.findMany({
        where: { OR: [{ user: { email: c.email } }, { user: { profile: { is: { birthPlace: c.place } } } }] },
        include: { user: { include: { profile: true } } },
        orderBy: { id: 'asc' },
      });
  }
}

/** Index fields and timestamps differ by design; everything else must be the same. */
const comparable = comparableWithout((k) => INDEX_FIELDS.has(k) || k === 'createdAt');
const outcome = (db: Client, side: Side, c: Command) => outcomeOf(side, expectedRefusal(c), () => run(db, side, c), comparable);

/** Plaintexts a command writes, for the scan. */
function plaintexts(c: Command): string[] {
  const out: Array<string | null | undefined> = [];
  if ('readings' in c) for (const r of c.readings) out.push(r.body, ...r.notes.map((n) => n.text));
  if ('profile' in c && c.profile) out.push(c.profile.birthDate);
  if ('name' in c) out.push(c.name);
  if ('body' in c) out.push(c.body);
  if ('email' in c) out.push(c.email);
  return out.filter((s): s is string => typeof s === 'string' && s.length >= 6);
}

// ---- the property -----------------------------------------------------------------------------

describe.each(providers())('encrypting client against a plain mirror on %s', (provider) => {
  const dbs = mirrorPair(provider);
  let encrypted: Harness;
  let mirror: Harness;
  beforeAll(() => ({ encrypted, mirror } = dbs));

  /** Empties both databases (deleting users cascades to everything the commands create). */
  async function reset(): Promise<void> {
    for (const h of [encrypted, mirror]) await h.sql(`DELETE FROM ${h.q('User')}`);
  }

  async function scanForPlaintext(written: Set<string>): Promise<void> {
    for (const [name, model] of Object.entries(schema.models)) {
      const annotated = Object.entries(model.encrypted).flatMap(([field, spec]) => (spec.index ? [field, spec.index] : [field]));
      if (annotated.length === 0) continue;
      for (const row of await encrypted.sql(`SELECT * FROM ${encrypted.q(model.dbName)}`)) {
        for (const column of annotated) {
          const stored = row[column];
          if (stored === null) continue;
          expect(stored).toEqual(expect.stringMatching(INDEX_FIELDS.has(column) ? /^i1:[A-Za-z0-9_-]{43}$/ : /^pce:v1:d1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$/));
          for (const plain of written) {
            if ((stored as string).includes(plain)) throw new Error(`plaintext found in ${name}.${column}`);
          }
        }
      }
      await expectTableInStep(encrypted, name);
    }
  }

  test('same results on every command, and no plaintext at rest', async () => {
    let commandsRun = 0;
    let lookupsFound = 0;
    let refusals = 0;
    await fc.assert(
      // A few users first, so that the random commands after them have rows to find and change.
      fc.asyncProperty(fc.array(createUser, { minLength: 2, maxLength: 4 }), fc.array(command, { minLength: 4, maxLength: 12 }), async (seed, rest) => {
        const commands: Command[] = [...seed, ...rest];
        await reset();
        const written = new Set<string>();
        for (const c of commands) {
          const [got, want] = await Promise.all([outcome(encrypted.prisma, 'encrypted', c), outcome(mirror.plain, 'mirror', c)]);
          expect(got).toEqual(want);
          for (const p of plaintexts(c)) written.add(p);
          commandsRun++;
          if ('refused' in (got as object)) refusals++;
          const data = (got as { ok?: unknown }).ok;
          if (c.kind.startsWith('find') && (Array.isArray(data) ? data.length > 0 : data != null)) lookupsFound++;
        }
        await scanForPlaintext(written);
      }),
      { numRuns: NUM_RUNS },
    );
    // Guard against a vacuous run: commands ran, and lookups found rows in many sequences. The data
    // is random (unseeded), so the bound is half a find per sequence: one run was seen finding 24 (under
    // the old bound of 25), while a broken rewrite finds none.
    expect(commandsRun).toBeGreaterThan(NUM_RUNS * 6);
    expect(lookupsFound).toBeGreaterThan(NUM_RUNS / 2);
    // ... and shapes the encrypting client must refuse came up (the mirror states the refusal it expects).
    expect(refusals).toBeGreaterThan(0);
  }, 120_000);
});

// ---- rotation state (issue 9): two index keys loaded, rows under both --------------------------

describe.each(providers())('during an index-key rotation, against a plain mirror on %s', (provider) => {
  const data = [{ id: 'd1', key: randomKey() }];
  const i1 = { id: 'i1', key: randomKey() };
  const i2 = { id: 'i2', key: randomKey() };
  /** The harness keyring (i2 primary, i1 loaded) is the one the in-step check recomputes indexes with. */
  /** The test schema has subject models: a client over it needs a wrap key. */
  const wrap = [testWrapKey()];
  const rotating = localKeys({ data, index: [i2, i1], wrap });
  const dbs = mirrorPair(provider, { keys: rotating });
  let encrypted: Harness;
  let mirror: Harness;
  /** Before the rotation: only i1. The seed users are written through it, so rows start under i1. */
  let before: Client;
  /** Step 2 of a rotation: instances already promoted (i2 primary) and instances not yet restarted (i1 primary, i2 loaded). */
  let instances: Client[];
  beforeAll(async () => {
    ({ encrypted, mirror } = dbs);
    before = encrypted.extend({ keys: localKeys({ data, index: [i1], wrap }) });
    instances = [encrypted.prisma, encrypted.extend({ keys: localKeys({ data, index: [i1, i2], wrap }) })];
  });

  /** Every stored index is one of the value's candidates; returns how many rows hold an index under each key. */
  async function indexesInStep(): Promise<Record<string, number>> {
    const perKey: Record<string, number> = { i1: 0, i2: 0 };
    for (const [name, model] of Object.entries(schema.models)) {
      for (const [field, spec] of Object.entries(model.encrypted)) {
        if (!spec.index) continue;
        const codec = new FieldCodec(name, field, spec, rotating, () => undefined);
        for (const row of await encrypted.sql(`SELECT * FROM ${encrypted.q(model.dbName)}`)) {
          const stored = row[spec.index] as string | null;
          if (row[field] === null) {
            expect(stored).toBeNull();
            continue;
          }
          expect(codec.indexesForLookup(codec.decrypt(row[field] as string))).toContain(stored);
          perKey[stored!.slice(0, 2)]!++;
        }
      }
    }
    return perKey;
  }

  test('same results on every command with instances of either primary, rows under both index keys', async () => {
    let sequencesUnderBoth = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(createUser, { minLength: 2, maxLength: 4 }),
        // Mostly promoted instances, so rows move to i2 while others stay under i1.
        fc.array(fc.tuple(command, fc.constantFrom(0, 0, 1)), { minLength: 4, maxLength: 10 }),
        async (seed, rest) => {
          for (const h of [encrypted, mirror]) await h.sql(`DELETE FROM ${h.q('User')}`);
          const steps: Array<[Command, Client]> = [...seed.map((c): [Command, Client] => [c, before]), ...rest.map(([c, i]): [Command, Client] => [c, instances[i]!])];
          for (const [c, client] of steps) {
            const [got, want] = await Promise.all([outcome(client, 'encrypted', c), outcome(mirror.plain, 'mirror', c)]);
            expect(got).toEqual(want);
          }
          const perKey = await indexesInStep();
          if (perKey.i1! > 0 && perKey.i2! > 0) sequencesUnderBoth++;
        },
      ),
      { numRuns: 15 },
    );
    // Not vacuous: sequences really ended with rows under both keys (a broken promotion gives none).
    // The data is random (unseeded): a run was seen with 3 of 15, so the bound is 2, not 4.
    expect(sequencesUnderBoth).toBeGreaterThanOrEqual(2);
  });
});
