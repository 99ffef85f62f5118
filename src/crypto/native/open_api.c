/*
 * Envelope text decrypted here: parsing the base64url, building the associated data from the stored
 * header and the field, and AES-256-GCM in one call, for one value or for every value of a result.
 * Anything unusual is left undecided (NOT_HANDLED / undefined) for the caller's reference path,
 * which raises every typed error, so errors are the same whatever the backend.
 */
#include "pce.h"
#include <limits.h>
#include <stdlib.h>
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
  /* Narrow to bytes: any unit outside ASCII maps to a byte outside the base64url alphabet. */
  for (size_t i = 0; i < len; i++) s->text[i] = s->units[i] < 0x80 ? (unsigned char)s->units[i] : 0xff;
  /* The header is ASCII by construction (the caller parsed it); anything else is not decided here. */
  for (size_t i = 0; i < start; i++) if (s->text[i] == 0xff) return NOT_HANDLED;
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
  size_t argc = 7;
  napi_value argv[7], result;
  const unsigned char *binding;
  size_t binding_len, out_cap;
  unsigned char *out;
  uint32_t *starts, *key_of, count, key_count;
  int32_t *ends;
  bool is_array = false;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &key_count) != napi_ok ||
      napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[3], &count) != napi_ok) {
    return type_error(env, "openTexts expects (aeadKey[], Uint32Array, binding bytes, string[], Uint32Array, Uint8Array, Int32Array)");
  }
  /*
   * Every element is read before any typed array's memory is looked at: reading an element can
   * run JavaScript (an index getter), which could detach those buffers (leaving this function
   * pointers into freed or transferred memory) or rewrite keyOf between its check and its use.
   * After this, nothing here runs JavaScript.
   */
  napi_value texts_stack[64];
  const char *problem = NULL;
  /* Past the stack array, a count keyOf cannot cover is refused before the element reads and their allocation. */
  if (count > 64 && !typed_of(env, argv[1], napi_uint32_array, count, (void **)&key_of)) problem = "openTexts: keyOf must be a Uint32Array with one entry per text";
  napi_value *texts = count <= 64 || problem ? texts_stack : calloc(count, sizeof *texts);
  aead_key **keys = problem ? NULL : calloc(key_count ? key_count : 1, sizeof *keys);
  if (!problem && (!keys || !texts)) problem = "out of memory";
  for (uint32_t k = 0; !problem && k < key_count; k++) {
    napi_value handle;
    if (napi_get_element(env, argv[0], k, &handle) != napi_ok || !unwrap(env, handle, &AEAD_TAG, (void **)&keys[k])) problem = "openTexts: keys must be aeadKey handles";
  }
  for (uint32_t i = 0; !problem && i < count; i++) {
    napi_valuetype vt;
    /* A getter that threw: its exception stays pending and is what the caller sees. */
    if (napi_get_element(env, argv[3], i, &texts[i]) != napi_ok) problem = "openTexts: a text could not be read";
    else if (napi_typeof(env, texts[i], &vt) != napi_ok || vt != napi_string) texts[i] = NULL;
  }
  if (problem) {
    /* reported below */
  } else if (!bytes_of(env, argv[2], &binding, &binding_len)) {
    problem = "openTexts expects (aeadKey[], Uint32Array, binding bytes, string[], Uint32Array, Uint8Array, Int32Array)";
  } else if (!typed_of(env, argv[1], napi_uint32_array, count, (void **)&key_of)) {
    problem = "openTexts: keyOf must be a Uint32Array with one entry per text";
  } else if (!typed_of(env, argv[4], napi_uint32_array, count, (void **)&starts)) {
    problem = "openTexts: starts must be a Uint32Array with one entry per text";
  } else if (!bytes_of(env, argv[5], (const unsigned char **)&out, &out_cap)) {
    problem = "openTexts: out must be a Uint8Array";
  } else if (!typed_of(env, argv[6], napi_int32_array, count, (void **)&ends)) {
    problem = "openTexts: ends must be an Int32Array with one entry per text";
  }
  if (problem) {
    if (texts != texts_stack) free(texts);
    free(keys);
    return type_error(env, problem);
  }
  scratch_stack stack;
  scratch s = scratch_on(&stack);
  size_t used = 0;
  uint32_t done = 0;
  for (uint32_t i = 0; i < count; i++) {
    /* Read once: keyOf and starts may be shared memory another thread writes to. */
    uint32_t k = *(volatile uint32_t *)&key_of[i];
    uint32_t start = *(volatile uint32_t *)&starts[i];
    long n = NOT_HANDLED;
    if (k < key_count && texts[i] != NULL) {
      size_t len = 0;
      if (read_units(env, texts[i], &s, &len)) n = open_units(keys[k], &s, len, start, binding, binding_len, out + used, out_cap - used);
    }
    if (n >= 0 && used + (size_t)n <= INT32_MAX) {
      used += (size_t)n;
      ends[i] = (int32_t)used;
      done++;
    } else {
      ends[i] = NOT_HANDLED;
    }
  }
  scratch_free(&s);
  if (texts != texts_stack) free(texts);
  free(keys);
  CHECK(env, napi_create_uint32(env, done, &result));
  return result;
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
