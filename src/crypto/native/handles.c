/*
 * Key handles and the handles bound to them. Key bytes: the caller hands them in once; they go
 * straight to OpenSSL, which keeps them (expanded) inside its context and wipes them on
 * EVP_CIPHER_CTX_free / HMAC_CTX_free. This file never stores key bytes itself.
 *
 * Lifetimes: a sealer (indexer) holds a counted reference to its key's state, so the state outlives
 * whichever of the handles is collected first and is freed and wiped with the last. Finalizers of
 * one environment run on its own thread, so the counts need no atomics; handles never cross
 * environments (an external cannot be posted to another thread).
 */
#include "pce.h"
#include <stdlib.h>
#include <string.h>

const napi_type_tag AEAD_TAG = {0x7063652d61656164ULL, 0x9f1c3a5e2b7d4c61ULL};
const napi_type_tag MAC_TAG = {0x7063652d686d6163ULL, 0x4e8a2d6c1b3f5a97ULL};
const napi_type_tag SEALER_TAG = {0x7063652d7365616cULL, 0x2b6e91d4c7a35f08ULL};
const napi_type_tag INDEXER_TAG = {0x7063652d696e6478ULL, 0xd1387c5a0e94b62fULL};

static void release_aead(aead_key *key) {
  if (--key->refs > 0) return;
  EVP_CIPHER_CTX_free(key->ctx); /* frees and cleanses the key schedule */
  OPENSSL_cleanse(key, sizeof *key);
  free(key);
}

static void release_mac(mac_key *key) {
  if (--key->refs > 0) return;
  HMAC_CTX_free(key->ctx); /* cleanses the padded key blocks */
  OPENSSL_cleanse(key, sizeof *key);
  free(key);
}

static void finalize_aead(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  release_aead(data);
}

static void finalize_mac(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  release_mac(data);
}

static void finalize_sealer(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  sealer *s = data;
  release_aead(s->key);
  free(s->aad);
  free(s);
}

static void finalize_indexer(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  indexer *ix = data;
  release_mac(ix->key);
  free(ix);
}

/*
 * Wraps data in an external tagged with its kind. On failure the finalizer is run here, so the
 * caller never frees data itself once this was called.
 */
static napi_value tagged_external(napi_env env, void *data, napi_finalize finalize, const napi_type_tag *tag) {
  napi_value handle;
  if (napi_create_external(env, data, finalize, NULL, &handle) != napi_ok) {
    finalize(env, data, NULL);
    return throw_last(env);
  }
  /* From here the external owns data: its finalizer frees it when the handle is collected. */
  if (napi_type_tag_object(env, handle, tag) != napi_ok) return throw_last(env);
  return handle;
}

/* The one argument of aeadKey/macKey: 32 key bytes. */
static bool key_bytes_of(napi_env env, napi_callback_info info, const unsigned char **key_bytes) {
  size_t argc = 1, key_len = 0;
  napi_value argv[1];
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 && bytes_of(env, argv[0], key_bytes, &key_len) &&
         key_len == KEY_BYTES;
}

/* aeadKey(key: Uint8Array(32)): an opaque handle holding one AES-256-GCM context keyed once. */
napi_value aead_key_new(napi_env env, napi_callback_info info) {
  const unsigned char *key_bytes;
  if (!key_bytes_of(env, info, &key_bytes)) return type_error(env, "aeadKey expects 32 key bytes");
  module_state *state = state_of(env);
  if (!state || !state->gcm) return type_error(env, "AES-256-GCM is not available");
  aead_key *key = calloc(1, sizeof *key);
  if (!key) return type_error(env, "out of memory");
  key->refs = 1;
  key->ctx = EVP_CIPHER_CTX_new();
  int ok = key->ctx && EVP_CipherInit_ex2(key->ctx, state->gcm, NULL, NULL, 0, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(key->ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
           EVP_CipherInit_ex2(key->ctx, NULL, key_bytes, NULL, 0, NULL) == 1;
  if (!ok) {
    release_aead(key);
    napi_throw_error(env, NULL, "OpenSSL could not set up AES-256-GCM");
    return NULL;
  }
  return tagged_external(env, key, finalize_aead, &AEAD_TAG);
}

/* macKey(key: Uint8Array(32)): an opaque handle holding an HMAC-SHA-256 context keyed once. */
napi_value mac_key_new(napi_env env, napi_callback_info info) {
  const unsigned char *key_bytes;
  if (!key_bytes_of(env, info, &key_bytes)) return type_error(env, "macKey expects 32 key bytes");
  mac_key *key = calloc(1, sizeof *key);
  if (!key) return type_error(env, "out of memory");
  key->refs = 1;
  key->ctx = HMAC_CTX_new();
  if (!key->ctx || HMAC_Init_ex(key->ctx, key_bytes, KEY_BYTES, EVP_sha256(), NULL) != 1) {
    release_mac(key);
    napi_throw_error(env, NULL, "OpenSSL could not set up HMAC-SHA-256");
    return NULL;
  }
  return tagged_external(env, key, finalize_mac, &MAC_TAG);
}

/*
 * sealer(aeadKey, aad: Uint8Array, header: string): the key, the associated data and the envelope
 * header of one field's values under it, bound once, so sealing a value passes only the value.
 */
napi_value sealer_new(napi_env env, napi_callback_info info) {
  size_t argc = 3, aad_len = 0;
  napi_value argv[3];
  aead_key *key;
  const unsigned char *aad;
  sealer *s = calloc(1, sizeof *s);
  if (!s) return type_error(env, "out of memory");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !unwrap(env, argv[0], &AEAD_TAG, (void **)&key) ||
      !bytes_of(env, argv[1], &aad, &aad_len) || !prefix_of(env, argv[2], s->header, &s->header_len)) {
    free(s);
    return type_error(env, "sealer expects (aeadKey, aad bytes, ASCII header of under 128 characters)");
  }
  s->state = state_of(env);
  s->aad = malloc(aad_len ? aad_len : 1);
  if (!s->state || !s->aad) {
    free(s->aad);
    free(s);
    return type_error(env, "out of memory");
  }
  memcpy(s->aad, aad, aad_len);
  s->aad_len = aad_len;
  s->key = key;
  key->refs++;
  return tagged_external(env, s, finalize_sealer, &SEALER_TAG);
}

/* indexer(macKey, prefix: string): an index key and its blind index prefix, bound once. */
napi_value indexer_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  mac_key *key;
  indexer *ix = calloc(1, sizeof *ix);
  if (!ix) return type_error(env, "out of memory");
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !unwrap(env, argv[0], &MAC_TAG, (void **)&key) ||
      !prefix_of(env, argv[1], ix->prefix, &ix->prefix_len)) {
    free(ix);
    return type_error(env, "indexer expects (macKey, ASCII prefix of under 128 characters)");
  }
  ix->key = key;
  key->refs++;
  return tagged_external(env, ix, finalize_indexer, &INDEXER_TAG);
}
