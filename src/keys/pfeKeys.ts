import { createSecretKey, type KeyObject } from 'node:crypto';
import { pfeFingerprint, type PfeKeyLookup } from '../codec/pfe';
import { KeyringError } from '../errors';
import { envValue } from './envValue';

/** Where {@link pfeLegacyKeys} reads prisma-field-encryption's keys and hash salts. */
export interface PfeLegacyKeysOptions {
  /** Default `process.env`: `PRISMA_FIELD_ENCRYPTION_KEY`, `PRISMA_FIELD_DECRYPTION_KEYS` and the hash salt variables. */
  readonly env?: NodeJS.ProcessEnv;
  /** Keys given in code instead of the environment (`k1.aesgcm256.<base64url>`), as prisma-field-encryption's `encryptionKey` and `decryptionKeys`. */
  readonly keys?: readonly string[];
}

/** `k1.aesgcm256.<32 bytes of url-safe base64>`, optionally padded: the cloak key format. */
const KEY_TEXT = /^k1\.aesgcm256\.([A-Za-z0-9_-]{43})=?$/;

/**
 * prisma-field-encryption's keys, for reading the values it wrote: a decrypt-only key source.
 * It has no write path at all, so nothing can ever be encrypted in the old format; pass it next
 * to the keyring (`columnEncryption({ ..., legacyKeys })`, the migrator's `legacyKeys`), and only
 * fields annotated `legacy: pfe` consult it. Drop it once `convert-pfe` has run and `verify` is clean.
 */
export class PfeLegacyKeys implements PfeKeyLookup {
  private readonly keys = new Map<string, KeyObject>();

  /** @internal Use {@link pfeLegacyKeys}. */
  constructor(
    entries: ReadonlyArray<{ readonly label: string; readonly text: string }>,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    for (const { label, text } of entries) {
      const match = KEY_TEXT.exec(text);
      // The entry is named by position, never echoed: it is key material.
      if (!match) throw new KeyringError(undefined, `${label} is not a prisma-field-encryption key (expected k1.aesgcm256.<base64url of 32 bytes>)`);
      const bytes = Buffer.from(match[1]!, 'base64url');
      const key = createSecretKey(bytes);
      bytes.fill(0);
      // The fingerprint is taken over the key's text as configured, padded or not: accept both
      // spellings so values written under either are found.
      const body = `k1.aesgcm256.${match[1]!}`;
      for (const spelling of [body, `${body}=`]) this.keys.set(pfeFingerprint(spelling), key);
    }
    if (this.keys.size === 0) {
      throw new KeyringError(undefined, 'no prisma-field-encryption key: set PRISMA_FIELD_ENCRYPTION_KEY (and PRISMA_FIELD_DECRYPTION_KEYS for older keys)');
    }
  }

  keyFor(fingerprint: string): KeyObject | undefined {
    return this.keys.get(fingerprint.toLowerCase());
  }

  salt(variable: string): string | undefined {
    return this.env[variable];
  }

  /** Fingerprints of the loaded keys (not secret: prisma-field-encryption stores them in every value). */
  fingerprints(): string[] {
    return [...this.keys.keys()];
  }
}

/**
 * Loads prisma-field-encryption's keys the way it did: `PRISMA_FIELD_ENCRYPTION_KEY` plus the
 * comma-separated `PRISMA_FIELD_DECRYPTION_KEYS` (or `options.keys`). Throws a KeyringError naming
 * the entry, never its text, when one is not a cloak key, or when there is none.
 *
 * @example
 * const prisma = new PrismaClient({ adapter }).$extends(
 *   columnEncryption({ fields: encryptedFields, keys: await loadKeyring(), legacyKeys: pfeLegacyKeys() }),
 * );
 */
export function pfeLegacyKeys(options: PfeLegacyKeysOptions = {}): PfeLegacyKeys {
  const env = options.env ?? process.env;
  const entries: Array<{ label: string; text: string }> = [];
  if (options.keys) {
    options.keys.forEach((text, i) => entries.push({ label: `keys entry ${i + 1}`, text: String(text).trim() }));
  } else {
    const primary = envValue(env.PRISMA_FIELD_ENCRYPTION_KEY);
    if (primary !== undefined) entries.push({ label: 'PRISMA_FIELD_ENCRYPTION_KEY', text: primary.trim() });
    (envValue(env.PRISMA_FIELD_DECRYPTION_KEYS) ?? '')
      .split(',')
      .map((t) => t.trim())
      .forEach((text, i) => {
        if (text !== '') entries.push({ label: `PRISMA_FIELD_DECRYPTION_KEYS entry ${i + 1}`, text });
      });
  }
  return new PfeLegacyKeys(entries, env);
}
