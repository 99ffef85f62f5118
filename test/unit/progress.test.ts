import { PassThrough } from 'node:stream';
import { createProgressDisplay } from '../../src/migrate/progress';

/** A stream that says it is a terminal, capturing what the bar draws. */
function terminal(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
  Object.assign(stream, { isTTY: true, columns: 160, rows: 40 });
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  return { stream, text: () => out };
}

/** Lines written without a terminal (CI logs, pipes). */
function pipe(): { stream: NodeJS.WriteStream; lines: () => string[] } {
  const written: string[] = [];
  const stream = { isTTY: false, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  return { stream, lines: () => written.join('').split('\n').filter(Boolean) };
}

describe('progress display', () => {
  test('without a terminal every task ends with a complete line, even when the next task starts before its end', () => {
    const out = pipe();
    const display = createProgressDisplay({ stream: out.stream, intervalMs: 60_000 });
    display.update('rotate (dry run) User', 0, 0, '0 would write');
    display.update('rotate (dry run) User', 200, 0, '200 would write'); // throttled: not printed yet
    display.update('rotate (dry run) Profile', 10, 0, '10 would write'); // no end() for User: a dry run sends none
    display.update('verify Reading', 0, 0, '0 checked');
    display.end('verify Reading');
    display.stop();
    const lines = out.lines();
    expect(lines[0]).toMatch(/^rotate \(dry run\) User: 0 rows, 0 would write, 0 rows\/s$/);
    expect(lines[1]).toMatch(/^rotate \(dry run\) User: 200 rows, 200 would write, done in \d+\.\d s$/);
    expect(lines[2]).toMatch(/^rotate \(dry run\) Profile: 10 rows, 10 would write, done in/);
    expect(lines[3]).toMatch(/^verify Reading: 0 rows, 0 checked, done in/);
    expect(lines).toHaveLength(4);
    expect(lines.join('\n')).not.toContain('written');
  });

  test('with a total: percentage while running, the final count at the end', () => {
    const out = pipe();
    const display = createProgressDisplay({ stream: out.stream, intervalMs: 0 });
    display.update('rotate User', 20, 50, '20 written');
    display.update('rotate User', 50, 50, '50 written');
    display.end('rotate User');
    display.end('rotate User'); // a second end changes nothing
    display.stop();
    const lines = out.lines();
    expect(lines[0]).toMatch(/^rotate User: 20\/50 rows, 40%, 20 written, \d+ rows\/s/);
    expect(lines.at(-1)).toMatch(/^rotate User: 50\/50 rows, 100%, 50 written, done in/);
    expect(lines).toHaveLength(3);
  });

  test('on a terminal a task with nothing to do ends at 100 % and "done", not 0 % with an infinite ETA', async () => {
    const tty = terminal();
    const display = createProgressDisplay({ stream: tty.stream });
    display.update('rotate User', 0, 0, '0 written');
    display.end('rotate User');
    display.update('rotate Profile', 3, 8, '3 written');
    display.stop();
    const text = tty.text();
    expect(text).toMatch(/rotate User \|[^|]*\| 100% \| 0\/0 rows \| 0 written \| done in \d+s/);
    // Still open at stop(): ended with its last count.
    expect(text).toMatch(/rotate Profile \|[^|]*\| 37% \| 3\/8 rows \| 3 written \| done in/);
    expect(text).not.toMatch(/INF|NaN|NULL/);
  });
});
