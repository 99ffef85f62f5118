import type { Client } from './clients';
import { PARENTS, READINGS_PER_PARENT, SEED_USERS, seedReading, seedUser } from './fixtures';

/** Writes the benchmark's users and readings through `client`, so each contender stores its own format. */
export async function seed(client: Client): Promise<void> {
  const users = Array.from({ length: SEED_USERS }, (_, i) => seedUser(i));
  await client.user.createMany({ data: users });
  const readings = Array.from({ length: PARENTS }, (_, p) => Array.from({ length: READINGS_PER_PARENT }, (_, j) => seedReading(p, j))).flat();
  await client.reading.createMany({ data: readings });
}
