import { createSecretKey, randomBytes } from 'node:crypto';
import { looksLikePfe } from '../codec/pfe';
import { sharedKeys, type ChosenKey, type KeyChoice } from '../codec/keyChoice';
import { looksLikeCiphertext, parseHeader } from '../crypto/ciphertext';
import { ConfigurationError } from '../errors';
import type { Keyring } from '../keys/keyring';
import type { EncryptedFieldSpec } from '../schema';
import { SubjectKeyStore, subjectRef, type SubjectKeyLookup } from '../subjects/subjectKeyStore';
import type { SqlConnection } from './connection';
import { MissingWriteKey, underSubjectKey, type MigrationMode } from './plan';
import type { BatchKeys } from './planner';
import type { ModelTarget } from './scope';
import type { StoredRow } from './sql';
import { sqlClientOf } from './sqlClientOf';

/**
 * The keys one batch of a subject-keyed model is planned with (`@@encrypted(subject: ...)`):
 * - to read, the shared keyring keys (values written before the model had a subject) and the
 *   subject keys the batch's values name, loaded in one query and locked shared in the batch's
 *   transaction, so a concurrent `forget` waits for the batch or has already tombstoned them (their
 *   values are then left alone: no index is ever recomputed for an erased subject);
 * - to write, each row's subject key, `subjectRef(root, <subject field>)`: fetched for all rows
 *   that need one in one query, created with `keyForSubject` for subjects that have none, in the
 *   same transaction as the batch's compare-and-set write (a forget running meanwhile either
 *   waits for the batch or wins, and the batch then sees the subject as erased).
 * A dry run locks and creates nothing: a subject without a key is planned under a throwaway key
 * that is never stored, so it counts the rows that would be written.
 */
export class SubjectBatchKeys {
  private readonly store: SubjectKeyStore;
  private readonly shared: KeyChoice;
  private readonly wrapping: boolean;

  constructor(
    keyring: Keyring,
    provider: string,
    private readonly mode: MigrationMode,
    private readonly dryRun: boolean,
    cacheMax: number,
  ) {
    this.store = new SubjectKeyStore({ keys: keyring, provider, cache: { max: cacheMax } });
    this.shared = sharedKeys(keyring);
    this.wrapping = keyring.primaryWrap !== undefined;
  }

  /** The keys for `rows` of `target`, read on `conn` (inside the batch's transaction unless a dry run). */
  async forRows(conn: SqlConnection, target: ModelTarget, rows: readonly StoredRow[]): Promise<BatchKeys> {
    const db = sqlClientOf(conn);
    const ids = subjectKeyIds(rows);
    const loaded = ids.size === 0 ? new Map<string, SubjectKeyLookup>() : this.dryRun ? await this.store.load(db, ids) : await this.store.lockKeys(db, ids);
    const refs = rows.map((row) => (needsSubjectKey(this.mode, target.fields, row) ? subjectOf(target, row.subject) : undefined));
    const wanted = refs.filter((r): r is { ref: string } => typeof r === 'object').map((r) => r.ref);
    if (wanted.length > 0 && !this.dryRun && !this.wrapping) {
      throw new ConfigurationError(target.model, undefined, 'the model is encrypted under per-subject keys (@@encrypted(subject: ...)), and rows need their subject key, which needs a wrap key in the keyring (prisma-column-encryption keys generate --purpose wrap, or PCE_WRAP_KEYS)');
    }
    const found = wanted.length === 0 ? new Map<string, SubjectKeyLookup>() : await this.store.keysForSubjects(db, wanted, { create: !this.dryRun });
    const shared = this.shared;
    const read: KeyChoice = {
      forWrite: () => {
        throw new Error('the read keys of a batch never write (a bug in the migrator)');
      },
      forRead: (scope, keyId) => (scope === 'shared' ? shared.forRead(scope, keyId) : (loaded.get(keyId) ?? 'unknown-key')),
      indexKeys: (binding) => shared.indexKeys(binding),
    };
    return {
      read,
      rows: refs.map((r) => {
        const write: SubjectKeyLookup | MissingReason | undefined = r === undefined ? undefined : typeof r === 'string' ? r : (found.get(r.ref) ?? (this.dryRun ? DRY_RUN_KEY : undefined));
        return { ...read, forWrite: () => writeKey(write) };
      }),
    };
  }
}

type MissingReason = 'no-subject' | 'invalid-subject';

/** A key no value is ever stored under: a dry run plans the rows of subjects without a key with it. */
const DRY_RUN_KEY: ChosenKey = { scope: 'subject', id: 'dry-run', key: createSecretKey(randomBytes(32)) };

function writeKey(write: SubjectKeyLookup | MissingReason | undefined): ChosenKey {
  if (write === undefined) throw new Error('no subject key was fetched for a row that writes one (a bug in the migrator)');
  if (typeof write === 'string') throw new MissingWriteKey(write);
  return write;
}

/** The row's subject as the key table keys it, or why it has none. Never echoes the id. */
function subjectOf(target: ModelTarget, value: unknown): { ref: string } | MissingReason {
  if (value === null || value === undefined) return 'no-subject';
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'bigint') return 'invalid-subject';
  try {
    return { ref: subjectRef(target.subject!.root, value) };
  } catch {
    return 'invalid-subject';
  }
}

/**
 * Whether planning this row will encrypt anything, and so needs the row's subject key (fetched
 * or created before planning). The same rules as `planRow`: legacy plaintext (encrypt-existing),
 * a prisma-field-encryption value (convert-pfe), and a shared-key envelope (rotate and
 * encrypt-existing move it under the subject key). A value under a subject key is never re-encrypted.
 */
export function needsSubjectKey(mode: MigrationMode, fields: ReadonlyArray<{ readonly spec: EncryptedFieldSpec; readonly typedColumn?: string }>, row: Pick<StoredRow, 'values' | 'typed'>): boolean {
  return fields.some((f, i) => {
    const legacy = f.typedColumn ? row.typed?.[i] : undefined;
    if (legacy !== null && legacy !== undefined) return mode === 'encrypt-existing';
    const value = row.values[i];
    if (typeof value !== 'string') return false;
    if (f.spec.legacy && looksLikePfe(value)) return mode === 'convert-pfe';
    if (!looksLikeCiphertext(value)) return mode === 'encrypt-existing';
    return mode !== 'convert-pfe' && !underSubjectKey(value);
  });
}

/** The subject key ids a batch's stored values name (what verify and the migrator load in one query). */
export function subjectKeyIds(rows: ReadonlyArray<Pick<StoredRow, 'values'>>): Set<string> {
  const ids = new Set<string>();
  for (const row of rows) {
    for (const v of row.values) {
      if (typeof v !== 'string') continue;
      const h = parseHeader(v);
      if (h.kind === 'header' && h.header.scope === 'subject') ids.add(h.header.keyId);
    }
  }
  return ids;
}
