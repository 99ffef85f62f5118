import type { Command } from 'commander';
import type { MigrationMode } from '../migrate/migrator';
import type { CommonCliOptions } from './cliContext';
import { runMigrationCommand } from './migrationCommand';
import { nonNegativeInt, positiveInt } from './intArguments';
import { commonOptions, type RunOptions, type ScopeOptions, type VerifyCliOptions } from './migrateOptions';
import { runStatus } from './statusCommand';
import { runVerify } from './verifyCommand';

/** `rotate`, `encrypt-existing`, `status`, `verify` (issue 6). */
export function registerMigrateCommands(program: Command): void {
  const migration = (name: MigrationMode, description: string): Command =>
    commonOptions(program.command(name).description(description))
      .option('--batch-size <n>', 'rows per batch and transaction', positiveInt, 500)
      .option('--concurrency <n>', 'batches in flight in this process, each on its own connection', positiveInt, 2)
      .option('--threads <n>', 'worker threads for encryption (default: none on the native crypto backend, else one per batch in flight up to the cores)', nonNegativeInt)
      .option('--dry-run', 'read and plan, write nothing')
      .option('--pause <ms>', 'pause between batches, to spare a busy database', nonNegativeInt)
      .option('--max-batches <n>', 'stop after this many batches (rerun to continue; exit code 3)', positiveInt)
      .option('--lock-timeout <ms>', 'longest wait for a row lock the application holds, per statement', positiveInt, 2000);
  migration('rotate', 'Re-encrypt values not under the primary data key and recompute blind indexes not under the primary index key')
    .option('--reindex', 'recompute every blind index and write those that differ (after a change to normalize)')
    .action((opts: RunOptions) => runMigrationCommand('rotate', opts));
  migration('encrypt-existing', 'Encrypt legacy plaintext in annotated columns and fill their blind indexes').action((opts: RunOptions) =>
    runMigrationCommand('encrypt-existing', opts),
  );

  migration(
    'convert-pfe',
    'Rewrite prisma-field-encryption values (fields marked legacy: pfe) as this library\'s envelope and replace their SHA-256 hashes with blind indexes; ' +
      'reads its keys from PRISMA_FIELD_ENCRYPTION_KEY and PRISMA_FIELD_DECRYPTION_KEYS',
  ).action((opts: RunOptions) => runMigrationCommand('convert-pfe', opts));

  commonOptions(program.command('status').description('Count values per key id, plaintext and nulls for each annotated field (with keys, the primary ones are marked)'))
    .action((opts: CommonCliOptions & ScopeOptions) => runStatus(opts));

  commonOptions(program.command('verify').description('Decrypt every value and check every blind index; exit code 1 when any fails'))
    .option('--batch-size <n>', 'rows read per query', positiveInt, 1000)
    .option('--max-failures <n>', 'failures listed in the report (all are counted and logged)', positiveInt, 1000)
    .action((opts: VerifyCliOptions) => runVerify(opts));
}
