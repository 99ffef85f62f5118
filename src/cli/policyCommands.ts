import { InvalidArgumentError, type Command } from 'commander';
import { KeyringError } from '../errors';
import { envValue } from '../keys/envValue';
import { readKeyringFile, writeKeyringFile } from '../keys/keyringFile';
import { withKeyringLock } from '../keys/keyringLock';
import { keyAges, rotationSteps, type RotationPolicy } from '../keys/rotationPolicy';
import { nonNegativeInt } from './intArguments';
import { ageText, EXIT_ROTATION_DUE, type CheckOutput } from './keyOutput';

/** What the policy commands need from the outside world. */
export interface PolicyCommandDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly write: (text: string) => void;
  readonly now: () => Date;
}

interface Opts {
  keyring?: string;
  json?: boolean;
}

function days(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 36500) throw new InvalidArgumentError('expected whole days, 1 to 36500');
  return n;
}

/** `keys policy` (set the rotation policy) and `keys check` (enforce it: exit code 2 when a key is overdue). */
export function registerPolicyCommands(keys: Command, overrides: Partial<PolicyCommandDeps> = {}): void {
  const deps: PolicyCommandDeps = { env: process.env, write: (t) => process.stdout.write(t), now: () => new Date(), ...overrides };
  const path = (opts: Opts) => {
    const p = opts.keyring ?? envValue(deps.env.PCE_KEYRING_FILE);
    if (!p) throw new KeyringError(undefined, 'no keyring file: pass --keyring <file> or set PCE_KEYRING_FILE');
    return p;
  };
  const emit = (opts: Opts, json: object, lines: string[]) => deps.write(opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${lines.join('\n')}\n`);

  keys
    .command('policy')
    .description('Set the rotation policy in the keyring file: how many days a key may stay primary, per purpose')
    .option('--data-max-age-days <days>', 'data keys', days)
    .option('--index-max-age-days <days>', 'index keys', days)
    .option('--wrap-max-age-days <days>', 'wrap keys (the subject-key epoch: how often keys rotate-epoch must run)', days)
    .option('--clear', 'remove the policy')
    .option('--keyring <file>', 'keyring file (default: env PCE_KEYRING_FILE)')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: Opts & { dataMaxAgeDays?: number; indexMaxAgeDays?: number; wrapMaxAgeDays?: number; clear?: boolean }) => {
      const file = path(opts);
      const policy = await withKeyringLock(file, async () => {
        const doc = await readKeyringFile(file);
        const next: RotationPolicy = opts.clear
          ? {}
          : {
              ...doc.policy,
              ...(opts.dataMaxAgeDays ? { data: { maxAgeDays: opts.dataMaxAgeDays } } : {}),
              ...(opts.indexMaxAgeDays ? { index: { maxAgeDays: opts.indexMaxAgeDays } } : {}),
              ...(opts.wrapMaxAgeDays ? { wrap: { maxAgeDays: opts.wrapMaxAgeDays } } : {}),
            };
        const { policy: _old, ...rest } = doc;
        await writeKeyringFile(file, Object.keys(next).length > 0 ? { ...rest, policy: next } : rest);
        return next;
      });
      const text = Object.entries(policy).map(([p, r]) => `${p} keys at most ${r.maxAgeDays} days primary`);
      emit(opts, { policy }, [text.length > 0 ? `rotation policy: ${text.join(', ')}` : 'rotation policy removed']);
    });

  keys
    .command('check')
    .description(`Check primary keys against the rotation policy: exit code ${EXIT_ROTATION_DUE} (with the steps to run) when one is overdue`)
    .option('--warn-days <days>', 'also list keys due within this many days (exit code stays 0)', nonNegativeInt, 14)
    .option('--keyring <file>', 'keyring file (default: env PCE_KEYRING_FILE)')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: Opts & { warnDays: number }) => {
      const doc = await readKeyringFile(path(opts));
      if (!doc.policy || Object.keys(doc.policy).length === 0) {
        throw new KeyringError(undefined, 'the keyring has no rotation policy: set one with `keys policy --data-max-age-days 90 --index-max-age-days 365`');
      }
      const ages = keyAges(doc.keys, doc.policy, deps.now(), opts.warnDays);
      const overdue = ages.filter((a) => a.state === 'overdue');
      const dueSoon = ages.filter((a) => a.state === 'due-soon');
      const out: CheckOutput = { ok: overdue.length === 0, policy: doc.policy, overdue, dueSoon, steps: Object.fromEntries(overdue.map((a) => [a.id, rotationSteps(a)])) };
      const lines = [
        ...overdue.flatMap((a) => [`OVERDUE: primary ${a.purpose} key ${a.id}: ${ageText(a)}; rotate it:`, ...rotationSteps(a).map((s) => `  ${s}`)]),
        ...dueSoon.map((a) => `due soon: primary ${a.purpose} key ${a.id}: ${ageText(a)}`),
        ...(overdue.length === 0 ? [`OK: no primary key is past the rotation policy${dueSoon.length === 0 ? '' : ` (${dueSoon.length} due within ${opts.warnDays} days)`}`] : []),
      ];
      emit(opts, out, lines);
      if (overdue.length > 0) process.exitCode = EXIT_ROTATION_DUE;
    });
}
