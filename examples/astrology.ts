/**
 * Astrology profiles with encrypted personal data: text fields, and a natal chart whose birth
 * moment (DateTime) and chart (Json) are encrypted and read back in their own types.
 *
 *   npm run example
 *
 * Uses DATABASE_URL when set (a server where it may create a database), otherwise starts an
 * embedded PostgreSQL. Keys come from PCE_DATA_KEYS / PCE_INDEX_KEYS / PCE_WRAP_KEYS when set,
 * otherwise fresh random keys are made for this run.
 */
import { randomBytes } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import pino from 'pino';
import { Client } from 'pg';
import { columnEncryption, DecryptionError, forgetSubject, localKeys, localKeysFromEnv, SubjectKeyStore, type Keyring } from 'prisma-column-encryption';
import { PrismaClient } from '../generated/postgres/client/client';
import { encryptedFields } from '../generated/postgres/encryption';
import { createDatabase } from '../test/support/databases';
import { startEmbeddedPostgres, type RunningPostgres } from '../test/support/embeddedPostgres';

function keys() {
  // The schema has subject models (Person, PersonReading): without PCE_WRAP_KEYS the client is refused when it is made.
  if (process.env.PCE_DATA_KEYS) return localKeysFromEnv();
  const fresh = () => randomBytes(32).toString('base64');
  console.log('No PCE_DATA_KEYS/PCE_INDEX_KEYS/PCE_WRAP_KEYS set: using fresh random keys for this run.\n');
  return localKeys({ data: [{ id: 'dev-data-1', key: fresh() }], index: [{ id: 'dev-index-1', key: fresh() }], wrap: [{ id: 'dev-wrap-1', key: fresh() }] });
}

async function main(): Promise<void> {
  let server: RunningPostgres | undefined;
  const adminUrl = process.env.DATABASE_URL ?? (server = await startEmbeddedPostgres()).adminUrl;
  const db = await createDatabase('postgres', adminUrl, 'pce_example');
  console.log(`Database: ${server ? 'embedded PostgreSQL' : 'DATABASE_URL'}, fresh database ${db.name} with migrations applied.\n`);

  const base = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
  const keyring = keys();
  // Per-subject keys (Person, PersonReading): one store shared by the client and forgetSubject.
  const store = new SubjectKeyStore({ keys: keyring, provider: encryptedFields.provider });
  const prisma = extended(base, keyring, store);
  const raw = new Client({ connectionString: db.url });
  await raw.connect();
  try {
    const luna = await prisma.user.create({
      data: {
        email: 'Luna.Rivera@Example.com',
        name: 'Luna Rivera',
        profile: { create: { birthDate: '1990-03-21', birthTime: '04:45', birthPlace: 'Valparaíso, Chile', sunSign: 'Aries' } },
        readings: { create: [{ title: 'Solar return', body: 'Mars crosses your midheaven: start the thing.', topic: 'Career' }] },
      },
    });
    // Typed fields keep their Prisma types: a DateTime birth moment and a Json chart, encrypted into
    // their storage columns (bornAtCipher, chartCipher) while the typed columns stay NULL.
    await prisma.natalChart.create({
      data: {
        userId: luna.id,
        label: 'natal',
        bornAt: new Date('1990-03-21T07:45:00Z'),
        chart: { sun: 'Aries', moon: 'Scorpio', ascendant: 'Gemini', houses: [{ house: 10, sign: 'Aquarius' }] },
      },
    });
    await prisma.user.create({
      data: { email: 'sol@example.com', name: 'Sol Okafor', profile: { create: { birthDate: '1985-08-02', birthPlace: 'Lagos', sunSign: 'Leo' } } },
    });

    // Equality on an encrypted field: normalised (trim, lowercase, NFKC) and answered by the blind index.
    const searched = '  luna.rivera@EXAMPLE.com ';
    const found = await prisma.user.findFirst({
      where: { email: searched },
      include: { profile: true, readings: true },
    });
    // What the annotation's normalize: [nfkc, trim, lowercase] does to it before hashing.
    const normalised = searched.normalize('NFKC').trim().toLowerCase();
    console.log(`Searched with where: { email: ${JSON.stringify(searched)} }, normalised to ${JSON.stringify(normalised)} before hashing:`);
    console.log('Found by email (decrypted by the extension):');
    console.log(JSON.stringify(found, null, 2));

    const sign = 'leo';
    const leos = await prisma.profile.findMany({ where: { sunSign: sign }, select: { birthPlace: true, user: { select: { name: true } } } });
    console.log(`\nSearched with where: { sunSign: ${JSON.stringify(sign)} } (normalize: [lowercase], stored 'Leo'):`, JSON.stringify(leos));

    // Equality on a typed field: the same instant written at another offset finds the chart.
    const bornAt = '1990-03-21T04:45:00-03:00';
    const chart = await prisma.natalChart.findFirstOrThrow({ where: { bornAt }, select: { bornAt: true, chart: true } });
    console.log(`\nSearched with where: { bornAt: ${JSON.stringify(bornAt)} } (a DateTime, compared in UTC):`);
    console.log(`  bornAt is a ${chart.bornAt instanceof Date ? 'Date' : typeof chart.bornAt}: ${chart.bornAt?.toISOString()}`);
    console.log(`  chart is a Json ${Array.isArray(chart.chart) ? 'array' : typeof chart.chart}:`, JSON.stringify(chart.chart));
    const { rows: charts } = await raw.query('SELECT "bornAt", "bornAtCipher", "chart", "chartCipher" FROM "NatalChart" WHERE "userId" = $1', [luna.id]);
    console.log('The chart as stored (raw SQL): the typed columns NULL, the ciphertext beside them:');
    console.log(JSON.stringify(charts[0], null, 2));

    const { rows } = await raw.query(
      'SELECT u.email, u."emailIndex", u.name, p."birthDate", p."birthPlace", r.body FROM "User" u JOIN "Profile" p ON p."userId" = u.id LEFT JOIN "Reading" r ON r."userId" = u.id WHERE u.id = $1',
      [found!.id],
    );
    console.log('\nThe same row as stored in PostgreSQL (raw SQL):');
    console.log(JSON.stringify(rows[0], null, 2));

    await forgetting(base, keyring, store, raw);
  } finally {
    await raw.end();
    await base.$disconnect();
    await db.drop();
    await server?.stop();
  }
}

/**
 * Per-subject keys: every value of a Person and of their readings is under that person's own key.
 * Forgetting the person destroys the key, so every copy of those values (backups included, once
 * the wrap-key epoch they were wrapped under is gone) is unreadable; other people are untouched.
 */
async function forgetting(base: PrismaClient, keyring: Keyring, store: SubjectKeyStore, raw: Client): Promise<void> {
  const prisma = extended(base, keyring, store);
  const mira = await prisma.person.create({
    data: { email: 'mira@example.com', name: 'Mira Sol', birthDate: new Date('1992-07-14T09:30:00Z'), readings: { create: [{ text: 'The Moon in your seventh house.', topic: 'Love' }] } },
  });
  const tomas = await prisma.person.create({ data: { email: 'tomas@example.com', name: 'Tomás', readings: { create: [{ text: 'Saturn returns.', topic: 'love' }] } } });
  const stored = await raw.query('SELECT name, "birthDateCipher" FROM "Person" WHERE id = $1', [mira.id]);
  console.log(`\nMira's row under her own key (scope s in the envelope): ${JSON.stringify(stored.rows[0])}`);
  const love = await prisma.personReading.findMany({ where: { topic: 'LOVE' }, include: { person: { select: { name: true } } }, orderBy: { personId: 'asc' } });
  console.log('Readings on love, two people, one key load:', JSON.stringify(love.map((r) => [r.person.name, r.text])));

  await forgetSubject(base, mira.id, { fields: encryptedFields, model: 'Person', store });
  console.log(`\nforgetSubject(${mira.id}): Mira's key destroyed, her blind indexes nulled.`);
  try {
    await prisma.person.findUnique({ where: { id: mira.id } });
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    console.log(`Reading Mira now: ${error.constructor.name} reason '${error.reason}'`);
  }
  const lenient = extended(base, keyring, store, 'null');
  console.log('With onErasedSubject: null:', JSON.stringify(await lenient.person.findUnique({ where: { id: mira.id }, select: { name: true, birthDate: true } })));
  console.log('Tomás is untouched:', JSON.stringify(await prisma.person.findUnique({ where: { id: tomas.id }, select: { name: true } })));
  const again = await prisma.personReading.create({ data: { personId: mira.id, text: 'new' } }).catch((e: Error) => e);
  console.log(`Writing for Mira again: ${(again as Error).name}`);
}

function extended(base: PrismaClient, keyring: Keyring, store: SubjectKeyStore, onErasedSubject: 'error' | 'null' = 'error') {
  return base.$extends(columnEncryption({ fields: encryptedFields, keys: keyring, logger: pino({ level: 'warn' }), subjectKeyStore: store, onErasedSubject }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
