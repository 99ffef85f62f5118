import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerAuditCommands } from './auditCommands';
import { registerKeyCommands } from './keyCommands';
import { registerMigrateCommands } from './migrateCommands';
import { registerReportCommand } from './reportCommand';
import { registerPfeCommands } from './pfeCommands';
import { registerSubjectCommands } from './subjectCommands';

/** Builds the CLI; each concern registers its own subcommands. */
export function buildProgram(): Command {
  const program = new Command('prisma-column-encryption')
    .description('Column encryption for Prisma: keys, rotation and re-encryption')
    .version(packageVersion(), '-V, --version', 'print the version of prisma-column-encryption')
    .showHelpAfterError();
  registerKeyCommands(program);
  registerMigrateCommands(program);
  registerAuditCommands(program);
  registerReportCommand(program);
  registerPfeCommands(program);
  registerSubjectCommands(program);
  return program;
}

/** From the package's own package.json (two levels above src/cli and dist/cli alike). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
