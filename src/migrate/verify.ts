import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { createAuditLog } from '../audit/auditLog';
import { indexKeyIdOf } from '../crypto/blindIndex';
import { looksLikePfe } from '../codec/pfe';
import { looksLikeCiphertext, parseHeader } from '../crypto/ciphertext';
import { sharedKeys, type KeyChoice } from '../codec/keyChoice';
import { SubjectKeyStore, type SubjectKeyLookup } from '../subjects/subjectKeyStore';
import { hasSubjectKeyTable } from '../subjects/subjectKeyCounts';
import { verifySubjectKeys } from '../subjects/verifySubjectKeys';
import { sqlClientOf } from './sqlClientOf';
import { DecryptionError, type DecryptionFailure } from '../errors';
import { FieldCodec } from '../codec/fieldCodec';
import type { Keyring } from '../keys/keyring';
import type { EncryptionSchema } from '../schema';
import type { SqlConnection } from './connection';
import { describeKey, formatKey, type KeyTuple } from './keyCodec';
import { resolveScope, type ModelTarget, type ScopeFilter } from './scope';
import { readBatch, type StoredRow } from './sql';
import { subjectKeyIds } from './subjectBatch';

/** Options of {@link verify}: the connection, schema and keyring, an optional model/field filter and batch size. */
export interface VerifyOptions extends ScopeFilter {
  readonly connection: SqlConnection;
  readonly schema: EncryptionSchema;
  /** Must hold every key named by stored values and indexes. */
  readonly keyring: Keyring;
  /** Rows read per query. Default 1000. */
  readonly batchSize?: number;
  readonly logger?: Logger;
  readonly onProgress?: (event: { readonly model: string; readonly total: number; readonly scanned: number }) => void;
  /** How many failures the report lists (all are counted and logged). Default 1000. */
  readonly maxReportedFailures?: number;
  readonly signal?: AbortSignal;
}

/** Why a stored value or index failed verification. */
export type VerifyProblem =
  | DecryptionFailure
  /** The column returned something other than text. */
  | 'not-text'
  /** The field is indexed but the value has no index: equality lookups miss the row. */
  | 'index-missing'
  /** The index names a key that is not in the keyring. */
  | 'index-unknown-key'
  /** The index does not match the value: lookups miss the row or find the wrong one. */
  | 'index-mismatch'
  /** The value is null but an index is stored. */
  | 'index-without-value'
  /** A `legacy: pfe` field's index still holds prisma-field-encryption's hash (no key id): run convert-pfe. */
  | 'legacy-index'
  /** The value's subject was erased, yet its blind index is still stored (a restore without `forget --replay`?). */
  | 'erased-subject-index';

/** One failed value, by model, primary key and field: never by content. */
export interface VerifyFailure {
  readonly model: string;
  readonly key: Record<string, string | number | boolean | null>;
  readonly field: string;
  readonly problem: VerifyProblem;
  readonly keyId?: string;
}

export interface ModelVerifyReport {
  readonly model: string;
  readonly fields: readonly string[];
  readonly rows: number;
  /** Non-null values checked. */
  readonly values: number;
  /** Legacy plaintext accepted because the field's read mode is passthrough. */
  readonly plaintext: number;
  /** Values under the key of an erased subject: unreadable by design, not failures. */
  readonly erased: number;
  readonly failed: number;
}

/** The subject-key table's own check: every wrapped key unwrapped with the keyring. */
export interface SubjectKeyVerifyReport {
  readonly checked: number;
  readonly failed: number;
}

/** The result of {@link verify}: values checked and the failures, by model, field and primary key (never content). */
export interface VerifyReport {
  /** True when every value decrypted and every index matched. */
  readonly ok: boolean;
  readonly models: readonly ModelVerifyReport[];
  readonly rows: number;
  readonly values: number;
  readonly failedCount: number;
  readonly failures: readonly VerifyFailure[];
  /** Present when the schema has the subject-key table. Its failures are in `failures` as model PceSubjectKey. */
  readonly subjectKeys?: SubjectKeyVerifyReport;
  readonly complete: boolean;
  readonly durationMs: number;
}

/**
 * Decrypts every annotated value and checks every blind index against it. Read-only: no locks,
 * no writes. Failures are reported by primary key and field.
 */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const conn = options.connection;
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
  const audit = createAuditLog(options.logger);
  const worker = `${hostname()}:${process.pid}`;
  const limit = options.maxReportedFailures ?? 1000;
  const failures: VerifyFailure[] = [];
  let failedCount = 0;
  const models: ModelVerifyReport[] = [];
  // Values under subject keys decrypt with the keys their envelopes name, loaded once per batch.
  const subjects = hasSubjectKeyTable(options.schema) ? new SubjectKeyStore({ keys: options.keyring, provider: options.schema.provider, cache: { max: 2 * batchSize } }) : undefined;
  const loaded = new Map<string, SubjectKeyLookup>();
  const shared = sharedKeys(options.keyring);
  const keys: KeyChoice = {
    forWrite: () => shared.forWrite(),
    forRead: (scope, keyId) => {
      if (scope !== 'subject') return shared.forRead(scope, keyId);
      const found = loaded.get(keyId);
      return found === undefined || typeof found === 'string' ? (found === 'retired-key' ? 'retired-key' : 'unknown-key') : found;
    },
    indexKeys: (binding) => shared.indexKeys(binding),
  };
  for (const target of resolveScope(options.schema, options)) {
    if (options.signal?.aborted) break;
    const base = { command: 'verify', model: target.model, fields: target.fields.map((f) => f.field).join(','), worker };
    audit.migration('start', base);
    const checkers = target.fields.map((f) => fieldChecker(new FieldCodec(target.model, f.field, f.spec, options.keyring, { keys }), f.indexColumn !== undefined, options.keyring, loaded));
    const [countRow] = await conn.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${conn.quote(target.table)}`);
    const total = Number(countRow?.n ?? 0);
    const report = { model: target.model, fields: target.fields.map((f) => f.field), rows: 0, values: 0, plaintext: 0, erased: 0, failed: 0 };
    let after: KeyTuple | undefined;
    for (;;) {
      if (options.signal?.aborted) break;
      const rows = await readBatch(conn, target, { ...(after ? { after } : {}), limit: batchSize });
      if (subjects) await loadSubjectKeys(subjects, conn, rows, loaded);
      for (const row of rows) {
        report.rows++;
        checkRow(target, row, checkers, report, (failure) => {
          failedCount++;
          report.failed++;
          if (failures.length < limit) failures.push(failure);
          audit.migration('failure', { ...base, row: formatKey(target.primaryKey, row.key), field: failure.field, keyId: failure.keyId, reason: failure.problem });
        });
      }
      options.onProgress?.({ model: target.model, total, scanned: report.rows });
      if (rows.length < batchSize) break;
      after = rows[rows.length - 1]!.key;
    }
    audit.migration('end', { ...base, rows: report.rows, values: report.values, plaintext: report.plaintext, erased: report.erased, failed: report.failed });
    models.push(report);
  }
  let subjectKeys: SubjectKeyVerifyReport | undefined;
  // The key table is checked when verify covers the whole schema, not one model or field.
  if (subjects && !options.model && !options.field && !options.signal?.aborted) {
    const base = { command: 'verify', model: 'PceSubjectKey', fields: 'wrappedKey', worker };
    const checked = await verifySubjectKeys(sqlClientOf(conn), options.keyring, options.schema.provider, {
      batchSize,
      onProblem: (p) => {
        failedCount++;
        const failure: VerifyFailure = { model: 'PceSubjectKey', key: { keyId: p.keyId }, field: 'wrappedKey', problem: p.problem, ...(p.wrapKeyId ? { keyId: p.wrapKeyId } : {}) };
        if (failures.length < limit) failures.push(failure);
        audit.migration('failure', { ...base, row: p.keyId, field: 'wrappedKey', keyId: p.wrapKeyId ?? undefined, reason: p.problem });
      },
    });
    subjectKeys = { checked: checked.checked, failed: checked.failed };
  }
  const complete = !options.signal?.aborted;
  return {
    ...(subjectKeys ? { subjectKeys } : {}),
    ok: failedCount === 0 && complete,
    models,
    rows: models.reduce((n, m) => n + m.rows, 0),
    values: models.reduce((n, m) => n + m.values, 0),
    failedCount,
    failures,
    complete,
    durationMs: Date.now() - started,
  };
}

type Outcome = { problem: VerifyProblem; keyId?: string } | 'ok' | 'plaintext' | 'erased';
type Checker = (value: unknown, index: unknown) => Outcome;

/** Loads the subject keys a batch's values name, in one query (replacing the previous batch's). */
async function loadSubjectKeys(store: SubjectKeyStore, conn: SqlConnection, rows: readonly StoredRow[], loaded: Map<string, SubjectKeyLookup>): Promise<void> {
  const ids = subjectKeyIds(rows);
  loaded.clear();
  if (ids.size === 0) return;
  for (const [id, found] of await store.load(sqlClientOf(conn), ids)) loaded.set(id, found);
}

function fieldChecker(codec: FieldCodec, indexed: boolean, keyring: Keyring, subjectKeys: ReadonlyMap<string, SubjectKeyLookup>): Checker {
  const indexKeyIds = new Set(keyring.indexKeysFor(codec.binding).map((k) => k.id));
  const checkIndex = (plaintext: unknown, index: unknown): Outcome | undefined => {
    if (!indexed) return undefined;
    if (index === null || index === undefined) return { problem: 'index-missing' };
    if (typeof index !== 'string') return { problem: 'not-text' };
    const keyId = indexKeyIdOf(index);
    if (keyId === undefined && codec.spec.legacy) return { problem: 'legacy-index' };
    if (keyId === undefined || !indexKeyIds.has(keyId)) return { problem: 'index-unknown-key', ...(keyId ? { keyId } : {}) };
    return codec.indexesForLookup(plaintext).includes(index as never) ? undefined : { problem: 'index-mismatch', keyId };
  };
  return (value, index) => {
    if (value === null || value === undefined) return indexed && index !== null && index !== undefined ? { problem: 'index-without-value' } : 'ok';
    if (typeof value !== 'string') return { problem: 'not-text' };
    if (!looksLikeCiphertext(value)) {
      // Reported without decrypting, so verify needs no legacy keys: the value is simply not converted yet.
      if (codec.spec.legacy && looksLikePfe(value)) return { problem: 'legacy-format' };
      if (codec.spec.readMode !== 'passthrough') return { problem: 'not-ciphertext' };
      return checkIndex(value, index) ?? 'plaintext';
    }
    const header = parseHeader(value);
    if (header.kind === 'header' && header.header.scope === 'subject') {
      const found = subjectKeys.get(header.header.keyId);
      // Erased on purpose: unreadable is the point. Its blind index should be gone too.
      if (found === 'subject-erased') return indexed && index !== null && index !== undefined ? { problem: 'erased-subject-index', keyId: header.header.keyId } : 'erased';
      if (found === 'authentication-failed') return { problem: 'authentication-failed', keyId: header.header.keyId };
    }
    let plaintext: unknown;
    try {
      plaintext = codec.decrypt(value);
    } catch (error) {
      if (error instanceof DecryptionError) return { problem: error.reason, ...(error.keyId ? { keyId: error.keyId } : {}) };
      throw error;
    }
    return checkIndex(plaintext, index) ?? 'ok';
  };
}

function checkRow(
  target: ModelTarget,
  row: StoredRow,
  checkers: readonly Checker[],
  report: { values: number; plaintext: number; erased: number },
  fail: (failure: VerifyFailure) => void,
): void {
  target.fields.forEach((f, i) => {
    const value = row.values[i];
    const legacy = row.typed?.[i];
    if ((value !== null && value !== undefined) || (legacy !== null && legacy !== undefined)) report.values++;
    // Plaintext in a typed field's own column: accepted only while the field is in passthrough.
    const outcome = legacy !== null && legacy !== undefined ? (f.spec.readMode === 'passthrough' ? 'plaintext' : { problem: 'not-ciphertext' as const }) : checkers[i]!(value, row.indexes[i]);
    if (outcome === 'ok') return;
    if (outcome === 'erased') {
      report.erased++;
      return;
    }
    if (outcome === 'plaintext') {
      report.plaintext++;
      return;
    }
    fail({ model: target.model, key: describeKey(target.primaryKey, row.key), field: f.field, problem: outcome.problem, ...(outcome.keyId ? { keyId: outcome.keyId } : {}) });
  });
}
