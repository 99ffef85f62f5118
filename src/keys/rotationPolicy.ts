import { KeyringError } from '../errors';
import { KEY_PURPOSES, type KeyPurpose } from './keyMaterial';

/**
 * Rotation policies: how long a key may stay the primary of its purpose. Pure functions over the
 * keyring document's `policy` and its keys' `createdAt`; the CLI (`keys list`, `keys check`,
 * `status`) and `loadKeyring` (a warning event) apply them.
 *
 * ```json
 * "policy": { "data": { "maxAgeDays": 90 }, "index": { "maxAgeDays": 365 } }
 * ```
 */

/** The rule for one purpose. */
export interface PurposePolicy {
  /** Days from a key's `createdAt` after which, while it is primary, it must be rotated. */
  readonly maxAgeDays: number;
}

/** Rotation policy per purpose; a purpose without one has no limit. */
export type RotationPolicy = { readonly [P in KeyPurpose]?: PurposePolicy };

/** Where a key stands against its purpose's policy. */
export type RotationState =
  /** Primary and within its policy. */
  | 'ok'
  /** Primary, within its policy, but due within the warning window. */
  | 'due-soon'
  /** Primary and older than its policy allows: rotate now. */
  | 'overdue'
  /** No policy for its purpose. */
  | 'no-policy'
  /** Not primary (active or retired): the policy governs primaries only. */
  | 'not-primary';

/** A key's age and its standing against the policy. */
export interface KeyAge {
  readonly id: string;
  readonly purpose: KeyPurpose;
  readonly primary: boolean;
  /** Whole days since `createdAt`. */
  readonly ageDays: number;
  readonly maxAgeDays: number | null;
  /** When it must have been rotated (ISO time), for a primary key under a policy. */
  readonly dueAt: string | null;
  /** Days until `dueAt` (negative once overdue). */
  readonly dueInDays: number | null;
  readonly state: RotationState;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const PURPOSES = KEY_PURPOSES;

/** Checks a `policy` value read from a keyring document. Errors name the field. */
export function parseRotationPolicy(value: unknown, origin: string): RotationPolicy {
  const bad = (what: string) => new KeyringError(undefined, `${origin}: "policy"${what}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(' must be an object like { "data": { "maxAgeDays": 90 } }');
  const out: { -readonly [P in KeyPurpose]?: PurposePolicy } = {};
  for (const [purpose, rule] of Object.entries(value as Record<string, unknown>)) {
    if (!PURPOSES.includes(purpose as KeyPurpose)) throw bad(`: unknown purpose '${purpose}' (use data, index or wrap)`);
    const days = (rule as { maxAgeDays?: unknown } | null)?.maxAgeDays;
    const keys = typeof rule === 'object' && rule !== null ? Object.keys(rule) : [];
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > 36500 || keys.some((k) => k !== 'maxAgeDays')) {
      throw bad(`.${purpose} must be { "maxAgeDays": <whole days, 1 to 36500> }`);
    }
    out[purpose as KeyPurpose] = { maxAgeDays: days };
  }
  return out;
}

/** Ages of the given keys against `policy` at `now`; `warnDays` widens `due-soon`. */
export function keyAges(
  keys: ReadonlyArray<{ readonly id: string; readonly purpose: KeyPurpose; readonly status: string; readonly createdAt: string }>,
  policy: RotationPolicy | undefined,
  now: Date,
  warnDays = 14,
): KeyAge[] {
  return keys.map((k) => {
    const created = Date.parse(k.createdAt);
    const ageDays = Math.max(0, Math.floor((now.getTime() - created) / DAY_MS));
    const primary = k.status === 'primary';
    const rule = policy?.[k.purpose];
    if (!rule || !primary) {
      return { id: k.id, purpose: k.purpose, primary, ageDays, maxAgeDays: rule?.maxAgeDays ?? null, dueAt: null, dueInDays: null, state: rule ? 'not-primary' : 'no-policy' };
    }
    const due = created + rule.maxAgeDays * DAY_MS;
    const dueInDays = Math.floor((due - now.getTime()) / DAY_MS);
    const state: RotationState = now.getTime() >= due ? 'overdue' : dueInDays < warnDays ? 'due-soon' : 'ok';
    return { id: k.id, purpose: k.purpose, primary, ageDays, maxAgeDays: rule.maxAgeDays, dueAt: new Date(due).toISOString(), dueInDays, state };
  });
}

/** The operator's commands for rotating the primary key of a purpose (the two-deploy recipe). */
export function rotationSteps(age: Pick<KeyAge, 'id' | 'purpose'>): string[] {
  return [
    `prisma-column-encryption keys generate --purpose ${age.purpose}   # new key, active: deploy every instance`,
    `prisma-column-encryption keys promote <new id>                   # new writes use it: deploy every instance again`,
    age.purpose === 'wrap'
      ? `prisma-column-encryption keys rotate-epoch                      # re-wrap every live subject key under the new epoch`
      : `prisma-column-encryption rotate                                  # re-encrypt${age.purpose === 'index' ? ' (re-index)' : ''} values under ${age.id}`,
    age.purpose === 'wrap'
      ? `prisma-column-encryption keys retire ${age.id}                   # once backups older than the rotation are gone: then destroy it`
      : `prisma-column-encryption keys retire ${age.id}                   # once status shows nothing left under it`,
  ];
}
