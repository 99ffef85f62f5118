import { unlinkSync } from 'node:fs';
import { open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { KeyringError } from '../errors';

/** Who holds a keyring lock; written into `<keyring>.lock` as JSON. */
export interface LockOwner {
  readonly pid: number;
  readonly hostname: string;
  /** ISO time the lock was taken. */
  readonly startedAt: string;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs a read-modify-write of the keyring file while holding `<path>.lock`, so two runs cannot
 * overwrite each other's change.
 *
 * The lock records pid, host and start time. A lock whose process is gone (same host, pid no
 * longer running) is removed and taken over; any other lock is refused with who holds it and for
 * how long. While it is held, an interrupt (Ctrl-C, SIGTERM, SIGHUP) removes the lock before the
 * process ends, since `finally` blocks do not run then.
 */
export async function withKeyringLock<T>(path: string, fn: () => Promise<T>, now: () => Date = () => new Date()): Promise<T> {
  const lock = `${path}.lock`;
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), startedAt: now().toISOString() };
  await acquire(path, lock, owner, now);
  const release = () => {
    try {
      unlinkSync(lock);
    } catch {
      // Already gone.
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    release();
    for (const s of SIGNALS) process.off(s, onSignal);
    // Nobody else handles the signal: end the process as the signal would have.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  try {
    return await fn();
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
    await unlink(lock).catch(() => undefined);
  }
}

async function acquire(path: string, lock: string, owner: LockOwner, now: () => Date): Promise<void> {
  // Two tries: the second after removing a lock whose owner is gone.
  for (let attempt = 1; ; attempt++) {
    let handle: FileHandle | undefined;
    try {
      handle = await open(lock, 'wx', 0o600);
      await handle.writeFile(`${JSON.stringify(owner)}\n`);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (handle) {
        // The lock file exists but could not be written: it is ours, remove it.
        await handle.close().catch(() => undefined);
        handle = undefined;
        await unlink(lock).catch(() => undefined);
        throw new KeyringError(undefined, `cannot write lock file ${lock}: ${code ?? 'error'}`, { cause: error });
      }
      if (code !== 'EEXIST') {
        throw new KeyringError(undefined, `cannot lock keyring file ${path}: ${code ?? 'error'} (does its folder exist?)`, { cause: error });
      }
      const text = await readFile(lock, 'utf8').catch(() => undefined);
      const held = text === undefined ? undefined : parseOwner(text);
      if (attempt === 1 && text !== undefined && held && isStale(held)) {
        // Remove it only if it is still the same dead owner's lock (another run may have just done the same).
        const again = await readFile(lock, 'utf8').catch(() => undefined);
        if (again === text) await unlink(lock).catch(() => undefined);
        continue;
      }
      if (text === undefined && attempt === 1) continue; // released between open and read
      throw new KeyringError(undefined, `keyring file ${path} is locked by another run (${lock}${describeOwner(held, now())}); ${advice(held)}`);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isInteger(v.pid) && typeof v.hostname === 'string' && typeof v.startedAt === 'string') return v as LockOwner;
  } catch {
    // A lock from an older release (a bare pid) or a hand-made one.
  }
  return undefined;
}

/** Stale: taken on this host by a process that no longer runs. Locks from other hosts are never judged. */
function isStale(owner: LockOwner): boolean {
  if (owner.hostname !== hostname()) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function describeOwner(owner: LockOwner | undefined, at: Date): string {
  if (!owner) return '';
  const age = Math.max(0, Math.round((at.getTime() - Date.parse(owner.startedAt)) / 1000));
  return `: pid ${owner.pid} on ${owner.hostname} since ${owner.startedAt}, ${age < 120 ? `${age} s` : `${Math.round(age / 60)} min`} ago`;
}

function advice(owner: LockOwner | undefined): string {
  if (owner && owner.hostname !== hostname()) return `if that run on ${owner.hostname} has ended, delete the lock file`;
  return 'if no other run is active, delete the lock file';
}
