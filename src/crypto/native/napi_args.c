/*
 * Reading and checking arguments: every export goes through these, so a wrong kind, a handle of the
 * other kind, a non-ASCII header or an over-long value is refused here, before any memory is used.
 */
#include "pce.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <uchar.h>

napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "N-API call failed");
  }
  return NULL;
}

napi_value type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value boolean_value(napi_env env, bool value) {
  napi_value b;
  napi_get_boolean(env, value, &b);
  return b;
}

/* Bytes of a Uint8Array (Buffer) argument; false when it is not one. */
bool bytes_of(napi_env env, napi_value v, const unsigned char **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *raw = NULL;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return false;
  if (napi_get_typedarray_info(env, v, &type, len, &raw, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
  static const unsigned char empty = 0;
  *data = raw ? (const unsigned char *)raw : &empty;
  return *len <= INT_MAX;
}

/* A typed array argument of the given kind with at least `count` entries. */
bool typed_of(napi_env env, napi_value v, napi_typedarray_type want, size_t count, void **data) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t len = 0;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return false;
  if (napi_get_typedarray_info(env, v, &type, &len, data, NULL, NULL) != napi_ok || type != want || len < count) return false;
  return true;
}

/* Handles are externals tagged with their kind: an AES handle is never read as an HMAC one, or any other module's external as either. */
bool unwrap(napi_env env, napi_value handle, const napi_type_tag *tag, void **out) {
  bool tagged = false;
  napi_valuetype vt;
  return napi_typeof(env, handle, &vt) == napi_ok && vt == napi_external &&
         napi_check_object_type_tag(env, handle, tag, &tagged) == napi_ok && tagged &&
         napi_get_value_external(env, handle, out) == napi_ok && *out != NULL;
}

/*
 * A short ASCII string argument (a header or key id prefix, under PREFIX_CAP characters) into buf
 * (PREFIX_CAP bytes); false when it is not one. Read as UTF-16, not Latin-1: V8's Latin-1 copy keeps
 * only the low byte of each unit, so 'pce:v1:\u0141:' would come out as the ASCII 'pce:v1:A:'.
 */
bool prefix_of(napi_env env, napi_value v, char *buf, size_t *len) {
  char16_t units[PREFIX_CAP + 1];
  /* One copy (it fails for a non-string); a string that fills units may have been cut short: refused. */
  if (napi_get_value_string_utf16(env, v, units, PREFIX_CAP + 1, len) != napi_ok || *len >= PREFIX_CAP) return false;
  for (size_t i = 0; i < *len; i++) {
    if (units[i] >= 0x80) return false;
    buf[i] = (char)units[i];
  }
  return true;
}

/*
 * A plaintext argument: a string (its UTF-8 with lone surrogates as U+FFFD, which is what
 * Buffer.from(s, 'utf8') gives) or a Uint8Array. False when it is neither or longer than
 * INT_MAX - 16 bytes (OpenSSL takes int lengths, and the tag follows).
 */
bool plain_of(napi_env env, napi_value v, unsigned char *stack, size_t stack_len, plain_input *in) {
  napi_valuetype vt;
  in->copy = NULL;
  in->heap = false;
  if (napi_typeof(env, v, &vt) != napi_ok) return false;
  if (vt != napi_string) return bytes_of(env, v, &in->data, &in->len) && in->len <= (size_t)INT_MAX - TAG_BYTES;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, (char *)stack, stack_len, &len) != napi_ok) return false;
  in->copy = stack;
  in->len = len;
  /* Whole characters only are written: a string that came within 4 bytes of the end may have been cut. */
  if (len + 4 >= stack_len - 1) {
    size_t full = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &full) != napi_ok) return false;
    if (full != len) {
      OPENSSL_cleanse(stack, len);
      in->copy = NULL;
      in->len = 0;
      if (full > (size_t)INT_MAX - TAG_BYTES) return false;
      unsigned char *heap = malloc(full + 1);
      if (!heap) return false;
      in->copy = heap;
      in->heap = true;
      /* The whole buffer counts as written until the copy succeeds, so a failure wipes all of it. */
      in->len = full;
      if (napi_get_value_string_utf8(env, v, (char *)heap, full + 1, &len) != napi_ok || len != full) {
        plain_done(in);
        return false;
      }
      in->len = len;
    }
  }
  in->data = in->copy;
  return true;
}

/* Wipes (and frees) the UTF-8 copy of a string plaintext; nothing for bytes, which are the caller's. */
void plain_done(plain_input *in) {
  if (!in->copy) return;
  OPENSSL_cleanse(in->copy, in->len);
  if (in->heap) free(in->copy);
  in->copy = NULL;
}
