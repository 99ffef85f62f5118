import type { Command } from 'commander';

/** `rotate`, `encrypt-existing`, `status`, `verify` (issue 6). */
export function registerMigrateCommands(_program: Command): void {}
