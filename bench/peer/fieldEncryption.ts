import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fieldEncryptionExtension } from 'prisma-field-encryption';

/*
 * prisma-field-encryption@1.6.0 (the existing peer) on Prisma 7, configured as closely to this
 * project's annotations as it allows (see schema.prisma next to this file for what differs).
 */

type FieldEncryptionConfig = NonNullable<Parameters<typeof fieldEncryptionExtension>[0]>;
export type PeerDmmf = NonNullable<FieldEncryptionConfig['dmmf']>;

interface RuntimeDataModel {
  readonly models: Record<string, { readonly fields: readonly { readonly name: string; readonly kind: string; readonly type: string }[] }>;
}

const DMMF_FILE = join(__dirname, '..', '..', 'generated', 'bench', 'dmmf.json');

/** The full DMMF saved by dmmfGenerator.ts during `npm run bench`'s prebench step. */
export function loadPeerDmmf(): PeerDmmf {
  try {
    return JSON.parse(readFileSync(DMMF_FILE, 'utf8')) as PeerDmmf;
  } catch (error) {
    throw new Error(`${DMMF_FILE} is missing: run \`npm run bench\` (its prebench step generates it): ${(error as Error).message}`);
  }
}

/**
 * Model and field names the peer's DMMF uses that the real client does not have. Empty when
 * bench/peer/schema.prisma still agrees with prisma/postgres/schema.prisma. Pure.
 */
export function dmmfMismatches(dmmf: PeerDmmf, runtime: RuntimeDataModel): string[] {
  const problems: string[] = [];
  for (const model of dmmf.datamodel.models) {
    const real = runtime.models[model.name];
    if (!real) {
      problems.push(`model ${model.name}`);
      continue;
    }
    for (const field of model.fields) {
      const match = real.fields.find((f) => f.name === field.name);
      if (!match || String(field.type) !== match.type) problems.push(`${model.name}.${field.name}`);
    }
  }
  return problems;
}

/** A cloak key (`k1.aesgcm256.<base64url>`), the format prisma-field-encryption expects. */
export function peerKey(): string {
  return `k1.aesgcm256.${randomBytes(32).toString('base64url')}`;
}

/**
 * Why the peer needs a hand-made DMMF on Prisma 7, shown by trying what it does by default:
 * reports each failure's message as it happens on this installation.
 */
export function whyPeerNeedsDmmf(runtime: RuntimeDataModel): string[] {
  const reasons: string[] = [];
  const key = peerKey();
  try {
    fieldEncryptionExtension({ encryptionKey: key });
    reasons.push('default set-up (Prisma.dmmf from @prisma/client) unexpectedly worked');
  } catch (error) {
    reasons.push(`default set-up reads require('@prisma/client').Prisma.dmmf, which fails: ${firstLine(error)}`);
  }
  // What Prisma 7 clients do carry: the runtime data model, without documentation/isId/isUnique/isList.
  const reduced = { datamodel: { models: Object.entries(runtime.models).map(([name, m]) => ({ name, fields: m.fields })) } };
  try {
    fieldEncryptionExtension({ encryptionKey: key, dmmf: reduced as unknown as PeerDmmf });
    reasons.push('the client runtime data model was accepted (unexpected)');
  } catch (error) {
    reasons.push(`given the Prisma 7 client's runtime data model instead, its DMMF validation fails: ${firstLine(error)}`);
  }
  return reasons;
}

function firstLine(error: unknown): string {
  const issues = (error as { issues?: { path: (string | number)[]; message: string }[] }).issues;
  if (Array.isArray(issues)) {
    const missing = [...new Set(issues.map((i) => String(i.path[i.path.length - 1])))];
    return `${issues.length} issues, fields lack ${missing.join(', ')} (${issues[0]?.message ?? ''})`;
  }
  const text = (error instanceof Error ? error.message : String(error)).split('Require stack')[0]!;
  return text.replace(/\s+/g, ' ').trim();
}

/** The peer's client extension with one key and the full DMMF. */
export function peerExtension(dmmf: PeerDmmf, encryptionKey: string): ReturnType<typeof fieldEncryptionExtension> {
  return fieldEncryptionExtension({ encryptionKey, decryptionKeys: [encryptionKey], dmmf });
}
