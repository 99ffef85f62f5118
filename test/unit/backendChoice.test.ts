import pino from 'pino';
import { encryptedFields } from '../../generated/postgres/encryption';
import type * as Choice from '../../src/codec/backendChoice';
import { columnEncryption } from '../../src';
import { testKeyring } from '../support/keys';

/**
 * Which crypto backend runs: native where the module loads, node:crypto otherwise, either forced
 * by PCE_CRYPTO_BACKEND; the choice is made once per process, so each case loads the module
 * afresh with its own environment.
 */
function withEnv<T>(env: Record<string, string | undefined>, run: (choice: typeof Choice) => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
  try {
    let result: T | undefined;
    jest.isolateModules(() => {
      result = run(require('../../src/codec/backendChoice') as typeof Choice);
    });
    return result as T;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// node-gyp-build looks here instead of the package when this variable names a folder.
const NO_PREBUILD = { PRISMA_COLUMN_ENCRYPTION_PREBUILD: '/nonexistent/pce-no-prebuild' };
const onLinuxX64 = process.platform === 'linux' && process.arch === 'x64';

describe('crypto backend choice', () => {
  (onLinuxX64 ? test : test.skip)('native by default where the prebuild loads', () => {
    expect(withEnv({ PCE_CRYPTO_BACKEND: undefined }, (c) => c.cryptoBackend())).toEqual({ name: 'native' });
  });

  test('PCE_CRYPTO_BACKEND=node forces node:crypto, and says why native is not used', () => {
    const info = withEnv({ PCE_CRYPTO_BACKEND: 'node' }, (c) => [c.cryptoBackend(), c.defaultBackend().name]);
    expect(info).toEqual([{ name: 'node', nativeUnavailable: expect.stringContaining('PCE_CRYPTO_BACKEND') }, 'node']);
  });

  test('without a loadable module the default falls back to node:crypto, naming the reason', () => {
    const info = withEnv({ PCE_CRYPTO_BACKEND: undefined, ...NO_PREBUILD }, (c) => c.cryptoBackend());
    expect(info).toEqual({ name: 'node', nativeUnavailable: expect.stringContaining('No native build was found') });
  });

  test('PCE_CRYPTO_BACKEND=native without a loadable module is a configuration error, not a silent fallback', () => {
    expect(() => withEnv({ PCE_CRYPTO_BACKEND: 'native', ...NO_PREBUILD }, (c) => c.defaultBackend())).toThrow(
      /native crypto backend was asked for but cannot be used here: No native build was found/,
    );
  });

  test('any other PCE_CRYPTO_BACKEND value is refused', () => {
    expect(() => withEnv({ PCE_CRYPTO_BACKEND: 'openssl' }, (c) => c.defaultBackend())).toThrow(/PCE_CRYPTO_BACKEND must be 'node' or 'native'/);
  });
});

describe('the audit log names the backend', () => {
  const loaded = async (options: { cryptoBackend?: 'node' | 'native' }) => {
    const lines: string[] = [];
    columnEncryption({ fields: encryptedFields, keys: testKeyring(), logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(s) }), ...options });
    await new Promise((resolve) => setImmediate(resolve));
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === 'pce.keys.loaded');
  };

  (onLinuxX64 ? test : test.skip)('pce.keys.loaded says native by default here', async () => {
    expect(await loaded({})).toMatchObject({ cryptoBackend: 'native' });
  });

  test("and node, with the reason, for a client given cryptoBackend: 'node'", async () => {
    expect(await loaded({ cryptoBackend: 'node' })).toMatchObject({ cryptoBackend: 'node', nativeUnavailable: expect.stringContaining('asked for') });
  });
});
