import type { Command } from 'commander';
import { envValue } from '../keys/envValue';
import { readKeyringFile, isWrapped, type KeyringDocument } from '../keys/keyringFile';
import { keyAges } from '../keys/rotationPolicy';
import { CHECKPOINT_TABLE } from '../migrate/checkpoint';
import type { SqlConnection } from '../migrate/connection';
import { openConnection } from '../migrate/openConnection';
import { collectStatus } from '../migrate/status';
import { verify } from '../migrate/verify';
import { fieldReports, LIMITS, type ComplianceReport, type KeysReport, type MigrationRun } from '../report/reportData';
import { renderMarkdown } from '../report/renderMarkdown';
import { tlsShortfall } from '../tls/tlsPolicy';
import { ALLOW_INSECURE_FLAG, cliKeyring, cliLogger, connectionOptions, databaseLabel, databaseUrl, loadEncryptionSchema, type CommonCliOptions } from './cliContext';

interface ReportOptions extends CommonCliOptions {
  readonly json?: boolean;
  readonly verify?: boolean;
}

/** `report`: the compliance report, Markdown on stdout (or `--json`), generated from the schema, keyring and database. */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('Compliance report: encrypted fields, keys and their ages, stored values, migrator runs, TLS, limits (Markdown or --json)')
    .option('--schema <path>', 'Prisma schema file or folder (default: as Prisma finds it)')
    .option('--config <path>', 'prisma.config.ts to read the schema path and datasource URL from')
    .option('--database-url <url>', 'database to report on (default: DATABASE_URL)')
    .option('--keyring <file>', 'keyring file (default: PCE_KEYRING_FILE, PCE_KEYRING_JSON or PCE_DATA_KEYS/PCE_INDEX_KEYS)')
    .option('--verify', 'also decrypt every value and check every blind index (reads the whole of every encrypted table)')
    .option(...ALLOW_INSECURE_FLAG)
    .option('--json', 'print JSON instead of Markdown')
    .action(async (opts: ReportOptions) => {
      const report = await buildReport(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : renderMarkdown(report));
    });
}

export async function buildReport(opts: ReportOptions, env: NodeJS.ProcessEnv = process.env): Promise<ComplianceReport> {
  const logger = cliLogger(opts, (line) => process.stderr.write(line));
  const loaded = await loadEncryptionSchema(opts);
  const url = databaseUrl(opts, loaded, env);
  const conn = await openConnection(url, connectionOptions(opts, logger));
  try {
    const keyringFile = opts.keyring ?? envValue(env.PCE_KEYRING_FILE);
    const doc = keyringFile ? await readKeyringFile(keyringFile) : undefined;
    const verified = opts.verify ? await verify({ connection: conn, schema: loaded.schema, keyring: await cliKeyring(opts, logger), logger }) : undefined;
    const tls = conn.tls;
    return {
      generatedAt: new Date().toISOString(),
      schema: loaded.schemaPath,
      database: {
        label: databaseLabel(url),
        dialect: conn.dialect,
        tls: tls ? { ...tls, ok: tlsShortfall(tls) === undefined, shortfall: tlsShortfall(tls) ?? null } : null,
      },
      fields: fieldReports(loaded.schema),
      keys: doc ? keysFromDocument(keyringFile!, doc) : await keysFromEnv(opts, logger, env),
      storage: await collectStatus(conn, loaded.schema),
      migrations: await migrationRuns(conn),
      verify: verified ? { ok: verified.ok, rows: verified.rows, values: verified.values, failedCount: verified.failedCount, complete: verified.complete } : null,
      limits: LIMITS,
    };
  } finally {
    await conn.close().catch(() => undefined);
    logger.flush?.();
  }
}

function keysFromDocument(file: string, doc: KeyringDocument): KeysReport {
  const ages = keyAges(doc.keys, doc.policy, new Date());
  return {
    origin: `keyring file ${file}`,
    policy: doc.policy ?? null,
    entries: doc.keys.map((k, i) => {
      const { id: _id, purpose: _purpose, primary: _primary, ...rotation } = ages[i]!;
      return {
        id: k.id,
        purpose: k.purpose,
        status: k.status,
        source: k.source,
        protectionLevel: (isWrapped(k) ? k.protectionLevel : undefined) ?? null,
        kmsKeyName: isWrapped(k) ? k.kmsKeyName : null,
        createdAt: k.createdAt,
        rotation,
      };
    }),
  };
}

/** Keys from PCE_KEYRING_JSON or PCE_DATA_KEYS/PCE_INDEX_KEYS: ids, purposes and sources only (no creation times there). */
async function keysFromEnv(opts: ReportOptions, logger: ReturnType<typeof cliLogger>, env: NodeJS.ProcessEnv): Promise<KeysReport> {
  const keyring = await cliKeyring(opts, logger).catch((error: unknown) => error as Error);
  if (keyring instanceof Error) return { origin: `none loaded (${keyring.message})`, policy: null, entries: [] };
  return {
    origin: envValue(env.PCE_KEYRING_JSON) !== undefined ? 'PCE_KEYRING_JSON' : 'PCE_DATA_KEYS / PCE_INDEX_KEYS (local keys)',
    policy: null,
    entries: keyring.describe().map((k) => ({
      id: k.id,
      purpose: k.purpose,
      status: k.primary ? 'primary' : 'active',
      source: k.source.kind,
      protectionLevel: null,
      kmsKeyName: k.source.kind === 'local' ? null : k.source.kmsKeyName,
      createdAt: null,
      rotation: null,
    })),
  };
}

/** The migrator's jobs from its checkpoint table (none before the first run). */
async function migrationRuns(conn: SqlConnection): Promise<MigrationRun[]> {
  const rows = await conn
    .query<{ description: string | null; state: string; updated_at: unknown }>(
      `SELECT description, state, updated_at FROM ${conn.quote(CHECKPOINT_TABLE)} WHERE chunk = 0 ORDER BY updated_at DESC`,
    )
    .catch(() => []);
  return rows.map((r) => ({ description: r.description ?? '', state: r.state, updatedAt: r.updated_at instanceof Date ? r.updated_at.toISOString() : String(r.updated_at) }));
}
