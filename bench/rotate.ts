/*
 * `npm run bench:rotate [-- --rows 1000000] [--batch-size 1000] [--concurrency 2] [--threads 2] [--processes 1]`: rotation throughput next to raw
 * SQL, in one run, on the embedded PostgreSQL (or DATABASE_URL: postgresql:// or mysql://).
 *
 * It seeds N rows of two encrypted fields (one with a blind index) under d1/i1, then times:
 *   1. raw SQL, one statement: an `UPDATE` rewriting the same three columns of every row
 *      server-side (no crypto, no round trips): the database's own ceiling;
 *   1b. raw SQL, client batches: the same rows read and rewritten in keyset batches from the
 *      client with one UPDATE per batch, as a migration script without crypto would;
 *   2. rotate: the migrator re-encrypting every row under d2/i2 (decrypt 2 values, encrypt 2,
 *      1 HMAC, compare-and-set, checkpoint per batch), in a child process whose peak RSS is the
 *      migrator's own. It runs twice, on node:crypto (PCE_CRYPTO_BACKEND=node) and then on the
 *      native backend, the second rotating the same rows on to d3/i3, so both figures come from one run.
 * `--processes N` runs N migrator processes at once on the same job (how the migrator scales out:
 * they share its chunks through the database), each with `--concurrency` connections.
 * Where the database runs on this machine, each phase also reports the server's CPU time (bench/support/databaseCpu.ts).
 * BENCH_STATEMENTS=1 prints the time spent in each kind of statement; BENCH_CPU_PROF=<dir> writes a
 * V8 CPU profile of the native run's migrator process there.
 * Durability is relaxed the same way for both (synchronous_commit off on PostgreSQL).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import pino from 'pino';
// The built package (rebuilt by the prebench:rotate step): what users install, worker threads included.
import { FieldCodec } from '../dist/codec/fieldCodec';
import { cryptoBackend, localKeys, openConnection, rotate, type EncryptionSchema, type Keyring, type SqlConnection } from '../dist';
import { startEmbeddedPostgres } from '../test/support/embeddedPostgres';
import { databaseCpu } from './support/databaseCpu';

const TABLE = 'bench_secret';

function schemaFor(provider: string): EncryptionSchema {
  return {
    version: 1,
    provider,
    models: {
      Secret: {
        dbName: TABLE,
        primaryKey: ['id'],
        scalarFields: ['id', 'email', 'emailIndex', 'note'],
        columns: { emailIndex: 'email_index' },
        encrypted: { email: { index: 'emailIndex', normalize: ['trim', 'lowercase'], readMode: 'strict' }, note: { readMode: 'strict' } },
        relations: {},
        compoundUniques: {},
      },
    },
  };
}

interface Keys {
  readonly d1: string;
  readonly d2: string;
  readonly d3: string;
  readonly i1: string;
  readonly i2: string;
  readonly i3: string;
}

const before = (k: Keys) => localKeys({ data: [{ id: 'd1', key: k.d1 }], index: [{ id: 'i1', key: k.i1 }] });
/** The keyring of rotation `step`: 1 moves d1/i1 rows on to d2/i2, 2 moves them on again to d3/i3. */
const after = (k: Keys, step: number) =>
  step === 1
    ? localKeys({ data: [{ id: 'd2', key: k.d2 }, { id: 'd1', key: k.d1 }], index: [{ id: 'i2', key: k.i2 }, { id: 'i1', key: k.i1 }] })
    : localKeys({
        data: [{ id: 'd3', key: k.d3 }, { id: 'd2', key: k.d2 }, { id: 'd1', key: k.d1 }],
        index: [{ id: 'i3', key: k.i3 }, { id: 'i2', key: k.i2 }, { id: 'i1', key: k.i1 }],
      });

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function createBenchDatabase(adminUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `pce_bench_rotate_${randomBytes(4).toString('hex')}`;
  const admin = await openConnection(adminUrl);
  await admin.execute(`CREATE DATABASE ${admin.quote(name)}`);
  await admin.close();
  return {
    url: withDatabase(adminUrl, name),
    async drop() {
      const a = await openConnection(adminUrl);
      await a.execute(`DROP DATABASE IF EXISTS ${a.quote(name)}${a.dialect === 'postgres' ? ' WITH (FORCE)' : ''}`);
      await a.close();
    },
  };
}

async function seed(conn: SqlConnection, keyring: Keyring, schema: EncryptionSchema, rows: number): Promise<void> {
  const q = conn.quote;
  await conn.execute(`CREATE TABLE ${q(TABLE)} (${q('id')} BIGINT NOT NULL PRIMARY KEY, ${q('email')} TEXT NOT NULL, ${q('email_index')} VARCHAR(100), ${q('note')} TEXT)`);
  const spec = schema.models.Secret!.encrypted;
  const email = new FieldCodec('Secret', 'email', spec.email!, keyring, () => undefined);
  const note = new FieldCodec('Secret', 'note', spec.note!, keyring, () => undefined);
  const chunk = 2000;
  for (let start = 0; start < rows; start += chunk) {
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (let i = start; i < Math.min(rows, start + chunk); i++) {
      const e = `Person${i}@Example.org`;
      const cells = [i, email.encrypt(e), email.indexForWrite(e), note.encrypt(`Born ${1950 + (i % 60)}-0${1 + (i % 9)}-1${i % 10}, notes on reading ${i}`)];
      tuples.push(`(${cells.map((c) => conn.placeholder(values.push(c))).join(', ')})`);
    }
    await conn.execute(`INSERT INTO ${q(TABLE)} (${['id', 'email', 'email_index', 'note'].map(q).join(', ')}) VALUES ${tuples.join(', ')}`, values);
    if ((start / chunk) % 50 === 49) log(`  seeded ${start + chunk} rows`);
  }
}

async function settle(conn: SqlConnection): Promise<void> {
  if (conn.dialect === 'postgres') await conn.execute(`VACUUM ANALYZE ${conn.quote(TABLE)}`);
  else await conn.execute(`ANALYZE TABLE ${conn.quote(TABLE)}`);
}

/** One set-based UPDATE of the same three columns, with same-length new values (so every row is really rewritten). */
async function rawUpdate(conn: SqlConnection, dbCpu: DbCpu): Promise<Timed> {
  const q = conn.quote;
  const cols = ['email', 'email_index', 'note'].map((c) => `${q(c)} = REVERSE(${q(c)})`).join(', ');
  const cpu0 = dbCpu?.();
  const t0 = process.hrtime.bigint();
  const n = await conn.execute(`UPDATE ${q(TABLE)} SET ${cols}`);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const dbCpuSeconds = cpuSince(dbCpu, cpu0);
  // Reverse again so the rows are readable ciphertext for the rotation.
  await conn.execute(`UPDATE ${q(TABLE)} SET ${cols}`);
  return { rowsPerSecond: (n / ms) * 1000, dbCpuSeconds };
}

/** A database CPU sampler ({@link databaseCpu}), or undefined where the server's processes cannot be read. */
type DbCpu = (() => number) | undefined;

/** A timed phase: its rate, and the database's CPU seconds during it when they can be read. */
interface Timed {
  readonly rowsPerSecond: number;
  readonly dbCpuSeconds: number | undefined;
}

function cpuSince(dbCpu: DbCpu, start: number | undefined): number | undefined {
  return dbCpu && start !== undefined ? dbCpu() - start : undefined;
}

const dbCpuText = (s: number | undefined) => (s === undefined ? '' : `, database CPU ${s.toFixed(1)} s`);

/**
 * The same rows rewritten the way a hand-written migration script would, minus the crypto:
 * keyset batches of `batchSize` read by the client, new values (same length) written back with
 * one UPDATE per batch.
 */
async function batchedRawUpdate(conn: SqlConnection, batchSize: number, dbCpu: DbCpu): Promise<Timed> {
  const q = conn.quote;
  const cols = ['email', 'email_index', 'note'];
  let after: unknown;
  let total = 0;
  const cpu0 = dbCpu?.();
  const t0 = process.hrtime.bigint();
  for (;;) {
    const rows = await conn.query<Record<string, string>>(
      `SELECT ${['id', ...cols].map(q).join(', ')} FROM ${q(TABLE)}${after === undefined ? '' : ` WHERE ${q('id')} > ${conn.placeholder(1)}`} ORDER BY ${q('id')} LIMIT ${batchSize}`,
      after === undefined ? [] : [after],
    );
    if (rows.length === 0) break;
    const reversed = (v: string | null) => (v === null ? null : [...v].reverse().join(''));
    if (conn.dialect === 'postgres') {
      total += await conn.execute(
        `UPDATE ${q(TABLE)} AS t SET ${cols.map((c) => `${q(c)} = v.${c}`).join(', ')} ` +
          `FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS v(id, ${cols.join(', ')}) WHERE t.${q('id')} = v.id`,
        [rows.map((r) => r.id), ...cols.map((c) => rows.map((r) => reversed(r[c]!)))],
      );
    } else {
      const params: unknown[] = [];
      const selects = rows.map((r, i) => {
        params.push(r.id, ...cols.map((c) => reversed(r[c]!)));
        return i === 0 ? `SELECT ? AS id, ? AS email, ? AS email_index, ? AS note` : 'SELECT ?, ?, ?, ?';
      });
      total += await conn.execute(
        `UPDATE ${q(TABLE)} AS t JOIN (${selects.join(' UNION ALL ')}) AS v ON t.${q('id')} = v.id SET ${cols.map((c) => `t.${q(c)} = v.${c}`).join(', ')}`,
        params,
      );
    }
    after = rows[rows.length - 1]!.id;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const dbCpuSeconds = cpuSince(dbCpu, cpu0);
  // Back to readable ciphertext for the rotation.
  await conn.execute(`UPDATE ${q(TABLE)} SET ${cols.map((c) => `${q(c)} = REVERSE(${q(c)})`).join(', ')}`);
  return { rowsPerSecond: (total / ms) * 1000, dbCpuSeconds };
}

/** The rotation, run in this process when started as the child: prints one JSON line. */
async function child(): Promise<void> {
  const url = arg('url')!;
  const keys = JSON.parse(process.env.BENCH_KEYS!) as Keys;
  const batchSize = Number(arg('batch-size'));
  const concurrency = Number(arg('concurrency'));
  const threads = Number(arg('threads'));
  // BENCH_STATEMENTS=1: time every statement the migrator sends, summed by its first words (stderr).
  const stats = new Map<string, { n: number; ms: number }>();
  const timed = (c: SqlConnection): SqlConnection => {
    if (!process.env.BENCH_STATEMENTS) return c;
    const wrap = <F extends (sql: string, params?: readonly unknown[]) => Promise<unknown>>(f: F) =>
      (async (sql: string, params?: readonly unknown[]) => {
        const t = performance.now();
        try { return await f.call(c, sql, params); } finally {
          const k = sql.trim().split(/\s+/).slice(0, 3).join(' ').slice(0, 40);
          const e = stats.get(k) ?? { n: 0, ms: 0 }; e.n++; e.ms += performance.now() - t; stats.set(k, e);
        }
      }) as unknown as F;
    return Object.assign(Object.create(Object.getPrototypeOf(c)), c, { query: wrap(c.query), execute: wrap(c.execute) });
  };
  const conn = timed(await openConnection(url));
  const cpu0 = process.cpuUsage();
  const startedAt = performance.timeOrigin + performance.now();
  const report = await rotate({
    connection: conn,
    connect: async () => timed(await openConnection(url)),
    concurrency,
    threads,
    schema: schemaFor(conn.dialect),
    keyring: after(keys, Number(arg('step'))),
    batchSize,
    logger: pino({ level: 'silent' }),
  });
  const endedAt = performance.timeOrigin + performance.now();
  const cpu = process.cpuUsage(cpu0);
  for (const [k, v] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) process.stderr.write(`  ${v.ms.toFixed(0).padStart(6)} ms ${String(v.n).padStart(5)}x ${k}\n`);
  await conn.close();
  process.stdout.write(
    `${JSON.stringify({
      updated: report.updated,
      failed: report.failedCount,
      startedAt,
      endedAt,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      backend: cryptoBackend().name,
    })}\n`,
  );
}

interface ChildResult {
  updated: number;
  failed: number;
  /** Epoch milliseconds around the `rotate` call, so that several processes' runs can be joined. */
  startedAt: number;
  endedAt: number;
  cpuSeconds: number;
  maxRssMiB: number;
  backend: string;
}

/** One rotation by `processes` migrator processes at once, as one figure. */
interface RotationResult {
  readonly backend: string;
  readonly updated: number;
  readonly failed: number;
  /** From the first process's start to the last one's end. */
  readonly ms: number;
  readonly rowsPerSecond: number;
  /** All processes, all threads. */
  readonly cpuSeconds: number;
  readonly dbCpuSeconds: number | undefined;
  /** The largest of the processes'. */
  readonly maxRssMiB: number;
}

async function runRotation(processes: number, dbCpu: DbCpu, ...args: Parameters<typeof runChild>): Promise<RotationResult> {
  const cpu0 = dbCpu?.();
  const rs = await Promise.all(Array.from({ length: processes }, () => runChild(...args)));
  const dbCpuSeconds = cpuSince(dbCpu, cpu0);
  const updated = rs.reduce((n, r) => n + r.updated, 0);
  const ms = Math.max(...rs.map((r) => r.endedAt)) - Math.min(...rs.map((r) => r.startedAt));
  return {
    backend: rs[0]!.backend,
    updated,
    failed: rs.reduce((n, r) => n + r.failed, 0),
    ms,
    rowsPerSecond: (updated / ms) * 1000,
    cpuSeconds: rs.reduce((n, r) => n + r.cpuSeconds, 0),
    dbCpuSeconds,
    maxRssMiB: Math.max(...rs.map((r) => r.maxRssMiB)),
  };
}

function runChild(url: string, batchSize: number, concurrency: number, threads: number, keys: Keys, step: number, backend: 'node' | 'native'): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const args = ['--child', '--url', url, '--batch-size', String(batchSize), '--concurrency', String(concurrency), '--threads', String(threads), '--step', String(step)];
    const prof = process.env.BENCH_CPU_PROF && backend === 'native' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
    const proc = spawn(process.execPath, [...prof, '--import', 'tsx', __filename, ...args], {
      env: { ...process.env, BENCH_KEYS: JSON.stringify(keys), PCE_CRYPTO_BACKEND: backend },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += String(d)));
    proc.on('error', reject);
    proc.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`rotate child exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const rows = Number(arg('rows') ?? 100_000);
  const batchSize = Number(arg('batch-size') ?? 1000);
  const concurrency = Number(arg('concurrency') ?? 2);
  // The migrator's own default (plan on the calling thread); `--threads N` measures worker threads.
  const threads = Number(arg('threads') ?? 0);
  const processes = Number(arg('processes') ?? 1);
  log(`bench:rotate - ${rows} rows, batch size ${batchSize}, ${processes > 1 ? `${processes} processes, ` : ''}concurrency ${concurrency}, crypto threads ${threads}; ${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres();
  const adminUrl = process.env.DATABASE_URL ?? embedded!.adminUrl;
  log(`database: ${embedded ? 'embedded PostgreSQL' : new URL(adminUrl).protocol.replace(':', '') + ' from DATABASE_URL'}`);
  const db = await createBenchDatabase(adminUrl);
  const conn = await openConnection(db.url);
  const dbCpu = await databaseCpu(conn);
  try {
    if (conn.dialect === 'postgres') await conn.execute('SET synchronous_commit = off');
    const keys: Keys = { d1: key(), d2: key(), d3: key(), i1: key(), i2: key(), i3: key() };
    const schema = schemaFor(conn.dialect);
    const t0 = Date.now();
    await seed(conn, before(keys), schema, rows);
    await settle(conn);
    log(`seeded ${rows} rows in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const oneStatement = await rawUpdate(conn, dbCpu);
    const raw = oneStatement.rowsPerSecond;
    await settle(conn);
    log(`raw SQL UPDATE, one statement (server-side, 3 columns): ${Math.round(raw)} rows/s${dbCpuText(oneStatement.dbCpuSeconds)}`);
    const clientBatches = await batchedRawUpdate(conn, batchSize, dbCpu);
    const batched = clientBatches.rowsPerSecond;
    await settle(conn);
    log(`raw SQL UPDATE, client batches of ${batchSize} (keyset read + 1 UPDATE per batch, no crypto): ${Math.round(batched)} rows/s${dbCpuText(clientBatches.dbCpuSeconds)}`);

    // The child connects with synchronous_commit off too, through the URL's options.
    const childUrl = conn.dialect === 'postgres' ? withOptions(db.url, '-c synchronous_commit=off') : db.url;
    const results: RotationResult[] = [];
    for (const [step, backend] of [[1, 'node'], [2, 'native']] as const) {
      const r = await runRotation(processes, dbCpu, childUrl, batchSize, concurrency, threads, keys, step, backend);
      if (r.updated !== rows || r.failed !== 0) throw new Error(`rotate wrote ${r.updated} rows with ${r.failed} failures, expected ${rows}`);
      await settle(conn);
      results.push(r);
      log(
        `rotate on ${r.backend} (decrypt+encrypt 2 fields, 1 index, CAS, checkpoint): ${Math.round(r.rowsPerSecond)} rows/s in ${(r.ms / 1000).toFixed(1)} s ` +
          `(migrator CPU ${r.cpuSeconds.toFixed(1)} s, all threads${dbCpuText(r.dbCpuSeconds)}; peak RSS ${r.maxRssMiB.toFixed(0)} MiB)`,
      );
      if (r.dbCpuSeconds !== undefined) {
        // Both run on this machine: how many of its cores the rotation kept busy, on average.
        log(`  migrator + database CPU: ${((r.cpuSeconds + r.dbCpuSeconds) / (r.ms / 1000)).toFixed(2)} of ${cpus().length} cores busy`);
      }
      log(`  / raw SQL one statement: ${(r.rowsPerSecond / raw).toFixed(2)} (target >= 0.30); / raw SQL client batches: ${(r.rowsPerSecond / batched).toFixed(2)} (target >= 0.70)`);
    }
    const [onNode, onNative] = results as [RotationResult, RotationResult];
    log(`native / node:crypto: ${(onNative.rowsPerSecond / onNode.rowsPerSecond).toFixed(2)}x rows/s, ${(onNative.cpuSeconds / onNode.cpuSeconds).toFixed(2)}x migrator CPU`);
  } finally {
    await conn.close();
    await db.drop();
    await embedded?.stop();
  }
}

function key(): string {
  return randomBytes(32).toString('base64');
}

function withOptions(url: string, options: string): string {
  const u = new URL(url);
  u.searchParams.set('options', options);
  return u.toString();
}

if (process.argv.includes('--child')) {
  child().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
} else {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
