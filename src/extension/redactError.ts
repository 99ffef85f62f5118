/**
 * Errors that Prisma raises for a rewritten query can quote its arguments: a
 * PrismaClientValidationError renders the whole argument tree, with the ciphertext and blind
 * indexes the extension wrote into it, and any plaintext that reached Prisma unrecognised (a
 * misspelt field name); driver errors may quote a value too. The error is redacted in place, so
 * its class, `code`, `meta` shape and stack frames stay what Prisma made them.
 */

const REDACTED = '[redacted]';
/** Below this length a known value is left alone: replacing it would mangle the message's own words. */
const MIN_SECRET_LENGTH = 4;
/** A double-quoted string literal as Prisma renders argument values (JSON escapes included). */
const STRING_LITERAL = /"(?:[^"\\\n]|\\.)*"/g;

/**
 * Replaces, in the message, stack and `meta` of `error`, every value in `secrets` (plaintexts the
 * query carried, ciphertexts and blind indexes the extension computed) and, for a validation
 * error, every string literal of the rendered arguments. Returns the same error.
 */
export function redactPrismaError(error: unknown, secrets: ReadonlySet<string>): unknown {
  if (!(error instanceof Error)) return error;
  const known = [...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  const literals = error.name === 'PrismaClientValidationError';
  const redact = (text: string): string => {
    let out = text;
    for (const secret of known) out = out.split(secret).join(REDACTED);
    return literals ? out.replace(STRING_LITERAL, `"${REDACTED}"`) : out;
  };
  error.message = redact(error.message);
  if (error.stack) error.stack = redact(error.stack);
  const withMeta = error as Error & { meta?: unknown };
  if (withMeta.meta !== undefined) withMeta.meta = redactDeep(withMeta.meta, redact);
  if (error.cause !== undefined) redactPrismaError(error.cause, secrets);
  return error;
}

function redactDeep(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, redact)]));
  }
  return value;
}
