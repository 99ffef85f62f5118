import { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { registerKeyCommands } from '../../src/cli/keyCommands';
import { EXIT_ROTATION_DUE, type CheckOutput, type ListOutput } from '../../src/cli/keyOutput';
import { KeyringError } from '../../src/errors';
import { parseKeyringDocument } from '../../src/keys/keyringFile';
import { loadKeyring } from '../../src/keys/loadKeyring';
import { keyAges, parseRotationPolicy } from '../../src/keys/rotationPolicy';
import { captureLogger, tempDir } from './support';

const DAY = 24 * 60 * 60 * 1000;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const after = (days: number) => new Date(T0.getTime() + days * DAY);

describe('rotation policy (pure)', () => {
  test('parses per-purpose maxAgeDays and refuses anything else, naming the field', () => {
    expect(parseRotationPolicy({ data: { maxAgeDays: 90 }, index: { maxAgeDays: 365 } }, 'f')).toEqual({ data: { maxAgeDays: 90 }, index: { maxAgeDays: 365 } });
    for (const bad of [[], 'x', { audit: { maxAgeDays: 1 } }, { data: { maxAgeDays: 0 } }, { data: { maxAgeDays: 1.5 } }, { data: { maxAgeDays: '90' } }, { data: { maxAgeDays: 90, extra: 1 } }, { data: null }]) {
      expect(() => parseRotationPolicy(bad, 'keyring.json')).toThrow(KeyringError);
    }
    expect(() => parseRotationPolicy({ data: { maxAgeDays: -1 } }, 'keyring.json')).toThrow(/keyring.json: "policy".data must be/);
  });

  test('only primary keys are held to the policy; due-soon inside the warning window, overdue from the due time on', () => {
    const keys = [
      { id: 'd1', purpose: 'data' as const, status: 'primary', createdAt: T0.toISOString() },
      { id: 'd0', purpose: 'data' as const, status: 'active', createdAt: T0.toISOString() },
      { id: 'i1', purpose: 'index' as const, status: 'primary', createdAt: T0.toISOString() },
    ];
    const policy = { data: { maxAgeDays: 90 } };
    expect(keyAges(keys, policy, after(10)).map((a) => [a.id, a.state, a.ageDays, a.dueInDays])).toEqual([
      ['d1', 'ok', 10, 80],
      ['d0', 'not-primary', 10, null],
      ['i1', 'no-policy', 10, null],
    ]);
    expect(keyAges(keys, policy, after(80))[0]).toMatchObject({ state: 'due-soon', dueInDays: 10, dueAt: after(90).toISOString() });
    expect(keyAges(keys, policy, new Date(after(90).getTime() - 1))[0]!.state).toBe('due-soon');
    expect(keyAges(keys, policy, after(90))[0]).toMatchObject({ state: 'overdue', dueInDays: 0 });
    expect(keyAges(keys, policy, after(95))[0]).toMatchObject({ state: 'overdue', dueInDays: -5, ageDays: 95 });
  });

  test('the keyring document keeps its policy through parsing', () => {
    const doc = parseKeyringDocument({ format: 'prisma-column-encryption/keyring', version: 1, keys: [], policy: { index: { maxAgeDays: 365 } } }, 'x');
    expect(doc.policy).toEqual({ index: { maxAgeDays: 365 } });
    expect(() => parseKeyringDocument({ format: 'prisma-column-encryption/keyring', version: 1, keys: [], policy: { data: {} } }, 'x')).toThrow(/"policy".data/);
  });
});

describe('keys policy / list / check / loadKeyring warning (CLI in-process)', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  function cli(file: string, now: Date) {
    return async (...args: string[]): Promise<{ out: string; code: number; error?: Error }> => {
      let out = '';
      process.exitCode = 0;
      const program = new Command('prisma-column-encryption').exitOverride().configureOutput({ writeErr: () => undefined });
      registerKeyCommands(program, { env: { PCE_KEYRING_FILE: file }, write: (t) => void (out += t), logger: captureLogger().logger, now: () => now });
      const error = await program.parseAsync(['node', 'x', ...args]).then(() => undefined, (e: Error) => e);
      const code = Number(process.exitCode ?? 0);
      process.exitCode = 0;
      return { out, code, ...(error ? { error } : {}) };
    };
  }

  /** Keys created at T0 (the file is edited: `keys generate` stamps the real time). */
  async function keyringAtT0(name: string): Promise<string> {
    const file = dir.file(`${name}.json`);
    const run = cli(file, T0);
    await run('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd1');
    await run('keys', 'generate', '--purpose', 'index', '--local', '--id', 'i1');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { keys: Array<{ createdAt: string }> };
    for (const k of doc.keys) k.createdAt = T0.toISOString();
    writeFileSync(file, JSON.stringify(doc));
    return file;
  }

  test('without a policy, check fails with what to do; policy sets it and later commands keep it', async () => {
    const file = await keyringAtT0('p1');
    const run = cli(file, after(30));
    const none = await run('keys', 'check');
    expect(none.error?.message).toMatch(/no rotation policy: set one with `keys policy/);
    expect((await run('keys', 'policy', '--data-max-age-days', '90', '--index-max-age-days', '365')).out).toBe('rotation policy: data keys at most 90 days primary, index keys at most 365 days primary\n');
    await run('keys', 'generate', '--purpose', 'data', '--local', '--id', 'd2');
    await run('keys', 'promote', 'd2');
    expect(JSON.parse(readFileSync(file, 'utf8')).policy).toEqual({ data: { maxAgeDays: 90 }, index: { maxAgeDays: 365 } });
    expect((await run('keys', 'policy', '--data-max-age-days', 'x')).error?.message).toMatch(/whole days/);
    await run('keys', 'policy', '--clear');
    expect(JSON.parse(readFileSync(file, 'utf8')).policy).toBeUndefined();
  });

  test('list shows each key age against the policy; check exits 0, then 2 with the steps once a primary is overdue', async () => {
    const file = await keyringAtT0('p2');
    await cli(file, T0)('keys', 'policy', '--data-max-age-days', '90', '--index-max-age-days', '365');

    const early = cli(file, after(10));
    const table = (await early('keys', 'list')).out.split('\n');
    expect(table[0]).toMatch(/\bAGE$/);
    expect(table[1]).toMatch(/^d1 .* 10d \(max 90d, rotate in 80d\)$/);
    expect(table).toContain('rotation policy: data keys at most 90 days primary, index keys at most 365 days primary');
    expect(await early('keys', 'check')).toMatchObject({ code: 0, out: 'OK: no primary key is past the rotation policy\n' });
    const soon = await cli(file, after(80))('keys', 'check');
    expect(soon).toMatchObject({ code: 0, out: expect.stringContaining('due soon: primary data key d1: 80d (max 90d, rotate in 10d)') });

    const late = cli(file, after(100));
    const listed = JSON.parse((await late('keys', 'list', '--json')).out) as ListOutput;
    expect(listed.policy).toEqual({ data: { maxAgeDays: 90 }, index: { maxAgeDays: 365 } });
    expect(listed.keys.map((k) => [k.id, k.rotation.state, k.rotation.ageDays, k.rotation.dueInDays])).toEqual([
      ['d1', 'overdue', 100, -10],
      ['i1', 'ok', 100, 265],
    ]);
    const check = await late('keys', 'check');
    expect(check.code).toBe(EXIT_ROTATION_DUE);
    expect(check.out).toMatch(/^OVERDUE: primary data key d1: 100d \(max 90d, OVERDUE by 10d\); rotate it:\n {2}prisma-column-encryption keys generate --purpose data/);
    expect(check.out).toContain('keys retire d1');
    const json = JSON.parse((await late('keys', 'check', '--json')).out) as CheckOutput;
    expect(json).toMatchObject({ ok: false, overdue: [expect.objectContaining({ id: 'd1', state: 'overdue' })], dueSoon: [] });
    expect(json.steps.d1).toHaveLength(4);
  });

  test('loadKeyring logs a warning event for an overdue primary key, and none for a key within its policy', async () => {
    const file = await keyringAtT0('p3');
    await cli(file, T0)('keys', 'policy', '--data-max-age-days', '1', '--index-max-age-days', '36500');
    const log = captureLogger();
    await loadKeyring({ file, logger: log.logger });
    const warnings = log.events().filter((e) => e.event === 'pce.key.rotation_overdue');
    expect(warnings).toEqual([expect.objectContaining({ level: 40, keyId: 'd1', purpose: 'data', maxAgeDays: 1 })]);
  });
});
