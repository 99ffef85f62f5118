import { KeyringError } from '../errors';
import { isWrapped, type KeyEntry, type KeyringDocument } from './keyringFile';
import type { KeyUsage } from './keyUsage';
import { findKey } from './lifecycle';

/**
 * Destroying a key: removing a retired wrap key's entry from the keyring document, the step that
 * ends old backups (every subject key in them is wrapped under an epoch that no longer exists).
 * Like lifecycle.ts, a function from one document to the next; the CLI writes the result.
 */

/** Why `keys destroy` refused. */
export type DestroyRefusal = 'not-retired' | 'not-a-wrap-key' | 'key-in-use' | 'nothing-scanned';

/** `keys destroy` refused; the keyring was not changed. `refusal` says why. */
export class KeyDestroyRefusedError extends KeyringError {
  constructor(
    keyId: string,
    readonly refusal: DestroyRefusal,
    reason: string,
  ) {
    super(keyId, reason);
  }
}

/**
 * The checks that need no database: the key exists, is retired, and is a wrap key. Data and index
 * keys are refused: a retired one may still be needed by backups taken before it was rotated away,
 * which no scan of the live database can see.
 */
export function checkDestroyable(doc: KeyringDocument, id: string): KeyEntry {
  const entry = findKey(doc, id);
  if (!entry) throw new KeyringError(id, `is not in the keyring (known: ${doc.keys.map((k) => k.id).join(', ') || 'none'})`);
  if (entry.status !== 'retired') {
    throw new KeyDestroyRefusedError(id, 'not-retired', `is ${entry.status}: only a retired key can be destroyed; retire it first (prisma-column-encryption keys retire ${id}), which checks that nothing in the database needs it`);
  }
  if (entry.purpose !== 'wrap') {
    throw new KeyDestroyRefusedError(
      id,
      'not-a-wrap-key',
      `is a ${entry.purpose} key: keys destroy removes only wrap keys (old epochs). A retired ${entry.purpose} key can still be needed for ` +
        `${entry.purpose === 'data' ? 'values' : 'blind indexes'} in backups taken before it was rotated away, which a scan of the live database cannot see; ` +
        'once no such backup is kept, remove its entry from the keyring file (and every copy of the file) yourself',
    );
  }
  return entry;
}

/**
 * Removes a retired wrap key's entry. Refused while `usage` (a count of the subject-key table)
 * shows a live or pending subject key still wrapped under it, which would become unreadable
 * without an erasure, and when nothing was counted at all (no subject-key table: zero would prove
 * nothing).
 */
export function destroyKey(doc: KeyringDocument, id: string, usage: KeyUsage): { doc: KeyringDocument; entry: KeyEntry } {
  const entry = checkDestroyable(doc, id);
  if (usage.keyId !== id || usage.purpose !== 'wrap') throw new KeyringError(id, 'usage counts are for another key');
  if (usage.scannedFields === 0) {
    throw new KeyDestroyRefusedError(id, 'nothing-scanned', 'was not destroyed: the schema has no subject-key table (model PceSubjectKey, @@map("pce_subject_keys")) to count its wrapped keys in. Check --schema and the database URL');
  }
  if (usage.values > 0) {
    const n = usage.values;
    throw new KeyDestroyRefusedError(
      id,
      'key-in-use',
      `was not destroyed: it still wraps ${n} subject key${n === 1 ? '' : 's'} that ${n === 1 ? 'is' : 'are'} not erased, which would become unreadable. ` +
        `Reactivate it (keys reactivate ${id}), re-wrap them under the primary wrap key (keys rotate-epoch), retire it again, then destroy it`,
    );
  }
  return { doc: { ...doc, keys: doc.keys.filter((k) => k !== entry) }, entry };
}

/** The ids of other entries wrapped by the same KMS key version as `entry` (destroying that version loses them too). */
export function sharingKmsKeyVersion(doc: KeyringDocument, entry: KeyEntry): string[] {
  if (!isWrapped(entry)) return [];
  return doc.keys.filter((k) => k !== entry && isWrapped(k) && k.kmsKeyVersion === entry.kmsKeyVersion).map((k) => k.id);
}
