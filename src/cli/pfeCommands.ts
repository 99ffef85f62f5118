import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { convertPfeSchema } from '../generator/convertPfeSchema';

interface SchemaCliOptions {
  readonly schema: string;
  readonly write?: boolean;
  readonly finish?: boolean;
}

/** A schema file, or every .prisma file of a multi-file schema folder. */
function schemaFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.prisma'))
    .sort()
    .map((f) => join(path, f));
}

function runConvertSchema(options: SchemaCliOptions): void {
  const files = schemaFiles(options.schema);
  let changes = 0;
  for (const file of files) {
    const result = convertPfeSchema(readFileSync(file, 'utf8'), { finish: options.finish === true });
    changes += result.changes;
    for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
    if (options.write) {
      if (result.changes > 0) writeFileSync(file, result.text);
    } else {
      process.stdout.write(files.length > 1 ? `// ${file}\n${result.text}\n` : result.text);
    }
  }
  process.stderr.write(`${changes} annotation line(s) ${options.write ? 'changed in place' : 'would change (--write to apply)'}\n`);
}

/** `convert-pfe-schema`: prisma-field-encryption annotations to this library's (issue 13). */
export function registerPfeCommands(program: Command): void {
  program
    .command('convert-pfe-schema')
    .description("Print the schema with prisma-field-encryption's annotations converted to @encrypted(..., legacy: pfe); notes go to stderr")
    .option('--schema <path>', 'schema file or folder', 'prisma/schema.prisma')
    .option('--write', 'rewrite the file(s) in place instead of printing')
    .option('--finish', 'after convert-pfe has run: drop legacy: pfe and the @encryption:hash lines')
    .action((opts: SchemaCliOptions) => runConvertSchema(opts));
}
