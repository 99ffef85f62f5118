/*
 * A result's envelope texts decrypted in one call (openTexts into a caller's buffer, openStrings
 * into strings). The arguments are read so that no JavaScript can run between checking a typed
 * array and using its memory (see batch_of).
 */
#include "pce.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  plain_out o;
  plain_out_init(&o);
  bool failed = false;
  for (uint32_t i = 0; i < b.count && !failed; i++) {
    results[i] = NULL;
    size_t len = 0;
    aead_key *key = NULL;
    uint32_t start = 0;
    if (nth_units(env, &b, i, &s, &len, &key, &start)) failed = string_of(env, key, &s, len, start, b.binding, b.binding_len, &o, &results[i]) < 0;
  }
  scratch_free(&s);
  plain_out_free(&o);
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

