import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { encryptedFields as pgFields } from '../../generated/postgres/encryption';
import { encryptedFields as myFields } from '../../generated/mysql/encryption';
import { keyringFromDocument, localKeys, parseKeyringDocument, type EncryptionSchema, type Keyring } from '../../src';
import { FieldCodec } from '../../src/codec/fieldCodec';
import { CHECKPOINT_TABLE } from '../../src/migrate/checkpoint';
import type { SqlConnection } from '../../src/migrate/connection';
import { openConnection } from '../../src/migrate/openConnection';
import { createHarness, sharedKeyFields, type Harness } from '../support/clients';
import type { Provider } from '../support/databases';
import { randomKey } from '../support/keys';

export const ROOT = join(__dirname, '..', '..');

/** One set of key material, seen through the keyring before and after a rotation. */
export interface Rotation {
  /** d1 / i1 only: what the application used before. */
  readonly before: Keyring;
  /** d2 and i2 primary, d1 and i1 still readable. */
  readonly after: Keyring;
  /** Both keys of each kind with the old ones still primary: an application instance not yet promoted. */
  readonly oldPrimary: Keyring;
  /** Environment for the CLI with the `after` keyring. */
  readonly env: Record<string, string>;
  /**
   * The same four keys from a keyring document, as `keys generate` writes it: d1 and i1 created
   * first, d2 and i2 a month later; `primary` says which pair is primary (the other stays active).
   */
  dated(primary: 'old' | 'new'): Promise<Keyring>;
  /** Environment for the CLI with the `before` keyring. */
  readonly envBefore: Record<string, string>;
}

export function rotation(): Rotation {
  const [d1, d2, i1, i2] = [randomKey(), randomKey(), randomKey(), randomKey()];
  return {
    before: localKeys({ data: [{ id: 'd1', key: d1 }], index: [{ id: 'i1', key: i1 }] }),
    after: localKeys({ data: [{ id: 'd2', key: d2 }, { id: 'd1', key: d1 }], index: [{ id: 'i2', key: i2 }, { id: 'i1', key: i1 }] }),
    oldPrimary: localKeys({ data: [{ id: 'd1', key: d1 }, { id: 'd2', key: d2 }], index: [{ id: 'i1', key: i1 }, { id: 'i2', key: i2 }] }),
    env: { PCE_DATA_KEYS: `d2:${d2},d1:${d1}`, PCE_INDEX_KEYS: `i2:${i2},i1:${i1}` },
    envBefore: { PCE_DATA_KEYS: `d1:${d1}`, PCE_INDEX_KEYS: `i1:${i1}` },
    dated: (primary) => {
      const entry = (id: string, purpose: string, key: string, isNew: boolean) => ({
        id,
        purpose,
        status: isNew === (primary === 'new') ? 'primary' : 'active',
        source: 'local',
        key,
        createdAt: isNew ? '2026-02-01T00:00:00.000Z' : '2026-01-01T00:00:00.000Z',
      });
      const doc = { format: 'prisma-column-encryption/keyring', version: 1, keys: [entry('d1', 'data', d1, false), entry('i1', 'index', i1, false), entry('d2', 'data', d2, true), entry('i2', 'index', i2, true)] };
      return keyringFromDocument(parseKeyringDocument(doc, 'test'));
    },
  };
}

export function schemaFor(provider: Provider): EncryptionSchema {
  return (provider === 'postgres' ? pgFields : myFields) as unknown as EncryptionSchema;
}

export function schemaPath(provider: Provider): string {
  return join(ROOT, 'prisma', provider, 'schema.prisma');
}

export function connect(url: string): Promise<SqlConnection> {
  return openConnection(url);
}

/** What each migrator test starts from: fresh keys, a fresh database with its harness, and a raw connection. */
export interface MigrationFixture {
  readonly h: Harness;
  readonly conn: SqlConnection;
  readonly keys: Rotation;
}

/** Opens a fixture whose extended client uses the `before` (default) or `after` keyring. */
export async function openFixture(provider: Provider, appKeys: 'before' | 'after' = 'before'): Promise<MigrationFixture> {
  const keys = rotation();
  // The app touches shared-key models only, and these keyrings have no wrap key (subject models would need one).
  const h = await createHarness(provider, { keys: keys[appKeys], fields: sharedKeyFields(provider) });
  return { h, conn: await connect(h.db.url), keys };
}

/** Closes what {@link openFixture} opened; tolerates a fixture that failed half way. */
export async function closeFixture(fixture: { readonly h?: Harness; readonly conn?: SqlConnection }): Promise<void> {
  await fixture.conn?.close();
  await fixture.h?.close();
}

/** A one-shot signal between a test and a transaction it holds open: `fire()` resolves `fired`. */
export function signal(): { readonly fired: Promise<void>; readonly fire: () => void } {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fired, fire };
}

/** A codec for a field of the test schema, to write stored values directly with SQL. */
export function codec(provider: Provider, keyring: Keyring, model: string, field: string): FieldCodec {
  const spec = schemaFor(provider).models[model]!.encrypted[field]!;
  return new FieldCodec(model, field, spec, keyring, () => undefined);
}

export const userId = (i: number) => `u${String(i).padStart(5, '0')}`;
export const emailOf = (i: number) => `user${i}@example.org`;
export const nameOf = (i: number) => `Name ${i}`;

/**
 * Inserts `n` users encrypted under `keyring`, with raw SQL for speed. Every third user has no
 * name, so nulls are covered.
 */
export async function seedUsers(conn: SqlConnection, provider: Provider, keyring: Keyring, n: number, from = 0): Promise<void> {
  const email = codec(provider, keyring, 'User', 'email');
  const name = codec(provider, keyring, 'User', 'name');
  const q = conn.quote;
  for (let start = from; start < from + n; start += 200) {
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (let i = start; i < Math.min(from + n, start + 200); i++) {
      const cells = [userId(i), email.encrypt(emailOf(i)), email.indexForWrite(emailOf(i)), i % 3 === 0 ? null : name.encrypt(nameOf(i))];
      tuples.push(`(${cells.map((c) => conn.placeholder(values.push(c))).join(', ')})`);
    }
    await conn.execute(`INSERT INTO ${q('User')} (${['id', 'email', 'emailIndex', 'name'].map(q).join(', ')}) VALUES ${tuples.join(', ')}`, values);
  }
}

export interface RawUser {
  id: string;
  email: string;
  emailIndex: string | null;
  name: string | null;
}

export async function rawUsers(conn: SqlConnection): Promise<RawUser[]> {
  const q = conn.quote;
  return conn.query<RawUser & Record<string, unknown>>(`SELECT ${['id', 'email', 'emailIndex', 'name'].map(q).join(', ')} FROM ${q('User')} ORDER BY ${q('id')}`);
}

/** Checks every stored user decrypts (with `keyring`) to what was seeded and its index matches. */
export function expectUsersIntact(provider: Provider, keyring: Keyring, rows: readonly RawUser[], n: number, expectedName: (i: number) => string | null = (i) => (i % 3 === 0 ? null : nameOf(i))): void {
  const email = codec(provider, keyring, 'User', 'email');
  const name = codec(provider, keyring, 'User', 'name');
  expect(rows).toHaveLength(n);
  rows.forEach((row, i) => {
    expect(row.id).toBe(userId(i));
    const plain = email.decrypt(row.email);
    expect(plain).toBe(emailOf(i));
    expect(email.indexesForLookup(plain)).toContain(row.emailIndex);
    expect(row.name === null ? null : name.decrypt(row.name)).toBe(expectedName(i));
  });
}

/** A pino logger that keeps its JSON lines, to assert on audit events. */
export function capturingLogger(): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  const text = () => chunks.join('');
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts the built CLI (dist/, built by `npm test`'s pretest) as a real child process. */
export function startCli(args: readonly string[], env: Record<string, string>): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', PCE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += String(d)));
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function runCli(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  return startCli(args, env).done;
}

/** True when some session of this database waits for a row lock (InnoDB's view refreshes after 0.1 s idle: callers poll slower on MySQL). */
export async function someoneWaitsForALock(conn: SqlConnection): Promise<boolean> {
  const sql =
    conn.dialect === 'postgres'
      ? `SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
      : `SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
         WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()`;
  return Number((await conn.query<{ n: unknown }>(sql))[0]!.n) > 0;
}

/** Waits until some session of this database waits for a row lock (one the test holds). */
export async function waitForLockWait(conn: SqlConnection, timeoutMs = 20000): Promise<void> {
  const interval = conn.dialect === 'postgres' ? 10 : 150;
  for (let waited = 0; waited < timeoutMs; waited += interval) {
    if (await someoneWaitsForALock(conn)) return;
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error('nobody waited for the row lock');
}

/**
 * An application write racing the migrator: an open transaction sets `column` of one row of
 * `table` to `value` (stored text, as the application would write it) and holds the row lock
 * while `migrate` starts; once the migrator waits for that lock, the write commits. Returns what
 * `migrate` returned.
 */
export async function holdAppWrite<T>(
  url: string,
  write: { readonly table: string; readonly column: string; readonly id: string | number; readonly value: string },
  migrate: () => Promise<T>,
): Promise<T> {
  const writer = await connect(url);
  // The migrator's connection is busy while it waits, so lock waits are watched from a third one.
  const probe = await connect(url);
  const released = signal();
  try {
    const rowLocked = signal();
    const appWrite = writer.transaction(async (tx) => {
      await tx.execute(`UPDATE ${tx.quote(write.table)} SET ${tx.quote(write.column)} = ${tx.placeholder(1)} WHERE ${tx.quote('id')} = ${tx.placeholder(2)}`, [write.value, write.id]);
      rowLocked.fire();
      await released.fired;
    });
    await rowLocked.fired;
    const run = migrate();
    // The migrator has read the row's old value and now waits for the row lock; commit the app's write.
    await waitForLockWait(probe);
    released.fire();
    await appWrite;
    return await run;
  } finally {
    released.fire(); // never leave the writer's transaction open when a step above failed
    await writer.close();
    await probe.close();
  }
}

/**
 * Holds a row lock on one User row (an open transaction that updates it) until `release` is
 * called; the transaction is then rolled back.
 */
export async function holdUserRowLock(url: string, id: string): Promise<{ release: () => Promise<void> }> {
  const locker = await openConnection(url);
  const unlocked = signal();
  const locked = signal();
  const hold = locker
    .transaction(async (tx) => {
      await tx.execute(`UPDATE ${tx.quote('User')} SET ${tx.quote('karma')} = ${tx.quote('karma')} + 1 WHERE ${tx.quote('id')} = ${tx.placeholder(1)}`, [id]);
      locked.fire();
      await unlocked.fired;
      throw new Error('roll back the test lock');
    })
    .catch(() => undefined);
  await locked.fired;
  return {
    release: async () => {
      unlocked.fire();
      await hold;
      await locker.close();
    },
  };
}

/** Chunks the checkpoint table marks done, across jobs (0 before the table exists). */
export async function doneChunks(conn: SqlConnection): Promise<number> {
  try {
    const [r] = await conn.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${conn.quote(CHECKPOINT_TABLE)} WHERE chunk > 0 AND state = 'done'`);
    return Number(r!.n);
  } catch {
    return 0; // not created yet
  }
}

/** Polls `check` until it holds, or fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 45000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}
