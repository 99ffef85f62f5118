import { providers, silentLogger, type Harness } from '../support/clients';
import { encryptExisting } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { closeFixture, codec, openFixture, schemaFor, type Rotation } from './migrateSupport';

interface RawContact {
  id: number;
  email: string | null;
  emailIndex: string | null;
  notes: string | null;
}

describe.each(providers())('encrypt-existing on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  const schema = schemaFor(provider);

  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider, 'after'));
  });
  afterEach(() => closeFixture({ h, conn }));

  const contacts = async () => {
    const q = conn.quote;
    const rows = await conn.query<RawContact & Record<string, unknown>>(
      `SELECT ${['id', 'email', 'emailIndex', 'notes'].map(q).join(', ')} FROM ${q('LegacyContact')} ORDER BY ${q('id')}`,
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  };
  const insert = async (email: string | null, emailIndex: string | null, notes: string | null) => {
    const q = conn.quote;
    await conn.execute(
      `INSERT INTO ${q('LegacyContact')} (${q('email')}, ${q('emailIndex')}, ${q('notes')}) VALUES (${[1, 2, 3].map((n) => conn.placeholder(n)).join(', ')})`,
      [email, emailIndex, notes],
    );
  };

  test('plaintext with quotes, backslashes, braces, commas and the text NULL is encrypted as it was (the batch UPDATE array literals, its compare-and-set on the old text)', async () => {
    const email = codec(provider, keys.after, 'LegacyContact', 'email');
    const notes = codec(provider, keys.after, 'LegacyContact', 'notes');
    const awkward = ['a"b@example.org', 'back\\slash@example.org', '{x,y}@example.org', 'NULL', '\\N', '"', '\\', ' , ', '\\"}{'];
    for (const [i, v] of awkward.entries()) await insert(v, null, `${v} ${i}`);
    const report = await encryptExisting({ connection: conn, schema, keyring: keys.after, model: 'LegacyContact', batchSize: 4, logger: silentLogger });
    expect(report.updated).toBe(awkward.length);
    expect(report.failedCount).toBe(0);
    const after = await contacts();
    after.forEach((row, i) => {
      expect(email.decrypt(row.email!)).toBe(awkward[i]);
      expect(row.emailIndex).toBe(email.indexForWrite(awkward[i]!));
      expect(notes.decrypt(row.notes!)).toBe(`${awkward[i]} ${i}`);
    });
  });

  test('encrypts legacy plaintext and fills indexes, never touching values already in the envelope format', async () => {
    const email = codec(provider, keys.after, 'LegacyContact', 'email');
    const notes = codec(provider, keys.after, 'LegacyContact', 'notes');
    const plainEmail = (i: number) => `  Person${i}@Example.ORG `;
    for (let i = 0; i < 150; i++) await insert(plainEmail(i), null, i % 4 === 0 ? null : `note ${i}: ü ✓`);
    // Already encrypted (by the application after the switch to encryption), with and without an index.
    const encrypted = email.encrypt('done@example.org');
    await insert(encrypted, email.indexForWrite('done@example.org'), notes.encrypt('kept'));
    const encryptedNoIndex = email.encrypt('noindex@example.org');
    await insert(encryptedNoIndex, null, null);
    // Looks like ours but is damaged: must be reported, never "encrypted" as if it were plaintext.
    await insert('pce:v1:d1:garbage', null, null);
    // The empty string is a value too.
    await insert('', null, '');
    const before = await contacts();

    const report = await encryptExisting({ connection: conn, schema, keyring: keys.after, model: 'LegacyContact', batchSize: 16, logger: silentLogger });
    expect(report.updated).toBe(152); // 150 plaintext rows, the index-less ciphertext row, the empty-string row
    expect(report.failedCount).toBe(1);
    expect(report.failures[0]).toMatchObject({ model: 'LegacyContact', key: { id: before[152]!.id }, field: 'email', reason: 'malformed' });

    const after = await contacts();
    for (let i = 0; i < 150; i++) {
      const row = after[i]!;
      expect(row.email).toMatch(/^pce:v1:d2:/);
      expect(email.decrypt(row.email!)).toBe(plainEmail(i));
      expect(row.emailIndex).toBe(email.indexForWrite(plainEmail(i)));
      expect(row.notes === null ? null : notes.decrypt(row.notes)).toBe(i % 4 === 0 ? null : `note ${i}: ü ✓`);
    }
    expect(after[150]).toEqual(before[150]);
    expect(after[151]!.email).toBe(encryptedNoIndex);
    expect(after[151]!.emailIndex).toBe(email.indexForWrite('noindex@example.org'));
    expect(after[152]).toEqual(before[152]);
    expect(email.decrypt(after[153]!.email!)).toBe('');
    expect(notes.decrypt(after[153]!.notes!)).toBe('');

    // The application finds formerly plaintext rows through the new index (normalised: trim, lowercase).
    const found = await h.prisma.legacyContact.findFirst({ where: { email: 'person42@example.org' } });
    expect(found?.id).toBe(after[42]!.id);
    expect(found?.notes).toBe('note 42: ü ✓');

    const again = await encryptExisting({ connection: conn, schema, keyring: keys.after, model: 'LegacyContact', batchSize: 16, logger: silentLogger });
    expect(again.updated).toBe(0);
    expect(again.failedCount).toBe(1);
    expect(await contacts()).toEqual(after);
  });
});
