import { Command, Option } from 'commander';
import type { Logger } from 'pino';
import { createAuditLog, defaultLogger, type AuditLog } from '../audit/auditLog';
import { KeyringError } from '../errors';
import { wrapperLookup } from '../keys/entryBytes';
import type { GcpKmsOptions } from '../keys/gcpKms';
import { isWrapped, readKeyringFile, withKeyringLock, writeKeyringFile, type KeyEntry, type KeyringDocument } from '../keys/keyringFile';
import { KeySourceError } from '../keys/keySourceError';
import { keyUsage, type FieldKeyCounts } from '../keys/keyUsage';
import type { KeyWrappers } from '../keys/keyWrapper';
import { checkRetirable, findKey, generateKey, KeyInUseError, promoteKey, retireKey, rewrapKeys, type LifecycleContext } from '../keys/lifecycle';
import { defaultWrappers } from '../keys/loadKeyring';
import { KMS_KINDS, type KeyPurpose, type KmsKind } from '../keys/keyMaterial';
import { retryPolicy, type RetryPolicy } from '../keys/retry';
import { collectStatus } from '../migrate/status';
import { databaseUrl, loadEncryptionSchema, openDatabase } from './cliContext';

/** Where `keys retire` gets its counts: the database and the Prisma schema whose encrypted fields to scan. */
export interface UsageSource {
  readonly databaseUrl?: string;
  readonly schema?: string;
  readonly config?: string;
  readonly env: NodeJS.ProcessEnv;
}

/** What the key commands need from the outside world; tests replace parts of it. */
export interface KeyCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  /** Human or JSON output (stdout by default). Audit events go to `logger`, not here. */
  readonly write: (text: string) => void;
  /** Audit log destination; by default JSON lines on stderr. */
  readonly logger?: Logger;
  readonly gcpKms?: GcpKmsOptions;
  readonly wrappers?: KeyWrappers;
  readonly retry?: Partial<RetryPolicy>;
  /** Counts stored values per key for `retire`. Default: scans the database (migrator status). */
  readonly countUsage: (source: UsageSource) => Promise<readonly FieldKeyCounts[]>;
}

interface CommonOptions {
  keyring?: string;
  json?: boolean;
}

/** `keys generate | list | promote | retire | rewrap` (issue 4). */
export function registerKeyCommands(program: Command, overrides: Partial<KeyCommandDeps> = {}): void {
  const deps: KeyCommandDeps = {
    env: process.env,
    write: (text) => process.stdout.write(text),
    countUsage: countUsageFromDatabase,
    ...overrides,
  };
  const keys = program.command('keys').description('Manage encryption keys: generate, list, promote, retire, re-wrap');
  let audit: AuditLog | undefined;
  const auditLog = () => (audit ??= createAuditLog(deps.logger ?? defaultLogger()));

  common(keys.command('generate'), deps)
    .description('Generate a data or index key, wrapped by a KMS key or (development only) stored locally')
    .addOption(new Option('--purpose <purpose>', 'what the key is for').choices(['data', 'index']).makeOptionMandatory())
    .option('--local', 'store the key in the clear in the keyring file (development and tests only)')
    .option('--kms-key <name>', 'Cloud KMS key: projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> (default: env PCE_KMS_KEY)')
    .addOption(new Option('--kms <source>', 'key-management service that wraps the key').choices(KMS_KINDS).default('gcp-kms'))
    .option('--id <id>', 'key id (default: d-/i- and 6 random hex digits)')
    .option('--primary', 'make it the primary key for its purpose (the first key of a purpose always is)')
    .action(async (opts: CommonOptions & { purpose: KeyPurpose; local?: boolean; kmsKey?: string; kms: KmsKind; id?: string; primary?: boolean }) => {
      const kmsKeyName = opts.kmsKey ?? nonEmpty(deps.env.PCE_KMS_KEY);
      if (opts.local && opts.kmsKey) throw new KeyringError(undefined, 'give either --local or --kms-key, not both');
      if (!opts.local && !kmsKeyName) throw new KeyringError(undefined, 'give --kms-key <name> (or set PCE_KMS_KEY), or --local for a development key');
      const path = keyringPath(opts, deps);
      const source = opts.local ? ({ kind: 'local' } as const) : { kind: opts.kms, kmsKeyName: kmsKeyName! };
      const result = await withKeyringLock(path, async () => {
        const doc = await readKeyringFile(path, { allowMissing: true });
        const generated = await withContext(deps, auditLog, source.kind === 'local' ? [] : [source.kind], (ctx) =>
          generateKey(doc, { purpose: opts.purpose, source, id: opts.id, primary: opts.primary }, ctx),
        );
        await writeKeyringFile(path, generated.doc);
        return generated;
      });
      auditLog().keyGenerated(result.entry.id, result.entry.purpose, result.entry.source);
      if (result.primaryChange) auditLog().primaryChanged(result.primaryChange.purpose, result.primaryChange.from, result.primaryChange.to);
      emit(deps, opts, { key: publicEntry(result.entry), primaryChange: result.primaryChange ?? null }, () => [
        `generated ${result.entry.purpose} key ${result.entry.id} (${sourceText(result.entry)}), fingerprint ${result.entry.fingerprint}, status ${result.entry.status}`,
        ...(result.primaryChange ? [`primary ${result.primaryChange.purpose} key: ${result.primaryChange.from ?? '(none)'} -> ${result.primaryChange.to}`] : []),
        ...(result.entry.source === 'local' ? ['note: a local key is stored in the clear in the keyring file; use --kms-key in production'] : []),
        `keyring: ${path}`,
      ]);
    });

  common(keys.command('list'), deps)
    .description('List keys: id, purpose, source, status, fingerprint and KMS key version (never key material)')
    .action(async (opts: CommonOptions) => {
      const doc = await readKeyringFile(keyringPath(opts, deps));
      emit(deps, opts, { keys: doc.keys.map(publicEntry) }, () => table(doc));
    });

  common(keys.command('promote'), deps)
    .description('Make a key the primary of its purpose; the previous primary stays active for reading')
    .argument('<id>', 'key id')
    .action(async (id: string, opts: CommonOptions) => {
      const path = keyringPath(opts, deps);
      const { doc, change } = await withKeyringLock(path, async () => {
        const promoted = promoteKey(await readKeyringFile(path), id);
        if (promoted.change) await writeKeyringFile(path, promoted.doc);
        return promoted;
      });
      if (change) auditLog().primaryChanged(change.purpose, change.from, change.to);
      const purpose = findKey(doc, id)!.purpose;
      emit(deps, opts, { changed: change !== undefined, purpose, from: change?.from ?? id, to: id }, () => [
        change ? `primary ${purpose} key: ${change.from ?? '(none)'} -> ${id}` : `${id} is already the primary ${purpose} key`,
      ]);
    });

  common(keys.command('retire'), deps)
    .description('Retire a key so it is no longer loaded; refused while stored values still use it')
    .argument('<id>', 'key id')
    .option('--database-url <url>', 'database to check for values still using the key (default: DATABASE_URL)')
    .option('--schema <path>', 'Prisma schema file or folder listing the encrypted fields (default: as Prisma finds it)')
    .option('--config <path>', 'prisma.config.ts to read the schema path and datasource URL from')
    .action(async (id: string, opts: CommonOptions & { databaseUrl?: string; schema?: string; config?: string }) => {
      const path = keyringPath(opts, deps);
      const entry = await withKeyringLock(path, async () => {
        const before = await readKeyringFile(path);
        const retirable = checkRetirable(before, id);
        if (!retirable) return undefined;
        const counts = await deps.countUsage({ databaseUrl: opts.databaseUrl, schema: opts.schema, config: opts.config, env: deps.env });
        const usage = keyUsage(counts, id, retirable.purpose);
        try {
          await writeKeyringFile(path, retireKey(before, id, usage).doc);
        } catch (error) {
          if (!(error instanceof KeyInUseError)) throw error;
          auditLog().retireRefused(id, usage.values);
          // JSON callers get the counts on stdout; everyone gets the error (stderr, exit code 1).
          if (opts.json) emit(deps, opts, { retired: false, keyId: id, values: usage.values, fields: usage.fields, reason: error.message }, () => []);
          throw error;
        }
        return retirable;
      });
      if (!entry) {
        emit(deps, opts, { retired: true, changed: false, keyId: id, values: 0, fields: [] }, () => [`${id} is already retired`]);
        return;
      }
      auditLog().keyRetired(id);
      emit(deps, opts, { retired: true, changed: true, keyId: id, values: 0, fields: [] }, () => [
        `retired ${entry.purpose} key ${id}: no stored value uses it; it is no longer loaded`,
      ]);
    });

  common(keys.command('rewrap'), deps)
    .description('Re-wrap every KMS-wrapped key under the current primary version of its KMS key (after a KMS key rotation)')
    .option('--kms-key <name>', 'move all wrapped keys to this Cloud KMS key instead')
    .action(async (opts: CommonOptions & { kmsKey?: string }) => {
      const path = keyringPath(opts, deps);
      const results = await withKeyringLock(path, async () => {
        const before = await readKeyringFile(path);
        const kinds = [...new Set(before.keys.filter(isWrapped).map((k) => k.source))];
        const rewrapped = await withContext(deps, auditLog, kinds, (ctx) => rewrapKeys(before, ctx, { kmsKeyName: opts.kmsKey }));
        await writeKeyringFile(path, rewrapped.doc);
        return rewrapped.results;
      });
      for (const r of results) auditLog().keyRewrapped(r.id, r.fromVersion, r.toVersion);
      const versions = [...new Set(results.map((r) => r.toVersion))];
      auditLog().rewrapDone(results.length, versions.length === 1 ? versions[0] : undefined);
      emit(deps, opts, { rewrapped: results }, () => [
        ...results.map((r) => `${r.id}: ${shortVersion(r.fromVersion)} -> ${shortVersion(r.toVersion)}${r.toVersion === r.fromVersion ? ' (unchanged)' : ''}`),
        `re-wrapped ${results.length} key${results.length === 1 ? '' : 's'}`,
      ]);
    });
}

function common(cmd: Command, deps: KeyCommandDeps): Command {
  return cmd
    .option('--keyring <file>', `keyring file (default: env PCE_KEYRING_FILE${deps.env.PCE_KEYRING_FILE ? `, now ${deps.env.PCE_KEYRING_FILE}` : ''})`)
    .option('--json', 'print JSON instead of text');
}

function keyringPath(opts: CommonOptions, deps: KeyCommandDeps): string {
  const path = opts.keyring ?? nonEmpty(deps.env.PCE_KEYRING_FILE);
  if (!path) throw new KeyringError(undefined, 'no keyring file: pass --keyring <file> or set PCE_KEYRING_FILE');
  return path;
}

/** Runs a lifecycle step with wrappers for the sources it needs, closing the ones made here. */
async function withContext<T>(
  deps: KeyCommandDeps,
  audit: () => AuditLog,
  kinds: readonly KmsKind[],
  run: (ctx: LifecycleContext) => Promise<T>,
): Promise<T> {
  const { wrappers, close } = defaultWrappers({ wrappers: deps.wrappers, gcpKms: deps.gcpKms, env: deps.env }, kinds);
  const ctx: LifecycleContext = {
    wrappers: wrapperLookup(wrappers),
    retry: retryPolicy(deps.retry),
    onRetry: (e, attempt, delay) => audit().kmsRetry(e.keyId!, e.operation, e.failure, attempt, delay),
  };
  try {
    return await run(ctx);
  } catch (error) {
    if (error instanceof KeySourceError) audit().kmsFailure(error.keyId!, error.operation, error.failure, error.attempts);
    throw error;
  } finally {
    await close();
  }
}

function emit(deps: KeyCommandDeps, opts: CommonOptions, json: unknown, human: () => string[]): void {
  deps.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${human().join('\n')}\n`);
}

/** What may be shown about a key: everything but the key or its wrapped bytes. */
function publicEntry(entry: KeyEntry) {
  return {
    id: entry.id,
    purpose: entry.purpose,
    status: entry.status,
    source: entry.source,
    fingerprint: entry.fingerprint ?? null,
    kmsKeyName: isWrapped(entry) ? entry.kmsKeyName : null,
    kmsKeyVersion: isWrapped(entry) ? entry.kmsKeyVersion : null,
    createdAt: entry.createdAt,
    ...(entry.retiredAt ? { retiredAt: entry.retiredAt } : {}),
    ...(isWrapped(entry) && entry.rewrappedAt ? { rewrappedAt: entry.rewrappedAt } : {}),
  };
}

function sourceText(entry: KeyEntry): string {
  return isWrapped(entry) ? `${entry.source}, ${entry.kmsKeyVersion}` : 'local';
}

/** `.../cryptoKeys/k/cryptoKeyVersions/3` -> `k v3`; other formats are shown whole. */
function shortVersion(version: string): string {
  const m = /cryptoKeys\/([^/]+)\/cryptoKeyVersions\/(\d+)$/.exec(version);
  return m ? `${m[1]} v${m[2]}` : version;
}

function table(doc: KeyringDocument): string[] {
  if (doc.keys.length === 0) return ['no keys (create one with `keys generate`)'];
  const header = ['ID', 'PURPOSE', 'STATUS', 'SOURCE', 'FINGERPRINT', 'KMS KEY VERSION', 'CREATED'];
  const rows = doc.keys.map((k) => [
    k.id,
    k.purpose,
    k.status,
    k.source,
    k.fingerprint ?? '-',
    isWrapped(k) ? shortVersion(k.kmsKeyVersion) : '-',
    k.createdAt.slice(0, 10),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const kmsKeys = [...new Set(doc.keys.filter(isWrapped).map((k) => k.kmsKeyName))];
  return [line(header), ...rows.map(line), ...kmsKeys.map((name) => `KMS key: ${name}`)];
}

/**
 * Default usage source: the migrator's status scan (values grouped by the key id in their
 * header, and blind indexes by their prefix) over every encrypted field of the schema.
 */
async function countUsageFromDatabase(source: UsageSource): Promise<readonly FieldKeyCounts[]> {
  const options = { schema: source.schema, config: source.config, databaseUrl: source.databaseUrl };
  const loaded = await loadEncryptionSchema(options);
  const conn = await openDatabase(databaseUrl(options, loaded, source.env));
  try {
    return await collectStatus(conn, loaded.schema);
  } finally {
    await conn.close();
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
