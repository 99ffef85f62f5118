/*
 * Envelope text decrypted here: parsing the base64url, building the associated data from the stored
 * header and the field, and AES-256-GCM in one call, for one value or for every value of a result.
 * Anything unusual is left undecided (NOT_HANDLED / undefined) for the caller's reference path,
 * which raises every typed error, so errors are the same whatever the backend.
 */
#include "pce.h"
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <uchar.h>

typedef struct {
  char16_t *units;      /* UTF-16 of the current value */
  unsigned char *text;  /* its ASCII bytes */
  unsigned char *sealed; /* its decoded nonce + ciphertext + tag */
  unsigned char *aad;   /* its header bytes followed by the field binding */
  size_t cap;           /* of units, text and sealed, in units or bytes */
  size_t aad_cap;
  bool heap, aad_heap;  /* false while the buffers are the caller's stack storage */
} scratch;

/* Stack storage for the scratch buffers: values of up to this many characters need no malloc. */
#define SCRATCH_STACK 512
typedef struct {
  char16_t units[SCRATCH_STACK];
  unsigned char text[SCRATCH_STACK], sealed[SCRATCH_STACK], aad[SCRATCH_STACK];
} scratch_stack;

static scratch scratch_on(scratch_stack *st) {
  scratch s = {st->units, st->text, st->sealed, st->aad, SCRATCH_STACK, SCRATCH_STACK, false, false};
  return s;
}

static bool reserve(scratch *s, size_t units, size_t aad_len) {
  if (aad_len > s->aad_cap) {
    unsigned char *a = malloc(aad_len);
    if (!a) return false;
    if (s->aad_heap) free(s->aad);
    s->aad = a;
    s->aad_cap = aad_len;
    s->aad_heap = true;
  }
  if (units <= s->cap) return true;
  size_t next = units;
  char16_t *u = malloc(next * sizeof *u);
  unsigned char *t = malloc(next), *d = malloc(next);
  if (!u || !t || !d) {
    free(u);
    free(t);
    free(d);
    return false;
  }
  /* Envelope text is public (it is what the database stores); only plaintext needs wiping, and it never lands here. */
  if (s->heap) {
    free(s->units);
    free(s->text);
    free(s->sealed);
  }
  s->units = u;
  s->text = t;
  s->sealed = d;
  s->cap = next;
  s->heap = true;
  return true;
}

static void scratch_free(scratch *s) {
  if (s->heap) {
    free(s->units);
    free(s->text);
    free(s->sealed);
  }
  if (s->aad_heap) free(s->aad);
}

/*
 * Copies a string's UTF-16 into the scratch buffers and sets *len; false for a non-string. One
 * copy when it fits (the usual case); a string that filled the buffer may have been cut, so its
 * length is asked for and it is copied again into room made for it.
 */
static bool read_units(napi_env env, napi_value text, scratch *s, size_t *len) {
  if (napi_get_value_string_utf16(env, text, s->units, s->cap, len) != napi_ok) return false;
  if (*len + 1 < s->cap) return true;
  return napi_get_value_string_utf16(env, text, NULL, 0, len) == napi_ok && reserve(s, *len + 1, 0) &&
         napi_get_value_string_utf16(env, text, s->units, *len + 1, len) == napi_ok;
}

/*
 * Decrypts the envelope text in the scratch buffers (len units, read by read_units)
 * `<header><16 base64url chars>:<base64url ciphertext+tag>`, whose header ends at offset `start`,
 * under `key` with the associated data `<header><binding>` (what the envelope format binds: the
 * header as stored, then Model.field). Writes the plaintext at out (capacity out_cap) and returns
 * its length, or NOT_HANDLED for anything unusual.
 */
static long open_units(aead_key *key, scratch *s, size_t len, size_t start, const unsigned char *binding, size_t binding_len,
                       unsigned char *out, size_t out_cap) {
  /* The associated data (header, then binding) goes to OpenSSL with an int length. */
  if (start > len || len - start < NONCE_FIELD || binding_len > (size_t)INT_MAX - start || !reserve(s, 0, start + binding_len)) return NOT_HANDLED;
  /*
   * Narrow to bytes. The usual text is all ASCII: one branch-free pass (the compiler vectorises it)
   * that also ORs the units together. Otherwise a second pass maps every unit outside ASCII to a
   * byte outside the base64url alphabet, and a header that is not ASCII is not decided here (the
   * caller parsed it as ASCII by construction).
   */
  const char16_t *restrict units = s->units;
  unsigned char *restrict text = s->text;
  char16_t any = 0;
  for (size_t i = 0; i < len; i++) {
    any |= units[i];
    text[i] = (unsigned char)units[i];
  }
  if (any >= 0x80) {
    for (size_t i = 0; i < len; i++) if (s->units[i] >= 0x80) s->text[i] = 0xff;
    for (size_t i = 0; i < start; i++) if (s->text[i] == 0xff) return NOT_HANDLED;
  }
  memcpy(s->aad, s->text, start);
  if (binding_len > 0) memcpy(s->aad + start, binding, binding_len);
  const unsigned char *body = s->text + start;
  size_t body_text = len - start - NONCE_FIELD;
  if (body[16] != ':') return NOT_HANDLED;
  if (b64url_decode(body, 16, s->sealed) != NONCE_BYTES) return NOT_HANDLED;
  long sealed_len = b64url_decode(body + NONCE_FIELD, body_text, s->sealed + NONCE_BYTES);
  if (sealed_len < TAG_BYTES || (size_t)sealed_len - TAG_BYTES > out_cap) return NOT_HANDLED;
  if (!gcm_open(key->ctx, s->sealed, s->sealed + NONCE_BYTES, (size_t)sealed_len, s->aad, start + binding_len, out)) return NOT_HANDLED;
  return sealed_len - TAG_BYTES;
}

/* The arguments both batch entry points share: keys, keyOf, binding, texts, starts (argv[0..4]). */
typedef struct {
  uint32_t count, key_count;
  aead_key **keys;
  napi_value *texts; /* NULL where an element is not a string */
  napi_value texts_stack[64];
  const unsigned char *binding;
  size_t binding_len;
  uint32_t *key_of, *starts;
} batch;

static void batch_free(batch *b) {
  if (b->texts != b->texts_stack) free(b->texts);
  free(b->keys);
}

/*
 * Reads and checks the shared batch arguments; NULL, or the problem (then batch_free is still due).
 * Every element is read before any typed array's memory is looked at: reading an element can run
 * JavaScript (an index getter), which could detach those buffers (leaving this function pointers
 * into freed or transferred memory) or rewrite keyOf between its check and its use. The caller
 * looks at no JavaScript value but strings after this, until its typed arrays are done with.
 */
static const char *batch_of(napi_env env, napi_value *argv, batch *b) {
  bool is_array = false;
  /* Set before any early return: the caller reads them (and batch_free frees) whatever the outcome. */
  b->texts = b->texts_stack;
  b->keys = NULL;
  b->count = b->key_count = 0;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &b->key_count) != napi_ok ||
      napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[3], &b->count) != napi_ok) {
    return "expects (aeadKey[], Uint32Array, binding bytes, string[], Uint32Array, ...)";
  }
  /* Past the stack array, a count keyOf cannot cover is refused before the element reads and their allocation. */
  if (b->count > 64 && !typed_of(env, argv[1], napi_uint32_array, b->count, (void **)&b->key_of)) return "keyOf must be a Uint32Array with one entry per text";
  if (b->count > 64) b->texts = calloc(b->count, sizeof *b->texts);
  b->keys = calloc(b->key_count ? b->key_count : 1, sizeof *b->keys);
  if (!b->keys || !b->texts) {
    if (!b->texts) b->texts = b->texts_stack;
    return "out of memory";
  }
  for (uint32_t k = 0; k < b->key_count; k++) {
    napi_value handle;
    if (napi_get_element(env, argv[0], k, &handle) != napi_ok || !unwrap(env, handle, &AEAD_TAG, (void **)&b->keys[k])) return "keys must be aeadKey handles";
  }
  for (uint32_t i = 0; i < b->count; i++) {
    napi_valuetype vt;
    /* A getter that threw: its exception stays pending and is what the caller sees. */
    if (napi_get_element(env, argv[3], i, &b->texts[i]) != napi_ok) return "a text could not be read";
    if (napi_typeof(env, b->texts[i], &vt) != napi_ok || vt != napi_string) b->texts[i] = NULL;
  }
  if (!bytes_of(env, argv[2], &b->binding, &b->binding_len)) return "binding must be a Uint8Array";
  if (!typed_of(env, argv[1], napi_uint32_array, b->count, (void **)&b->key_of)) return "keyOf must be a Uint32Array with one entry per text";
  if (!typed_of(env, argv[4], napi_uint32_array, b->count, (void **)&b->starts)) return "starts must be a Uint32Array with one entry per text";
  return NULL;
}

/* Reads texts[i] of the batch into the scratch buffers, with its key and header end; false when it is not decided here. */
static bool nth_units(napi_env env, batch *b, uint32_t i, scratch *s, size_t *len, aead_key **key, uint32_t *start) {
  /* Read once: keyOf and starts may be shared memory another thread writes to. */
  uint32_t k = *(volatile uint32_t *)&b->key_of[i];
  *start = *(volatile uint32_t *)&b->starts[i];
  if (k >= b->key_count || b->texts[i] == NULL || !read_units(env, b->texts[i], s, len)) return false;
  *key = b->keys[k];
  return true;
}

static napi_value batch_error(napi_env env, const char *name, const char *problem) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", name, problem);
  return type_error(env, message);
}

/*
 * openTexts(keys: aeadKey[], keyOf: Uint32Array, binding: Uint8Array, texts: string[],
 * starts: Uint32Array, out: Uint8Array, ends: Int32Array): decrypts every texts[i] under
 * keys[keyOf[i]], its header ending (and nonce text starting) at starts[i], into out, back to
 * back; ends[i] is the end offset of value i in out, or -1 when the value was not decided here
 * (malformed, non-canonical, failed authentication, or out full): the caller runs its reference
 * path for those, so errors are always raised by one implementation. Per-value keys make a
 * result whose rows are each under another person's key one call, like a field under one key.
 * Returns the number of values decrypted.
 */
napi_value open_texts(napi_env env, napi_callback_info info) {
  size_t argc = 7, out_cap = 0;
  napi_value argv[7], result;
  unsigned char *out = NULL;
  int32_t *ends = NULL;
  batch b;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return type_error(env, "openTexts expects (aeadKey[], Uint32Array, binding bytes, string[], Uint32Array, Uint8Array, Int32Array)");
  const char *problem = batch_of(env, argv, &b);
  if (!problem && !bytes_of(env, argv[5], (const unsigned char **)&out, &out_cap)) problem = "out must be a Uint8Array";
  if (!problem && !typed_of(env, argv[6], napi_int32_array, b.count, (void **)&ends)) problem = "ends must be an Int32Array with one entry per text";
  if (problem) {
    batch_free(&b);
    return batch_error(env, "openTexts", problem);
  }
  scratch_stack stack;
  scratch s = scratch_on(&stack);
  size_t used = 0;
  uint32_t done = 0;
  for (uint32_t i = 0; i < b.count; i++) {
    size_t len = 0;
    aead_key *key = NULL;
    uint32_t start = 0;
    long n = nth_units(env, &b, i, &s, &len, &key, &start) ? open_units(key, &s, len, start, b.binding, b.binding_len, out + used, out_cap - used) : NOT_HANDLED;
    if (n >= 0 && used + (size_t)n <= INT32_MAX) {
      used += (size_t)n;
      ends[i] = (int32_t)used;
      done++;
    } else {
      ends[i] = NOT_HANDLED;
    }
  }
  scratch_free(&s);
  batch_free(&b);
  CHECK(env, napi_create_uint32(env, done, &result));
  return result;
}

/*
 * openStrings(keys, keyOf, binding, texts, starts): openTexts for String values, whose strings are
 * made here: an array with the string of each value decided, and undefined (a hole) for the others,
 * which the caller takes its reference path for. Each plaintext is wiped once its string is made.
 */
napi_value open_strings(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], array;
  batch b;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return type_error(env, "openStrings expects (aeadKey[], Uint32Array, binding bytes, string[], Uint32Array)");
  const char *problem = batch_of(env, argv, &b);
  napi_value results_stack[64];
  /* Only for arguments found good: b.count is then covered by keyOf and starts, not just any array's length. */
  napi_value *results = problem || b.count <= 64 ? results_stack : calloc(b.count, sizeof *results);
  if (!problem && !results) problem = "out of memory";
  if (problem) {
    if (results && results != results_stack) free(results);
    batch_free(&b);
    return batch_error(env, "openStrings", problem);
  }
  scratch_stack stack;
  scratch s = scratch_on(&stack);
  unsigned char out_stack[SCRATCH_STACK];
  unsigned char *out = out_stack;
  size_t out_cap = sizeof out_stack;
  bool failed = false;
  for (uint32_t i = 0; i < b.count && !failed; i++) {
    results[i] = NULL;
    size_t len = 0;
    aead_key *key = NULL;
    uint32_t start = 0;
    if (!nth_units(env, &b, i, &s, &len, &key, &start)) continue;
    if (len > out_cap) {
      /* A long value: room for its plaintext (its text's length bounds it). */
      unsigned char *bigger = malloc(len);
      if (!bigger) {
        failed = true;
        break;
      }
      if (out != out_stack) free(out);
      out = bigger;
      out_cap = len;
    }
    long n = open_units(key, &s, len, start, b.binding, b.binding_len, out, out_cap);
    if (n < 0) continue;
    failed = napi_create_string_utf8(env, (const char *)out, (size_t)n, &results[i]) != napi_ok;
    OPENSSL_cleanse(out, (size_t)n);
  }
  scratch_free(&s);
  if (out != out_stack) free(out);
  /* Typed arrays are done with: setting elements may run JavaScript (a setter on Array.prototype) from here on. */
  uint32_t count = b.count;
  batch_free(&b);
  if (!failed && napi_create_array_with_length(env, count, &array) != napi_ok) failed = true;
  for (uint32_t i = 0; i < count && !failed; i++) {
    if (results[i] != NULL && napi_set_element(env, array, i, results[i]) != napi_ok) failed = true;
  }
  if (results != results_stack) free(results);
  if (failed) return throw_last(env);
  return array;
}

/*
 * openString(aeadKey, binding: Uint8Array, text: string, start: number): the String value of one
 * envelope text (its header ending at start), or undefined when not decided here. The string is
 * made here from the plaintext, which is then wiped: no Buffer, array or typed array per value.
 */
napi_value open_string(napi_env env, napi_callback_info info) {
  size_t argc = 4, binding_len = 0, len = 0;
  napi_value argv[4], result;
  aead_key *key;
  const unsigned char *binding;
  uint32_t start = 0;
  napi_valuetype vt;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || !unwrap(env, argv[0], &AEAD_TAG, (void **)&key) || !bytes_of(env, argv[1], &binding, &binding_len) ||
      napi_typeof(env, argv[2], &vt) != napi_ok || vt != napi_string || napi_get_value_uint32(env, argv[3], &start) != napi_ok) {
    return type_error(env, "openString expects (aeadKey, binding bytes, string, header length)");
  }
  scratch_stack stack;
  scratch s = scratch_on(&stack);
  if (!read_units(env, argv[2], &s, &len)) {
    scratch_free(&s);
    return throw_last(env);
  }
  size_t cap = len > (size_t)start + NONCE_FIELD ? (len - start - NONCE_FIELD) * 3 / 4 + 1 : 1;
  unsigned char out_stack[SCRATCH_STACK];
  unsigned char *out = cap <= sizeof out_stack ? out_stack : malloc(cap);
  long n = out ? open_units(key, &s, len, start, binding, binding_len, out, cap) : NOT_HANDLED;
  scratch_free(&s);
  if (!out) return type_error(env, "out of memory");
  napi_status made = n >= 0 ? napi_create_string_utf8(env, (const char *)out, (size_t)n, &result) : napi_ok;
  if (n > 0) OPENSSL_cleanse(out, (size_t)n);
  if (out != out_stack) free(out);
  if (made != napi_ok) return throw_last(env);
  return n >= 0 ? result : undefined_value(env);
}
