import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
      // A one-file schema is read as written, so line numbers are the file's (Prisma's datamodel text may differ).
      const oneFile = options.schemaPath.endsWith('.prisma');
      const text = oneFile ? await readFile(options.schemaPath, 'utf8').catch(() => options.datamodel) : options.datamodel;
      const where = oneFile ? `${options.schemaPath}:` : 'schema line ';
      for (const { line, tag } of tagsInPlainComments(text)) {
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
