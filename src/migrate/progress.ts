import cliProgress from 'cli-progress';

/**
 * Progress display for long CLI runs: a bar with ETA on a terminal, plain throttled lines
 * otherwise (CI logs, pipes). Other output goes through {@link ProgressDisplay.log} so it does not
 * tear the bar. Every task ends with a complete line: its final counts and "done".
 */
export interface ProgressDisplay {
  /**
   * Rows done out of total for one labelled task (total 0: unknown). `counts` says what the rows
   * came to (`12 written`, `12 would write`, `50 checked`).
   */
  update(label: string, done: number, total: number, counts?: string): void;
  /** Ends a task: its bar or line shows the final counts and "done". */
  end(label: string): void;
  /** Writes a whole line (newline added when missing). */
  log(line: string): void;
  /** Ends every task still open, then the display. */
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

/** The latest state of one task. */
interface Task {
  readonly started: number;
  done: number;
  total: number;
  counts: string | undefined;
}

function barDisplay(stream: NodeJS.WriteStream): ProgressDisplay {
  const running = '{label} |{bar}| {percentage}% | {value}/{total} rows{counts} | ETA {eta_formatted}';
  const finished = '{label} |{bar}| {percentage}% | {value}/{total} rows{counts} | done in {duration_formatted}';
  const multi = new cliProgress.MultiBar(
    {
      stream,
      // An ended bar swaps its ETA (meaningless, or "INF" with nothing to do) for the time taken.
      format: (opts, params, payload: { done?: boolean }) =>
        cliProgress.Format.Formatter({ ...opts, format: payload.done ? finished : running }, params, payload),
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  const payload = (label: string, counts: string | undefined, done = false) => ({ label, counts: counts ? ` | ${counts}` : '', done });
  return {
    update(label, done, total, counts) {
      let bar = bars.get(label);
      if (!bar) {
        bar = multi.create(Math.max(total, done), 0, payload(label, counts));
        bars.set(label, bar);
      }
      // Other processes or new rows can make the real count exceed the estimate.
      if (done > bar.getTotal()) bar.setTotal(done);
      bar.update(done, payload(label, counts));
    },
    end(label) {
      const bar = bars.get(label);
      if (!bar) return;
      // The bar stays on screen with its final count (a task with nothing to do reads 0/0, 100 %).
      bar.update({ done: true });
      bar.stop();
      bars.delete(label);
    },
    log(line) {
      multi.log(line.endsWith('\n') ? line : `${line}\n`);
    },
    stop() {
      for (const label of [...bars.keys()]) this.end(label);
      multi.stop();
    },
  };
}

function lineDisplay(write: (line: string) => void, intervalMs: number): ProgressDisplay {
  const tasks = new Map<string, Task>();
  let lastLine = 0;
  const print = (label: string, final: boolean) => {
    write(formatLine(label, tasks.get(label)!, final));
    lastLine = Date.now();
  };
  const end = (label: string) => {
    if (!tasks.has(label)) return;
    print(label, true);
    tasks.delete(label);
  };
  return {
    update(label, done, total, counts) {
      // A task that started after another means the other one is over: finish its line first.
      for (const other of [...tasks.keys()]) if (other !== label) end(other);
      const task = tasks.get(label) ?? { started: Date.now(), done: 0, total: 0, counts: undefined };
      Object.assign(task, { done, total, counts });
      tasks.set(label, task);
      if (Date.now() - lastLine >= intervalMs) print(label, false);
    },
    end,
    log: write,
    stop() {
      for (const label of [...tasks.keys()]) end(label);
    },
  };
}

function formatLine(label: string, t: Task, final: boolean): string {
  const seconds = (Date.now() - t.started) / 1000;
  const rate = seconds > 0 ? t.done / seconds : 0;
  const parts = [`${label}: ${t.done}${t.total > 0 ? `/${t.total}` : ''} rows`];
  if (t.total > 0) parts.push(`${Math.min(100, Math.floor((t.done / t.total) * 100))}%`);
  if (t.counts) parts.push(t.counts);
  if (final) {
    parts.push(`done in ${seconds.toFixed(1)} s`);
  } else {
    parts.push(`${Math.round(rate)} rows/s`);
    if (t.total > t.done && rate > 0) parts.push(`ETA ${formatSeconds((t.total - t.done) / rate)}`);
  }
  return parts.join(', ');
}

function formatSeconds(s: number): string {
  const total = Math.ceil(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
