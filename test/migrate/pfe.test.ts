import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encryptStringSync, generateKey, parseKeySync } from '@47ng/cloak';
import { getDMMF } from '@prisma/internals';
import { fieldEncryptionExtension } from 'prisma-field-encryption';
import { collectStatus, convertPfe, DecryptionError, encryptExisting, pfeLegacyKeys, rotate, verify, type PfeLegacyKeys } from '../../src';
import type { SqlConnection } from '../../src/migrate/connection';
import { providers, silentLogger, type Harness } from '../support/clients';
import { closeFixture, doneChunks, holdAppWrite, openFixture, ROOT, schemaFor, schemaPath, startCli, waitFor, type Rotation } from './migrateSupport';

/**
 * Issue 13 end to end: the real prisma-field-encryption 1.6 writes rows (its key rotated from k1
 * to k2 half way), the application switches to this library with the legacy key source and
 * reads and finds every row, `convert-pfe` runs as a CLI process that is killed once and resumed,
 * and afterwards no old value or old hash is left, `verify` is clean and the new indexes work.
 */

type PfeDmmf = NonNullable<NonNullable<Parameters<typeof fieldEncryptionExtension>[0]>['dmmf']>;
type Account = { id: number; email: string; emailHash: string | null; name: string | null; phone: string | null; phoneHash: string | null; note: string | null };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClient = any;

const SALT_ENV = 'PFE_TEST_PHONE_SALT';
const email = (i: number) => `User${i}@Example.org `;
const name = (i: number) => (i % 4 === 0 ? null : `Zoë ${i}`);
const phone = (i: number) => (i % 5 === 0 ? null : `+33 6 12 34 ${String(i).padStart(2, '0')}`);
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

let dmmf: PfeDmmf;
beforeAll(async () => {
  // Prisma 7 clients carry no full DMMF; prisma-field-encryption needs one (see bench/peer/fieldEncryption.ts).
  dmmf = (await getDMMF({ datamodel: readFileSync(join(ROOT, 'test', 'pfe', 'schema.prisma'), 'utf8') })) as unknown as PfeDmmf;
});

/** prisma-field-encryption's own client extension over the plain client, as its users run it. */
function pfeClient(h: Harness, salt: string, encryptionKey: string, decryptionKeys: string[] = []): AnyClient {
  const before = process.env[SALT_ENV];
  process.env[SALT_ENV] = salt; // it reads saltEnv variables once, when the extension is made
  try {
    return (h.plain as AnyClient).$extends(fieldEncryptionExtension({ encryptionKey, decryptionKeys, dmmf }));
  } finally {
    if (before === undefined) delete process.env[SALT_ENV];
    else process.env[SALT_ENV] = before;
  }
}

async function rawAccounts(conn: SqlConnection): Promise<Account[]> {
  const q = conn.quote;
  return conn.query<Account & Record<string, unknown>>(
    `SELECT ${['id', 'email', 'emailHash', 'name', 'phone', 'phoneHash', 'note'].map(q).join(', ')} FROM ${q('PfeAccount')} ORDER BY ${q('id')}`,
  );
}

const plainView = (rows: readonly Account[]) => rows.map(({ id, email: e, name: n, phone: p, note }) => ({ id, email: e, name: n, phone: p, note }));

describe.each(providers())('coming from prisma-field-encryption on %s', (provider) => {
  let h: Harness;
  let conn: SqlConnection;
  let keys: Rotation;
  let k1: string;
  let k2: string;
  let salt: string;
  let legacyKeys: PfeLegacyKeys;
  const schema = schemaFor(provider);

  beforeEach(async () => {
    ({ h, conn, keys } = await openFixture(provider));
    [k1, k2] = [generateKey(), generateKey()];
    salt = randomBytes(6).toString('hex');
    legacyKeys = pfeLegacyKeys({ env: { PRISMA_FIELD_ENCRYPTION_KEY: k2, PRISMA_FIELD_DECRYPTION_KEYS: k1, [SALT_ENV]: salt } });
  });
  afterEach(() => closeFixture({ h, conn }));

  /** Rows 0..n-1 written by prisma-field-encryption: the first half under k1, the rest after its rotation to k2. */
  async function writeWithPfe(n: number): Promise<Account[]> {
    const before = pfeClient(h, salt, k1);
    const after = pfeClient(h, salt, k2, [k1]);
    for (let i = 0; i < n; i++) {
      await (i < n / 2 ? before : after).pfeAccount.create({ data: { email: email(i), name: name(i), phone: phone(i), note: `note ${i}` } });
    }
    // Its own lookups work on what it wrote (so the hashes below are the ones it really searches by).
    expect((await after.pfeAccount.findUnique({ where: { emailHash: sha256(email(1).toLowerCase().trim()) } }))?.name).toBe(name(1));
    return (await after.pfeAccount.findMany({ orderBy: { id: 'asc' } })) as Account[];
  }

  test('switch, read and find, convert (killed once, resumed), then nothing old is left', async () => {
    const N = 30;
    const expected = plainView(await writeWithPfe(N));
    expect(expected.map((r) => r.email)).toEqual(Array.from({ length: N }, (_, i) => email(i)));
    const [fp1, fp2] = [parseKeySync(k1).fingerprint, parseKeySync(k2).fingerprint];
    const stored = await rawAccounts(conn);
    // What prisma-field-encryption stored: its envelope under each key, and unkeyed (for phone salted) SHA-256 hashes.
    stored.forEach((r, i) => {
      expect(r.email.startsWith(`v1.aesgcm256.${i < N / 2 ? fp1 : fp2}.`)).toBe(true);
      expect(r.emailHash).toBe(sha256(email(i).toLowerCase().trim()));
      expect(r.phoneHash).toBe(phone(i) === null ? null : sha256(`${phone(i)!.replace(/\s/g, '')}${salt}`));
    });
    const oldHashes = new Set(stored.flatMap((r) => [r.emailHash, r.phoneHash]).filter((x): x is string => x !== null));

    // Step 1: the application switches libraries, with the legacy keys loaded next to the keyring.
    const app = h.extend({ legacyKeys }) as AnyClient;
    const expectReadsAndLookups = async (client: AnyClient) => {
      expect(await client.pfeAccount.findMany({ orderBy: { id: 'asc' }, select: { id: true, email: true, name: true, phone: true, note: true } })).toEqual(expected);
      // Every third row: rows under k1 and under k2, with and without a phone.
      for (const row of expected.filter((_, i) => i % 3 === 1)) {
        const i = row.id - expected[0]!.id;
        // Through the unique index field, and through the encrypted field with a differently written value.
        expect((await client.pfeAccount.findUnique({ where: { emailHash: email(i) } }))?.id).toBe(row.id);
        expect((await client.pfeAccount.findFirst({ where: { email: ` user${i}@EXAMPLE.ORG` } }))?.id).toBe(row.id);
        if (row.phone !== null) expect((await client.pfeAccount.findFirst({ where: { phone: row.phone.replace(/\s/g, '') } }))?.id).toBe(row.id);
      }
      expect(await client.pfeAccount.count({ where: { email: { in: [email(2), email(N - 1), 'nobody@example.org'] } } })).toBe(2);
    };
    await expectReadsAndLookups(app);
    // A unique upsert through the old hash finds the unconverted row instead of creating a duplicate.
    const upserted = await app.pfeAccount.upsert({ where: { emailHash: ' USER4@example.org' }, update: { note: 'upserted' }, create: { email: email(4), note: 'duplicate' } });
    expect(upserted.id).toBe(expected[4]!.id);
    expected[4] = { ...expected[4]!, note: 'upserted' };
    expect(await app.pfeAccount.count()).toBe(N);
    // The same client without the legacy source cannot read them, and says why.
    const error = await h.prisma.pfeAccount.findFirst({ where: { id: expected[0]!.id } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DecryptionError);
    expect((error as DecryptionError).reason).toBe('legacy-format');

    // Before the conversion: status counts the old values per key and verify names them.
    const status = await collectStatus(conn, schema, { model: 'PfeAccount' });
    expect(status.find((s) => s.field === 'email')).toMatchObject({ byKey: { [`pfe:${fp1}`]: N / 2, [`pfe:${fp2}`]: N / 2 }, plaintext: 0, indexByKey: { 'pfe-hash': N } });
    const unverified = await verify({ connection: conn, schema, keyring: keys.before, model: 'PfeAccount', logger: silentLogger });
    expect(unverified.ok).toBe(false);
    expect(new Set(unverified.failures.map((f) => f.problem))).toEqual(new Set(['legacy-format']));

    // A dry run plans every row and writes nothing.
    const beforeDry = await rawAccounts(conn);
    const dry = await convertPfe({ connection: conn, schema, keyring: keys.before, legacyKeys, model: 'PfeAccount', dryRun: true, logger: silentLogger });
    expect(dry).toMatchObject({ command: 'convert-pfe', dryRun: true, updated: N, failedCount: 0 });
    expect(await rawAccounts(conn)).toEqual(beforeDry);

    // Step 2: the conversion, as a CLI process killed once and run again.
    const env = { DATABASE_URL: h.db.url, ...keys.envBefore, PRISMA_FIELD_ENCRYPTION_KEY: k2, PRISMA_FIELD_DECRYPTION_KEYS: k1, [SALT_ENV]: salt };
    const args = ['convert-pfe', '--schema', schemaPath(provider), '--batch-size', '5', '--concurrency', '1'];
    const killed = startCli([...args, '--pause', '150'], env);
    let exited: string | undefined;
    void killed.done.then((r) => (exited = `the CLI exited early (${r.code}): ${r.stderr.slice(-500)}`));
    // The CLI takes seconds to start on a loaded machine: wait long, but stop at once if it exits.
    await waitFor('a first converted chunk', async () => {
      if (exited) throw new Error(exited);
      return (await doneChunks(conn)) >= 1;
    }, 90000);
    killed.child.kill('SIGKILL');
    expect((await killed.done).signal).toBe('SIGKILL');
    await sleep(200);
    const half = await rawAccounts(conn);
    const converted = half.filter((r) => r.email.startsWith('pce:v1:d1:')).length;
    expect(converted).toBeGreaterThan(0);
    expect(converted).toBeLessThan(N);
    // Half converted: the application still reads and finds every row.
    await expectReadsAndLookups(app);

    const resumed = await startCli([...args, '--json'], env).done;
    expect(resumed.code).toBe(0);
    const report = JSON.parse(resumed.stdout) as { command: string; updated: number; failedCount: number; complete: boolean; models: Array<{ start: string }> };
    expect(report).toMatchObject({ command: 'convert-pfe', updated: N - converted, failedCount: 0, complete: true });
    expect(report.models[0]!.start).toBe('joined');

    // A raw scan: no old-format value, no old hash, every index a keyed blind index.
    const after = await rawAccounts(conn);
    for (const r of after) {
      for (const v of [r.email, r.name, r.phone]) expect(v === null || v.startsWith('pce:v1:d1:')).toBe(true);
      for (const x of [r.emailHash, r.phoneHash]) expect(x === null || (x.startsWith('i1:') && !oldHashes.has(x))).toBe(true);
    }
    expect(after.map((r) => r.phoneHash === null)).toEqual(stored.map((r) => r.phoneHash === null));
    const [old] = await h.sql<{ n: unknown }>(
      `SELECT COUNT(*) AS n FROM ${h.q('PfeAccount')} WHERE ${['email', 'name', 'phone'].map((c) => `${h.q(c)} LIKE 'v1.aesgcm256.%'`).join(' OR ')} OR ${h.q('emailHash')} NOT LIKE '%:%' OR ${h.q('phoneHash')} NOT LIKE '%:%'`,
    );
    expect(Number(old!.n)).toBe(0);

    // Every row reads back equal and is found through the new indexes, now also without the legacy keys.
    await expectReadsAndLookups(app);
    await expectReadsAndLookups(h.prisma);
    const verified = await verify({ connection: conn, schema, keyring: keys.before, model: 'PfeAccount', logger: silentLogger });
    expect(verified).toMatchObject({ ok: true, failedCount: 0, values: after.reduce((n, r) => n + [r.email, r.name, r.phone].filter((v) => v !== null).length, 0) });

    // Idempotent: another run finds nothing to do.
    const again = await convertPfe({ connection: conn, schema, keyring: keys.before, legacyKeys, model: 'PfeAccount', logger: silentLogger });
    expect(again).toMatchObject({ updated: 0, scanned: 0, complete: true });
  }, 180000); // two CLI processes: seconds each to start on a machine shared with other suites

  test('a value the old application writes while the conversion holds its row is re-read and converted, not overwritten', async () => {
    await writeWithPfe(20);
    const [target] = await rawAccounts(conn);
    const id = target!.id + 12;
    // An instance still on prisma-field-encryption renames the row, in an open transaction.
    const write = { table: 'PfeAccount', column: 'name', id, value: encryptStringSync('Renamed During Conversion', parseKeySync(k2)) };
    const report = await holdAppWrite(h.db.url, write, () =>
      convertPfe({ connection: conn, schema, keyring: keys.before, legacyKeys, model: 'PfeAccount', batchSize: 20, lockTimeoutMs: 60000, logger: silentLogger }),
    );
    expect(report).toMatchObject({ casMisses: 1, conflicts: 0, updated: 20, failedCount: 0, complete: true });
    const app = h.extend({}) as AnyClient;
    expect((await app.pfeAccount.findUnique({ where: { id } }))?.name).toBe('Renamed During Conversion');
    expect((await rawAccounts(conn)).every((r) => r.email.startsWith('pce:v1:d1:') && (r.name === null || r.name.startsWith('pce:v1:d1:')))).toBe(true);
  });

  test('the other commands never take an old value for plaintext, and convert-pfe touches only legacy fields', async () => {
    await writeWithPfe(4);
    const stored = await rawAccounts(conn);
    const existing = await encryptExisting({ connection: conn, schema, keyring: keys.before, model: 'PfeAccount', logger: silentLogger });
    expect(existing.updated).toBe(0);
    expect(existing.failedCount).toBe(10); // every old value of the 4 rows: 4 emails, 3 names, 3 phones
    expect(new Set(existing.failures.map((f) => f.reason))).toEqual(new Set(['legacy-format']));
    const rotated = await rotate({ connection: conn, schema, keyring: keys.after, model: 'PfeAccount', reindex: true, logger: silentLogger });
    expect(rotated).toMatchObject({ updated: 0, failedCount: 0 });
    expect(await rawAccounts(conn)).toEqual(stored);
    // Scoped to a model without legacy fields, it refuses rather than reporting success.
    await expect(convertPfe({ connection: conn, schema, keyring: keys.before, legacyKeys, model: 'User', logger: silentLogger })).rejects.toThrow(/no field in scope is marked legacy: pfe/);
  });
});
