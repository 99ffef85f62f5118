/*
 * Stored text built here rather than in JavaScript (two base64url conversions and a concatenation
 * cost about as much as the AES-GCM of a short value): the envelope `<header><base64url nonce>:
 * <base64url ciphertext+tag>` and the blind index `<prefix><base64url HMAC-SHA-256>`. Plaintext may
 * come as a string, converted to UTF-8 here (no Buffer per value in JavaScript), and that copy is
 * wiped after use; the output buffers hold only ciphertext and MACs, which are what the database stores.
 */
#include "pce.h"
#include <stdlib.h>
#include <string.h>

/*
 * sealWith(sealer, plaintext: string | Uint8Array, nonce?: Uint8Array(12)): the envelope text of
 * plaintext under the sealer's key, associated data and header. The nonce is drawn here from the
 * environment's block of CSPRNG output unless one is given (the cross-backend test passes its own,
 * to compare with node:crypto byte for byte).
 */
napi_value seal_with(napi_env env, napi_callback_info info) {
  size_t argc = 3, nonce_len = 0;
  napi_value argv[3], result;
  sealer *s;
  unsigned char nonce_used[NONCE_BYTES], plain_stack[STACK_BYTES];
  const unsigned char *nonce = nonce_used;
  plain_input in;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype nonce_type = napi_undefined;
  if (argc >= 3 && napi_typeof(env, argv[2], &nonce_type) != napi_ok) return throw_last(env);
  if (argc < 2 || !unwrap(env, argv[0], &SEALER_TAG, (void **)&s) ||
      (nonce_type != napi_undefined && (!bytes_of(env, argv[2], &nonce, &nonce_len) || nonce_len != NONCE_BYTES))) {
    return type_error(env, "sealWith expects (sealer, plaintext string or bytes, optional 12-byte nonce)");
  }
  /* Last, after every check that could run JavaScript-visible conversions: the plaintext copy is wiped on every path below. */
  if (!plain_of(env, argv[1], plain_stack, sizeof plain_stack, &in)) {
    return type_error(env, "sealWith expects (sealer, plaintext string or bytes, optional 12-byte nonce)");
  }
  /* A given nonce is copied once: it is read twice below (as the IV, then into the text), and shared
   * memory may change between the two reads, which would name another nonce than the one used. */
  if (nonce != nonce_used) memcpy(nonce_used, nonce, NONCE_BYTES);
  else if (!draw_nonce(s->state, nonce_used)) {
    plain_done(&in);
    napi_throw_error(env, NULL, "the CSPRNG failed to give a nonce");
    return NULL;
  }
  size_t sealed_len = in.len + TAG_BYTES;
  size_t text_len = s->header_len + NONCE_FIELD + b64url_length(sealed_len);
  unsigned char sealed_stack[STACK_BYTES + TAG_BYTES];
  char text_stack[(STACK_BYTES + TAG_BYTES) * 4 / 3 + PREFIX_CAP + NONCE_FIELD + 4];
  unsigned char *sealed = sealed_len <= sizeof sealed_stack ? sealed_stack : malloc(sealed_len);
  char *text = text_len <= sizeof text_stack ? text_stack : malloc(text_len);
  napi_value out = NULL;
  if (!sealed || !text) {
    napi_throw_error(env, NULL, "out of memory");
  } else if (!gcm_seal(s->key->ctx, nonce_used, in.data, in.len, s->aad, s->aad_len, sealed)) {
    napi_throw_error(env, NULL, "AES-256-GCM encryption failed");
  } else {
    memcpy(text, s->header, s->header_len);
    size_t o = s->header_len + b64url_encode(nonce_used, NONCE_BYTES, text + s->header_len);
    text[o++] = ':';
    o += b64url_encode(sealed, sealed_len, text + o);
    if (napi_create_string_latin1(env, text, o, &result) == napi_ok) out = result;
    else throw_last(env);
  }
  plain_done(&in);
  if (sealed && sealed != sealed_stack) free(sealed);
  if (text && text != text_stack) free(text);
  return out;
}

/* indexWith(indexer, data: string | Uint8Array): the blind index text of data under the indexer's key. */
napi_value index_with(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  indexer *ix;
  unsigned char plain_stack[STACK_BYTES], mac[MAC_BYTES];
  char text[PREFIX_CAP + 44];
  plain_input in;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !unwrap(env, argv[0], &INDEXER_TAG, (void **)&ix) || !plain_of(env, argv[1], plain_stack, sizeof plain_stack, &in)) {
    return type_error(env, "indexWith expects (indexer, data string or bytes)");
  }
  bool ok = mac_into(ix->key->ctx, in.data, in.len, mac);
  plain_done(&in);
  if (!ok) {
    napi_throw_error(env, NULL, "HMAC-SHA-256 failed");
    return NULL;
  }
  memcpy(text, ix->prefix, ix->prefix_len);
  size_t o = ix->prefix_len + b64url_encode(mac, MAC_BYTES, text + ix->prefix_len);
  CHECK(env, napi_create_string_latin1(env, text, o, &result));
  return result;
}
