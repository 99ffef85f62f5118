import { Decimal } from '@prisma/client/runtime/client';
import { UnsupportedQueryError, type ColumnEncryptionOptions } from '../../src';
import { createHarness, type Harness } from '../support/clients';
import type { Provider } from '../support/databases';

/**
 * What the mirror property tests share: one command's outcome on either side, in a form that
 * compares across sides. The encrypting client runs against one database, a plain client against
 * a second database of the same schema (the mirror); every outcome must be the same.
 */

/** On the mirror, Prisma runs unchanged on plaintext columns; the encrypting side runs through the extension. */
export type Side = 'encrypted' | 'mirror';

/** A command's outcome: its comparable result, the operator the extension refused, or Prisma's error code. */
export type Outcome = { ok: unknown } | { refused: string } | { error: string };

/**
 * Runs one command on one side. `refusal` is the operator the encrypting client must refuse the
 * command with (ciphertext cannot answer it): the mirror states it instead of running.
 */
export async function outcomeOf(side: Side, refusal: string | undefined, run: () => Promise<unknown>, comparable: (value: unknown) => unknown): Promise<Outcome> {
  if (side === 'mirror' && refusal) return { refused: refusal };
  try {
    return { ok: comparable(await run()) };
  } catch (error) {
    if (error instanceof UnsupportedQueryError) return { refused: error.operator };
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !code.startsWith('P')) throw error;
    return { error: code };
  }
}

/**
 * A result with the keys `drop` names removed at every depth. Dates stay Dates; a Decimal becomes
 * its plain text, bytes a plain array and -0 is 0, so that two equal values compare equal whichever
 * side built them (an encrypted Float keeps -0, README "Typed fields"; plain PostgreSQL reads 0).
 */
export function comparableWithout(drop: (key: string) => boolean): (value: unknown) => unknown {
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (Object.is(value, -0)) return 0;
    if (value === null || typeof value !== 'object' || value instanceof Date) return value;
    if (Decimal.isDecimal(value)) return { decimal: (value as Decimal).toFixed() };
    if (value instanceof Uint8Array) return { bytes: [...value] };
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !drop(k))
        .map(([k, v]) => [k, walk(v)]),
    );
  };
  return walk;
}

/** Whether a command's outcome found something (a non-empty list, a row, a non-zero count). */
export function foundSomething(outcome: Outcome): boolean {
  if (!('ok' in outcome)) return false;
  const data = outcome.ok;
  if (Array.isArray(data)) return data.length > 0;
  if (typeof data === 'number') return data > 0;
  return data !== null && data !== undefined;
}

/**
 * The two databases of one describe block, opened before its tests and closed after them: the
 * encrypting side (with `options`) and the mirror (its `plain` client is the one to use).
 */
export function mirrorPair(provider: Provider, options: Partial<ColumnEncryptionOptions> = {}): { encrypted: Harness; mirror: Harness } {
  const pair = {} as { encrypted: Harness; mirror: Harness };
  beforeAll(async () => {
    [pair.encrypted, pair.mirror] = await Promise.all([createHarness(provider, options), createHarness(provider)]);
  });
  afterAll(async () => {
    await Promise.all([pair.encrypted?.close(), pair.mirror?.close()]);
  });
  return pair;
}
