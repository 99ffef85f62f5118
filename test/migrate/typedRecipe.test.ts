import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectStatus, columnEncryption, encryptExisting, rotate, verify, type EncryptionSchema } from '../../src';
import { keyUsage } from '../../src/keys/keyUsage';
import type { SqlConnection } from '../../src/migrate/connection';
import { providers, sharedKeyFields, silentLogger, type Harness } from '../support/clients';
import { closeFixture, openFixture, ROOT, schemaFor, type Rotation } from './migrateSupport';

/**
 * The README recipe "Encrypting an existing typed column", step by step: a `LegacyBirth` table
 * whose `birthDate timestamp` is full of plaintext gets a storage and an index column (the
 * committed SQL migration), the application is deployed with the field in passthrough, then
 * `encrypt-existing` converts the column (resumed after a stop, with the application writing
 * meanwhile), `verify` and `status` check it, the field is switched to strict, and a `rotate`
 * with the `keys retire` census shows typed values under their key ids.
 */

const RECIPE_MIGRATION = '20261201000100_legacy_birth_storage';
const dates = Array.from({ length: 9 }, (_, i) => new Date(Date.UTC(1950 + i * 7, i, 1 + i, i, 30, 0, 125 * i)));

/** The committed migration's statements, split as Prisma writes them (one per `;` line end). */
function migrationStatements(provider: string): string[] {
  return readFileSync(join(ROOT, 'prisma', provider, 'migrations', RECIPE_MIGRATION, 'migration.sql'), 'utf8')
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

/** The same map with the field switched to strict: what regenerating after editing the annotation gives. */
function strict(schema: EncryptionSchema): EncryptionSchema {
  const model = schema.models.LegacyBirth!;
  return { ...schema, models: { ...schema.models, LegacyBirth: { ...model, encrypted: { birthDate: { ...model.encrypted.birthDate!, readMode: 'strict' } } } } };
}

describe.each(providers())('encrypting an existing typed column (README recipe) on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const schema = schemaFor(provider);
  beforeAll(async () => {
    ({ h, conn, keys } = await openFixture(provider, 'before'));
  });
  afterAll(() => closeFixture({ h, conn }));

  const raw = async () => {
    const q = h.q;
    return h.sql<{ id: number; birthDate: unknown; birthDateCipher: string | null; birthDateIndex: string | null }>(
      `SELECT ${['id', 'birthDate', 'birthDateCipher', 'birthDateIndex'].map(q).join(', ')} FROM ${q('LegacyBirth')} ORDER BY ${q('id')}`,
    );
  };

  test('schema change, SQL migration, passthrough deploy, encrypt-existing (resumed, under writes), verify, strict, rotate', async () => {
    const q = h.q;
    // 0. Before: the table as it was, without the storage and index columns, full of plaintext dates.
    await h.sql(`ALTER TABLE ${q('LegacyBirth')} DROP COLUMN ${q('birthDateCipher')}`);
    await h.sql(`ALTER TABLE ${q('LegacyBirth')} DROP COLUMN ${q('birthDateIndex')}`);
    await h.plain.legacyBirth.createMany({ data: dates.map((birthDate, i) => ({ name: `person ${i}`, birthDate })) });
    await h.plain.legacyBirth.createMany({ data: [{ name: 'no date' }] });

    // 1-2. Schema change (annotation, storage and index fields) and its SQL migration.
    for (const statement of migrationStatements(provider)) await h.sql(statement);

    // 3. Deploy with the field in passthrough: legacy rows read and match, new writes are encrypted.
    const app = h.prisma;
    const all = await app.legacyBirth.findMany({ orderBy: { id: 'asc' } });
    expect(all.map((r) => r.birthDate)).toEqual([...dates, null]);
    expect(all[0]).not.toHaveProperty('birthDateCipher');
    expect((await app.legacyBirth.findMany({ where: { birthDate: dates[3] } })).map((r) => r.name)).toEqual(['person 3']);
    expect(await app.legacyBirth.count({ where: { birthDate: null } })).toBe(1);
    expect(await app.legacyBirth.count({ where: { birthDate: { not: null } } })).toBe(dates.length);
    const fresh = await app.legacyBirth.create({ data: { name: 'new', birthDate: new Date('2001-02-03T04:05:06.007Z') } });
    await app.legacyBirth.update({ where: { id: all[1]!.id }, data: { birthDate: dates[1] } });

    // 4. encrypt-existing: stopped after one batch, then resumed while the application writes.
    const options = { connection: conn, schema, keyring: keys.before, logger: silentLogger, model: 'LegacyBirth', batchSize: 2 };
    const first = await encryptExisting({ ...options, maxBatches: 1 });
    expect(first.complete).toBe(false);
    await app.legacyBirth.update({ where: { id: all[7]!.id }, data: { birthDate: new Date('1999-12-31T23:59:59.999Z') } });
    const second = await encryptExisting(options);
    expect(second).toMatchObject({ complete: true, failedCount: 0 });
    expect(first.updated + second.updated).toBe(dates.length - 2); // rows 1 and 7 were written by the application

    // No plaintext left: every typed column NULL, every value ciphertext with its index.
    const stored = await raw();
    for (const row of stored) {
      expect(row.birthDate).toBeNull();
      if (row.birthDateCipher !== null) expect(row.birthDateCipher).toMatch(/^pce:v2:t:k:d1:/);
      expect(row.birthDateIndex === null).toBe(row.birthDateCipher === null);
    }
    const report = await verify({ connection: conn, schema, keyring: keys.before, logger: silentLogger, model: 'LegacyBirth' });
    expect(report).toMatchObject({ ok: true, failedCount: 0, values: dates.length + 1 });
    expect(report.models[0]!.plaintext).toBe(0);
    const [status] = await collectStatus(conn, schema, { model: 'LegacyBirth' });
    expect(status).toMatchObject({ byKey: { d1: dates.length + 1 }, plaintext: 0, nulls: 1, indexByKey: { i1: dates.length + 1 } });

    // 5. Switch to strict: the same reads and lookups, now refusing any plaintext.
    // Shared-key models only (keys.before has no wrap key, which the subject models would need).
    const strictApp = h.plain.$extends(columnEncryption({ fields: strict(sharedKeyFields(provider)), keys: keys.before, logger: silentLogger }));
    const after = await strictApp.legacyBirth.findMany({ orderBy: { id: 'asc' } });
    expect(after.map((r) => r.birthDate)).toEqual([...dates.slice(0, 7), new Date('1999-12-31T23:59:59.999Z'), dates[8], null, fresh.birthDate]);
    expect((await strictApp.legacyBirth.findFirstOrThrow({ where: { birthDate: dates[5] } })).name).toBe('person 5');

    // Rotation and the retire census see typed values under their key ids.
    const rotated = await rotate({ ...options, keyring: keys.after });
    expect(rotated).toMatchObject({ complete: true, failedCount: 0, updated: dates.length + 1 });
    const census = await collectStatus(conn, schema, { model: 'LegacyBirth' });
    expect(census[0]).toMatchObject({ byKey: { d2: dates.length + 1 }, indexByKey: { i2: dates.length + 1 } });
    expect(keyUsage(census, 'd1', 'data').values).toBe(0);
    expect(keyUsage(census, 'd2', 'data').values).toBe(dates.length + 1);
    expect(await rotate({ ...options, keyring: keys.after })).toMatchObject({ updated: 0, complete: true });
  });
});
