/* One AES-256-GCM operation (or one HMAC) on a context keyed once: only the IV changes per value. */
#include "pce.h"
#include <openssl/core_names.h>
#include <openssl/params.h>

/* IV, then AAD. Returns false on an OpenSSL failure. */
static bool gcm_begin(EVP_CIPHER_CTX *ctx, int encrypt, const unsigned char *nonce, const unsigned char *aad, size_t aad_len) {
  int outl = 0;
  if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, encrypt, NULL) != 1) return false;
  return aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) == 1;
}

static bool gcm_body(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in, size_t len) {
  int outl = 0;
  /* Skipped when empty: Update with a NULL output would be read as more AAD. */
  return len == 0 || (EVP_CipherUpdate(ctx, out, &outl, in, (int)len) == 1 && (size_t)outl == len);
}

/* The tag of a finished encryption, read from the provider directly (the ctrl call would translate into these params). */
static bool get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag) {
  OSSL_PARAM params[2];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, TAG_BYTES);
  params[1] = OSSL_PARAM_construct_end();
  return EVP_CIPHER_CTX_get_params(ctx, params) == 1;
}

/* The expected tag, handed to the provider the same way. */
static bool set_tag(EVP_CIPHER_CTX *ctx, const unsigned char *tag) {
  OSSL_PARAM params[2];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, TAG_BYTES);
  params[1] = OSSL_PARAM_construct_end();
  return EVP_CIPHER_CTX_set_params(ctx, params) == 1;
}

/* Encrypts: ciphertext then the 16-byte tag into out (len + 16 bytes). */
bool gcm_seal(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *in, size_t len, const unsigned char *aad,
              size_t aad_len, unsigned char *out) {
  int outl = 0;
  return gcm_begin(ctx, 1, nonce, aad, aad_len) && gcm_body(ctx, out, in, len) && EVP_EncryptFinal_ex(ctx, out + len, &outl) == 1 &&
         get_tag(ctx, out + len);
}

/* Decrypts and verifies (the tag is compared inside OpenSSL, in constant time); on failure the partial plaintext is wiped. */
bool gcm_open(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *sealed, size_t sealed_len,
              const unsigned char *aad, size_t aad_len, unsigned char *out) {
  int outl = 0;
  size_t body = sealed_len - TAG_BYTES;
  bool ok = gcm_begin(ctx, 0, nonce, aad, aad_len) && gcm_body(ctx, out, sealed, body) && set_tag(ctx, sealed + body) &&
            EVP_DecryptFinal_ex(ctx, out + body, &outl) == 1;
  if (!ok && body > 0) OPENSSL_cleanse(out, body);
  return ok;
}

/* HMAC-SHA-256 into out (32 bytes). NULL key and digest: restart from the keyed state set once in macKey. */
bool mac_into(HMAC_CTX *ctx, const unsigned char *data, size_t len, unsigned char *out) {
  unsigned int outl = 0;
  return HMAC_Init_ex(ctx, NULL, 0, NULL, NULL) == 1 && HMAC_Update(ctx, data, len) == 1 && HMAC_Final(ctx, out, &outl) == 1 &&
         outl == MAC_BYTES;
}
