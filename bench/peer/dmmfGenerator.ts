/*
 * A Prisma generator that writes the full DMMF it is given to `<output>/dmmf.json`.
 *
 * Why: prisma-field-encryption reads its `/// @encrypted` annotations from a DMMF whose fields
 * carry `documentation`, `isList`, `isUnique` and `isId`. Prisma 7's generated client only ships
 * a reduced runtime data model without those properties, so the library's own default
 * (`Prisma.dmmf` from `@prisma/client`) fails schema validation at start-up. Only generators
 * receive the full DMMF, offline, during `prisma generate`; this one saves it so the benchmark
 * can hand it to prisma-field-encryption through its `dmmf` option.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generatorHandler } from '@prisma/generator-helper';

generatorHandler({
  onManifest: () => ({ prettyName: 'DMMF dump for the prisma-field-encryption benchmark', requiresGenerators: [] }),
  onGenerate: async (options) => {
    const out = options.generator.output?.value;
    if (!out) throw new Error('the dmmf generator block needs an output');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'dmmf.json'), `${JSON.stringify(options.dmmf)}\n`);
  },
});
