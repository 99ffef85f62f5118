import { Command } from 'commander';
import { registerAuditCommands } from './auditCommands';
import { registerKeyCommands } from './keyCommands';
import { registerMigrateCommands } from './migrateCommands';
import { registerReportCommand } from './reportCommand';
import { registerPfeCommands } from './pfeCommands';

/** Builds the CLI; each concern registers its own subcommands. */
export function buildProgram(): Command {
  const program = new Command('prisma-column-encryption')
    .description('Column encryption for Prisma: keys, rotation and re-encryption')
    .showHelpAfterError();
  registerKeyCommands(program);
  registerMigrateCommands(program);
  registerAuditCommands(program);
  registerReportCommand(program);
  registerPfeCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
