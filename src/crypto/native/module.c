/*
 * AES-256-GCM and HMAC-SHA-256 for prisma-column-encryption, through the OpenSSL that Node itself
 * links and exports (no second OpenSSL). Why native: node:crypto builds a new cipher object, runs
 * the key schedule and checks its arguments on every call, which is ~3 us of a short value's cost;
 * here one EVP_CIPHER_CTX per key keeps the key schedule and each value only sets its IV.
 *
 * No global mutable state: the module is loaded once per Node environment (main thread and each
 * worker thread), and its state and every handle belong to the environment that made them.
 */
#include "pce.h"
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

module_state *state_of(napi_env env) {
  module_state *state = NULL;
  return napi_get_instance_data(env, (void **)&state) == napi_ok ? state : NULL;
}

/*
 * Nonces are uniformly random 96-bit values from OpenSSL's CSPRNG (the one node:crypto's
 * randomFillSync uses), drawn NONCES_PER_BLOCK at a time: one RAND_bytes call per block instead of
 * per value. Each is handed out once: the offset only moves forward until the block is refilled.
 * A Node process cannot fork and go on running JavaScript, so no two processes share a block.
 */
bool draw_nonce(module_state *state, unsigned char *out) {
  if (state->nonce_at + NONCE_BYTES > sizeof state->nonces) {
    if (RAND_bytes(state->nonces, (int)sizeof state->nonces) != 1) return false;
    state->nonce_at = 0;
  }
  memcpy(out, state->nonces + state->nonce_at, NONCE_BYTES);
  state->nonce_at += NONCE_BYTES;
  return true;
}

static void free_state(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  module_state *state = data;
  EVP_CIPHER_free(state->gcm);
  OPENSSL_cleanse(state, sizeof *state);
  free(state);
}

NAPI_MODULE_INIT() {
  module_state *state = calloc(1, sizeof *state);
  if (!state) return NULL;
  state->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  state->nonce_at = sizeof state->nonces; /* empty: the first nonce fills the block */
  if (napi_set_instance_data(env, state, free_state, NULL) != napi_ok) {
    free_state(env, state, NULL);
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"aeadKey", NULL, aead_key_new, NULL, NULL, NULL, napi_default, NULL},
      {"macKey", NULL, mac_key_new, NULL, NULL, NULL, napi_default, NULL},
      {"sealer", NULL, sealer_new, NULL, NULL, NULL, napi_default, NULL},
      {"indexer", NULL, indexer_new, NULL, NULL, NULL, napi_default, NULL},
      {"seal", NULL, seal_bytes, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, open_bytes, NULL, NULL, NULL, napi_default, NULL},
      {"hmac", NULL, hmac_bytes, NULL, NULL, NULL, napi_default, NULL},
      {"sealWith", NULL, seal_with, NULL, NULL, NULL, napi_default, NULL},
      {"indexWith", NULL, index_with, NULL, NULL, NULL, napi_default, NULL},
      {"openTexts", NULL, open_texts, NULL, NULL, NULL, napi_default, NULL},
      {"openStrings", NULL, open_strings, NULL, NULL, NULL, napi_default, NULL},
      {"openString", NULL, open_string, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
