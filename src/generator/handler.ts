import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generatorHandler } from '@prisma/generator-helper';
import { buildEncryptionSchema } from './buildSchema';
import { renderModule } from './emit';
import { tagsInPlainComments } from './lookalike';

/** Registers the Prisma generator: Prisma calls it over stdio during `prisma generate`. */
export function runGenerator(): void {
  generatorHandler({
    onManifest: () => ({
      prettyName: 'prisma-column-encryption',
      defaultOutput: './generated/encryption',
      requiresGenerators: [],
    }),
    onGenerate: async (options) => {
      const provider = options.datasources[0]?.provider ?? 'unknown';
      // stdout reaches the user's terminal (Prisma answers the generator protocol on stderr).
      // Line numbers are those of the schema text Prisma hands over: the file's own for a one-file schema.
      const where = options.schemaPath.endsWith('.prisma') ? `${options.schemaPath}:` : 'schema line ';
      for (const { line, tag } of tagsInPlainComments(options.datamodel)) {
        process.stdout.write(`prisma-column-encryption: warning: ${where}${line}: '${tag}' is in a // comment, which Prisma drops: it annotates nothing. Use a /// doc comment.\n`);
      }
      // Validation errors thrown here reach the user as the `prisma generate` failure message.
      const schema = buildEncryptionSchema(options.dmmf.datamodel, provider);
      const out = options.generator.output?.value;
      if (!out) throw new Error('prisma-column-encryption: the generator block needs an output');
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'index.ts'), renderModule(schema));
      await writeFile(join(out, 'schema.json'), `${JSON.stringify(schema, null, 2)}\n`);
    },
  });
}
