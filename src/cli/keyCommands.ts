import type { Command } from 'commander';

/** `keys ...` subcommands (issue 4). */
export function registerKeyCommands(_program: Command): void {}
