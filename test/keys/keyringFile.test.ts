import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { emptyKeyring, readKeyringFile, writeKeyringFile, type KeyringDocument } from '../../src/keys/keyringFile';
import { withKeyringLock } from '../../src/keys/keyringLock';
import { tempDir } from './support';

const DIST_LOCK = join(__dirname, '..', '..', 'dist', 'keys', 'keyringLock.js');

const doc = (id: string): KeyringDocument => ({
  ...emptyKeyring(),
  keys: [{ id, purpose: 'data', status: 'primary', source: 'local', key: 'A'.repeat(43) + '=', createdAt: '2026-01-01T00:00:00.000Z' }],
});

/** Writing and locking the keyring file: crash safety, ownership, stale and live locks. */
describe('keyring file writes', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  test('a new file is owner-only; rewriting keeps the mode, owner and group the file had', async () => {
    const file = dir.file('modes.json');
    await writeKeyringFile(file, doc('d1'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // An administrator let the application's group read it.
    chmodSync(file, 0o640);
    if (process.getuid?.() === 0) chownSync(file, 1234, 4321);
    await writeKeyringFile(file, doc('d2'));
    const after = statSync(file);
    expect(after.mode & 0o777).toBe(0o640);
    if (process.getuid?.() === 0) expect([after.uid, after.gid]).toEqual([1234, 4321]);
    expect((await readKeyringFile(file)).keys[0]!.id).toBe('d2');
  });

  test('a failed write leaves the old file and no temporary copy of the keys behind', async () => {
    const sub = join(dir.path, 'failing');
    mkdirSync(sub);
    // The target is a non-empty folder: the final rename fails.
    const target = join(sub, 'keyring.json');
    mkdirSync(target);
    writeFileSync(join(target, 'x'), '');
    await expect(writeKeyringFile(target, doc('d1'))).rejects.toThrow(`cannot write keyring file ${target}: `);
    expect(readdirSync(sub)).toEqual(['keyring.json']);
  });
});

describe('keyring lock', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());
  const file = dir.file('ring.json');
  const lock = `${file}.lock`;

  test('the lock records pid, host and start time and is removed afterwards', async () => {
    const seen = await withKeyringLock(file, async () => JSON.parse(readFileSync(lock, 'utf8')) as Record<string, unknown>);
    expect(seen).toEqual({ pid: process.pid, hostname: hostname(), startedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(existsSync(lock)).toBe(false);
  });

  test('a live lock is refused, saying who holds it and for how long', async () => {
    const since = new Date(Date.now() - 5 * 60_000).toISOString();
    writeFileSync(lock, JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: since }));
    try {
      await expect(withKeyringLock(file, async () => 'ran')).rejects.toThrow(
        `keyring file ${file} is locked by another run (${lock}: pid ${process.pid} on ${hostname()} since ${since}, 5 min ago); if no other run is active, delete the lock file`,
      );
    } finally {
      rmSync(lock, { force: true });
    }
  });

  test('a lock left by a process that is gone (same host) is taken over', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(lock, JSON.stringify({ pid: dead, hostname: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
    await expect(withKeyringLock(file, async () => 'ran')).resolves.toBe('ran');
    expect(existsSync(lock)).toBe(false);
  });

  test('a lock from another host, or of unknown form, is never judged stale', async () => {
    writeFileSync(lock, JSON.stringify({ pid: 999999, hostname: 'build-7', startedAt: '2026-01-01T00:00:00.000Z' }));
    await expect(withKeyringLock(file, async () => 'ran')).rejects.toThrow(/pid 999999 on build-7 since .*; if that run on build-7 has ended, delete the lock file$/);
    writeFileSync(lock, '12345\n');
    await expect(withKeyringLock(file, async () => 'ran')).rejects.toThrow(`is locked by another run (${lock}); if no other run is active, delete the lock file`);
    rmSync(lock, { force: true });
  });

  test('SIGTERM while the lock is held removes the lock, and the process still ends by the signal', async () => {
    if (!existsSync(DIST_LOCK)) throw new Error('dist/ is missing: run `npm run build`');
    const held = dir.file('held.json');
    const script = `require(${JSON.stringify(DIST_LOCK)}).withKeyringLock(${JSON.stringify(held)}, () => { process.stdout.write('locked\\n'); return new Promise(() => setInterval(() => undefined, 1000)); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      child.on('exit', () => reject(new Error('child ended before taking the lock')));
    });
    expect(existsSync(`${held}.lock`)).toBe(true);
    const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGTERM');
    expect(await ended).toBe('SIGTERM');
    expect(existsSync(`${held}.lock`)).toBe(false);
  });
});
