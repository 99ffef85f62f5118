import { availableParallelism } from 'node:os';
import { cryptoBackend } from '../../src/codec/backendChoice';
import { defaultThreads } from '../../src/cli/migrateOptions';

describe('default crypto worker threads of the migration commands', () => {
  test('none on the native backend; on node:crypto one per batch in flight, up to the cores (none on one core)', () => {
    const cores = availableParallelism();
    expect(defaultThreads(2, 'native')).toBe(0);
    expect(defaultThreads(8, 'native')).toBe(0);
    expect(defaultThreads(2, 'node')).toBe(cores > 1 ? Math.min(2, cores) : 0);
    expect(defaultThreads(1, 'node')).toBe(cores > 1 ? 1 : 0);
    // Without a backend named: the process's own.
    expect(defaultThreads(2)).toBe(defaultThreads(2, cryptoBackend().name));
  });
});
