/*
 * Profiles one workload for one contender, the V8 CPU profiler running only around the timed loop
 * (the same profiler as `node --cpu-prof`, without seeding and start-up in the picture):
 *
 *   npm run bench:profile -- "findMany 1000" extension 200
 *
 * writes a .cpuprofile into .tmp/profiles/ (gitignored; open it in Chrome DevTools or VS Code)
 * and prints the heaviest frames.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { frameTimes, type CpuProfile } from './support/cpuProfile';
import { fmt, renderTable } from './support/table';
import { seed } from './seed';
import { openBenchEnvironment } from './support/environment';
import { buildWorkloads, RawKit } from './workloads';

async function main(): Promise<void> {
  const [pattern = 'findMany 1000', contender = 'extension', roundsText = '200'] = process.argv.slice(2);
  const env = await openBenchEnvironment('pce_prof');
  const { oursSql, peerSql, keyring, clients } = env;
  try {
    await seed(clients.extension);
    await seed(clients.peer);
    const workloads = await buildWorkloads({ clients, kit: new RawKit(keyring), oursSql, peerSql, scale: 1 });
    const workload = workloads.find((w) => w.name.startsWith(pattern));
    const entrant = workload?.entrants.find((e) => e.name === contender);
    if (!workload || !entrant) throw new Error(`no workload "${pattern}" with contender "${contender}"`);
    const rounds = Number(roundsText);
    for (let i = 0; i < Math.min(20, rounds); i++) {
      if (entrant.before) await entrant.before();
      await entrant.run();
    }
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
    let timed = 0;
    for (let i = 0; i < rounds; i++) {
      if (entrant.before) await entrant.before();
      const start = performance.now();
      await entrant.run();
      timed += performance.now() - start;
    }
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
    session.disconnect();
    const dir = join(__dirname, '..', '.tmp', 'profiles');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${workload.name.replace(/\W+/g, '-')}-${contender}-${Date.now()}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    process.stdout.write(`${workload.name} / ${contender}: ${rounds} runs, mean ${fmt(timed / rounds, 3)} ms\nprofile: ${file}\n\n`);
    const frames = frameTimes(profile).filter((f) => !f.frame.startsWith('(idle)') && !f.frame.startsWith('(program)'));
    const perRun = (ms: number) => `${fmt((ms * 1000) / rounds, 1)} us`;
    process.stdout.write(`${renderTable(['frame (heaviest self time)', 'self / run', 'total / run'], frames.slice(0, 25).map((f) => [f.frame, perRun(f.self), perRun(f.total)]))}\n`);
  } finally {
    await env.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
