import type { Logger } from 'pino';
import type { EncryptionSchema } from '../schema';
import type { ErasureLedger, LedgerEntry } from './erasureLedger';
import { subjectAudit } from './subjectAudit';
import { execute, rows, type SqlClient, type TransactionalClient } from './sqlClient';
import { dialectOf, SubjectKeySql, type SubjectKeyRow } from './subjectKeySql';
import { ConfigurationError } from '../errors';
import { CANONICAL_INTEGER, nullIndexStatement, outsideSubjectKeysStatement, subjectTargets } from './subjectRows';
import { SubjectKeyStore, subjectIdText, subjectRef, type SubjectId } from './subjectKeyStore';
import { newSubjectKeyId } from './subjectKeyWrap';

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
