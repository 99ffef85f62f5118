import type { Keyring } from './keyring';
import { localKeysFromEnv } from './local';

/** Where the CLI and applications find their keys. */
export interface LoadKeyringOptions {
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Loads the keyring an application or the CLI should use. Today: local keys from
 * PCE_DATA_KEYS / PCE_INDEX_KEYS.
 */
export async function loadKeyring(options: LoadKeyringOptions = {}): Promise<Keyring> {
  return localKeysFromEnv(options.env ?? process.env);
}
