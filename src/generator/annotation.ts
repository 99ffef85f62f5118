import { isNormalizer, NORMALIZERS, type Normalizer } from '../crypto/normalize';
import { ConfigurationError } from '../errors';
import type { EncryptedFieldSpec, LegacySpec, ReadMode } from '../schema';
import { lookalikeTags } from './lookalike';

/**
 * Grammar of the annotation, written in a field's `///` doc comment:
 *
 *   @encrypted
 *   @encrypted(index: <field>)
 *   @encrypted(index: <field>, normalize: [<step>, ...], readMode: strict | passthrough, legacy: pfe)
 *   @encrypted(storage: <field>, index: <field>, readMode: ...)     fields of other types than String
 *
 * `legacy: pfe` marks a field whose values prisma-field-encryption wrote: only such fields read
 * that format (with a legacy key source) and are converted by `convert-pfe`.
 *
 * Options may come in any order, each at most once, and nothing may follow `)` on its line. The
 * tag starts a line of the doc comment; other doc text may surround it. A tag that looks like an
 * attempt at it (`@Encrypted`, `@encrypt`, `@encryted`, ...) or `@encrypted` in the middle of a
 * line is an error, since the field would otherwise be stored in plaintext without a word.
 */
export interface ParsedAnnotation {
  readonly index?: string;
  /** Typed fields: the String field that holds the ciphertext. */
  readonly storage?: string;
  readonly normalize?: readonly Normalizer[];
  readonly readMode: ReadMode;
  readonly legacy?: LegacyFormat;
}

/** Libraries whose stored values a field may still hold (`legacy: <name>`). */
export const LEGACY_FORMATS = ['pfe'] as const;
export type LegacyFormat = (typeof LEGACY_FORMATS)[number];

const READ_MODES: readonly ReadMode[] = ['strict', 'passthrough'];
const OPTIONS = ['index', 'normalize', 'readMode', 'legacy', 'storage'] as const;
type OptionName = (typeof OPTIONS)[number];
type OptionValue = { kind: 'word'; word: string } | { kind: 'list'; words: string[] };

/** The tag, at the start of a line of the doc comment. */
const TAG = /^[ \t]*@encrypted\b/gm;

/** Finds and parses the `@encrypted` annotation in a doc comment. Returns undefined when absent. */
export function parseAnnotation(doc: string | undefined, model: string, field: string): ParsedAnnotation | undefined {
  if (!doc) return undefined;
  const fail = (reason: string): never => {
    throw new ConfigurationError(model, field, `@encrypted: ${reason}`);
  };
  const tags = lookalikeTags(doc);
  const misspelt = tags.find((t) => t.tag !== '@encrypted');
  if (misspelt) fail(`'${misspelt.tag}' looks like a misspelt @encrypted, which would leave the field in plaintext; write @encrypted exactly`);
  const matches = [...doc.matchAll(TAG)];
  if (matches.length > 1) fail('annotation appears more than once');
  // Once in the middle of a line, it is either prose or a misplaced tag; after the tag on its own line it is reported below.
  const inProse = tags.find((t) => !t.startsLine && (matches.length === 0 || t.line !== lineOf(doc, matches[0]!.index!)));
  if (inProse) fail('the tag must start a line of the doc comment (to mention it in prose, leave out the @)');
  if (matches.length === 0) return undefined;
  const start = matches[0]!.index! + matches[0]![0].length;
  const rest = doc.slice(start);
  if (!rest.startsWith('(')) {
    const sameLine = rest.split('\n')[0]!.trim();
    if (sameLine !== '') fail(`unexpected text after @encrypted: '${sameLine.split(/\s/)[0]}' (options go in parentheses right after it)`);
    return { readMode: 'strict' };
  }
  const close = rest.indexOf(')');
  if (close < 0) fail("missing ')'");
  const after = rest.slice(close + 1).split('\n')[0]!.trim();
  if (after !== '') fail(`unexpected text after ')': '${after.split(/\s/)[0]}'`);
  const options = parseOptions(rest.slice(1, close), fail);

  const result: { index?: string; storage?: string; normalize?: Normalizer[]; readMode: ReadMode; legacy?: LegacyFormat } = { readMode: 'strict' };
  for (const [name, value] of options) {
    switch (name) {
      case 'index':
      case 'storage':
        if (value.kind !== 'word' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value.word)) fail(`${name} takes one field name`);
        result[name] = (value as { word: string }).word;
        break;
      case 'normalize': {
        const words = value.kind === 'list' ? value.words : [value.word];
        for (const w of words) {
          if (!isNormalizer(w)) fail(`unknown normalization '${w}' (known: ${Object.keys(NORMALIZERS).join(', ')})`);
        }
        if (new Set(words).size !== words.length) fail('normalize lists a step twice');
        // Case mapping before Unicode normalisation misses compatibility forms ('ℌ' -> 'H' is not lowercased).
        const unicode = words.filter((w) => w === 'nfkc' || w === 'nfc');
        if (unicode.length > 1) fail('normalize takes one of nfkc and nfc, not both');
        if (unicode.length === 1 && words[0] !== unicode[0]) fail(`${unicode[0]} must be the first normalize step`);
        result.normalize = words as Normalizer[];
        break;
      }
      case 'readMode':
        if (value.kind !== 'word' || !(READ_MODES as string[]).includes(value.word)) {
          fail(`readMode must be one of ${READ_MODES.join(', ')}`);
        }
        result.readMode = (value as { word: string }).word as ReadMode;
        break;
      case 'legacy':
        if (value.kind !== 'word' || !(LEGACY_FORMATS as readonly string[]).includes(value.word)) {
          fail(`legacy must be one of ${LEGACY_FORMATS.join(', ')} (pfe: values written by prisma-field-encryption)`);
        }
        result.legacy = (value as { word: string }).word as LegacyFormat;
        break;
    }
  }
  if (result.normalize && !result.index) fail('normalize only applies to a blind index: add index: <field>');
  return result;
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length - 1;
}

function parseOptions(body: string, fail: (reason: string) => never): Map<OptionName, OptionValue> {
  const out = new Map<OptionName, OptionValue>();
  let i = 0;
  const skip = () => {
    while (i < body.length && /\s/.test(body[i]!)) i++;
  };
  const word = (): string => {
    skip();
    const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(body.slice(i));
    if (!m) fail(`expected a name at '${body.slice(i).trim().slice(0, 20) || ')'}'`);
    i += m![0].length;
    return m![0];
  };
  skip();
  while (i < body.length) {
    const name = word();
    if (!(OPTIONS as readonly string[]).includes(name)) fail(`unknown option '${name}' (known: ${OPTIONS.join(', ')})`);
    if (out.has(name as OptionName)) fail(`option '${name}' given twice`);
    skip();
    if (body[i] !== ':') fail(`expected ':' after '${name}'`);
    i++;
    skip();
    let value: OptionValue;
    if (body[i] === '[') {
      i++;
      const words: string[] = [];
      skip();
      while (body[i] !== ']') {
        words.push(word());
        skip();
        if (body[i] === ',') i++;
        else if (body[i] !== ']') fail(`expected ',' or ']' in the list of '${name}'`);
        skip();
        if (i >= body.length) fail(`missing ']' in the list of '${name}'`);
      }
      i++;
      if (words.length === 0) fail(`'${name}' list is empty`);
      value = { kind: 'list', words };
    } else {
      value = { kind: 'word', word: word() };
    }
    out.set(name as OptionName, value);
    skip();
    if (i < body.length) {
      if (body[i] !== ',') fail(`expected ',' between options, found '${body[i]}'`);
      i++;
      skip();
    }
  }
  return out;
}

/** The map entry for a parsed annotation; `legacy` marks a prisma-field-encryption field, `typed` adds a typed field's type, storage field and column shape. */
export function toFieldSpec(parsed: ParsedAnnotation, legacy?: LegacySpec, typed?: Pick<EncryptedFieldSpec, 'type' | 'storage' | 'column'>): EncryptedFieldSpec {
  const from = { ...(legacy ? { legacy } : {}), ...typed };
  if (!parsed.index) return { readMode: parsed.readMode, ...from };
  return { index: parsed.index, ...(parsed.normalize ? { normalize: parsed.normalize } : {}), readMode: parsed.readMode, ...from };
}
