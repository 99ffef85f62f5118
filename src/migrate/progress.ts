import cliProgress from 'cli-progress';

/**
 * Progress display for long CLI runs: a bar with ETA on a terminal, plain throttled lines
 * otherwise (CI logs, pipes). Other output goes through {@link ProgressDisplay.log} so it does not
 * tear the bar.
 */
export interface ProgressDisplay {
  /** Rows done out of total for one labelled task (total 0: unknown). */
  update(label: string, done: number, total: number, written?: number): void;
  /** Ends the current task's bar or prints its last line. */
  end(label: string): void;
  /** Writes a whole line (newline added when missing). */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  readonly stream?: NodeJS.WriteStream;
  /** Print nothing but log lines. */
  readonly quiet?: boolean;
  /** Minimum time between plain progress lines. Default 2000 ms. */
  readonly intervalMs?: number;
}

export function createProgressDisplay(options: ProgressOptions = {}): ProgressDisplay {
  const stream = options.stream ?? process.stderr;
  const write = (line: string) => stream.write(line.endsWith('\n') ? line : `${line}\n`);
  if (options.quiet) return { update: () => undefined, end: () => undefined, log: write, stop: () => undefined };
  return stream.isTTY ? barDisplay(stream) : lineDisplay(write, options.intervalMs ?? 2000);
}

function barDisplay(stream: NodeJS.WriteStream): ProgressDisplay {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{label} |{bar}| {percentage}% | {value}/{total} rows | {written} written | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let current: { label: string; bar: cliProgress.SingleBar } | undefined;
  return {
    update(label, done, total, written = 0) {
      if (!current || current.label !== label) {
        current = { label, bar: multi.create(Math.max(total, done, 1), 0, { label, written: 0 }) };
      }
      // Other processes or new rows can make the real count exceed the estimate.
      if (done > current.bar.getTotal()) current.bar.setTotal(done);
      current.bar.update(done, { label, written });
    },
    end(label) {
      // The bar stays on screen with its final count until the display stops.
      if (current?.label === label) current = undefined;
    },
    log(line) {
      multi.log(line.endsWith('\n') ? line : `${line}\n`);
    },
    stop() {
      multi.stop();
    },
  };
}

function lineDisplay(write: (line: string) => void, intervalMs: number): ProgressDisplay {
  const started = new Map<string, number>();
  let lastLine = 0;
  let pending: (() => string) | undefined;
  const format = (label: string, done: number, total: number, written: number) => {
    const elapsed = (Date.now() - (started.get(label) ?? Date.now())) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const parts = [`${label}: ${done}${total > 0 ? `/${total}` : ''} rows`];
    if (total > 0) parts.push(`${Math.min(100, Math.floor((done / total) * 100))}%`);
    parts.push(`${written} written`, `${Math.round(rate)} rows/s`);
    if (total > done && rate > 0) parts.push(`ETA ${formatSeconds((total - done) / rate)}`);
    return parts.join(', ');
  };
  return {
    update(label, done, total, written = 0) {
      if (!started.has(label)) started.set(label, Date.now());
      pending = () => format(label, done, total, written);
      if (Date.now() - lastLine >= intervalMs) {
        write(pending());
        pending = undefined;
        lastLine = Date.now();
      }
    },
    end() {
      if (pending) write(pending());
      pending = undefined;
    },
    log: write,
    stop() {
      // The last update of a task that never called end() (verify) still gets its line.
      if (pending) write(pending());
      pending = undefined;
    },
  };
}

function formatSeconds(s: number): string {
  const total = Math.ceil(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
