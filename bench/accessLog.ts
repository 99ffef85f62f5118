import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { encryptedFields } from '../generated/postgres/encryption';
import { columnEncryption, openAuditChain, withAuditContext, type Keyring } from '../dist';
import type { Experiment } from './beyondFloor';
import type { Clients, Client } from './clients';
import { runRounds } from './support/rounds';
import { summarize } from './support/stats';

/** The target for the data-access trail: at most this much slower than the extension alone. */
export const ACCESS_LOG_TARGET = 0.05;

/**
 * findMany 100 x 3 fields through the extension, without and with the data-access trail written
 * to a tamper-evident chained file (one HMAC and one synchronous append per query, the costliest
 * set-up), inside withAuditContext. Rounds alternate the two, as the main workloads do.
 */
export async function measureAccessLog(clients: Clients, keyring: Keyring, scale: number): Promise<Experiment> {
  const dir = mkdtempSync(join(tmpdir(), 'pce-bench-audit-'));
  const chain = openAuditChain(join(dir, 'access.jsonl'), createSecretKey(randomBytes(32)));
  try {
    const audited = clients.plain.$extends(
      columnEncryption({ fields: encryptedFields, keys: keyring, logger: pino({ level: 'silent' }), accessLog: { logger: pino({ base: null }, chain) } }),
    ) as unknown as Client;
    const args = { where: { nickname: 'seed' }, take: 100, orderBy: { karma: 'asc' as const } };
    const context = { actor: 'user:bench', purpose: 'benchmark' };
    const r = (n: number) => Math.max(3, Math.round(n * scale));
    const samples = await runRounds(
      [
        { name: 'extension', run: () => withAuditContext(context, () => clients.extension.user.findMany(args)) },
        { name: 'audited', run: () => withAuditContext(context, () => audited.user.findMany(args)) },
      ],
      { warmup: r(20), rounds: r(200) },
    );
    return {
      name: 'findMany 100 x 3 fields: extension vs extension + data-access trail (chained file)',
      unit: 'ms',
      baseline: summarize(samples.get('extension')!),
      variant: summarize(samples.get('audited')!),
      note: `${chain.head.seq} chained records written`,
    };
  } finally {
    chain.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
