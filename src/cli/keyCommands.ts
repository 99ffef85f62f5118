import { Command, Option } from 'commander';
import { createAuditLog, type AuditLog } from '../audit/auditLog';
import { KeyringError } from '../errors';
import type { UnwrapContext } from '../keys/entryBytes';
import { isWrapped, readKeyringFile, writeKeyringFile } from '../keys/keyringFile';
import { withKeyringLock } from '../keys/keyringLock';
import type { KeyUsage } from '../keys/keyUsage';
import { checkRetirable, findKey, generateKey, KeyInUseError, NothingScannedError, promoteKey, reactivateKey, retireKey, rewrapKeys } from '../keys/lifecycle';
import { KEY_PURPOSES, KMS_KINDS, type KeyPurpose, type KmsKind } from '../keys/keyMaterial';
import { envValue } from '../keys/envValue';
import { withKmsSession } from '../keys/kmsSession';
import { keyAges } from '../keys/rotationPolicy';
import { ALLOW_INSECURE_FLAG, cliLogger } from './cliContext';
import { registerDestroyCommand } from './destroyCommand';
import { common, countUsageFromDatabase, keyringPath, scanKeyUsage, type CommonOptions, type KeyCommandDeps, type KeyCommandKit } from './keyCommandContext';
import { registerPolicyCommands } from './policyCommands';
import { registerEpochCommand } from './subjectCommands';
import {
  errorBody,
  generateLines,
  keyTable,
  markReported,
  promoteLines,
  publicEntry,
  reactivateLines,
  retireLines,
  rewrapLines,
  rotationOutput,
  scanLine,
  type GenerateOutput,
  type ListOutput,
  type PromoteOutput,
  type ReactivateOutput,
  type RetireOutput,
  type RewrapOutput,
  type ScanOutput,
  wasReported,
} from './keyOutput';

export type { KeyCommandDeps, UsageScan, UsageSource } from './keyCommandContext';

/** `keys generate | list | promote | retire | reactivate | rewrap | destroy` (issue 4; destroy and rotate-epoch: issue 11). */
export function registerKeyCommands(program: Command, overrides: Partial<KeyCommandDeps> = {}): void {
  const deps: KeyCommandDeps = {
    env: process.env,
    write: (text) => process.stdout.write(text),
    countUsage: countUsageFromDatabase,
    ...overrides,
  };
  const keys = program.command('keys').description('Manage encryption keys: generate, list, promote, retire, reactivate, re-wrap, destroy');
  let audit: AuditLog | undefined;
  // One command runs per process: its options (set by `action`) say where the audit log goes.
  let current: CommonOptions = {};
  const auditLog = () => (audit ??= createAuditLog(deps.logger ?? cliLogger(current, (line) => process.stderr.write(line))));
  const kms = <T>(kinds: readonly KmsKind[], run: (ctx: UnwrapContext) => Promise<T>) =>
    withKmsSession({ wrappers: deps.wrappers, gcpKms: deps.gcpKms, retry: deps.retry, env: deps.env }, kinds, auditLog(), run);
  const emit = (opts: CommonOptions, json: object, human: () => string[]) =>
    deps.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${human().join('\n')}\n`);
  /** With --json, a failure also prints an ErrorOutput on stdout, once (commander passes options second to last). */
  const action =
    <A extends unknown[]>(fn: (...args: A) => Promise<void>) =>
    async (...args: A): Promise<void> => {
      const opts = args[args.length - 2] as CommonOptions;
      current = opts;
      try {
        await fn(...args);
      } catch (error) {
        if (opts.json && !wasReported(error)) deps.write(`${JSON.stringify({ error: errorBody(error) }, null, 2)}\n`);
        markReported(error);
        throw error;
      }
    };

  const kit: KeyCommandKit = { deps, auditLog, emit, action };
  registerPolicyCommands(keys, { env: deps.env, write: deps.write, ...(deps.now ? { now: deps.now } : {}) });
  registerEpochCommand(keys, { env: deps.env, write: deps.write, ...(deps.logger ? { logger: deps.logger } : {}) });

  common(keys.command('generate'), deps)
    .description('Generate a data, index or wrap key, wrapped by a KMS key or (development only) stored locally')
    .addOption(new Option('--purpose <purpose>', 'what the key is for (wrap: wraps per-subject keys; the primary one is the epoch)').choices(KEY_PURPOSES).makeOptionMandatory())
    .option('--local', 'store the key in the clear in the keyring file (development and tests only)')
    .option('--kms-key <name>', 'Cloud KMS key: projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> (default: env PCE_KMS_KEY)')
    .addOption(new Option('--kms <source>', 'key-management service that wraps the key').choices(KMS_KINDS).default('gcp-kms'))
    .option('--id <id>', 'key id (default: d-/i-/w- and 6 random hex digits)')
    .option('--primary', 'make it the primary key for its purpose (the first key of a purpose always is)')
    .addOption(new Option('--protection-level <level>', 'refuse unless the KMS key has this protection level (read from the KMS)').choices(['hsm', 'software', 'external', 'external_vpc']))
    .action(
      action(async (opts: CommonOptions & { purpose: KeyPurpose; local?: boolean; kmsKey?: string; kms: KmsKind; id?: string; primary?: boolean; protectionLevel?: string }) => {
        const kmsKeyName = opts.kmsKey ?? envValue(deps.env.PCE_KMS_KEY);
        if (opts.local && opts.kmsKey) throw new KeyringError(undefined, 'give either --local or --kms-key, not both');
        if (!opts.local && !kmsKeyName) throw new KeyringError(undefined, 'give --kms-key <name> (or set PCE_KMS_KEY), or --local for a development key');
        if (opts.local && opts.protectionLevel) throw new KeyringError(undefined, '--protection-level needs a KMS key: a --local key is stored in the clear');
        const path = keyringPath(opts, deps);
        const source = opts.local ? ({ kind: 'local' } as const) : { kind: opts.kms, kmsKeyName: kmsKeyName! };
        const result = await withKeyringLock(path, async () => {
          const doc = await readKeyringFile(path, { allowMissing: true });
          const generated = await kms(source.kind === 'local' ? [] : [source.kind], (ctx) =>
            generateKey(doc, { purpose: opts.purpose, source, id: opts.id, primary: opts.primary, protectionLevel: opts.protectionLevel?.toUpperCase() }, ctx),
          );
          await writeKeyringFile(path, generated.doc);
          return generated;
        });
        auditLog().keyGenerated(result.entry.id, result.entry.purpose, result.entry.source);
        const change = result.primaryChange ?? null;
        if (change) auditLog().primaryChanged(change.purpose, change.from ?? undefined, change.to);
        const out: GenerateOutput = { key: publicEntry(result.entry), primaryChange: change };
        emit(opts, out, () => generateLines(out, result.entry, path));
      }),
    );

  common(keys.command('list'), deps)
    .description('List keys: id, purpose, source, status, fingerprint and KMS key version (never key material)')
    .action(
      action(async (opts: CommonOptions) => {
        const doc = await readKeyringFile(keyringPath(opts, deps));
        const ages = keyAges(doc.keys, doc.policy, deps.now?.() ?? new Date());
        const out: ListOutput = {
          keys: doc.keys.map((k, i) => ({ ...publicEntry(k), rotation: rotationOutput(ages[i]!) })),
          policy: doc.policy ?? null,
        };
        emit(opts, out, () => keyTable(doc, ages));
      }),
    );

  common(keys.command('promote'), deps)
    .description('Make a key the primary of its purpose; the previous primary stays active for reading')
    .argument('<id>', 'key id')
    .action(
      action(async (id: string, opts: CommonOptions) => {
        const path = keyringPath(opts, deps);
        const { doc, change } = await withKeyringLock(path, async () => {
          const promoted = promoteKey(await readKeyringFile(path), id);
          if (promoted.change) await writeKeyringFile(path, promoted.doc);
          return promoted;
        });
        if (change) auditLog().primaryChanged(change.purpose, change.from ?? undefined, change.to);
        const out: PromoteOutput = { changed: change !== undefined, purpose: findKey(doc, id)!.purpose, from: change?.from ?? null, to: id };
        emit(opts, out, () => promoteLines(out));
      }),
    );

  common(keys.command('retire'), deps)
    .description('Retire a key so it is no longer loaded; refused while stored values still use it')
    .argument('<id>', 'key id')
    .option('--database-url <url>', 'database to check for values still using the key (default: DATABASE_URL)')
    .option('--schema <path>', 'Prisma schema file or folder listing the encrypted fields (default: as Prisma finds it)')
    .option('--config <path>', 'prisma.config.ts to read the schema path and datasource URL from')
    .option(...ALLOW_INSECURE_FLAG)
    .action(
      action(async (id: string, opts: CommonOptions & { databaseUrl?: string; schema?: string; config?: string; allowInsecureConnection?: boolean }) => {
        const path = keyringPath(opts, deps);
        const outcome = await withKeyringLock(path, async () => {
          const before = await readKeyringFile(path);
          const retirable = checkRetirable(before, id);
          if (!retirable) return undefined;
          const { usage, scanned } = await scanKeyUsage(deps, opts, auditLog().logger, id, retirable.purpose);
          try {
            await writeKeyringFile(path, retireKey(before, id, usage).doc);
          } catch (error) {
            if (!(error instanceof KeyInUseError || error instanceof NothingScannedError)) throw error;
            if (error instanceof KeyInUseError) auditLog().retireRefused(id, usage.values);
            emit(opts, refusal(id, usage, scanned, error), () => [scanLine(scanned)]);
            markReported(error);
            throw error;
          }
          return { purpose: retirable.purpose, usage, scanned };
        });
        if (!outcome) {
          const out: RetireOutput = { retired: true, changed: false, keyId: id, values: 0, fields: [], scanned: null, error: null };
          emit(opts, out, () => retireLines(out));
          return;
        }
        auditLog().keyRetired(id);
        const out: RetireOutput = { retired: true, changed: true, keyId: id, values: 0, fields: [], scanned: outcome.scanned, error: null };
        emit(opts, out, () => retireLines(out, outcome.purpose));
      }),
    );

  common(keys.command('reactivate'), deps)
    .description('Undo a retire: the key is loaded (and decrypts) again, as an active key')
    .argument('<id>', 'key id')
    .action(
      action(async (id: string, opts: CommonOptions) => {
        const path = keyringPath(opts, deps);
        const { doc, changed } = await withKeyringLock(path, async () => {
          const before = await readKeyringFile(path);
          const entry = findKey(before, id);
          const kinds = entry && isWrapped(entry) ? [entry.source] : [];
          const result = await kms(kinds, (ctx) => reactivateKey(before, id, ctx));
          if (result.changed) await writeKeyringFile(path, result.doc);
          return result;
        });
        if (changed) auditLog().keyReactivated(id);
        const entry = findKey(doc, id)!;
        const out: ReactivateOutput = { changed, keyId: id, purpose: entry.purpose, status: entry.status };
        emit(opts, out, () => reactivateLines(out));
      }),
    );

  registerDestroyCommand(keys, kit);

  common(keys.command('rewrap'), deps)
    .description('Re-wrap every KMS-wrapped key under the current primary version of its KMS key (after a KMS key rotation)')
    .option('--kms-key <name>', 'move all wrapped keys to this Cloud KMS key instead')
    .option('--skip-retired', 'leave retired keys as they are (say, when the KMS key version they were wrapped with is destroyed)')
    .action(
      action(async (opts: CommonOptions & { kmsKey?: string; skipRetired?: boolean }) => {
        const path = keyringPath(opts, deps);
        const { results, skipped } = await withKeyringLock(path, async () => {
          const before = await readKeyringFile(path);
          const kinds = [...new Set(before.keys.filter(isWrapped).map((k) => k.source))];
          const rewrapped = await kms(kinds, (ctx) => rewrapKeys(before, ctx, { kmsKeyName: opts.kmsKey, skipRetired: opts.skipRetired === true }));
          await writeKeyringFile(path, rewrapped.doc);
          return rewrapped;
        });
        for (const r of results) auditLog().keyRewrapped(r.id, r.fromVersion, r.toVersion);
        const versions = [...new Set(results.map((r) => r.toVersion))];
        auditLog().rewrapDone(results.length, versions.length === 1 ? versions[0] : undefined);
        const out: RewrapOutput = { rewrapped: results, skipped };
        emit(opts, out, () => rewrapLines(out));
      }),
    );
}

function refusal(id: string, usage: KeyUsage, scanned: ScanOutput, error: KeyringError): RetireOutput {
  return { retired: false, changed: false, keyId: id, values: usage.values, fields: usage.fields, scanned, error: errorBody(error) };
}
