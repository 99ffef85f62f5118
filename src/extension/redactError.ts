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
 * Replaces, in the message, stack and every string reachable from `error` (its `meta`, the driver
 * error inside it, its `cause`), every value in `secrets` (plaintexts the query carried,
 * ciphertexts and blind indexes the extension computed) and, for a validation error, every string
 * literal of the rendered arguments. Objects are changed in place, so their classes are kept.
 * Returns the same error.
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
  redactInPlace(error, redact, new Set());
  return error;
}

function redactInPlace(value: object, redact: (text: string) => string, seen: Set<object>): void {
  if (seen.has(value)) return;
  seen.add(value);
  const record = value as Record<string, unknown>;
  // An Error's message and stack are not enumerable; a driver error's cause is.
  const keys = value instanceof Error ? [...new Set([...Object.keys(value), 'message', 'stack', 'cause'])] : Object.keys(value);
  for (const key of keys) {
    const inner = record[key];
    if (typeof inner === 'string') {
      const redacted = redact(inner);
      if (redacted !== inner) record[key] = redacted;
    } else if (inner !== null && typeof inner === 'object') {
      redactInPlace(inner, redact, seen);
    }
  }
}
