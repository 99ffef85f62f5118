import type { Command } from 'commander';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/auditLog';
import { KeyringError } from '../errors';
import type { GcpKmsOptions } from '../keys/gcpKms';
import { keyUsage, type KeyUsage, type StoredSubjectKeyCounts } from '../keys/keyUsage';
import type { KeyPurpose } from '../keys/keyMaterial';
import type { ScanOutput } from './keyOutput';
import type { KeyWrappers } from '../keys/keyWrapper';
import { envValue } from '../keys/envValue';
import type { RetryPolicy } from '../keys/retry';
import { collectStatus, type FieldStatus } from '../migrate/status';
import { openConnection } from '../migrate/openConnection';
import { sqlClientOf } from '../migrate/sqlClientOf';
import { hasSubjectKeyTable, subjectKeyCounts } from '../subjects/subjectKeyCounts';
import { cliLogger, connectionOptions, databaseLabel, databaseUrl, loadEncryptionSchema } from './cliContext';

/*
 * What the `keys` commands share: their dependencies, common options, the keyring path and the
 * database census that `keys retire` and `keys destroy` decide on.
 */

/** Where `keys retire` and `keys destroy` get their counts: the database and the Prisma schema whose encrypted fields to scan. */
export interface UsageSource {
  readonly databaseUrl?: string;
  readonly schema?: string;
  readonly config?: string;
  readonly env: NodeJS.ProcessEnv;
  readonly allowInsecureConnection?: boolean;
  /** Receives the TLS check's event. */
  readonly logger?: Logger;
}

/** The counts of one scan, and what was scanned (shown to the operator before a key is retired). */
export interface UsageScan {
  /** `host[:port]/database`: never user or password. */
  readonly database: string;
  readonly schema: string | null;
  readonly counts: readonly FieldStatus[];
  /** The subject-key table's counts, when the schema has it (a wrap key's usage). */
  readonly subjectKeys?: StoredSubjectKeyCounts;
}

/** What the key commands need from the outside world; tests replace parts of it. */
export interface KeyCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  /** Human or JSON output (stdout by default). Audit events go to `logger`, not here. */
  readonly write: (text: string) => void;
  /** Audit log destination; by default JSON lines on stderr, or the `--audit-log` file. */
  readonly logger?: Logger;
  readonly gcpKms?: GcpKmsOptions;
  readonly wrappers?: KeyWrappers;
  readonly retry?: Partial<RetryPolicy>;
  /** The clock for key ages (tests move it). */
  readonly now?: () => Date;
  /** Counts stored values per key for `retire` and `destroy`. Default: scans the database (migrator status). */
  readonly countUsage: (source: UsageSource) => Promise<UsageScan>;
}

export interface CommonOptions {
  keyring?: string;
  json?: boolean;
  auditLog?: string;
}

/** What a command registered apart from keyCommands.ts gets from it. */
export interface KeyCommandKit {
  readonly deps: KeyCommandDeps;
  /** The command's audit log (its `--audit-log` file, or the deps' logger). */
  readonly auditLog: () => AuditLog;
  /** Prints `json` with `--json`, else the human lines. */
  readonly emit: (opts: CommonOptions, json: object, human: () => string[]) => void;
  /** Wraps an action: with `--json`, a failure also prints an error document on stdout, once. */
  readonly action: <A extends unknown[]>(fn: (...args: A) => Promise<void>) => (...args: A) => Promise<void>;
}

export function common(cmd: Command, deps: KeyCommandDeps): Command {
  return cmd
    .option('--keyring <file>', `keyring file (default: env PCE_KEYRING_FILE${deps.env.PCE_KEYRING_FILE ? `, now ${deps.env.PCE_KEYRING_FILE}` : ''})`)
    .option('--json', 'print JSON instead of text')
    .option('--audit-log <file>', 'append audit events (JSON lines) to this file instead of stderr');
}

export function keyringPath(opts: CommonOptions, deps: KeyCommandDeps): string {
  const path = opts.keyring ?? envValue(deps.env.PCE_KEYRING_FILE);
  if (!path) throw new KeyringError(undefined, 'no keyring file: pass --keyring <file> or set PCE_KEYRING_FILE');
  return path;
}

/**
 * Default usage source: the migrator's status scan (values grouped by the key id in their
 * header, and blind indexes by their prefix) over every encrypted field of the schema, and the
 * subject-key table's counts per wrap key.
 */
export async function countUsageFromDatabase(source: UsageSource): Promise<UsageScan> {
  const options = { schema: source.schema, config: source.config, databaseUrl: source.databaseUrl };
  const loaded = await loadEncryptionSchema(options);
  const url = databaseUrl(options, loaded, source.env);
  const conn = await openConnection(url, connectionOptions({ allowInsecureConnection: source.allowInsecureConnection }, source.logger ?? cliLogger({}, (line) => process.stderr.write(line))));
  try {
    const subjectKeys = hasSubjectKeyTable(loaded.schema) ? await subjectKeyCounts(sqlClientOf(conn), loaded.schema.provider) : undefined;
    return { database: databaseLabel(url), schema: loaded.schemaPath, counts: await collectStatus(conn, loaded.schema), ...(subjectKeys ? { subjectKeys } : {}) };
  } finally {
    await conn.close();
  }
}

/** The options `keys retire` and `keys destroy` reach the database with. */
export interface DatabaseOptions {
  databaseUrl?: string;
  schema?: string;
  config?: string;
  allowInsecureConnection?: boolean;
}

/** The census `keys retire` and `keys destroy` decide on: how the key `id` is used, and what was scanned. */
export async function scanKeyUsage(deps: KeyCommandDeps, opts: DatabaseOptions, logger: Logger, id: string, purpose: KeyPurpose): Promise<{ usage: KeyUsage; scanned: ScanOutput }> {
  const scan = await deps.countUsage({
    databaseUrl: opts.databaseUrl,
    schema: opts.schema,
    config: opts.config,
    env: deps.env,
    allowInsecureConnection: opts.allowInsecureConnection === true,
    logger,
  });
  const usage = keyUsage(scan.counts, id, purpose, scan.subjectKeys);
  return { usage, scanned: { database: scan.database, schema: scan.schema, fields: usage.scannedFields, rows: usage.scannedRows } };
}
