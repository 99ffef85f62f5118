/*
 * seal / open / hmac on caller-allocated buffers (Buffer.allocUnsafe draws on Node's pool: creating
 * a Buffer here costs more than the AES-GCM of a short value). The library's own hot paths use the
 * text entry points; these serve raw bytes (wrapped subject keys, the self-test, the property test).
 */
#include "pce.h"
#include <stdint.h>

/* The arguments seal and open share: (aeadKey, 12-byte nonce, input, aad, out). */
typedef struct {
  aead_key *key;
  const unsigned char *nonce, *in, *aad;
  unsigned char *out;
  size_t in_len, aad_len, out_len;
} aead_args;

/*
 * True when out and in share memory other than exactly (out starting where in starts, which GCM
 * handles in place): OpenSSL would then read input it has already overwritten and give another
 * result than node:crypto, whose output is always fresh memory.
 */
static bool partly_overlapping(const unsigned char *out, size_t out_len, const unsigned char *in, size_t in_len) {
  uintptr_t o = (uintptr_t)out, i = (uintptr_t)in;
  return out_len > 0 && in_len > 0 && o != i && o < i + in_len && i < o + out_len;
}

/*
 * Reads and checks the five arguments of seal/open; the caller checks the lengths that differ
 * (out against in). Returns false, with no exception set, when an argument is missing or of the
 * wrong kind; *failed is set instead when N-API itself failed (its exception is then pending).
 */
static bool aead_args_of(napi_env env, napi_callback_info info, aead_args *a, bool *failed) {
  size_t argc = 5, nonce_len = 0;
  napi_value argv[5];
  const unsigned char *out = NULL;
  *failed = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last(env);
    *failed = true;
    return false;
  }
  if (argc < 5 || !unwrap(env, argv[0], &AEAD_TAG, (void **)&a->key) || !bytes_of(env, argv[1], &a->nonce, &nonce_len) ||
      nonce_len != NONCE_BYTES || !bytes_of(env, argv[2], &a->in, &a->in_len) || !bytes_of(env, argv[3], &a->aad, &a->aad_len) ||
      !bytes_of(env, argv[4], &out, &a->out_len)) {
    return false;
  }
  a->out = (unsigned char *)out;
  return !partly_overlapping(a->out, a->out_len, a->in, a->in_len);
}

/* seal(key, nonce: 12 bytes, plaintext, aad, out: plaintext.length + 16): ciphertext then tag into out. */
napi_value seal_bytes(napi_env env, napi_callback_info info) {
  aead_args a;
  bool failed;
  if (!aead_args_of(env, info, &a, &failed) || a.out_len != a.in_len + TAG_BYTES) {
    return failed ? NULL : type_error(env, "seal expects (aeadKey, 12-byte nonce, plaintext, aad, out of plaintext.length + 16 bytes, not partly over plaintext)");
  }
  if (!gcm_seal(a.key->ctx, a.nonce, a.in, a.in_len, a.aad, a.aad_len, a.out)) {
    napi_throw_error(env, NULL, "AES-256-GCM encryption failed");
    return NULL;
  }
  return undefined_value(env);
}

/* open(key, nonce, sealed, aad, out: sealed.length - 16): true with the plaintext in out, false when the tag does not verify. */
napi_value open_bytes(napi_env env, napi_callback_info info) {
  aead_args a;
  bool failed;
  if (!aead_args_of(env, info, &a, &failed) || a.in_len < TAG_BYTES || a.out_len != a.in_len - TAG_BYTES) {
    return failed ? NULL : type_error(env, "open expects (aeadKey, 12-byte nonce, sealed of at least 16 bytes, aad, out of sealed.length - 16 bytes, not partly over sealed)");
  }
  return boolean_value(env, gcm_open(a.key->ctx, a.nonce, a.in, a.in_len, a.aad, a.aad_len, a.out));
}

/* hmac(key, data, out: 32 bytes): HMAC-SHA-256 of data into out. */
napi_value hmac_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  mac_key *key;
  const unsigned char *data, *out;
  size_t len, out_len;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !unwrap(env, argv[0], &MAC_TAG, (void **)&key) || !bytes_of(env, argv[1], &data, &len) ||
      !bytes_of(env, argv[2], &out, &out_len) || out_len != MAC_BYTES) {
    return type_error(env, "hmac expects (macKey, data, out of 32 bytes)");
  }
  if (!mac_into(key->ctx, data, len, (unsigned char *)out)) {
    napi_throw_error(env, NULL, "HMAC-SHA-256 failed");
    return NULL;
  }
  return undefined_value(env);
}
