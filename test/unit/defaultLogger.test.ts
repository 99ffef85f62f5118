import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DIST = join(__dirname, '..', '..', 'dist');

/**
 * What the library prints when the application passes no logger: warnings and errors only, as
 * JSON lines on stderr; routine events such as `pce.keys.loaded` only when PCE_LOG_LEVEL asks.
 * A child process, because pino writes straight to file descriptor 2.
 */
describe('the default logger (no logger given)', () => {
  const script = `
    const { columnEncryption, localKeys } = require(${JSON.stringify(DIST)});
    const { createAuditLog } = require(${JSON.stringify(join(DIST, 'audit', 'auditLog.js'))});
    const k = () => require('node:crypto').randomBytes(32).toString('base64');
    columnEncryption({ fields: { version: 1, provider: 'postgresql', models: {} }, keys: localKeys({ data: [{ id: 'd1', key: k() }], index: [{ id: 'i1', key: k() }] }) });
    createAuditLog().refusedQuery('User', 'email', 'contains', 'findMany');
  `;
  const events = async (env: NodeJS.ProcessEnv) => {
    const { stdout, stderr } = await run(process.execPath, ['-e', script], { env });
    expect(stdout).toBe('');
    return stderr.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { event: string }).event);
  };

  test('prints warnings, not the keys.loaded line of every start-up', async () => {
    const env = { ...process.env };
    delete env.PCE_LOG_LEVEL;
    expect(await events(env)).toEqual(['pce.query.refused']);
  });

  test('PCE_LOG_LEVEL=info prints the routine events too', async () => {
    expect(await events({ ...process.env, PCE_LOG_LEVEL: 'info' })).toEqual(['pce.keys.loaded', 'pce.query.refused']);
  });
});
