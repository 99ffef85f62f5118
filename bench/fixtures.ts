/*
 * The benchmark's rows: short personal values like the ones the targets were measured
 * with. Deterministic, so every contender stores the same plaintexts.
 */

export const SEED_USERS = 1000;
/** Users u0000..u0099 each have this many readings: the nested-include workload reads them. */
export const READINGS_PER_PARENT = 10;
export const PARENTS = 100;

export interface UserValues {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly phone: string;
  readonly nickname: string;
  readonly karma: number;
}

export function userId(i: number): string {
  return `u${String(i).padStart(4, '0')}`;
}

export function seedUser(i: number): UserValues {
  return {
    id: userId(i),
    email: `user${String(i).padStart(4, '0')}@example.org`,
    name: `Person Number ${i}`,
    phone: `+44 20 7946 ${String(i % 10000).padStart(4, '0')}`,
    nickname: 'seed',
    karma: i,
  };
}

/** Plaintext payload of the n-th written user (unique email, so its unique blind index is free). */
export function writtenUser(n: number, nickname: string): Omit<UserValues, 'id' | 'karma'> {
  return { email: `writer${n}@example.org`, name: `Written Person ${n}`, phone: `+44 161 496 ${String(n % 10000).padStart(4, '0')}`, nickname };
}

export interface ReadingValues {
  readonly userId: string;
  readonly title: string;
  readonly body: string;
  readonly topic: string;
  readonly stars: number;
}

export function seedReading(parent: number, j: number): ReadingValues {
  return {
    userId: userId(parent),
    title: `Reading ${j}`,
    body: `The stars suggest patience this week; reading ${j} for person ${parent}.`,
    topic: ['Love', 'Career', 'Health', 'Money'][j % 4]!,
    stars: j % 5,
  };
}
