import type { PfeHashSpec, PfeNormalize } from '../codec/pfe';
import type { Normalizer } from '../crypto/normalize';
import { DEFAULT_SALT_ENV, parsePfeEncrypted, parsePfeHash, PFE_CURSOR, type PfeMode } from './pfeAnnotation';

/**
 * The schema converter for prisma-field-encryption users: rewrites its `/// @encrypted[?mode=..]`
 * annotations as this library's `/// @encrypted(index: .., normalize: [..], legacy: pfe)`, keeps its
 * `/// @encryption:hash(..)` lines (they say how the old hashes were computed, which the switch
 * needs), removes `/// @encryption:cursor`, and says plainly what has no equivalent. With
 * `finish`, drops `legacy: pfe` and the hash lines once `convert-pfe` has run. Pure: text in, text
 * and notes out; a second run changes nothing.
 */

/** prisma-field-encryption's normalisations → this library's (both apply them in this order). */
export const NORMALIZE_EQUIVALENTS: Readonly<Record<PfeNormalize, Normalizer>> = {
  lowercase: 'lowercase',
  uppercase: 'uppercase',
  trim: 'trim',
  spaces: 'removeWhitespace',
  diacritics: 'stripDiacritics',
};

export interface PfeSchemaConversion {
  readonly text: string;
  /** What the user must know or do, one plain sentence each, naming model and field. */
  readonly notes: readonly string[];
  /** Annotation lines changed or removed. */
  readonly changes: number;
}

interface FieldLines {
  readonly name: string;
  /** Index of the field's declaration line. */
  readonly line: number;
  /** Indexes of its `///` doc lines. */
  readonly docs: readonly number[];
  readonly declaration: string;
}

interface ModelLines {
  readonly name: string;
  readonly fields: readonly FieldLines[];
}

const MODEL_START = /^\s*model\s+(\w+)\s*\{/;
const FIELD = /^\s*(\w+)\s+\w+/;
/** prisma-field-encryption's tag: `@encrypted` not followed by `(` (this library's) or more of a word. */
const PFE_ENCRYPTED = /@encrypted(\?[\w=&]+)?(?![(\w])/;
const OURS_LEGACY = /@encrypted\((.*)\)/;

/** Models and their fields with doc-comment line numbers, from schema text (one pass, no Prisma parser needed). */
function scanModels(lines: readonly string[]): ModelLines[] {
  const models: ModelLines[] = [];
  let current: { name: string; fields: FieldLines[] } | undefined;
  let docs: number[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    const start = MODEL_START.exec(raw);
    if (start) {
      current = { name: start[1]!, fields: [] };
      models.push(current);
      docs = [];
      return;
    }
    if (!current) return;
    if (line.startsWith('}')) {
      current = undefined;
      return;
    }
    if (line.startsWith('///')) {
      docs.push(i);
      return;
    }
    const field = FIELD.exec(raw);
    if (field && !line.startsWith('@@') && !line.startsWith('//')) current.fields.push({ name: field[1]!, line: i, docs, declaration: raw });
    docs = [];
  });
  return models;
}

function docText(lines: readonly string[], field: FieldLines): string {
  return field.docs.map((i) => lines[i]!.trim().replace(/^\/\/\/\s?/, '')).join('\n');
}

/** Converts schema text (a datasource with provider "mysql" adds the column-type notes). */
export function convertPfeSchema(text: string, options: { readonly finish?: boolean } = {}): PfeSchemaConversion {
  const lines = text.split('\n');
  const notes: string[] = [];
  const mysql = /provider\s*=\s*"mysql"/.test(text);
  let changes = 0;
  const remove = new Set<number>();
  for (const model of scanModels(lines)) {
    const hashes = new Map<string, { field: FieldLines; spec: PfeHashSpec; line: number }>();
    for (const f of model.fields) {
      for (const i of f.docs) {
        const doc = lines[i]!;
        if (doc.includes(PFE_CURSOR)) {
          remove.add(i);
          notes.push(`${model.name}.${f.name}: @encryption:cursor has no equivalent and needs none (this library does not page through results to decrypt them); the line is removed.`);
        }
        let hash;
        try {
          hash = parsePfeHash(doc);
        } catch (error) {
          notes.push(`${model.name}.${f.name}: ${(error as Error).message}; old hashes of this column cannot be looked up, only converted rows are found.`);
        }
        if (hash) hashes.set(hash.source, { field: f, spec: hash.spec, line: i });
      }
    }
    if (options.finish) {
      for (const f of model.fields) {
        for (const i of f.docs) {
          const match = OURS_LEGACY.exec(lines[i]!);
          if (match && /\blegacy\s*:\s*pfe\b/.test(match[1]!)) {
            const rest = match[1]!.split(',').map((o) => o.trim()).filter((o) => !/^legacy\s*:\s*pfe$/.test(o));
            lines[i] = lines[i]!.replace(OURS_LEGACY, rest.length > 0 ? `@encrypted(${rest.join(', ')})` : '@encrypted');
            changes++;
          }
        }
      }
      for (const h of hashes.values()) remove.add(h.line);
      continue;
    }
    for (const f of model.fields) {
      const docLine = f.docs.find((i) => PFE_ENCRYPTED.test(lines[i]!));
      if (docLine === undefined) continue;
      const doc = lines[docLine]!;
      const mode = parsePfeEncrypted(doc)!.mode;
      const hash = hashes.get(f.name);
      hashes.delete(f.name);
      const options = annotationOptions(hash?.field.name, hash?.spec, mode);
      const indent = /^\s*/.exec(doc)![0];
      const annotation = `${indent}/// @encrypted(${options.join(', ')})`;
      // This library's tag must start its doc line: other text on the line stays on a line of its own.
      const rest = doc.replace(PFE_ENCRYPTED, '').replace(/^\s*\/\/\/\s?/, '').trim();
      lines[docLine] = rest === '' ? annotation : `${indent}/// ${rest}\n${annotation}`;
      changes++;
      notes.push(...fieldNotes(model.name, f, mode, mysql));
      if (hash) notes.push(...hashNotes(model.name, f.name, hash.field, hash.spec));
    }
    for (const [source, h] of hashes) {
      // Already converted (a rerun), or a hash of a field that is not encrypted at all.
      const owner = model.fields.find((f) => f.name === source);
      if (owner && OURS_LEGACY.test(docText(lines, owner))) continue;
      notes.push(`${model.name}.${h.field.name}: @encryption:hash(${source}) hashes a field that is not encrypted; remove the line (this library only indexes encrypted fields).`);
    }
  }
  const out = lines.filter((_, i) => !remove.has(i));
  changes += remove.size;
  if (changes > 0 && !options.finish) {
    notes.push(
      "All fields: prisma-field-encryption logged a failed decryption and returned the ciphertext (unless mode=strict), and returned values it could not parse as they were; this library throws a DecryptionError. If `status` shows plaintext in a field, add readMode: passthrough to it until encrypt-existing has run.",
    );
  }
  return { text: out.join('\n'), notes, changes };
}

function annotationOptions(indexField: string | undefined, hash: PfeHashSpec | undefined, mode: PfeMode): string[] {
  const options: string[] = [];
  if (indexField) options.push(`index: ${indexField}`);
  if (hash && hash.normalize.length > 0) options.push(`normalize: [${hash.normalize.map((n) => NORMALIZE_EQUIVALENTS[n]).join(', ')}]`);
  if (mode === 'readonly') options.push('readMode: passthrough');
  options.push('legacy: pfe');
  return options;
}

function fieldNotes(model: string, f: FieldLines, mode: PfeMode, mysql: boolean): string[] {
  const notes: string[] = [];
  if (mode === 'readonly') {
    notes.push(
      `${model}.${f.name}: mode=readonly has no equivalent: this library encrypts every write. Its values may be plaintext, so the field reads with readMode: passthrough; after convert-pfe run encrypt-existing, then remove readMode: passthrough.`,
    );
  }
  if (mysql && !/@db\.(Text|MediumText|LongText)\b/.test(f.declaration)) {
    notes.push(`${model}.${f.name}: on MySQL/MariaDB an encrypted field must be String @db.Text (or MediumText, LongText): change the type and migrate the column before switching.`);
  }
  return notes;
}

function hashNotes(model: string, field: string, index: FieldLines, spec: PfeHashSpec): string[] {
  const notes: string[] = [];
  const where = `${model}.${index.name}`;
  if (spec.salt !== undefined || spec.saltEnv !== DEFAULT_SALT_ENV) {
    notes.push(
      `${where}: the hash of ${field} is salted (${spec.salt !== undefined ? 'salt in the annotation' : `salt from ${spec.saltEnv}`}). This library needs no salt: its index is an HMAC under a per-field key. ` +
        `Keep the @encryption:hash line${spec.saltEnv ? ` and ${spec.saltEnv}` : ''} until convert-pfe has run, so rows not yet converted are found; then drop them.`,
    );
  } else {
    notes.push(
      `${where}: keep the @encryption:hash line (and PRISMA_FIELD_ENCRYPTION_HASH_SALT if you set it) until convert-pfe has run: it is how rows not yet converted are found. \`convert-pfe-schema --finish\` removes it afterwards.`,
    );
  }
  if (!/\?/.test(index.declaration.replace(/\/\/.*$/, ''))) notes.push(`${where}: a blind index field must be optional (String?): the extension fills it.`);
  if (/@default\(/.test(index.declaration)) notes.push(`${where}: a blind index field must not have a @default.`);
  if (spec.normalize.includes('lowercase') && spec.normalize.includes('uppercase')) {
    notes.push(`${where}: normalize has both lowercase and uppercase; prisma-field-encryption applied lowercase first, so the result is upper case, and so is this library's.`);
  }
  return notes;
}
