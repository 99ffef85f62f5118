import { status } from '@grpc/grpc-js';
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import { wrapperLookup, entryBytes } from '../../src/keys/entryBytes';
import { parseKeyringDocument, type KeyringDocument } from '../../src/keys/keyringFile';
import { loadKeyring } from '../../src/keys/loadKeyring';
import { retryPolicy } from '../../src/keys/retry';
import { createHarness, sharedKeyFields, type Harness } from '../support/clients';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, KMS_RETRY, gcpWrapper, tempDir } from './support';

const SCHEMA = join(__dirname, '..', '..', 'prisma', 'postgres', 'schema.prisma');

/**
 * A secret never reaches the audit log, the CLI's output or an error, even at trace level: key
 * loading (with retries and a failure), every CLI command in human and JSON form, queries, a
 * refused query and a decryption failure all write into captured streams, which are then
 * searched for every key, wrapped key (current and replaced) and plaintext used.
 */
describe('audit log, CLI output and errors never contain secrets', () => {
  let kms: FakeKms;
  let h: Harness | undefined;
  const dir = tempDir();
  const file = dir.file('keyring.json');
  const log = captureLogger();
  const errors: unknown[] = [];
  const stdout: string[] = [];
  /** Every version of the keyring file, so wrapped keys replaced by a re-wrap are searched too. */
  const versions: KeyringDocument[] = [];
  const plaintexts = ['grace.hopper@example.org', 'Grace Brewster Hopper', '+1 202 555 0143', 'Arlington, Virginia'];

  beforeAll(async () => {
    kms = await FakeKms.start();
  });
  afterAll(async () => {
    await h?.close();
    await kms.close();
    dir.remove();
  });

  const snapshot = () => versions.push(parseKeyringDocument(JSON.parse(readFileSync(file, 'utf8')), file));

  /** Runs a command as text; commands that leave the file unchanged (`both`) run again with --json. */
  async function cli(args: string[], both = false): Promise<void> {
    for (const json of both ? [false, true] : [false]) {
      const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined });
      registerKeyCommands(program, {
        env: { PCE_KEYRING_FILE: file, ...(h ? { DATABASE_URL: h.db.url } : {}) },
        write: (t) => void stdout.push(t),
        logger: log.logger,
        gcpKms: { clientOptions: kms.clientOptions() },
        retry: KMS_RETRY,
      });
      await program.parseAsync(['node', 'x', ...args, ...(json ? ['--json'] : [])]).catch((e: unknown) => void errors.push(e));
    }
    snapshot();
  }

  test('keys, wrapped keys and plaintext appear nowhere in log lines, output or errors (with their causes)', async () => {
    const kmsKey = kms.createKey('app', 'audit');
    await cli(['keys', 'generate', '--purpose', 'data', '--local', '--id', 'd0']);
    await cli(['keys', 'generate', '--purpose', 'index', '--kms-key', kmsKey, '--id', 'i1']);
    const load = (more = {}) => loadKeyring({ file, logger: log.logger, gcpKms: { clientOptions: kms.clientOptions() }, retry: KMS_RETRY, ...more });
    // Data and index keys only: the app uses the shared-key models.
    h = await createHarness('postgres', { keys: await load(), logger: log.logger, fields: sharedKeyFields('postgres') });
    const user = await h.prisma.user.create({ data: { email: plaintexts[0]!, name: plaintexts[1]!, phone: plaintexts[2]! } });
    await h.prisma.profile.create({ data: { userId: user.id, birthDate: '1906-12-09', birthPlace: plaintexts[3]! } });

    await cli(['keys', 'generate', '--purpose', 'data', '--kms-key', kmsKey, '--id', 'd1', '--primary']);
    await cli(['keys', 'list'], true);
    await cli(['keys', 'promote', 'd1']);
    await cli(['keys', 'retire', 'd0', '--schema', SCHEMA], true); // refused: the database still has d0 values
    kms.rotate(kmsKey);
    kms.failNext(1, status.UNAVAILABLE, 'encrypt');
    await cli(['keys', 'rewrap']);
    kms.deny(kmsKey);
    await cli(['keys', 'rewrap'], true); // fails: permission denied
    kms.reset();

    kms.failNext(2, status.UNAVAILABLE, 'decrypt');
    const keyring = await load();
    kms.deny(kmsKey);
    await load().catch((e: unknown) => void errors.push(e));
    kms.reset();
    // Even an application that logs the keyring object itself only shows ids and fingerprints.
    log.logger.trace({ keyring }, 'application logs its keyring');

    const app = h.extend({ keys: keyring, logger: log.logger });
    await app.user.findMany({ where: { email: plaintexts[0]! }, include: { profile: true } });
    await app.user.findMany({ where: { name: { contains: 'Grace' } } }).catch((e: unknown) => void errors.push(e));
    // Always a different character: writing 'A' over an 'A' (1 in 64) would tamper with nothing.
    await h.sql(
      `UPDATE "User" SET name = overlay(name placing CASE WHEN substr(name, length(name) - 2, 1) = 'A' THEN 'B' ELSE 'A' END from length(name) - 2 for 1) WHERE id = $1`,
      [user.id],
    );
    await app.user.findUnique({ where: { id: user.id } }).catch((e: unknown) => void errors.push(e));

    // The run did produce the events and failures whose contents are checked.
    const names = new Set(log.events().map((e) => e.event));
    for (const event of [
      'pce.key.generated',
      'pce.key.primary_changed',
      'pce.key.retire_refused',
      'pce.kms.retry',
      'pce.key.rewrapped',
      'pce.keys.unwrapped',
      'pce.keys.local_in_keyring',
      'pce.kms.failed',
      'pce.query.crypto',
      'pce.query.refused',
      'pce.decrypt.failed',
    ]) {
      expect(names).toContain(event);
    }
    // Retire refused and rewrap denied (text and JSON each), load denied, refused query, decrypt failure.
    expect(errors).toHaveLength(7);
    expect(stdout.join('')).toContain('"values": 5'); // User.email, name, phone and Profile.birthDate, birthPlace under d0
    expect(stdout.join('')).toContain('"failure": "permission-denied"');

    // Every secret of the run, in each encoding it could leak in.
    const wrapper = gcpWrapper(kms);
    const secrets: string[] = [...plaintexts];
    const wrappedKeys = new Set(versions.flatMap((v) => v.keys.flatMap((k) => ('wrappedKey' in k ? [k.wrappedKey] : []))));
    expect(wrappedKeys.size).toBe(4); // i1 and d1, before and after the re-wrap
    for (const w of wrappedKeys) secrets.push(w, w.slice(0, 24));
    for (const entry of versions.at(-1)!.keys) {
      const bytes = await entryBytes(entry, { wrappers: wrapperLookup({ 'gcp-kms': wrapper }), retry: retryPolicy() });
      secrets.push(bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('latin1'));
      secrets.push(bytes.subarray(0, 12).toString('base64'), bytes.subarray(0, 12).toString('hex'));
    }
    await wrapper.close();

    // Errors as an application would log them: pino's serializer follows `cause` chains.
    const errorLog: string[] = [];
    const errorLogger = pino({ level: 'trace' }, { write: (s: string) => void errorLog.push(s) });
    for (const e of errors) errorLogger.error({ err: e }, 'failed');
    expect(errorLog.join('')).toContain('caused by: Error: 7 PERMISSION_DENIED');

    const haystack = [log.text(), stdout.join(''), errorLog.join(''), ...errors.map((e) => String((e as Error).stack))].join('\n');
    for (const s of secrets) expect(haystack).not.toContain(s);
    // Ciphertext and blind indexes stay out of it too (they are derived from secrets).
    const [raw] = await h.sql<{ email: string; emailIndex: string }>(`SELECT email, "emailIndex" FROM "User" WHERE id = $1`, [user.id]);
    expect(haystack).not.toContain(raw!.email.split(':')[4]!);
    expect(haystack).not.toContain(raw!.emailIndex.split(':')[1]!);
  });
});
