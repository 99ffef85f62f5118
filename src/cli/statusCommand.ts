import type { Keyring } from '../keys/keyring';
import { envValue } from '../keys/envValue';
import { readKeyringFile } from '../keys/keyringFile';
import { keyAges, type KeyAge } from '../keys/rotationPolicy';
import { collectStatus } from '../migrate/status';
import { sqlClientOf } from '../migrate/sqlClientOf';
import { hasSubjectKeyTable, subjectKeyCounts } from '../subjects/subjectKeyCounts';
import { cliKeyring, type CommonCliOptions } from './cliContext';
import { ageText } from './keyOutput';
import type { ScopeOptions } from './migrateOptions';
import { formatStatus, printJson, subjectKeyLine } from './migrateOutput';
import { withSession } from './migrateSession';

/** `status`: counts per key id, plaintext and nulls, the subject-key table and the keys' ages. */
export async function runStatus(options: CommonCliOptions & ScopeOptions): Promise<void> {
  const { fields, primary, note, scanned, subjectKeys, primaryWrap } = await withSession({ ...options, quiet: true }, async ({ schema, scanned, conn, logger }) => {
    let keyring: Keyring | undefined;
    let keyNote: string | undefined;
    try {
      keyring = await cliKeyring(options, logger);
    } catch (error) {
      keyNote = `primary keys not marked: ${(error as Error).message}`;
    }
    const statuses = await collectStatus(conn, schema, { ...(options.model ? { model: options.model } : {}), ...(options.field ? { field: options.field } : {}) });
    // The key table is reported when status covers the whole schema, not one model or field.
    const whole = !options.model && !options.field;
    const subjectKeys = whole && hasSubjectKeyTable(schema) ? await subjectKeyCounts(sqlClientOf(conn), schema.provider) : undefined;
    return {
      fields: statuses,
      subjectKeys,
      primaryWrap: keyring?.primaryWrap?.id,
      primary: keyring ? { dataKey: keyring.primaryData.id, indexKey: keyring.primaryIndexKeyId } : undefined,
      note: keyNote,
      scanned,
    };
  });
  const ages = await keyringAges(options);
  if (options.json) {
    printJson({ fields, ...(primary ? { primary } : {}), ...(subjectKeys ? { subjectKeys } : {}), ...(ages ? { keyAges: ages } : {}), scanned });
    return;
  }
  if (note) process.stderr.write(`${note}\n`);
  process.stdout.write(formatStatus(fields, primary));
  if (subjectKeys) process.stdout.write(`${subjectKeyLine(subjectKeys, primaryWrap)}\n`);
  if (ages) process.stdout.write(`${ages.map((a) => `key ${a.id} (${a.primary ? 'primary ' : ''}${a.purpose}): ${ageText(a)}`).join('\n')}\n`);
}

/** Key ages against the rotation policy, when the keys come from a keyring file. */
async function keyringAges(options: CommonCliOptions): Promise<KeyAge[] | undefined> {
  const file = options.keyring ?? envValue(process.env.PCE_KEYRING_FILE);
  if (!file) return undefined;
  const doc = await readKeyringFile(file).catch(() => undefined);
  return doc ? keyAges(doc.keys.filter((k) => k.status !== 'retired'), doc.policy, new Date()) : undefined;
}
