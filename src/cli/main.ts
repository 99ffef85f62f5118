#!/usr/bin/env node
/*
 * One executable serves two callers: Prisma spawns it as a generator (and says so through
 * PRISMA_GENERATOR_INVOCATION), people and scripts run it as the CLI.
 */
if (process.env.PRISMA_GENERATOR_INVOCATION) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('../generator/handler') as typeof import('../generator/handler')).runGenerator();
} else {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./program') as typeof import('./program')).main(process.argv).catch((err: unknown) => {
    // The message on stderr; with --json also { error: { code, keyId, failure, message } } on stdout.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require('./keyOutput') as typeof import('./keyOutput')).reportCliError(err, process.argv);
    process.exitCode = process.exitCode || 1;
  });
}
