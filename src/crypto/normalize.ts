/**
 * ASCII text is already in NFC and NFKC (no ASCII character decomposes or composes): the common
 * case skips ICU, which costs about as much as the blind index's HMAC.
 */
const ASCII = /^[\x00-\x7f]*$/;

/** Normalisations applied, in the order written, before a value is hashed into its blind index. */
export const NORMALIZERS = {
  /** Unicode compatibility composition: full-width, ligatures and composed forms compare equal. */
  nfkc: (v: string) => (ASCII.test(v) ? v : v.normalize('NFKC')),
  /** Canonical composition only. */
  nfc: (v: string) => (ASCII.test(v) ? v : v.normalize('NFC')),
  trim: (v: string) => v.trim(),
  lowercase: (v: string) => v.toLowerCase(),
  uppercase: (v: string) => v.toUpperCase(),
  /** Runs of white space become one space. */
  collapseWhitespace: (v: string) => v.replace(/\s+/g, ' '),
  /** All white space removed (phone numbers, IBANs). */
  removeWhitespace: (v: string) => v.replace(/\s+/g, ''),
  /** Canonical decomposition, then combining diacritical marks (U+0300-U+036F) removed: 'é' -> 'e'. Same as prisma-field-encryption's `diacritics`. */
  stripDiacritics: (v: string) => v.normalize('NFD').replace(/[\u0300-\u036f]/g, ''),
} as const satisfies Record<string, (v: string) => string>;

/** Name of a normalisation step, as written in `@encrypted(normalize: [...])`. */
export type Normalizer = keyof typeof NORMALIZERS;

export function isNormalizer(name: string): name is Normalizer {
  return Object.prototype.hasOwnProperty.call(NORMALIZERS, name);
}

/** Applies the listed normalisations left to right. Pure. */
export function normalize(value: string, steps: readonly Normalizer[]): string {
  let out = value;
  for (const step of steps) out = NORMALIZERS[step](out);
  return out;
}
