import { createSecretKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import pino from 'pino';
import { localKeys, openAuditChain, withAuditContext, currentAuditContext, ConfigurationError } from '../../src';
import { registerAuditCommands } from '../../src/cli/auditCommands';
import { createHarness, providers, type Harness } from '../support/clients';
import { testWrapKey } from '../support/keys';
import { captureLogger, tempDir } from '../keys/support';

const dataKey = randomBytes(32).toString('base64');
const indexKey = randomBytes(32).toString('base64');
/** The test schema has subject models: a client over it needs a wrap key. */
const wrapKey = testWrapKey();
const keys = () => localKeys({ data: [{ id: 'd1', key: dataKey }], index: [{ id: 'i1', key: indexKey }], wrap: [wrapKey] });
const accessEvents = (events: Array<Record<string, unknown>>) => events.filter((e) => e.event === 'pce.data.access');

describe.each(providers())('data-access audit trail on %s', (provider) => {
  let h: Harness;
  const log = captureLogger();
  const alice = { actor: 'user:alice', purpose: 'support-ticket-4711', requestId: 'req-1' };
  beforeAll(async () => {
    h = await createHarness(provider, { keys: keys(), logger: log.logger, accessLog: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  test('one event per query touching encrypted fields: fields read, written, searched, rows, actor and purpose', async () => {
    const before = accessEvents(log.events()).length;
    const user = await withAuditContext(alice, async () => {
      const u = await h.prisma.user.create({ data: { email: 'ada@example.org', name: 'Ada Lovelace', profile: { create: { birthDate: '1815-12-10', birthPlace: 'London' } } } });
      await h.prisma.user.findUnique({ where: { emailIndex: 'ADA@example.org' }, include: { profile: true } });
      await h.prisma.user.findMany({ select: { id: true, nickname: true } }); // no encrypted field: no event
      await h.prisma.user.updateMany({ where: { email: 'ada@example.org' }, data: { phone: '+44 1' } });
      return u;
    });
    const events = accessEvents(log.events()).slice(before);
    expect(events.map((e) => [e.model, e.operation])).toEqual([
      ['User', 'create'],
      ['User', 'findUnique'],
      ['User', 'updateMany'],
    ]);
    expect(events[0]).toMatchObject({ written: expect.arrayContaining(['User.email', 'User.name', 'Profile.birthPlace']), read: expect.arrayContaining(['User.email', 'User.name']), searched: [], rows: 1, ...alice });
    expect(events[1]).toMatchObject({ read: expect.arrayContaining(['User.email', 'User.name', 'Profile.birthPlace']), searched: ['User.email'], written: [], rows: 1 });
    expect(events[2]).toMatchObject({ written: ['User.phone'], searched: ['User.email'], read: [], rows: 1 });
    expect(user.email).toBe('ada@example.org');
  });

  test('outside withAuditContext the actor is null; count and deleteMany are recorded with their row counts', async () => {
    await h.prisma.user.createMany({ data: [{ email: 'gone1@example.org', phone: '+1 999' }, { email: 'gone2@example.org', phone: '+1 999' }] });
    const before = accessEvents(log.events()).length;
    expect(await h.prisma.user.count({ where: { phone: '+1999' } })).toBe(2);
    await h.prisma.user.deleteMany({ where: { phone: '+1 999' } });
    const [counted, event] = accessEvents(log.events()).slice(before);
    expect(counted).toMatchObject({ model: 'User', operation: 'count', rows: 2, searched: ['User.phone'], read: [] });
    expect(event).toMatchObject({ model: 'User', operation: 'deleteMany', rows: 2, actor: null, purpose: null, requestId: null, searched: ['User.phone'] });
  });

  test('aggregate, groupBy and count report the rows they counted, or no rows at all when the result does not say', async () => {
    await h.prisma.user.createMany({
      data: [
        { email: 'agg1@example.org', phone: '+1 777', nickname: 'a', karma: 1 },
        { email: 'agg2@example.org', phone: '+1 777', nickname: 'a', karma: 2 },
        { email: 'agg3@example.org', phone: '+1 777', nickname: 'b', karma: 3 },
      ],
    });
    const where = { phone: '+1777' };
    const before = accessEvents(log.events()).length;
    expect((await h.prisma.user.aggregate({ where, _count: { _all: true }, _sum: { karma: true } }))._count._all).toBe(3);
    expect((await h.prisma.user.aggregate({ where, _count: true }))._count).toBe(3);
    await h.prisma.user.aggregate({ where, _max: { karma: true } });
    const groups = await h.prisma.user.groupBy({ by: ['nickname'], where, _count: { _all: true } });
    expect(groups).toHaveLength(2);
    await h.prisma.user.groupBy({ by: ['nickname'], where, _sum: { karma: true } });
    expect(await h.prisma.user.count({ where, select: { _all: true, nickname: true } })).toEqual({ _all: 3, nickname: 3 });
    await h.prisma.user.count({ where, select: { nickname: true } });
    const events = accessEvents(log.events()).slice(before);
    expect(events.map((e) => [e.operation, e.searched, e.rows])).toEqual([
      ['aggregate', ['User.phone'], 3],
      ['aggregate', ['User.phone'], 3],
      ['aggregate', ['User.phone'], undefined],
      ['groupBy', ['User.phone'], 3],
      ['groupBy', ['User.phone'], undefined],
      ['count', ['User.phone'], 3],
      ['count', ['User.phone'], undefined],
    ]);
    for (const e of events.filter((e) => e.rows === undefined)) expect(Object.keys(e)).not.toContain('rows');
    await h.prisma.user.deleteMany({ where });
  });

  test('the context follows queries into interactive and batch transactions, and inner contexts replace outer ones', async () => {
    const before = accessEvents(log.events()).length;
    await withAuditContext({ actor: 'job:nightly', purpose: 'export' }, async () => {
      await h.prisma.$transaction(async (tx) => {
        await tx.user.findMany({ where: { email: 'ada@example.org' } });
        await withAuditContext({ actor: 'user:bob', purpose: 'audit' }, () => tx.user.findFirst({ where: { phone: '+44 1' } }));
      });
      await h.prisma.$transaction([h.prisma.user.findMany({ where: { email: 'ada@example.org' } })]);
      expect(currentAuditContext()).toEqual({ actor: 'job:nightly', purpose: 'export' });
    });
    const actors = accessEvents(log.events()).slice(before).map((e) => e.actor);
    expect(actors).toEqual(['job:nightly', 'user:bob', 'job:nightly']);
    expect(currentAuditContext()).toBeUndefined();
  });

  test('a search or write that fails once sent is recorded too (rows 0, failed): *OrThrow finding nothing, update of no row', async () => {
    const before = accessEvents(log.events()).length;
    await withAuditContext(alice, async () => {
      await expect(h.prisma.user.findUniqueOrThrow({ where: { emailIndex: 'nobody@example.org' } })).rejects.toThrow();
      await expect(h.prisma.user.findFirstOrThrow({ where: { phone: '+0 000' } })).rejects.toThrow();
      await expect(h.prisma.user.update({ where: { emailIndex: 'nobody@example.org' }, data: { name: 'Nobody' } })).rejects.toThrow();
    });
    const events = accessEvents(log.events()).slice(before);
    expect(events).toEqual([
      expect.objectContaining({ operation: 'findUniqueOrThrow', searched: ['User.email'], read: [], rows: 0, failed: true, actor: alice.actor }),
      expect.objectContaining({ operation: 'findFirstOrThrow', searched: ['User.phone'], rows: 0, failed: true }),
      expect.objectContaining({ operation: 'update', searched: ['User.email'], written: ['User.name'], rows: 0, failed: true }),
    ]);
    expect(JSON.stringify(events)).not.toMatch(/nobody|Nobody|\+0 000/);
  });

  test('a bad context is refused before anything runs', () => {
    expect(() => withAuditContext({ actor: '', purpose: 'x' }, () => 1)).toThrow(ConfigurationError);
    expect(() => withAuditContext({ actor: 'a', purpose: 7 as unknown as string }, () => 1)).toThrow(/purpose must be a non-empty string/);
    expect(() => withAuditContext(null as never, () => 1)).toThrow(/actor/);
  });

  test('no event ever carries a value, ciphertext, blind index or key', async () => {
    const secrets = ['Grace Hopper', 'grace@navy.mil', '+1 202 555 0143', 'Arlington'];
    await withAuditContext(alice, async () => {
      const g = await h.prisma.user.create({ data: { email: secrets[1]!, name: secrets[0]!, phone: secrets[2]! } });
      await h.prisma.profile.create({ data: { userId: g.id, birthDate: '1906-12-09', birthPlace: secrets[3]! } });
      await h.prisma.user.findMany({ where: { OR: [{ email: secrets[1]! }, { phone: secrets[2]! }] }, include: { profile: true } });
      await h.prisma.user.update({ where: { emailIndex: secrets[1]! }, data: { name: `${secrets[0]} Jr.` } });
      await h.prisma.profile.findMany({ where: { birthPlace: secrets[3]! } });
    });
    const stored = await h.sql(`SELECT * FROM ${h.q('User')}`);
    const storedProfiles = await h.sql(`SELECT * FROM ${h.q('Profile')}`);
    const rawValues = [...stored, ...storedProfiles].flatMap((r) => Object.values(r)).filter((v): v is string => typeof v === 'string' && /^(pce:|i1:)/.test(v));
    expect(rawValues.length).toBeGreaterThan(8);
    const text = log.text();
    expect(text).toContain('pce.data.access');
    for (const needle of [...secrets, ...rawValues, dataKey, indexKey, ...rawValues.map((v) => v.split(':').pop()!)]) expect(text).not.toContain(needle);
  });
});

describe('data-access trail in a chained file, checked by `audit verify`', () => {
  let h: Harness;
  const dir = tempDir();
  const file = dir.file('access.jsonl');
  const chainKey = randomBytes(32).toString('base64');
  const out: string[] = [];
  let chainId = '';
  beforeAll(async () => {
    const chain = openAuditChain(file, createSecretKey(Buffer.from(chainKey, 'base64')));
    chainId = chain.head.chain;
    h = await createHarness('postgres', { keys: keys(), accessLog: { logger: pino({ base: null }, chain) } });
  });
  afterAll(async () => {
    await h?.close();
    dir.remove();
  });

  async function verifyCli(...args: string[]): Promise<{ code: number; out: string }> {
    out.length = 0;
    process.exitCode = 0;
    const program = new Command('prisma-column-encryption').exitOverride();
    registerAuditCommands(program, { PCE_AUDIT_KEY: chainKey }, (t) => out.push(t) > 0);
    await program.parseAsync(['node', 'x', 'audit', 'verify', file, ...args]);
    const code = Number(process.exitCode ?? 0);
    process.exitCode = 0;
    return { code, out: out.join('') };
  }

  test('an intact trail verifies; an edited one fails with the line', async () => {
    await withAuditContext({ actor: 'user:alice', purpose: 'test' }, async () => {
      await h.prisma.user.create({ data: { email: 'chain@example.org' } });
      for (let i = 0; i < 3; i++) await h.prisma.user.findUnique({ where: { emailIndex: 'chain@example.org' } });
    });
    const ok = await verifyCli();
    expect(ok).toEqual({ code: 0, out: expect.stringMatching(new RegExp(`OK, 4 records verified; chain ${chainId}, last record 4`)) });
    const json = await verifyCli('--json');
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, lines: 4, chain: chainId, head: { seq: 4 } });
    expect((await verifyCli('--expect-chain', chainId)).code).toBe(0);
    expect(await verifyCli('--expect-chain', 'a'.repeat(32))).toEqual({ code: 1, out: expect.stringMatching(/line 1: swapped: the file holds chain [0-9a-f]{32}, not the expected chain a{32}/) });
    const head = (JSON.parse(json.out) as { head: { mac: string } }).head;
    expect((await verifyCli('--expect-last-seq', '4', '--expect-last-mac', head.mac)).code).toBe(0);
    const other = await verifyCli('--expect-last-seq', '4', '--expect-last-mac', 'f'.repeat(64));
    expect(other).toEqual({ code: 1, out: expect.stringMatching(/line 4: replaced/) });

    const lines = readFileSync(file, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"user:alice"', '"user:mallory"');
    writeFileSync(file, lines.join('\n'));
    const edited = await verifyCli();
    expect(edited.code).toBe(1);
    expect(edited.out).toMatch(/TAMPERED/);
    expect(edited.out).toMatch(/line 2: edited/);
    expect((await verifyCli('--expect-last-seq', '6')).out).toMatch(/truncated/);
  });
});
