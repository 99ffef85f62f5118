/*
 * Envelope text decrypted here: parsing the base64url, building the associated data from the
 * stored header and the field, and AES-256-GCM, for one value (openString) and, through the same
 * functions, for a result's values (open_batch.c). Anything unusual is left undecided
 * (NOT_HANDLED / undefined) for the caller's reference path, which raises every typed error, so
 * errors are the same whatever the backend.
 */
#include "pce.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <uchar.h>

scratch scratch_on(scratch_stack *st) {
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

void scratch_free(scratch *s) {
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
bool read_units(napi_env env, napi_value text, scratch *s, size_t *len) {
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
long open_units(aead_key *key, scratch *s, size_t len, size_t start, const unsigned char *binding, size_t binding_len,
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

/*
 * The String value of the text in the scratch buffers (len units, its header ending at start):
 * decrypted into o (grown to the text's length when longer than it, which bounds the plaintext),
 * made into a string, and the plaintext wiped. 1 with *result set, 0 when not decided here, -1
 * when N-API or an allocation failed.
 */
int string_of(napi_env env, aead_key *key, scratch *s, size_t len, size_t start, const unsigned char *binding, size_t binding_len,
              plain_out *o, napi_value *result) {
  if (len > o->cap) {
    unsigned char *bigger = malloc(len);
    if (!bigger) return -1;
    plain_out_free(o);
    o->data = bigger;
    o->cap = len;
  }
  long n = open_units(key, s, len, start, binding, binding_len, o->data, o->cap);
  if (n < 0) return 0;
  napi_status made = napi_create_string_utf8(env, (const char *)o->data, (size_t)n, result);
  OPENSSL_cleanse(o->data, (size_t)n);
  return made == napi_ok ? 1 : -1;
}

void plain_out_free(plain_out *o) {
  if (o->data != o->stack) free(o->data);
  o->data = o->stack;
  o->cap = sizeof o->stack;
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
  plain_out o;
  plain_out_init(&o);
  int got = read_units(env, argv[2], &s, &len) ? string_of(env, key, &s, len, start, binding, binding_len, &o, &result) : -1;
  scratch_free(&s);
  plain_out_free(&o);
  if (got < 0) return throw_last(env);
  return got > 0 ? result : undefined_value(env);
}
