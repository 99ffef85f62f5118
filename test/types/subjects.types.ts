/**
 * Compile-time check (npm run typecheck) that the README's erasure snippets type-check with a
 * real generated client, base and extended: no casts needed.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/postgres/client/client';
import { encryptedFields } from '../../generated/postgres/encryption';
import { columnEncryption, ErasureLedger, forgetSubject, localKeys, reinstateSubject, replayErasures, rotateEpoch, SubjectKeyStore, subjectRef } from '../../src';

export async function readmeSnippets(keys: ReturnType<typeof localKeys>): Promise<void> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: 'postgresql://localhost/db' }) });
  const ledger = new ErasureLedger('/var/lib/erasures/ledger.jsonl');
  await forgetSubject(prisma, 42, { fields: encryptedFields, model: 'Person', ledger });
  await replayErasures(prisma, ledger, { fields: encryptedFields });
  await reinstateSubject(prisma, 42, { fields: encryptedFields, model: 'Person', ledger });
  await rotateEpoch(prisma, keys, { fields: encryptedFields });
  const extended = prisma.$extends(columnEncryption({ fields: encryptedFields, keys }));
  const store = new SubjectKeyStore({ keys, provider: encryptedFields.provider });
  await forgetSubject(extended, 'cuid', { fields: encryptedFields, model: 'Client', ledger, store });
  await prisma.$transaction(async (tx) => store.keyForSubject(tx, subjectRef('Person', 7)));
}
