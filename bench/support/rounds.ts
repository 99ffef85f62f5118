import { performance } from 'node:perf_hooks';

/** One competitor in a workload: an async step whose duration is measured. */
export interface Entrant {
  readonly name: string;
  run(): Promise<unknown> | unknown;
  /** Untimed preparation before each timed run (e.g. deleting rows the previous run wrote). */
  before?(): Promise<unknown> | unknown;
}

export interface RoundOptions {
  readonly warmup: number;
  readonly rounds: number;
}

/**
 * Runs every entrant once per round, rotating the order each round so no entrant always runs
 * first (warmer caches) or last (after the others' garbage). Returns milliseconds per entrant.
 */
export async function runRounds(entrants: readonly Entrant[], options: RoundOptions): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(entrants.map((e) => [e.name, []]));
  const total = options.warmup + options.rounds;
  for (let round = 0; round < total; round++) {
    for (let k = 0; k < entrants.length; k++) {
      const entrant = entrants[(round + k) % entrants.length]!;
      if (entrant.before) await entrant.before();
      const start = performance.now();
      await entrant.run();
      const elapsed = performance.now() - start;
      if (round >= options.warmup) samples.get(entrant.name)!.push(elapsed);
    }
  }
  return samples;
}

/** Median microseconds per call of a synchronous function, measured in batches of `batch` calls. */
export function microsPerCall(fn: (i: number) => unknown, batch: number, batches: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) fn(i);
    out.push(((performance.now() - start) * 1000) / batch);
  }
  return out;
}
