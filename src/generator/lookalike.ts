import { distance } from 'fastest-levenshtein';

/**
 * Tags that look like an attempt at `@encrypted`. A misspelt tag is otherwise just prose to the
 * generator, and the field it was meant for is silently stored in plaintext, so the generator
 * fails on these instead (and warns on them in `//` comments, which Prisma drops).
 */
export interface LookalikeTag {
  /** The tag as written, with its `@`. */
  readonly tag: string;
  /** True when only whitespace precedes it on its line. */
  readonly startsLine: boolean;
  /** 0-based line within the text. */
  readonly line: number;
}

const TARGET = 'encrypted';
/** An `@` that starts a word (not the one in `ada@encrypted.org`), then a name, spaces between them too (`@ encrypted`). */
const TAG = /(?<![\w.@])@[ \t]*([A-Za-z_][\w-]*)/g;

/** True for `encrypted` itself in any case, `encrypt...` prefixes, `...crypt...`, and names within two edits of it. */
export function looksLikeEncrypted(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('encr') || lower.includes('crypt') || distance(lower, TARGET) <= 2;
}

/** Every tag in `text` that is `@encrypted` or looks like an attempt at it, in order. */
export function lookalikeTags(text: string): LookalikeTag[] {
  const out: LookalikeTag[] = [];
  const lines = text.split('\n');
  lines.forEach((content, line) => {
    for (const match of content.matchAll(TAG)) {
      if (!looksLikeEncrypted(match[1]!)) continue;
      // prisma-field-encryption's own hash annotation (`@encryption:hash(email)`), read by legacy: pfe.
      if (match[1] === 'encryption' && content.charAt(match.index + match[0].length) === ':') continue;
      out.push({ tag: match[0], startsLine: content.slice(0, match.index).trim() === '', line });
    }
  });
  return out;
}

/** A `//` comment of the schema file that holds an `@encrypted`-like tag. */
export interface DroppedTag {
  /** 1-based line in the schema text. */
  readonly line: number;
  readonly tag: string;
}

const QUOTED = /"(?:[^"\\]|\\.)*"/g;

/**
 * Tags that look like `@encrypted` in ordinary `//` comments of a schema file. Prisma drops those
 * comments before generators run, so the annotation never reaches the generator and the field is
 * stored in plaintext. (Quoted strings such as `"postgresql://..."` are not comments.)
 */
export function tagsInPlainComments(schema: string): DroppedTag[] {
  const out: DroppedTag[] = [];
  schema.split('\n').forEach((content, i) => {
    const code = content.replace(QUOTED, '""');
    const at = code.indexOf('//');
    if (at < 0 || code.startsWith('///', at)) return;
    for (const { tag } of lookalikeTags(code.slice(at + 2))) out.push({ line: i + 1, tag });
  });
  return out;
}
