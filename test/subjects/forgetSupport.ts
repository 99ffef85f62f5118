import { forgetSubject, type SubjectKeyStore, type TransactionalClient } from '../../src';
import { encryptedFields as pgFields } from '../../generated/postgres/encryption';
import { encryptedFields as myFields } from '../../generated/mysql/encryption';
import type { Harness } from '../support/clients';

/** forgetSubject through the harness's plain client, evicting from the store the extension reads through. */
export async function forget(h: Harness, store: SubjectKeyStore, subject: number): Promise<void> {
  await forgetSubject(h.plain as unknown as TransactionalClient, subject, { fields: h.provider === 'postgres' ? pgFields : myFields, model: 'Person', store });
}
