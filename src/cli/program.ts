import { Command } from 'commander';

/** Builds the CLI. Subcommands are registered by their own modules. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('prisma-column-encryption')
    .description('Column encryption for Prisma: keys, rotation and re-encryption')
    .showHelpAfterError();
  await program.parseAsync(argv);
}
