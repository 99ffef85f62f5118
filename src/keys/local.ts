import { KeyringError } from '../errors';
import { Keyring } from './keyring';
import { envValue } from './envValue';
import { decodeBase64Key, importKeyBytes, type KeyPurpose, type LoadedKey } from './keyMaterial';

/** A key given in code: an id and base64 of 32 random bytes. */
export interface LocalKeySpec {
  readonly id: string;
  readonly key: string;
}

/** Keys for {@link localKeys}: data, index and (optionally) wrap keys given in code, and which are primary. */
export interface LocalKeysOptions {
  /** Data-encryption keys. The first is primary unless `primaryDataKey` says otherwise. */
  readonly data: readonly LocalKeySpec[];
  /** Blind-index root keys. The first is primary unless `primaryIndexKey` says otherwise. */
  readonly index: readonly LocalKeySpec[];
  /** Wrap keys for per-subject keys (needed only with subject models). The first is primary (the epoch) unless `primaryWrapKey` says otherwise. */
  readonly wrap?: readonly LocalKeySpec[];
  readonly primaryDataKey?: string;
  readonly primaryIndexKey?: string;
  readonly primaryWrapKey?: string;
}

/**
 * A keyring from keys held by the application: for development and tests. Production keys
 * belong in a KMS (see `loadKeyring` and the keyring file).
 *
 * @example
 * localKeys({ data: [{ id: 'd1', key: process.env.DATA_KEY! }], index: [{ id: 'i1', key: process.env.INDEX_KEY! }] })
 */
export function localKeys(options: LocalKeysOptions): Keyring {
  const load = (purpose: KeyPurpose) => (spec: LocalKeySpec): LoadedKey => {
    if (typeof spec.key !== 'string') throw new KeyringError(spec.id, 'key must be a base64 string');
    return importKeyBytes(spec.id, purpose, decodeBase64Key(spec.id, spec.key), { kind: 'local' });
  };
  return new Keyring([...options.data.map(load('data')), ...options.index.map(load('index')), ...(options.wrap ?? []).map(load('wrap'))], {
    primaryDataKey: options.primaryDataKey,
    primaryIndexKey: options.primaryIndexKey,
    primaryWrapKey: options.primaryWrapKey,
  });
}

/**
 * Parses `id:base64,id:base64` (first entry primary) as used in environment variables.
 * Exposed for tests; prefer {@link localKeysFromEnv}.
 */
export function parseKeyList(variable: string, raw: string | undefined): LocalKeySpec[] {
  const text = envValue(raw);
  if (text === undefined) {
    throw new KeyringError(undefined, `environment variable ${variable} is not set (format: id:base64,id:base64; the first is primary)`);
  }
  return text.split(',').map((entry, i) => {
    const sep = entry.indexOf(':');
    if (sep <= 0) throw new KeyringError(undefined, `${variable} entry ${i + 1} is not of the form id:base64`);
    return { id: entry.slice(0, sep).trim(), key: entry.slice(sep + 1).trim() };
  });
}

/**
 * Local keys from environment variables (default `PCE_DATA_KEYS`, `PCE_INDEX_KEYS` and, optional,
 * `PCE_WRAP_KEYS`), each `id:base64,id:base64` with the primary first.
 */
export function localKeysFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  names: { data?: string; index?: string; wrap?: string } = {},
): Keyring {
  const dataVar = names.data ?? 'PCE_DATA_KEYS';
  const indexVar = names.index ?? 'PCE_INDEX_KEYS';
  const wrapVar = names.wrap ?? 'PCE_WRAP_KEYS';
  const wrap = envValue(env[wrapVar]) === undefined ? [] : parseKeyList(wrapVar, env[wrapVar]);
  return localKeys({ data: parseKeyList(dataVar, env[dataVar]), index: parseKeyList(indexVar, env[indexVar]), wrap });
}
