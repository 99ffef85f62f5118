import { ColumnEncryptionError, KeyringError } from '../errors';
import { isWrapped, type KeyEntry, type KeyringDocument, type KeyStatus } from '../keys/keyringFile';
import { KeyDestroyRefusedError } from '../keys/destroy';
import { KeySourceError } from '../keys/keySourceError';
import type { KeyUsage } from '../keys/keyUsage';
import type { KeyPurpose } from '../keys/keyMaterial';
import { KeyInUseError, NothingScannedError, type PrimaryChange, type RewrapResult } from '../keys/lifecycle';
import type { KeyAge, RotationPolicy } from '../keys/rotationPolicy';

/*
 * What the `keys` commands print. The JSON shapes are a contract for scripts: every field is
 * always present, with `null` where there is no value.
 */

/** What may be shown about a key: everything but the key or its wrapped bytes. */
export interface PublicKeyEntry {
  readonly id: string;
  readonly purpose: KeyPurpose;
  readonly status: KeyStatus;
  readonly source: string;
  readonly fingerprint: string | null;
  readonly kmsKeyName: string | null;
  readonly kmsKeyVersion: string | null;
  /** The KMS protection level recorded for a wrapped key (`HSM`, `SOFTWARE`, ...); `null` for local keys or when not recorded. */
  readonly protectionLevel: string | null;
  readonly createdAt: string;
  readonly retiredAt: string | null;
  readonly rewrappedAt: string | null;
}

/** `keys generate --json` */
export interface GenerateOutput {
  readonly key: PublicKeyEntry;
  readonly primaryChange: PrimaryChange | null;
}

/** `keys list --json`: every key with its age against the rotation policy. */
export interface ListOutput {
  readonly keys: ReadonlyArray<PublicKeyEntry & { readonly rotation: RotationOutput }>;
  readonly policy: RotationPolicy | null;
}

/** A key's age against the policy (`state`: ok, due-soon, overdue, no-policy, not-primary). */
export type RotationOutput = Omit<KeyAge, 'id' | 'purpose' | 'primary'>;

/** `keys check --json`. Exit code 0 when nothing is overdue, {@link EXIT_ROTATION_DUE} otherwise. */
export interface CheckOutput {
  readonly ok: boolean;
  readonly policy: RotationPolicy | null;
  readonly overdue: readonly KeyAge[];
  readonly dueSoon: readonly KeyAge[];
  /** What to run, per overdue key. */
  readonly steps: Readonly<Record<string, readonly string[]>>;
}

/** `keys check` exit code when a primary key is past its policy. */
export const EXIT_ROTATION_DUE = 2;

/** `keys promote --json`. `from` is `null` when nothing changed or there was no primary. */
export interface PromoteOutput {
  readonly changed: boolean;
  readonly purpose: KeyPurpose;
  readonly from: string | null;
  readonly to: string;
}

/** What `keys retire` looked at before deciding. */
export interface ScanOutput {
  /** `host[:port]/database`: never user or password. */
  readonly database: string;
  /** The Prisma schema file the encrypted fields came from. */
  readonly schema: string | null;
  readonly fields: number;
  readonly rows: number;
}

/**
 * `keys retire --json`, also on refusal (then `retired: false` and `error` set, exit code 1).
 * `scanned` is `null` when no scan was needed (the key was already retired).
 */
export interface RetireOutput {
  readonly retired: boolean;
  readonly changed: boolean;
  readonly keyId: string;
  readonly values: number;
  readonly fields: KeyUsage['fields'];
  readonly scanned: ScanOutput | null;
  readonly error: ErrorBody | null;
}

/** `keys reactivate --json` */
export interface ReactivateOutput {
  readonly changed: boolean;
  readonly keyId: string;
  readonly purpose: KeyPurpose;
  readonly status: KeyStatus;
}

/** `keys rewrap --json`. `skipped`: retired keys left as they were (`--skip-retired`). */
export interface RewrapOutput {
  readonly rewrapped: readonly RewrapResult[];
  readonly skipped: readonly string[];
}

/** A failed command's error, for scripts. */
export interface ErrorBody {
  /** `PCE_KEYRING`, `PCE_CONFIG`, ... (or commander's code for argument errors). */
  readonly code: string;
  readonly keyId: string | null;
  /** `KeySourceError.failure`, `key-in-use`, `nothing-scanned`, or a `keys destroy` refusal (`not-retired`, `not-a-wrap-key`); `null` otherwise. */
  readonly failure: string | null;
  readonly message: string;
}

/** What every command prints with `--json` when it fails (unless it printed its own refusal). */
export interface ErrorOutput {
  readonly error: ErrorBody;
}

export function publicEntry(entry: KeyEntry): PublicKeyEntry {
  return {
    id: entry.id,
    purpose: entry.purpose,
    status: entry.status,
    source: entry.source,
    fingerprint: entry.fingerprint ?? null,
    kmsKeyName: isWrapped(entry) ? entry.kmsKeyName : null,
    kmsKeyVersion: isWrapped(entry) ? entry.kmsKeyVersion : null,
    protectionLevel: (isWrapped(entry) ? entry.protectionLevel : undefined) ?? null,
    createdAt: entry.createdAt,
    retiredAt: entry.retiredAt ?? null,
    rewrappedAt: (isWrapped(entry) ? entry.rewrappedAt : undefined) ?? null,
  };
}

export function rotationOutput(age: KeyAge): RotationOutput {
  return { ageDays: age.ageDays, maxAgeDays: age.maxAgeDays, dueAt: age.dueAt, dueInDays: age.dueInDays, state: age.state };
}

export function errorBody(error: unknown): ErrorBody {
  const code = error instanceof ColumnEncryptionError ? error.code : typeof (error as { code?: unknown })?.code === 'string' ? String((error as { code: string }).code) : 'PCE_ERROR';
  const failure =
    error instanceof KeySourceError
      ? error.failure
      : error instanceof KeyInUseError
        ? 'key-in-use'
        : error instanceof NothingScannedError
          ? 'nothing-scanned'
          : error instanceof KeyDestroyRefusedError
            ? error.refusal
            : null;
  return {
    code,
    keyId: error instanceof KeyringError ? (error.keyId ?? null) : null,
    failure,
    message: error instanceof Error ? error.message : String(error),
  };
}

const reported = new WeakSet<object>();

/** Remembers that a command already printed its JSON failure document, so it is not printed twice. */
export function markReported(error: unknown): void {
  if (typeof error === 'object' && error !== null) reported.add(error);
}

export function wasReported(error: unknown): boolean {
  return typeof error === 'object' && error !== null && reported.has(error);
}

/**
 * The CLI's last word on a failure: the message on stderr, and with `--json` an
 * {@link ErrorOutput} on stdout (unless the command printed its own).
 */
export function reportCliError(error: unknown, argv: readonly string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): void {
  err.write(`${error instanceof Error ? error.message : String(error)}\n`);
  const json = argv.slice(2).includes('--json');
  if (json && !wasReported(error)) {
    out.write(`${JSON.stringify({ error: errorBody(error) } satisfies ErrorOutput, null, 2)}\n`);
  }
}

export function generateLines(out: GenerateOutput, entry: KeyEntry, path: string): string[] {
  const change = out.primaryChange;
  return [
    `generated ${entry.purpose} key ${entry.id} (${isWrapped(entry) ? `${entry.source}, ${entry.kmsKeyVersion}` : 'local'}), fingerprint ${entry.fingerprint}, status ${entry.status}`,
    ...(change ? [`primary ${change.purpose} key: ${change.from ?? '(none)'} -> ${change.to}`] : []),
    ...(entry.source === 'local' ? ['note: a local key is stored in the clear in the keyring file; use --kms-key in production'] : []),
    `keyring: ${path}`,
  ];
}

export function promoteLines(out: PromoteOutput): string[] {
  return [out.changed ? `primary ${out.purpose} key: ${out.from ?? '(none)'} -> ${out.to}` : `${out.to} is already the primary ${out.purpose} key`];
}

export function scanLine(scan: ScanOutput): string {
  return `scanned ${scan.fields} encrypted field${scan.fields === 1 ? '' : 's'} (${scan.rows} row${scan.rows === 1 ? '' : 's'}) in database ${scan.database}${scan.schema ? `, schema ${scan.schema}` : ''}`;
}

export function retireLines(out: RetireOutput, purpose?: KeyPurpose): string[] {
  if (!out.changed) return [`${out.keyId} is already retired`];
  return [
    ...(out.scanned ? [scanLine(out.scanned)] : []),
    `retired ${purpose ? `${purpose} ` : ''}key ${out.keyId}: no stored value uses it; it is no longer loaded (undo with \`keys reactivate ${out.keyId}\`)`,
  ];
}

export function reactivateLines(out: ReactivateOutput): string[] {
  return [out.changed ? `reactivated ${out.purpose} key ${out.keyId}: it is active (loaded for reading) again` : `${out.keyId} is not retired (status ${out.status})`];
}

export function rewrapLines(out: RewrapOutput): string[] {
  return [
    ...out.rewrapped.map((r) => `${r.id}: ${shortVersion(r.fromVersion)} -> ${shortVersion(r.toVersion)}${r.toVersion === r.fromVersion ? ' (unchanged)' : ''}`),
    ...(out.skipped.length > 0 ? [`skipped retired: ${out.skipped.join(', ')}`] : []),
    `re-wrapped ${out.rewrapped.length} key${out.rewrapped.length === 1 ? '' : 's'}`,
  ];
}

/** `.../cryptoKeys/k/cryptoKeyVersions/3` -> `k v3`; other formats are shown whole. */
export function shortVersion(version: string): string {
  const m = /cryptoKeys\/([^/]+)\/cryptoKeyVersions\/(\d+)$/.exec(version);
  return m ? `${m[1]} v${m[2]}` : version;
}

/** `12d (max 90d, rotate in 78d)`, `95d (max 90d, OVERDUE by 5d)`, `12d`. */
export function ageText(age: KeyAge): string {
  if (age.state === 'overdue') return `${age.ageDays}d (max ${age.maxAgeDays}d, OVERDUE by ${-age.dueInDays!}d)`;
  if (age.state === 'ok' || age.state === 'due-soon') return `${age.ageDays}d (max ${age.maxAgeDays}d, rotate in ${age.dueInDays}d)`;
  return `${age.ageDays}d`;
}

export function keyTable(doc: KeyringDocument, ages: readonly KeyAge[]): string[] {
  if (doc.keys.length === 0) return ['no keys (create one with `keys generate`)'];
  const header = ['ID', 'PURPOSE', 'STATUS', 'SOURCE', 'PROTECTION', 'FINGERPRINT', 'KMS KEY VERSION', 'CREATED', 'AGE'];
  const rows = doc.keys.map((k, i) => [
    k.id,
    k.purpose,
    k.status,
    k.source,
    (isWrapped(k) ? k.protectionLevel : undefined) ?? (isWrapped(k) ? '?' : 'none (local)'),
    k.fingerprint ?? '-',
    isWrapped(k) ? shortVersion(k.kmsKeyVersion) : '-',
    k.createdAt.slice(0, 10),
    ageText(ages[i]!),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const kmsKeys = [...new Set(doc.keys.filter(isWrapped).map((k) => k.kmsKeyName))];
  const policy = doc.policy ? Object.entries(doc.policy).map(([p, r]) => `${p} keys at most ${r.maxAgeDays} days primary`) : [];
  return [
    line(header),
    ...rows.map(line),
    ...kmsKeys.map((name) => `KMS key: ${name}`),
    policy.length > 0 ? `rotation policy: ${policy.join(', ')}` : 'rotation policy: none (set one with `keys policy --data-max-age-days 90 --index-max-age-days 365`)',
  ];
}
