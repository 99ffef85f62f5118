import type { Summary } from './support/stats';
import type { FieldCost } from './fieldCosts';
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
  /** `extension` runs on the default backend (native where it loads), `extension-node` on node:crypto. */
  readonly summaries: Record<'plain' | 'hook' | 'extension' | 'extension-node' | 'peer' | 'raw', Summary>;
}

export interface TargetCheck {
  readonly workload: string;
  readonly description: string;
  readonly met: boolean;
}

/** Issue 15's per-value limits for the native backend, in microseconds (absolute: a loaded machine misses them first). */
const PER_VALUE_LIMIT_US: Readonly<Record<FieldCost['operation'], number>> = { decrypt: 0.5, 'decrypt (1000 at once)': 0.5, encrypt: 0.5, hmac: 0.4 };

/** The issues' targets, checked on medians of one run. Pure. */
export function evaluateTargets(results: readonly WorkloadResult[], fieldCosts: readonly FieldCost[] = []): TargetCheck[] {
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
    checks.push(...nativeTargets(workload.name, s));
  }
  for (const c of fieldCosts) {
    const limit = PER_VALUE_LIMIT_US[c.operation];
    const us = c.extension.median;
    checks.push({ workload: `per value: ${c.operation}`, description: `per value ${c.operation}: ${us.toFixed(2)} us <= ${limit} us`, met: us <= limit });
    if (c.operation.startsWith('decrypt')) {
      const ratio = us / c.raw.median;
      checks.push({ workload: `per value: ${c.operation}`, description: `per value ${c.operation}: ${ratio.toFixed(2)}x raw node:crypto <= 0.2x`, met: ratio <= 0.2 });
    }
  }
  return checks;
}

/** Issue 15 on read workloads: the default (native) backend against node:crypto in the same run. */
function nativeTargets(name: string, s: WorkloadResult['summaries']): TargetCheck[] {
  const overhead = s.extension.median - s.plain.median;
  const nodeOverhead = s['extension-node'].median - s.plain.median;
  if (name.startsWith('findMany 1000 ')) {
    const ratio = s.peer.median / s.extension.median;
    return [
      { workload: name, description: `${name}: extension - plain = ${overhead.toFixed(3)} ms <= 2.5 ms`, met: overhead <= 2.5 },
      { workload: name, description: `${name}: prisma-field-encryption / extension = ${ratio.toFixed(2)}x >= 4x`, met: ratio >= 4 },
    ];
  }
  if (name.startsWith('findMany 100 ') || name.startsWith('include ')) {
    const ratio = overhead / nodeOverhead;
    return [{ workload: name, description: `${name}: extension - plain = ${ratio.toFixed(2)}x of node:crypto's <= 0.35x`, met: ratio <= 0.35 }];
  }
  return [];
}
