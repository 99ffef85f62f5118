import type { Logger } from 'pino';
import type { EncryptionSchema, ModelSpec } from '../schema';
import type { ErasureLedger, LedgerEntry } from './erasureLedger';
import { subjectAudit } from './subjectAudit';
import { execute, rows, type SqlClient, type TransactionalClient } from './sqlClient';
import { dialectOf, SubjectKeySql, type Statement, type SubjectKeyRow } from './subjectKeySql';
import { ConfigurationError } from '../errors';
import { SubjectKeyStore, subjectIdText, subjectRef, type SubjectId } from './subjectKeyStore';
import { newSubjectKeyId } from './subjectKeyWrap';

/** A model's subject as the generated map describes it (`/// @@encrypted(subject: field)`). */
interface SubjectOf {
  readonly field: string;
  readonly column: string;
  readonly type?: 'Int' | 'BigInt' | 'String';
  /** The subject's id space (`SubjectSpec.root`); the model itself when absent. */
  readonly root?: string;
}
type SubjectModel = ModelSpec & { readonly subject?: SubjectOf };

/** What erasure needs besides the client. */
export interface ErasureOptions {
  /** The generated encryption map (`encryptedFields`): its subject models' blind indexes are nulled. */
  readonly fields: EncryptionSchema;
  /**
   * Whose id space the subject id is in: a subject model (its root is used: `PersonReading` means
   * `Person`). Optional when the schema has one subject root; with several it must be given.
   */
  readonly model?: string;
  /** The ledger file outside the database; strongly advised (without it a restored backup cannot be re-erased). */
  readonly ledger?: ErasureLedger;
  /**
   * The store the application's extension reads through. Optional: the destroyed keys are dropped
   * from every store of this process at once (other processes' caches keep them for their lifetime).
   */
  readonly store?: SubjectKeyStore;
  /** Audit events (`pce.subject.*`); by default JSON lines on stderr at warn. */
  readonly logger?: Logger;
  /** Interactive transaction limits (Prisma's defaults are 2 s wait, 5 s run). */
  readonly transaction?: { readonly maxWait?: number; readonly timeout?: number };
  readonly now?: () => Date;
}

/** What one erasure did. */
export interface ForgetReport {
  /** Key rows turned into tombstones now (0 when the subject was already erased). */
  readonly keysDestroyed: number;
  /** True when the database already recorded the subject as erased. */
  readonly alreadyErased: boolean;
  /** Rows whose blind indexes were set to NULL, per model. */
  readonly rowsUnindexed: Readonly<Record<string, number>>;
  /**
   * Rows of the subject, per model (only models with some), still holding values that are not
   * under its key: plaintext or shared-key values from before the model had a subject, not yet
   * moved by `encrypt-existing`. Erasure does not reach them: delete or overwrite them.
   */
  readonly rowsOutsideSubjectKey: Readonly<Record<string, number>>;
}

const DEFAULT_TX = { maxWait: 10_000, timeout: 60_000 };

/** A subject model of the map: its table, subject, and the columns erasure looks at. */
export interface SubjectTarget {
  readonly model: string;
  readonly root: string;
  readonly table: string;
  readonly subject: SubjectOf;
  readonly indexColumns: readonly string[];
  readonly valueColumns: readonly string[];
  readonly typedColumns: readonly string[];
}

/** Models of the map with a subject, and the columns of their blind indexes and values. */
function subjectTargets(fields: EncryptionSchema): SubjectTarget[] {
  return Object.entries(fields.models).flatMap(([model, spec]) => {
    const subject = (spec as SubjectModel).subject;
    if (!subject) return [];
    const column = (field: string) => spec.columns[field] ?? field;
    const encrypted = Object.entries(spec.encrypted);
    const indexColumns = encrypted.flatMap(([, f]) => (f.index ? [column(f.index)] : []));
    // Where each field's ciphertext is stored, and a typed field's own column (plaintext written past the extension).
    const valueColumns = encrypted.map(([field, f]) => column(f.storage ?? field));
    const typedColumns = encrypted.flatMap(([field, f]) => (f.storage ? [column(field)] : []));
    return [{ model, root: subject.root ?? model, table: spec.dbName, subject, indexColumns, valueColumns, typedColumns }];
  });
}

/** The root a forget names (`model`, or the schema's only root); a ConfigurationError otherwise. */
export function subjectRoot(fields: EncryptionSchema, model: string | undefined): string {
  const targets = subjectTargets(fields);
  if (model !== undefined) {
    const target = targets.find((t) => t.model === model);
    if (!target) throw new ConfigurationError(model, undefined, `is not a subject model (@@encrypted(subject: ...)) of the schema`);
    return target.root;
  }
  const roots = [...new Set(targets.map((t) => t.root))].sort();
  if (roots.length === 1) return roots[0]!;
  throw new ConfigurationError(undefined, undefined, roots.length === 0 ? 'the schema has no subject model (@@encrypted(subject: ...))' : `the schema has several subject id spaces (${roots.join(', ')}): name the subject's model`);
}

const CANONICAL_INTEGER = /^(0|-?[1-9]\d{0,18})$/;
/** The ids an integer subject field can hold. */
const INTEGER_RANGE = { Int: [-(2n ** 31n), 2n ** 31n - 1n], BigInt: [-(2n ** 63n), 2n ** 63n - 1n] } as const;

/**
 * Refuses, before anything is recorded, an id that no row of an integer id space can hold ('042',
 * ' 42', '4.2', out of range): forgetting it would record an erasure of nobody and report success
 * while the person meant stays readable. The message names the model, never the id.
 */
function requireHoldableId(fields: EncryptionSchema, root: string, id: string): void {
  const target = subjectTargets(fields).find((t) => t.model === root) ?? subjectTargets(fields).find((t) => t.root === root);
  const type = target?.subject.type;
  if (type !== 'Int' && type !== 'BigInt') return;
  const [min, max] = INTEGER_RANGE[type];
  if (CANONICAL_INTEGER.test(id) && BigInt(id) >= min && BigInt(id) <= max) return;
  throw new ConfigurationError(root, target!.subject.field, `the subject id is not an ${type} id in canonical decimal (no sign but '-', no leading zeros, spaces or fraction, in range), so no ${root} can hold it: nothing was erased`);
}

/**
 * The condition matching one subject's rows of a model, or none when no row can hold that id.
 * Its parameters are the statement's first ones.
 */
function subjectMatch(sql: SubjectKeySql, target: SubjectTarget, subject: string): { where: string; values: unknown[] } | undefined {
  const { type, column } = target.subject;
  if (type === 'Int' || type === 'BigInt') {
    // An integer column holds only canonical decimal ids: '007' or 'c1x' cannot be one of its rows.
    if (!CANONICAL_INTEGER.test(subject)) return undefined;
    return { where: `${sql.quote(column)} = ${sql.dialect === 'postgres' ? 'CAST($1 AS BIGINT)' : 'CAST(? AS SIGNED)'}`, values: [subject] };
  }
  if (type === 'String') {
    if (sql.dialect === 'postgres') return { where: `${sql.quote(column)} = $1`, values: [subject] };
    // The application's column may compare without case ('abc' = 'ABC'); the key table does not,
    // so 'ABC' is another subject, whose erasure must not touch the rows of 'abc'. The first
    // condition keeps the column's index usable, the second compares as the key table does.
    const exact = `CONVERT(${sql.quote(column)} USING utf8mb4) COLLATE utf8mb4_bin`;
    return { where: `${sql.quote(column)} = ? AND ${exact} = ?`, values: [subject, subject] };
  }
  // Type unknown (an older map): compare the text form, which is exact for both kinds.
  const text = sql.dialect === 'postgres' ? `CAST(${sql.quote(column)} AS TEXT) = $1` : `CAST(${sql.quote(column)} AS CHAR) = ?`;
  return { where: text, values: [subject] };
}

/** The statement nulling one model's blind indexes for a subject, or none when it has none or no row can hold that id. */
function nullIndexStatement(sql: SubjectKeySql, target: SubjectTarget, subject: string): Statement | undefined {
  const match = target.indexColumns.length > 0 ? subjectMatch(sql, target, subject) : undefined;
  if (!match) return undefined;
  const sets = target.indexColumns.map((c) => `${sql.quote(c)} = NULL`).join(', ');
  return { text: `UPDATE ${sql.quote(target.table)} SET ${sets} WHERE ${match.where}`, values: match.values };
}

/**
 * Counts the subject's rows of a model that still hold a value erasure cannot reach: plaintext or
 * a shared-key envelope in an encrypted field (written before the model had a subject, not yet
 * moved by encrypt-existing), or plaintext in a typed field's own column.
 */
function outsideSubjectKeysStatement(sql: SubjectKeySql, target: SubjectTarget, subject: string): Statement | undefined {
  const match = subjectMatch(sql, target, subject);
  if (!match) return undefined;
  const q = (c: string) => sql.quote(c);
  const outside = [
    ...target.valueColumns.map((c) => `(${q(c)} IS NOT NULL AND ${q(c)} NOT LIKE 'pce:v2:_:s:%')`),
    ...target.typedColumns.map((c) => `${q(c)} IS NOT NULL`),
  ];
  return { text: `SELECT COUNT(*) AS n FROM ${q(target.table)} WHERE ${match.where} AND (${outside.join(' OR ')})`, values: match.values };
}

/** One erasure's steps, inside the caller's transaction. */
interface EraseStep {
  /** The subject's id space, and its id text: the key table holds `subjectRef(root, id)`. */
  readonly root: string;
  readonly id: string;
  readonly erasedAt: Date;
  /** Replay after a reinstatement: only keys that existed at the erasure are destroyed, and the id stays usable. */
  readonly reinstatedSince?: boolean;
  readonly now: Date;
}

async function eraseInTransaction(tx: SqlClient, sql: SubjectKeySql, fields: EncryptionSchema, step: EraseStep) {
  const { erasedAt } = step;
  const subject = subjectRef(step.root, step.id);
  // The key row is the lock: insert one if the subject has none, so a first write running now
  // waits on it (and then finds the subject erased), then lock every row of the subject.
  const placeholder = newSubjectKeyId();
  const placed = (await execute(tx, sql.insertKey(placeholder, subject, null, null, step.now))) > 0;
  const locked = (await rows<SubjectKeyRow>(tx, sql.keyOfSubject(subject, 'update'))).filter((r) => r.key_id !== placeholder && r.wrapped_key !== null);
  const recorded = step.reinstatedSince ? 0 : await execute(tx, sql.insertErasure(subject, erasedAt));
  const destroyed = await execute(tx, sql.tombstone(subject, erasedAt, step.reinstatedSince ? erasedAt : undefined));
  const placeholderMatched = placed && (!step.reinstatedSince || step.now <= erasedAt);
  if (placed) await execute(tx, sql.deleteKey(placeholder));
  const rowsUnindexed: Record<string, number> = {};
  // After a reinstatement the rows hold the new subject's indexes: those stay.
  if (!step.reinstatedSince) {
    // Only the models of this id space hold this subject: a Client with the same id text is someone else.
    for (const target of subjectTargets(fields).filter((t) => t.root === step.root)) {
      const statement = nullIndexStatement(sql, target, step.id);
      if (statement) rowsUnindexed[target.model] = await execute(tx, statement);
    }
  }
  const rowsOutsideSubjectKey: Record<string, number> = {};
  for (const target of subjectTargets(fields).filter((t) => t.root === step.root)) {
    const statement = outsideSubjectKeysStatement(sql, target, step.id);
    const n = statement ? Number((await rows<{ n: unknown }>(tx, statement))[0]?.n ?? 0) : 0;
    if (n > 0) rowsOutsideSubjectKey[target.model] = n;
  }
  return { keysDestroyed: destroyed - (placeholderMatched ? 1 : 0), newlyRecorded: recorded > 0, rowsUnindexed, rowsOutsideSubjectKey, keyIds: locked.map((r) => r.key_id) };
}

/**
 * Forgets a subject (crypto-shredding): in one transaction, its key rows become tombstones (the
 * wrapped key is gone, so every copy of its values, in this database, its replicas and its
 * backups, is unreadable once the backups' epochs are destroyed), the blind indexes of its rows
 * in every subject model are set to NULL (an index is a keyed hash of the value: guessable if the
 * index key ever leaks), and the subject is recorded in `pce_erasures` and appended to the ledger
 * (before the commit, so a committed erasure is always in the ledger). Writes for the subject are
 * refused afterwards; a write running concurrently either commits first (and is erased with the
 * rest) or is refused. Idempotent: forgetting an erased subject destroys nothing more.
 *
 * The audit event `pce.subject.erased` holds counts only, never the subject id.
 */
export async function forgetSubject(client: TransactionalClient, subjectId: SubjectId, options: ErasureOptions): Promise<ForgetReport> {
  const id = subjectIdText(subjectId);
  const root = subjectRoot(options.fields, options.model);
  requireHoldableId(options.fields, root, id);
  subjectRef(root, id); // refuses an id too long for the key table, naming the model
  const sql = new SubjectKeySql(dialectOf(options.fields.provider));
  const now = options.now?.() ?? new Date();
  const result = await client.$transaction(async (tx) => {
    const done = await eraseInTransaction(tx, sql, options.fields, { root, id, erasedAt: now, now });
    await options.ledger?.append({ root, subjectId: id, erasedAt: now.toISOString() });
    return done;
  }, { ...DEFAULT_TX, ...options.transaction });
  SubjectKeyStore.evictEverywhere(result.keyIds);
  const rowsUnindexed = Object.values(result.rowsUnindexed).reduce((n, m) => n + m, 0);
  subjectAudit(options.logger).erased({
    keysDestroyed: result.keysDestroyed,
    rowsUnindexed,
    models: Object.keys(result.rowsUnindexed).length,
    alreadyErased: !result.newlyRecorded,
    ledger: options.ledger !== undefined,
    rowsOutsideSubjectKey: Object.values(result.rowsOutsideSubjectKey).reduce((n, m) => n + m, 0),
  });
  return { keysDestroyed: result.keysDestroyed, alreadyErased: !result.newlyRecorded, rowsUnindexed: result.rowsUnindexed, rowsOutsideSubjectKey: result.rowsOutsideSubjectKey };
}

/** What a replay of the ledger did. */
export interface ReplayReport {
  readonly entries: number;
  /** Distinct subjects in the ledger. */
  readonly subjects: number;
  /** Key rows found live (restored from a backup) and destroyed now. */
  readonly keysDestroyed: number;
  /** Subjects the database did not yet record as erased. */
  readonly newlyRecorded: number;
  readonly rowsUnindexed: number;
  /** Subjects whose last ledger entry is a reinstatement. */
  readonly reinstated: number;
  /** The ledger's last line was torn (a crash mid-append) and skipped. */
  readonly tornLastLine: boolean;
}

/**
 * Re-applies every erasure of the ledger, one subject per transaction: after restoring a backup
 * taken before some erasures, run this (the CLI's `forget --replay`) before the application
 * serves traffic, and those subjects are erased again. Idempotent. A subject reinstated after its
 * last erasure keeps the keys created since (only keys from before the erasure are destroyed).
 */
export async function replayErasures(client: TransactionalClient, ledger: ErasureLedger, options: Omit<ErasureOptions, 'ledger'>): Promise<ReplayReport> {
  const { entries, tornLastLine } = await ledger.read();
  const sql = new SubjectKeySql(dialectOf(options.fields.provider));
  const bySubject = new Map<string, LedgerEntry[]>();
  for (const e of entries) {
    const ref = subjectRef(e.root, e.subjectId);
    bySubject.set(ref, [...(bySubject.get(ref) ?? []), e]);
  }
  const totals = { keysDestroyed: 0, newlyRecorded: 0, rowsUnindexed: 0, reinstated: 0 };
  for (const [subject, events] of bySubject) {
    const { root, subjectId: id } = events[0]!;
    const lastErasure = [...events].reverse().find((e): e is Extract<LedgerEntry, { erasedAt: string }> => 'erasedAt' in e);
    const reinstatedSince = lastErasure !== undefined && events.indexOf(lastErasure) < events.length - 1;
    const now = options.now?.() ?? new Date();
    const done = await client.$transaction(async (tx) => {
      const erased = lastErasure ? await eraseInTransaction(tx, sql, options.fields, { root, id, erasedAt: new Date(lastErasure.erasedAt), reinstatedSince, now }) : undefined;
      if (!lastErasure || reinstatedSince) await execute(tx, sql.deleteErasure(subject));
      return erased;
    }, { ...DEFAULT_TX, ...options.transaction });
    if (!lastErasure || reinstatedSince) totals.reinstated++;
    if (!done) continue;
    SubjectKeyStore.evictEverywhere(done.keyIds);
    totals.keysDestroyed += done.keysDestroyed;
    totals.newlyRecorded += done.newlyRecorded ? 1 : 0;
    totals.rowsUnindexed += Object.values(done.rowsUnindexed).reduce((n, m) => n + m, 0);
  }
  const report = { entries: entries.length, subjects: bySubject.size, ...totals, tornLastLine };
  subjectAudit(options.logger).replayed(report);
  return report;
}

/**
 * Makes an erased subject id usable again (its old keys stay destroyed: the old values remain
 * unreadable). For ids that really come back, say a deleted account's id given to a new account.
 * The reinstatement is appended to the ledger, so a later replay does not erase the new keys.
 */
export async function reinstateSubject(client: TransactionalClient, subjectId: SubjectId, options: Pick<ErasureOptions, 'fields' | 'model' | 'ledger' | 'logger' | 'now'>): Promise<{ wasErased: boolean }> {
  const id = subjectIdText(subjectId);
  const root = subjectRoot(options.fields, options.model);
  const subject = subjectRef(root, id);
  const sql = new SubjectKeySql(dialectOf(options.fields.provider));
  const now = options.now?.() ?? new Date();
  const wasErased = await client.$transaction(async (tx) => {
    // The subject's key-row lock, as erasure takes it: an erasure running now finishes first (its
    // ledger line then precedes this one, in the order the database applied them), or waits.
    const placeholder = newSubjectKeyId();
    const placed = (await execute(tx, sql.insertKey(placeholder, subject, null, null, now))) > 0;
    await rows(tx, sql.keyOfSubject(subject, 'update'));
    const deleted = await execute(tx, sql.deleteErasure(subject));
    if (placed) await execute(tx, sql.deleteKey(placeholder));
    await options.ledger?.append({ root, subjectId: id, reinstatedAt: now.toISOString() });
    return deleted > 0;
  });
  subjectAudit(options.logger).reinstated({ wasErased, ledger: options.ledger !== undefined });
  return { wasErased };
}
