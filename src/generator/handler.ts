import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generatorHandler, type GeneratorOptions } from '@prisma/generator-helper';
import { ConfigurationError } from '../errors';
import { buildEncryptionSchema } from './buildSchema';
import { GENERATED_FILES, GENERATED_LANGUAGES, isGeneratedFile, renderFiles, type GeneratedLanguage } from './emit';
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
      const files = renderFiles(schema, generatedLanguage(options));
      await mkdir(out, { recursive: true });
      await checkOwnFiles(out);
      // Files of the other language would shadow the new ones (TypeScript prefers index.ts).
      await Promise.all(GENERATED_FILES.filter((f) => !(f in files)).map((f) => rm(join(out, f), { force: true })));
      await Promise.all(Object.entries(files).map(([name, text]) => writeFile(join(out, name), text)));
    },
  });
}

/**
 * `language = "ts" | "js"` in the generator block; by default TypeScript when the schema uses
 * Prisma's `prisma-client` generator (whose client is TypeScript compiled with the app), else
 * JavaScript with declarations (`prisma-client-js` apps, plain JavaScript).
 */
export function generatedLanguage(options: Pick<GeneratorOptions, 'generator' | 'otherGenerators'>): GeneratedLanguage {
  const value = options.generator.config.language;
  if (value === undefined) {
    return options.otherGenerators.some((g) => g.provider.value === 'prisma-client') ? 'ts' : 'js';
  }
  if (typeof value !== 'string' || !(GENERATED_LANGUAGES as readonly string[]).includes(value)) {
    throw new ConfigurationError(undefined, undefined, `generator ${options.generator.name}: language must be one of ${GENERATED_LANGUAGES.map((l) => `"${l}"`).join(', ')}`);
  }
  return value as GeneratedLanguage;
}

/**
 * An output folder shared with other files (say `output = "../"`) must not lose the app's own
 * package.json or index.js: refuse before writing or removing anything this generator did not write.
 */
async function checkOwnFiles(out: string): Promise<void> {
  for (const name of GENERATED_FILES) {
    const text = await readFile(join(out, name), 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text !== undefined && !isGeneratedFile(name, text)) {
      throw new ConfigurationError(undefined, undefined, `generator output ${out} holds a ${name} that prisma-column-encryption did not write; give the generator an output folder of its own`);
    }
  }
}
