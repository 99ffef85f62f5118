import type { Command } from 'commander';
import { checkDestroyable, destroyKey, KeyDestroyRefusedError, sharingKmsKeyVersion } from '../keys/destroy';
import { isWrapped, readKeyringFile, writeKeyringFile, type KeyEntry } from '../keys/keyringFile';
import { withKeyringLock } from '../keys/keyringLock';
import type { KeyPurpose } from '../keys/keyMaterial';
import { ALLOW_INSECURE_FLAG } from './cliContext';
import { common, keyringPath, scanKeyUsage, type CommonOptions, type KeyCommandKit } from './keyCommandContext';
import { errorBody, markReported, scanLine, type ErrorBody, type ScanOutput } from './keyOutput';

/**
 * `keys destroy --json`, also on a refusal found by the database scan (then `destroyed: false` and
 * `error` set, exit code 1). `sameKmsKeyVersion`: other entries of the keyring wrapped by the same
 * KMS key version (destroying that version in the KMS would lose them too).
 */
export interface DestroyOutput {
  readonly destroyed: boolean;
  readonly keyId: string;
  readonly purpose: KeyPurpose;
  readonly source: string;
  readonly kmsKeyVersion: string | null;
  readonly sameKmsKeyVersion: readonly string[];
  readonly keyring: string;
  readonly scanned: ScanOutput;
  readonly error: ErrorBody | null;
}

type DestroyOptions = CommonOptions & { databaseUrl?: string; schema?: string; config?: string; allowInsecureConnection?: boolean };

/** `keys destroy <id>`: removes a retired wrap key (an old epoch) from the local keyring file. */
export function registerDestroyCommand(keys: Command, kit: KeyCommandKit): void {
  const { deps, action, emit, auditLog } = kit;
  common(keys.command('destroy'), deps)
    .description('Destroy a retired wrap key (an old epoch): remove its entry from the keyring file; refused while a subject key in the database is still under it')
    .argument('<id>', 'wrap key id')
    .option('--database-url <url>', 'database to check for subject keys still wrapped under the key (default: DATABASE_URL)')
    .option('--schema <path>', 'Prisma schema file or folder with the subject-key table (default: as Prisma finds it)')
    .option('--config <path>', 'prisma.config.ts to read the schema path and datasource URL from')
    .option(...ALLOW_INSECURE_FLAG)
    .action(
      action(async (id: string, opts: DestroyOptions) => {
        const path = keyringPath(opts, deps);
        const out = await withKeyringLock(path, async () => {
          const before = await readKeyringFile(path);
          const entry = checkDestroyable(before, id); // before connecting: no database is needed to refuse these
          const { usage, scanned } = await scanKeyUsage(deps, opts, auditLog().logger, id, 'wrap');
          const result = outputOf(entry, sharingKmsKeyVersion(before, entry), path, scanned);
          try {
            await writeKeyringFile(path, destroyKey(before, id, usage).doc);
          } catch (error) {
            if (!(error instanceof KeyDestroyRefusedError)) throw error;
            if (error.refusal === 'key-in-use') auditLog().destroyRefused(id, usage.values);
            emit(opts, { ...result, destroyed: false, error: errorBody(error) }, () => [scanLine(scanned)]);
            markReported(error);
            throw error;
          }
          return result;
        });
        auditLog().keyDestroyed(out.keyId, out.purpose, out.kmsKeyVersion ?? undefined);
        emit(opts, out, () => destroyLines(out));
      }),
    );
}

function outputOf(entry: KeyEntry, sameVersion: string[], keyring: string, scanned: ScanOutput): DestroyOutput {
  return {
    destroyed: true,
    keyId: entry.id,
    purpose: entry.purpose,
    source: entry.source,
    kmsKeyVersion: isWrapped(entry) ? entry.kmsKeyVersion : null,
    sameKmsKeyVersion: sameVersion,
    keyring,
    scanned,
    error: null,
  };
}

/** What the operator reads: what was done, and what only they can do. */
export function destroyLines(out: DestroyOutput): string[] {
  const lines = [
    scanLine(out.scanned),
    `destroyed ${out.purpose} key ${out.keyId}: no live or pending subject key is under it; its entry is removed from ${out.keyring}`,
    'every other copy of this keyring file (other hosts, secret stores, deploy bundles) and every backup of it still holds the key: destroy those too, or old database backups stay readable with them',
  ];
  if (out.kmsKeyVersion) {
    const others = out.sameKmsKeyVersion;
    lines.push(
      `the entry was wrapped by KMS key version ${out.kmsKeyVersion}: while that version exists, an old copy of the keyring file can still be unwrapped. ` +
        'Destroying the version in the KMS is your step (Cloud KMS: gcloud kms keys versions destroy), once no entry you keep is wrapped by it' +
        (others.length > 0 ? `: ${others.join(', ')} still ${others.length === 1 ? 'is' : 'are'}, so run keys rewrap --skip-retired first` : ''),
    );
  }
  return lines;
}
