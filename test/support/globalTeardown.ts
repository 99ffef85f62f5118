import type { RunningPostgres } from './embeddedPostgres';

export default async function globalTeardown(): Promise<void> {
  const pg = (globalThis as { __PCE_PG__?: RunningPostgres }).__PCE_PG__;
  if (pg) await pg.stop();
}
