import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { DMMF } from '@prisma/generator-helper';
import { createAuditLog } from '../audit/auditLog';
import { ConfigurationError } from '../errors';
import type { OpenConnectionOptions } from '../migrate/openConnection';
import { buildEncryptionSchema } from '../generator/buildSchema';
import type { Keyring } from '../keys/keyring';
import { loadKeyring } from '../keys/loadKeyring';
import type { EncryptionSchema } from '../schema';

/**
 * What the CLI commands share: finding and reading the Prisma schema, the database URL, the
 * connection, the keyring and the audit logger.
 */

/** Options every database command accepts. */
export interface CommonCliOptions {
  /** Path to schema.prisma or a folder of .prisma files. */
  readonly schema?: string;
  /** Path to prisma.config.ts. */
  readonly config?: string;
  /** Overrides DATABASE_URL. */
  readonly databaseUrl?: string;
  /** Keyring file (otherwise loadKeyring's environment variables decide). */
  readonly keyring?: string;
  /** Audit log file (JSON lines, appended); stderr otherwise. */
  readonly auditLog?: string;
  /** Accept a connection without TLS 1.2+ to a host that is not loopback. */
  readonly allowInsecureConnection?: boolean;
}

/**
 * How the CLI opens database connections: refusing an unencrypted one to a host that is not
 * loopback unless `--allow-insecure-connection`, and logging what TLS was negotiated.
 */
export function connectionOptions(options: CommonCliOptions, logger: Logger): OpenConnectionOptions {
  const audit = createAuditLog(logger);
  return { allowInsecure: options.allowInsecureConnection === true, onTls: (host, finding, accepted) => audit.tlsChecked(host, finding, accepted) };
}

/** The flag every command that connects to the database takes. */
export const ALLOW_INSECURE_FLAG = ['--allow-insecure-connection', 'connect without TLS 1.2+ to a database host that is not loopback'] as const;

export interface LoadedSchema {
  readonly schema: EncryptionSchema;
  /** The file the schema was read from (the first file of a multi-file schema). */
  readonly schemaPath: string;
  /** `datasource.url` from prisma.config.ts, when there is a config file and it sets one. */
  readonly configDatabaseUrl?: string;
}

type Internals = typeof import('@prisma/internals');
type PrismaConfigModule = typeof import('@prisma/config');

/** Prisma's own loaders are large: only the CLI loads them, and only when a command needs the schema. */
function internals(): Internals {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@prisma/internals') as Internals;
}

/** What the CLI takes from prisma.config.ts: the schema path, the datasource URL, and the folder paths are relative to. */
interface PrismaConfigFacts {
  readonly schema?: string;
  readonly url?: string;
  readonly dir?: string;
}

/**
 * Loads prisma.config.ts (or the file given) the way the Prisma CLI does. No config file is
 * fine; a config file that fails to load is an error only when it was named explicitly.
 */
async function loadPrismaConfig(options: CommonCliOptions, cwd: string): Promise<PrismaConfigFacts> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadConfigFromFile } = require('@prisma/config') as PrismaConfigModule;
  const result = await loadConfigFromFile({ ...(options.config ? { configFile: resolve(cwd, options.config) } : {}), configRoot: cwd });
  if (result.error) {
    if (result.error._tag === 'ConfigFileNotFound' && !options.config) return {};
    const reason = 'error' in result.error ? result.error.error.message : 'not found';
    throw new ConfigurationError(undefined, undefined, `cannot load the Prisma config file ${result.resolvedPath ?? options.config}: ${reason}`);
  }
  if (!result.resolvedPath) return {};
  const url = (result.config.datasource as { url?: unknown } | undefined)?.url;
  return {
    ...(result.config.schema ? { schema: result.config.schema } : {}),
    ...(typeof url === 'string' && url !== '' ? { url } : {}),
    dir: dirname(result.resolvedPath),
  };
}

/** `prisma.schema` in package.json, the pre-config-file convention, resolved against that package.json. */
function packageJsonSchema(cwd: string): string | undefined {
  const file = join(cwd, 'package.json');
  if (!existsSync(file)) return undefined;
  try {
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { prisma?: { schema?: unknown } };
    return typeof pkg.prisma?.schema === 'string' ? resolve(cwd, pkg.prisma.schema) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds and reads the Prisma schema like Prisma does (`--schema`, then prisma.config.ts `schema`,
 * then package.json `prisma.schema`, then ./schema.prisma or ./prisma/schema.prisma), parses it
 * with Prisma's own parser and builds the encryption map with the generator's code, so the CLI
 * sees exactly what `prisma generate` saw.
 */
export async function loadEncryptionSchema(options: CommonCliOptions, cwd = process.cwd()): Promise<LoadedSchema> {
  // With --schema the config file only offers a fallback URL: a config that fails to load then
  // (say, an env() it cannot resolve) must not stop a run that names everything it needs.
  const config: PrismaConfigFacts =
    options.schema && !options.config ? await loadPrismaConfig(options, cwd).catch(() => ({})) : await loadPrismaConfig(options, cwd);
  const { getSchemaWithPath, createSchemaPathInput, getDMMF, getConfig } = internals();
  const fromPackage = options.schema || config.schema ? undefined : packageJsonSchema(cwd);
  let loaded;
  try {
    loaded = await getSchemaWithPath({
      schemaPath: createSchemaPathInput({
        schemaPathFromArgs: options.schema ?? fromPackage,
        schemaPathFromConfig: config.schema,
        baseDir: config.dir ?? cwd,
      }),
      cwd,
    });
  } catch (error) {
    throw new ConfigurationError(undefined, undefined, `cannot find the Prisma schema: ${(error as Error).message} (use --schema)`);
  }
  const datamodel = loaded.schemas;
  const [dmmf, prismaConfig] = await Promise.all([getDMMF({ datamodel }), getConfig({ datamodel })]);
  const provider = prismaConfig.datasources[0]?.provider ?? 'unknown';
  // The generator receives the same DMMF document; the types come from two copies of @prisma/dmmf.
  const schema = buildEncryptionSchema(dmmf.datamodel as unknown as DMMF.Datamodel, provider);
  return { schema, schemaPath: loaded.schemaPath, ...(config.url ? { configDatabaseUrl: config.url } : {}) };
}

/** `--database-url`, else DATABASE_URL, else the config file's datasource URL. */
export function databaseUrl(options: CommonCliOptions, loaded?: LoadedSchema, env: NodeJS.ProcessEnv = process.env): string {
  const url = options.databaseUrl || env.DATABASE_URL || loaded?.configDatabaseUrl;
  if (!url) throw new ConfigurationError(undefined, undefined, 'no database URL: set DATABASE_URL or pass --database-url');
  return url;
}

/** `host:port/name` of a database URL: enough to recognise it, without user or password. */
export function databaseLabel(url: string): string {
  const u = new URL(url);
  const schema = u.searchParams.get('schema');
  return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}${schema ? ` (schema ${schema})` : ''}`;
}

/** The keyring of a CLI run: `--keyring`, else whichever source loadKeyring finds configured. */
export function cliKeyring(options: CommonCliOptions, logger: Logger): Promise<Keyring> {
  return loadKeyring({ ...(options.keyring ? { file: options.keyring } : {}), logger });
}

/**
 * The audit logger of a CLI run: JSON lines to `--audit-log` (appended), else through `write`
 * (stderr, routed around the progress bar). Secrets are redacted as a second line of defence.
 */
export function cliLogger(options: CommonCliOptions, write: (line: string) => void): Logger {
  const settings = { name: 'prisma-column-encryption', level: process.env.PCE_LOG_LEVEL ?? 'info', redact: ['*.key', '*.secret', '*.plaintext'] };
  if (options.auditLog) return pino(settings, pino.destination({ dest: options.auditLog, append: true, sync: true, mkdir: true }));
  return pino(settings, { write });
}
