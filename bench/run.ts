/*
 * `npm run bench`: plain Prisma 7, this extension and prisma-field-encryption side by side, in one
 * process and one run, on the embedded PostgreSQL (or DATABASE_URL). The README's performance
 * section explains the method. BENCH_SCALE=0.2 runs fewer rounds for a quick look;
 * BENCH_ONLY=createMany,include runs only the workloads whose names start so. It measures the
 * built package (dist/, rebuilt by the prebench step), i.e. what users install.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client as PgRaw } from 'pg';
import { measureFieldCosts, type FieldCost } from './fieldCosts';
import { dmmfMismatches, whyPeerNeedsDmmf } from './peer/fieldEncryption';
import { seed } from './seed';
import { describeMachine } from './support/machine';
import { runRounds } from './support/rounds';
import { openBenchEnvironment } from './support/environment';
import { summarize, type Summary } from './support/stats';
import { fmt, renderTable } from './support/table';
import { ACCESS_LOG_TARGET, measureAccessLog } from './accessLog';
import { measureSubjectReads, SUBJECT_READ_TARGET } from './subjects';
import { runExperiments, type Experiment } from './beyondFloor';
import { buildWorkloads, RawKit, type Workload } from './workloads';
import { evaluateTargets, type WorkloadResult } from './targets';
import { cryptoBackend } from '../dist';
import { measureTypedCosts, measureTypedFindMany, type TypedCost, type TypedFindMany } from './typed';

const ENTRANTS = ['plain', 'hook', 'extension', 'extension-node', 'peer', 'raw'] as const;

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const scale = Number(process.env.BENCH_SCALE ?? '1');
  const machine = describeMachine();
  log(`prisma-column-encryption benchmark - ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}`);
  const backend = cryptoBackend();
  log(`crypto backend: 'extension' runs on ${backend.name}${backend.nativeUnavailable ? ` (native not used: ${backend.nativeUnavailable})` : ''}; 'extension-node' on node:crypto`);
  if (machine.loadAverage > machine.cores / 2) {
    log(`warning: load average ${machine.loadAverage} on ${machine.cores} cores - other work on this machine will skew the medians`);
  }

  const env = await openBenchEnvironment('pce_bench');
  const { server, ours, peerDb, oursSql, peerSql, keyring, peerDmmf, peerKeyText, clients } = env;
  log(`database: ${server.description}`);
  await relaxDurability([ours.name, peerDb.name], oursSql);

  const runtime = (clients.plain as unknown as { _runtimeDataModel: Parameters<typeof dmmfMismatches>[1] })._runtimeDataModel;
  const mismatches = dmmfMismatches(peerDmmf, runtime);
  if (mismatches.length > 0) throw new Error(`bench/peer/schema.prisma no longer matches the client: ${mismatches.join(', ')}`);
  const peerReasons = whyPeerNeedsDmmf(runtime);
  log('prisma-field-encryption@1.6.0 runs only when handed the full DMMF (dumped at generate time by bench/peer/dmmfGenerator.ts):');
  for (const reason of peerReasons) log(`  - ${reason}`);

  try {
    await seed(clients.extension);
    await seed(clients.peer);
    const kit = new RawKit(keyring);
    const only = process.env.BENCH_ONLY?.split(',').map((w) => w.trim()).filter(Boolean);
    const workloads = (await buildWorkloads({ clients, kit, oursSql, peerSql, scale })).filter((w) => !only || only.some((o) => w.name.startsWith(o)));
    const results: WorkloadResult[] = [];
    for (const workload of workloads) {
      const samples = await runRounds(workload.entrants, { warmup: workload.warmup, rounds: workload.rounds });
      const summaries = Object.fromEntries([...samples].map(([name, values]) => [name, summarize(values)])) as Record<(typeof ENTRANTS)[number], Summary>;
      results.push({ workload: describeWorkload(workload), summaries });
      log(`  ${workload.name}: ${ENTRANTS.map((e) => `${e} ${fmt(summaries[e].median, 3)}`).join(', ')} ms`);
    }
    const fieldCosts = measureFieldCosts(keyring, kit, peerKeyText, scale);
    const typedCosts = measureTypedCosts(keyring, kit, scale);
    const typedFind = await measureTypedFindMany(clients, keyring, kit, scale);
    log(`  ${typedFind.name}: plain ${fmt(typedFind.plain.median, 3)}, extension ${fmt(typedFind.native.median, 3)}, extension-node ${fmt(typedFind.node.median, 3)}, raw ${fmt(typedFind.raw.median, 3)} ms`);
    const experiments = await runExperiments(keyring, kit, scale);
    const access = await measureAccessLog(clients, keyring, scale);
    experiments.push(access);
    const subjectReads = await measureSubjectReads(clients.plain, scale);
    experiments.push(...subjectReads);
    const targets = evaluateTargets(results, fieldCosts);
    const subjectRatio = subjectReads[0]!.variant.median / subjectReads[0]!.baseline.median;
    targets.push({
      workload: 'findMany 1000 rows of 1000 subjects',
      description: `findMany 1000 rows of 1000 subjects (keys cached): ${subjectRatio.toFixed(2)}x the same rows under the shared key <= ${SUBJECT_READ_TARGET}x`,
      met: subjectRatio <= SUBJECT_READ_TARGET,
    });
    const accessOverhead = (access.variant.median - access.baseline.median) / access.baseline.median;
    targets.push({
      workload: 'findMany 100 x 3 fields',
      description: `findMany 100 x 3 fields: data-access trail (chained file) adds ${(accessOverhead * 100).toFixed(1)} % <= ${ACCESS_LOG_TARGET * 100} %`,
      met: accessOverhead <= ACCESS_LOG_TARGET,
    });

    log('');
    log(mainTable(results));
    log('');
    log(fieldTable(fieldCosts));
    log('');
    log(typedFindTable(typedFind));
    log('');
    log(typedCostTable(typedCosts));
    log('');
    log(experimentTable(experiments));
    log('');
    for (const t of targets) log(`${t.met ? 'MET ' : 'MISS'}  ${t.description}`);
    const elapsed = (Date.now() - started) / 1000;
    log(`\nmedians of ${results.map((r) => r.workload.rounds).join('/')} rounds after warm-up; whole run ${fmt(elapsed, 1)} s`);

    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const report = { date: new Date().toISOString(), machine, database: server.description, scale, peerNeedsDmmf: peerReasons, workloads: results, fieldCosts, typed: { findMany: typedFind, perValue: typedCosts }, experiments, targets, elapsedSeconds: elapsed };
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    log(`results: ${file}`);
  } finally {
    await env.close();
  }
}

/**
 * Commits on the benchmark's own databases do not wait for the WAL flush. Write timings on a
 * shared disk otherwise vary by milliseconds with fsync latency, hiding the microseconds this
 * benchmark is about; every contender gets the same setting. Applies to new connections only,
 * which is all of them: clients connect on first query.
 */
async function relaxDurability(databases: readonly string[], sql: PgRaw): Promise<void> {
  for (const name of databases) await sql.query(`ALTER DATABASE "${name}" SET synchronous_commit = off`);
}

function describeWorkload(w: Workload): WorkloadResult['workload'] {
  return { name: w.name, kind: w.kind, rounds: w.rounds, warmup: w.warmup, ops: w.ops, absoluteTarget: w.absoluteTarget };
}

function mainTable(results: readonly WorkloadResult[]): string {
  const rows = results.map(({ workload, summaries: s }) => {
    const overhead = s.extension.median - s.plain.median;
    const nodeOverhead = s['extension-node'].median - s.plain.median;
    return [
      workload.name,
      fmt(s.plain.median, 3),
      fmt(s.hook.median, 3),
      fmt(s.extension.median, 3),
      fmt(s['extension-node'].median, 3),
      fmt(s.peer.median, 3),
      fmt(s.raw.median, 3),
      fmt(overhead, 3),
      fmt(nodeOverhead, 3),
      `${fmt(overhead / nodeOverhead, 2)}x`,
      `${fmt(s.peer.median / s.extension.median, 1)}x`,
      `${fmt(s.peer.median / s['extension-node'].median, 1)}x`,
    ];
  });
  return renderTable(
    ['workload (median ms)', 'plain', 'hook only', 'ext native', 'ext node', 'p-f-e', 'raw node:crypto', 'native - plain', 'node - plain', 'native / node over plain', 'p-f-e / native', 'p-f-e / node'],
    rows,
  );
}

function fieldTable(costs: readonly FieldCost[]): string {
  return renderTable(
    ['per short value (median us)', 'ext native', 'ext node', 'raw node:crypto', 'native / raw', 'node / raw', 'p-f-e'],
    costs.map((c) => [
      c.operation,
      fmt(c.extension.median, 2),
      fmt(c.extensionNode.median, 2),
      fmt(c.raw.median, 2),
      `${fmt(c.extension.median / c.raw.median, 2)}x`,
      `${fmt(c.extensionNode.median / c.raw.median, 2)}x`,
      fmt(c.peer.median, 2),
    ]),
  );
}

function typedFindTable(t: TypedFindMany): string {
  const over = (s: { median: number }) => s.median - t.plain.median;
  return renderTable(
    ['typed workload (median ms)', 'plain', 'ext native', 'ext node', 'raw node:crypto', 'native - plain', 'node - plain', '(native - plain) / raw', '(node - plain) / raw'],
    [[t.name, fmt(t.plain.median, 3), fmt(t.native.median, 3), fmt(t.node.median, 3), fmt(t.raw.median, 3), fmt(over(t.native), 3), fmt(over(t.node), 3), `${fmt(over(t.native) / t.raw.median, 2)}x`, `${fmt(over(t.node) / t.raw.median, 2)}x`]],
  );
}

function typedCostTable(costs: readonly TypedCost[]): string {
  return renderTable(
    ['per typed value (median us)', 'bytes', 'encrypt native', 'encrypt node', 'encrypt raw', 'native / raw', 'decrypt native (1000 at once)', 'decrypt node', 'decrypt raw', 'native / raw', 'node / raw'],
    costs.map((c) => [
      c.type,
      String(c.bytes),
      fmt(c.encrypt.native.median, 2),
      fmt(c.encrypt.node.median, 2),
      fmt(c.encrypt.raw.median, 2),
      `${fmt(c.encrypt.native.median / c.encrypt.raw.median, 2)}x`,
      fmt(c.decrypt.native.median, 2),
      fmt(c.decrypt.node.median, 2),
      fmt(c.decrypt.raw.median, 2),
      `${fmt(c.decrypt.native.median / c.decrypt.raw.median, 2)}x`,
      `${fmt(c.decrypt.node.median / c.decrypt.raw.median, 2)}x`,
    ]),
  );
}

function experimentTable(experiments: readonly Experiment[]): string {
  return renderTable(
    ['beyond the floor (median)', 'baseline', 'variant', 'change'],
    experiments.map((e) => [e.name, `${fmt(e.baseline.median, 3)} ${e.unit}`, `${fmt(e.variant.median, 3)} ${e.unit}`, `${fmt(((e.variant.median - e.baseline.median) / e.baseline.median) * 100, 0)} %`]),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
