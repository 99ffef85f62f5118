import { status } from '@grpc/grpc-js';
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import { wrapperLookup, entryBytes } from '../../src/keys/entryBytes';
import { parseKeyringDocument } from '../../src/keys/keyringFile';
import { loadKeyring } from '../../src/keys/loadKeyring';
import { retryPolicy } from '../../src/keys/retry';
import { createHarness, type Harness } from '../support/clients';
import { FakeKms } from '../kms/fakeKms';
import { captureLogger, FAST_RETRY, gcpWrapper, tempDir } from './support';

/**
 * A secret never reaches the audit log, even at trace level: key loading (with retries and a
 * failure), every CLI command, queries, a refused query and a decryption failure all log into
 * one captured stream, which is then searched for every key, wrapped key and plaintext used.
 */
describe('audit log never contains secrets', () => {
  let kms: FakeKms;
  let h: Harness;
  const dir = tempDir();
  const file = dir.file('keyring.json');
  const log = captureLogger();
  const errors: string[] = [];
  const plaintexts = ['grace.hopper@example.org', 'Grace Brewster Hopper', '+1 202 555 0143', 'Arlington, Virginia'];

  beforeAll(async () => {
    kms = await FakeKms.start();
  });
  afterAll(async () => {
    await h?.close();
    await kms.close();
    dir.remove();
  });

  async function cli(...args: string[]): Promise<void> {
    const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined });
    registerKeyCommands(program, {
      env: { PCE_KEYRING_FILE: file },
      write: () => undefined,
      logger: log.logger,
      gcpKms: { clientOptions: kms.clientOptions() },
      retry: FAST_RETRY,
      countUsage: async () => [{ model: 'User', field: 'email', byKey: { d0: 1 }, indexByKey: {} }],
    });
    await program.parseAsync(['node', 'x', ...args]).catch((e: Error) => void errors.push(e.message));
  }

  test('keys, wrapped keys and plaintext appear nowhere in log lines or error messages', async () => {
    const kmsKey = kms.createKey('app', 'audit');
    await cli('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd0');
    await cli('keys', 'generate', '--purpose', 'data', '--kms-key', kmsKey, '--id', 'd1', '--primary');
    await cli('keys', 'generate', '--purpose', 'index', '--kms-key', kmsKey, '--id', 'i1');
    await cli('keys', 'list');
    await cli('keys', 'promote', 'd1');
    await cli('keys', 'retire', 'd0'); // refused: still in use
    kms.rotate(kmsKey);
    kms.failNext(1, status.UNAVAILABLE, 'encrypt');
    await cli('keys', 'rewrap');

    const load = (more = {}) => loadKeyring({ file, logger: log.logger, gcpKms: { clientOptions: kms.clientOptions() }, retry: FAST_RETRY, ...more });
    kms.failNext(2, status.UNAVAILABLE, 'decrypt');
    const keyring = await load();
    kms.deny(kmsKey);
    await load().catch((e: Error) => void errors.push(e.message));
    kms.reset();
    // Even an application that logs the keyring object itself only shows ids and fingerprints.
    log.logger.trace({ keyring }, 'application logs its keyring');

    h = await createHarness('postgres', { keys: keyring, logger: log.logger });
    const user = await h.prisma.user.create({ data: { email: plaintexts[0]!, name: plaintexts[1]!, phone: plaintexts[2]! } });
    await h.prisma.profile.create({ data: { userId: user.id, birthDate: '1906-12-09', birthPlace: plaintexts[3]! } });
    await h.prisma.user.findMany({ where: { email: plaintexts[0]! }, include: { profile: true } });
    await h.prisma.user.findMany({ where: { name: { contains: 'Grace' } } }).catch((e: Error) => void errors.push(e.message));
    await h.sql(`UPDATE "User" SET name = overlay(name placing 'A' from length(name) - 2 for 1) WHERE id = $1`, [user.id]);
    await h.prisma.user.findUnique({ where: { id: user.id } }).catch((e: Error) => void errors.push(e.message));

    // The run did produce the events whose contents we check.
    const names = new Set(log.events().map((e) => e.event));
    for (const event of ['pce.key.generated', 'pce.key.primary_changed', 'pce.key.retire_refused', 'pce.kms.retry', 'pce.key.rewrapped', 'pce.keys.unwrapped', 'pce.kms.failed', 'pce.keys.loaded', 'pce.query.crypto', 'pce.query.refused', 'pce.decrypt.failed']) {
      expect(names).toContain(event);
    }
    expect(errors).toHaveLength(4);

    // Every secret of the run, in each encoding it could leak in.
    const doc = parseKeyringDocument(JSON.parse(readFileSync(file, 'utf8')), file);
    const wrapper = gcpWrapper(kms);
    const secrets: string[] = [...plaintexts];
    for (const entry of doc.keys) {
      const bytes = await entryBytes(entry, { wrappers: wrapperLookup({ 'gcp-kms': wrapper }), retry: retryPolicy() });
      secrets.push(bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('latin1'));
      secrets.push(bytes.subarray(0, 12).toString('base64'), bytes.subarray(0, 12).toString('hex'));
      if ('wrappedKey' in entry) secrets.push(entry.wrappedKey, entry.wrappedKey.slice(0, 24));
    }
    await wrapper.close();
    const haystack = `${log.text()}\n${errors.join('\n')}`;
    for (const s of secrets) expect(haystack).not.toContain(s);
    // Ciphertext and blind indexes stay out of the log too (they are derived from secrets).
    const [raw] = await h.sql<{ email: string; emailIndex: string }>(`SELECT email, "emailIndex" FROM "User" WHERE id = $1`, [user.id]);
    expect(haystack).not.toContain(raw!.email.split(':')[4]!);
    expect(haystack).not.toContain(raw!.emailIndex.split(':')[1]!);
  });
});
