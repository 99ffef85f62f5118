import type { Summary } from './support/stats';
import type { CryptoOps } from './workloads';

export interface WorkloadResult {
  readonly workload: {
    readonly name: string;
    readonly kind: 'read' | 'write';
    readonly rounds: number;
    readonly warmup: number;
    readonly ops: CryptoOps;
    readonly absoluteTarget: boolean;
  };
  readonly summaries: Record<'plain' | 'hook' | 'extension' | 'peer' | 'raw', Summary>;
}

export interface TargetCheck {
  readonly workload: string;
  readonly description: string;
  readonly met: boolean;
}

/** The targets, checked on medians of one run. Pure. */
export function evaluateTargets(results: readonly WorkloadResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const { workload, summaries: s } of results) {
    const overhead = s.extension.median - s.plain.median;
    const limit = 1.2 * s.raw.median;
    checks.push({
      workload: workload.name,
      description: `${workload.name}: extension - plain = ${overhead.toFixed(3)} ms <= 1.2 x raw crypto (${limit.toFixed(3)} ms)`,
      met: overhead <= limit,
    });
    if (workload.absoluteTarget) {
      checks.push({ workload: workload.name, description: `${workload.name}: extension - plain = ${overhead.toFixed(3)} ms <= 0.1 ms`, met: overhead <= 0.1 });
    }
    const ratio = s.peer.median / s.extension.median;
    checks.push({ workload: workload.name, description: `${workload.name}: prisma-field-encryption / extension = ${ratio.toFixed(2)}x >= 2x`, met: ratio >= 2 });
  }
  return checks;
}
