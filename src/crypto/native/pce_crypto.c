/*
 * AES-256-GCM and HMAC-SHA-256 for prisma-column-encryption, through the OpenSSL that Node itself
 * links and exports (no second OpenSSL). Why native: node:crypto builds a new cipher object, runs
 * the key schedule and checks its arguments on every call, which is ~3 us of a short value's cost;
 * here one EVP_CIPHER_CTX per key keeps the key schedule and each value only sets its IV.
 *
 * Key bytes: the caller hands them in once; they are passed straight to OpenSSL, which keeps them
 * (expanded) inside the context and wipes them on EVP_CIPHER_CTX_free / HMAC_CTX_free. This file
 * never stores key bytes itself. Tag comparison happens in EVP_DecryptFinal_ex (constant time).
 *
 * No global mutable state: the module is loaded once per Node environment (main thread and each
 * worker thread), and every key handle belongs to the environment that made it.
 */
#define NAPI_VERSION 8
/* HMAC_CTX is deprecated in OpenSSL 3 in favour of EVP_MAC, which wraps it with a provider lookup per
 * call; HMAC_CTX re-initialised from its keyed state is the cheaper of the two and still exported. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uchar.h>

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16
#define MAC_BYTES 32
/* Batch results (ends[i]) for values the fast path does not decide: the caller takes its reference path. */
#define NOT_HANDLED (-1)

/*
 * One context per key serves both directions: GCM runs the AES block cipher forwards either way, so
 * the key schedule is the same, and every operation passes its direction with its IV.
 */
typedef struct {
  EVP_CIPHER_CTX *ctx;
} aead_key;

/* Per Node environment (main thread, each worker): AES-256-GCM fetched once, not on every key set-up. */
typedef struct {
  EVP_CIPHER *gcm;
} module_state;

typedef struct {
  HMAC_CTX *ctx;
} mac_key;

#define CHECK(env, call)                                   \
  do {                                                     \
    if ((call) != napi_ok) return throw_last(env);         \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "N-API call failed");
  }
  return NULL;
}

static napi_value type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* Bytes of a Uint8Array (Buffer) argument; false when it is not one. */
static bool bytes_of(napi_env env, napi_value v, const unsigned char **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *raw = NULL;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return false;
  if (napi_get_typedarray_info(env, v, &type, len, &raw, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
  static const unsigned char empty = 0;
  *data = raw ? (const unsigned char *)raw : &empty;
  return *len <= INT_MAX;
}

/*
 * Key handles are externals tagged with their kind, so an AES handle is never read as an HMAC one
 * (or any other module's external as either).
 */
static const napi_type_tag AEAD_TAG = {0x7063652d61656164ULL, 0x9f1c3a5e2b7d4c61ULL};
static const napi_type_tag MAC_TAG = {0x7063652d686d6163ULL, 0x4e8a2d6c1b3f5a97ULL};

static void free_aead_key(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aead_key *key = data;
  EVP_CIPHER_CTX_free(key->ctx); /* frees and cleanses the key schedule */
  OPENSSL_cleanse(key, sizeof *key);
  free(key);
}

static void free_mac_key(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  mac_key *key = data;
  HMAC_CTX_free(key->ctx); /* cleanses the padded key blocks */
  OPENSSL_cleanse(key, sizeof *key);
  free(key);
}

/* aeadKey(key: Uint8Array(32)): an opaque handle holding encrypt and decrypt contexts keyed once. */
static napi_value aead_key_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  const unsigned char *key_bytes;
  size_t key_len;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !bytes_of(env, argv[0], &key_bytes, &key_len) || key_len != KEY_BYTES) {
    return type_error(env, "aeadKey expects 32 key bytes");
  }
  module_state *state = NULL;
  if (napi_get_instance_data(env, (void **)&state) != napi_ok || !state || !state->gcm) return type_error(env, "AES-256-GCM is not available");
  aead_key *key = calloc(1, sizeof *key);
  if (!key) return type_error(env, "out of memory");
  key->ctx = EVP_CIPHER_CTX_new();
  int ok = key->ctx &&
           EVP_CipherInit_ex2(key->ctx, state->gcm, NULL, NULL, 0, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(key->ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
           EVP_CipherInit_ex2(key->ctx, NULL, key_bytes, NULL, 0, NULL) == 1;
  if (!ok) {
    free_aead_key(env, key, NULL);
    napi_throw_error(env, NULL, "OpenSSL could not set up AES-256-GCM");
    return NULL;
  }
  if (napi_create_external(env, key, free_aead_key, NULL, &handle) != napi_ok) {
    free_aead_key(env, key, NULL);
    return throw_last(env);
  }
  /* From here the external owns the key: its finalizer frees it. */
  if (napi_type_tag_object(env, handle, &AEAD_TAG) != napi_ok) return throw_last(env);
  return handle;
}

/* macKey(key: Uint8Array(32)): an opaque handle holding an HMAC-SHA-256 context keyed once. */
static napi_value mac_key_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  const unsigned char *key_bytes;
  size_t key_len;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !bytes_of(env, argv[0], &key_bytes, &key_len) || key_len != KEY_BYTES) {
    return type_error(env, "macKey expects 32 key bytes");
  }
  mac_key *key = calloc(1, sizeof *key);
  if (!key) return type_error(env, "out of memory");
  key->ctx = HMAC_CTX_new();
  if (!key->ctx || HMAC_Init_ex(key->ctx, key_bytes, (int)key_len, EVP_sha256(), NULL) != 1) {
    free_mac_key(env, key, NULL);
    napi_throw_error(env, NULL, "OpenSSL could not set up HMAC-SHA-256");
    return NULL;
  }
  if (napi_create_external(env, key, free_mac_key, NULL, &handle) != napi_ok) {
    free_mac_key(env, key, NULL);
    return throw_last(env);
  }
  /* From here the external owns the key: its finalizer frees it. */
  if (napi_type_tag_object(env, handle, &MAC_TAG) != napi_ok) return throw_last(env);
  return handle;
}

static bool unwrap(napi_env env, napi_value handle, const napi_type_tag *tag, void **out) {
  bool tagged = false;
  napi_valuetype vt;
  return napi_typeof(env, handle, &vt) == napi_ok && vt == napi_external &&
         napi_check_object_type_tag(env, handle, tag, &tagged) == napi_ok && tagged &&
         napi_get_value_external(env, handle, out) == napi_ok && *out != NULL;
}

/* Runs one GCM operation on a keyed context: IV, AAD, body. Returns false on an OpenSSL failure. */
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

/* The expected tag, handed to the provider directly (the ctrl call would translate it into these params). */
/* The tag of a finished encryption, read from the provider directly (the ctrl call would translate into these params). */
static bool get_tag(EVP_CIPHER_CTX *ctx, unsigned char *tag) {
  OSSL_PARAM params[2];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, TAG_BYTES);
  params[1] = OSSL_PARAM_construct_end();
  return EVP_CIPHER_CTX_get_params(ctx, params) == 1;
}

static bool set_tag(EVP_CIPHER_CTX *ctx, const unsigned char *tag) {
  OSSL_PARAM params[2];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)tag, TAG_BYTES);
  params[1] = OSSL_PARAM_construct_end();
  return EVP_CIPHER_CTX_set_params(ctx, params) == 1;
}

/* Encrypts: ciphertext then the 16-byte tag into out (len + 16 bytes). */
static bool gcm_seal(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *in, size_t len,
                     const unsigned char *aad, size_t aad_len, unsigned char *out) {
  int outl = 0;
  return gcm_begin(ctx, 1, nonce, aad, aad_len) && gcm_body(ctx, out, in, len) && EVP_EncryptFinal_ex(ctx, out + len, &outl) == 1 &&
         get_tag(ctx, out + len);
}

/* Decrypts and verifies; on failure the partial plaintext is wiped. */
static bool gcm_open(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *sealed, size_t sealed_len,
                     const unsigned char *aad, size_t aad_len, unsigned char *out) {
  int outl = 0;
  size_t body = sealed_len - TAG_BYTES;
  bool ok = gcm_begin(ctx, 0, nonce, aad, aad_len) && gcm_body(ctx, out, sealed, body) &&
            set_tag(ctx, sealed + body) &&
            EVP_DecryptFinal_ex(ctx, out + body, &outl) == 1;
  if (!ok && body > 0) OPENSSL_cleanse(out, body);
  return ok;
}

/*
 * Outputs go into a Uint8Array the caller allocated (Buffer.allocUnsafe draws on Node's pool):
 * creating a Buffer here costs more than the AES-GCM of a short value.
 */

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
static napi_value seal(napi_env env, napi_callback_info info) {
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

static napi_value boolean(napi_env env, bool value) {
  napi_value b;
  napi_get_boolean(env, value, &b);
  return b;
}

/* open(key, nonce, sealed, aad, out: sealed.length - 16): true with the plaintext in out, false when the tag does not verify. */
static napi_value open_one(napi_env env, napi_callback_info info) {
  aead_args a;
  bool failed;
  if (!aead_args_of(env, info, &a, &failed) || a.in_len < TAG_BYTES || a.out_len != a.in_len - TAG_BYTES) {
    return failed ? NULL : type_error(env, "open expects (aeadKey, 12-byte nonce, sealed of at least 16 bytes, aad, out of sealed.length - 16 bytes, not partly over sealed)");
  }
  return boolean(env, gcm_open(a.key->ctx, a.nonce, a.in, a.in_len, a.aad, a.aad_len, a.out));
}

/* NULL key and digest: restart from the keyed state set once in macKey. */
static bool mac_into(HMAC_CTX *ctx, const unsigned char *data, size_t len, unsigned char *out) {
  unsigned int outl = 0;
  return HMAC_Init_ex(ctx, NULL, 0, NULL, NULL) == 1 && HMAC_Update(ctx, data, len) == 1 && HMAC_Final(ctx, out, &outl) == 1 &&
         outl == MAC_BYTES;
}

/* hmac(key, data, out: 32 bytes): HMAC-SHA-256 of data into out. */
static napi_value hmac(napi_env env, napi_callback_info info) {
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

/* ---- stored text built here: envelope and blind index ------------------------------------- */

static const char B64URL_ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of len bytes: exactly ceil(4 * len / 3) characters. */
static size_t b64url_length(size_t len) { return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1); }

static size_t b64url_encode(const unsigned char *in, size_t len, char *out) {
  size_t o = 0, i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
    out[o++] = B64URL_ALPHABET[v >> 18 & 63];
    out[o++] = B64URL_ALPHABET[v >> 12 & 63];
    out[o++] = B64URL_ALPHABET[v >> 6 & 63];
    out[o++] = B64URL_ALPHABET[v & 63];
  }
  if (len - i == 1) {
    unsigned v = (unsigned)in[i] << 16;
    out[o++] = B64URL_ALPHABET[v >> 18 & 63];
    out[o++] = B64URL_ALPHABET[v >> 12 & 63];
  } else if (len - i == 2) {
    unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
    out[o++] = B64URL_ALPHABET[v >> 18 & 63];
    out[o++] = B64URL_ALPHABET[v >> 12 & 63];
    out[o++] = B64URL_ALPHABET[v >> 6 & 63];
  }
  return o;
}

#define PREFIX_CAP 128

/*
 * A short ASCII string argument (a header or key id prefix, under PREFIX_CAP characters) into buf
 * (PREFIX_CAP bytes); false when it is not one. Read as UTF-16, not Latin-1: V8's Latin-1 copy keeps
 * only the low byte of each unit, so 'pce:v1:\u0141:' would come out as the ASCII 'pce:v1:A:'.
 */
static bool prefix_of(napi_env env, napi_value v, char *buf, size_t *len) {
  char16_t units[PREFIX_CAP + 1];
  /* One copy (it fails for a non-string); a string that fills units may have been cut short: refused. */
  if (napi_get_value_string_utf16(env, v, units, PREFIX_CAP + 1, len) != napi_ok || *len >= PREFIX_CAP) return false;
  for (size_t i = 0; i < *len; i++) {
    if (units[i] >= 0x80) return false;
    buf[i] = (char)units[i];
  }
  return true;
}

/* Values up to this size are sealed and encoded on the stack; longer ones in heap buffers. */
#define STACK_BYTES 1024

/*
 * sealText(key, nonce: 12 bytes, plaintext, aad, header: string): the stored envelope text
 * `<header><base64url nonce>:<base64url ciphertext+tag>`, built here rather than in JavaScript
 * (two base64url conversions and a concatenation cost about as much as the AES-GCM of a short
 * value). The buffers hold only ciphertext, which is public.
 */
static napi_value seal_text(napi_env env, napi_callback_info info) {
  size_t argc = 5, nonce_len = 0, pt_len = 0, aad_len = 0, prefix_len = 0;
  napi_value argv[5], result;
  aead_key *key;
  const unsigned char *nonce, *pt, *aad;
  char prefix[PREFIX_CAP];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || !unwrap(env, argv[0], &AEAD_TAG, (void **)&key) || !bytes_of(env, argv[1], &nonce, &nonce_len) || nonce_len != NONCE_BYTES ||
      !bytes_of(env, argv[2], &pt, &pt_len) || !bytes_of(env, argv[3], &aad, &aad_len) || !prefix_of(env, argv[4], prefix, &prefix_len) ||
      pt_len > (size_t)INT_MAX - TAG_BYTES) {
    return type_error(env, "sealText expects (aeadKey, 12-byte nonce, plaintext, aad, ASCII header of under 128 characters)");
  }
  size_t sealed_len = pt_len + TAG_BYTES;
  size_t text_len = prefix_len + 16 + 1 + b64url_length(sealed_len);
  unsigned char sealed_stack[STACK_BYTES];
  char text_stack[STACK_BYTES * 2];
  unsigned char *sealed = sealed_len <= sizeof sealed_stack ? sealed_stack : malloc(sealed_len);
  char *text = text_len <= sizeof text_stack ? text_stack : malloc(text_len);
  napi_value out = NULL;
  if (!sealed || !text) {
    napi_throw_error(env, NULL, "out of memory");
  } else if (!gcm_seal(key->ctx, nonce, pt, pt_len, aad, aad_len, sealed)) {
    napi_throw_error(env, NULL, "AES-256-GCM encryption failed");
  } else {
    memcpy(text, prefix, prefix_len);
    size_t o = prefix_len + b64url_encode(nonce, NONCE_BYTES, text + prefix_len);
    text[o++] = ':';
    o += b64url_encode(sealed, sealed_len, text + o);
    if (napi_create_string_latin1(env, text, o, &result) == napi_ok) out = result;
    else throw_last(env);
  }
  if (sealed && sealed != sealed_stack) free(sealed);
  if (text && text != text_stack) free(text);
  return out;
}

/* hmacText(key, data, prefix: string): the stored blind index text `<prefix><base64url HMAC-SHA-256>`. */
static napi_value hmac_text(napi_env env, napi_callback_info info) {
  size_t argc = 3, len = 0, prefix_len = 0;
  napi_value argv[3], result;
  mac_key *key;
  const unsigned char *data;
  char text[PREFIX_CAP + 44];
  unsigned char mac[MAC_BYTES];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !unwrap(env, argv[0], &MAC_TAG, (void **)&key) || !bytes_of(env, argv[1], &data, &len) || !prefix_of(env, argv[2], text, &prefix_len)) {
    return type_error(env, "hmacText expects (macKey, data, ASCII prefix of under 128 characters)");
  }
  if (!mac_into(key->ctx, data, len, mac)) {
    napi_throw_error(env, NULL, "HMAC-SHA-256 failed");
    return NULL;
  }
  size_t o = prefix_len + b64url_encode(mac, MAC_BYTES, text + prefix_len);
  CHECK(env, napi_create_string_latin1(env, text, o, &result));
  return result;
}

/* ---- batch decryption of envelope text ---------------------------------------------------- */

/* base64url alphabet value of each byte, 64 for anything outside it (constant: no init race between threads). */
static const unsigned char B64[256] = {
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
    64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 63,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
};

/*
 * Strict base64url (no padding) decoding into out; returns the decoded length or -1. Only the
 * canonical text of some bytes is accepted (no stray characters, no non-zero trailing bits), so
 * whatever this accepts decodes to the same bytes under Node's lenient decoder; everything else is
 * left to the caller's reference path, which decides what it means.
 */
static long b64url_decode(const unsigned char *in, size_t len, unsigned char *out) {
  size_t o = 0, i = 0;
  if (len % 4 == 1) return -1;
  for (; i + 4 <= len; i += 4) {
    unsigned a = B64[in[i]], b = B64[in[i + 1]], c = B64[in[i + 2]], d = B64[in[i + 3]];
    if ((a | b | c | d) & 64) return -1;
    unsigned v = a << 18 | b << 12 | c << 6 | d;
    out[o++] = (unsigned char)(v >> 16);
    out[o++] = (unsigned char)(v >> 8);
    out[o++] = (unsigned char)v;
  }
  size_t rest = len - i;
  if (rest >= 2) {
    unsigned a = B64[in[i]], b = B64[in[i + 1]];
    if ((a | b) & 64) return -1;
    if (rest == 2) {
      if (b & 0x0f) return -1;
      out[o++] = (unsigned char)(a << 2 | b >> 4);
    } else {
      unsigned c = B64[in[i + 2]];
      if ((c & 64) || (c & 0x03)) return -1;
      out[o++] = (unsigned char)(a << 2 | b >> 4);
      out[o++] = (unsigned char)(b << 4 | c >> 2);
    }
  }
  return (long)o;
}

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
 * Decrypts one envelope text `<header><16 base64url chars>:<base64url ciphertext+tag>`, whose
 * header ends at UTF-16 offset `start`, under `key` with the associated data `<header><binding>`
 * (what the envelope format binds: the header as stored, then Model.field). Writes the plaintext
 * at out (capacity out_cap) and returns its length, or NOT_HANDLED for anything unusual.
 */
static long open_text(napi_env env, aead_key *key, napi_value text, size_t start, const unsigned char *binding, size_t binding_len,
                      unsigned char *out, size_t out_cap, scratch *s) {
  size_t len = 0;
  if (napi_get_value_string_utf16(env, text, NULL, 0, &len) != napi_ok) return NOT_HANDLED;
  /* The associated data (header, then binding) goes to OpenSSL with an int length. */
  if (start > len || len - start < 16 + 1 || binding_len > (size_t)INT_MAX - start || !reserve(s, len + 1, start + binding_len)) return NOT_HANDLED;
  if (napi_get_value_string_utf16(env, text, s->units, len + 1, &len) != napi_ok) return NOT_HANDLED;
  /* Narrow to bytes: any unit outside ASCII maps to a byte outside the base64url alphabet. */
  for (size_t i = 0; i < len; i++) s->text[i] = s->units[i] < 0x80 ? (unsigned char)s->units[i] : 0xff;
  /* The header is ASCII by construction (the caller parsed it); anything else is not decided here. */
  for (size_t i = 0; i < start; i++) if (s->text[i] == 0xff) return NOT_HANDLED;
  memcpy(s->aad, s->text, start);
  if (binding_len > 0) memcpy(s->aad + start, binding, binding_len);
  const unsigned char *body = s->text + start;
  size_t body_text = len - start - 17;
  if (body[16] != ':') return NOT_HANDLED;
  if (b64url_decode(body, 16, s->sealed) != NONCE_BYTES) return NOT_HANDLED;
  long sealed_len = b64url_decode(body + 17, body_text, s->sealed + NONCE_BYTES);
  if (sealed_len < TAG_BYTES || (size_t)sealed_len - TAG_BYTES > out_cap) return NOT_HANDLED;
  if (!gcm_open(key->ctx, s->sealed, s->sealed + NONCE_BYTES, (size_t)sealed_len, s->aad, start + binding_len, out)) return NOT_HANDLED;
  return sealed_len - TAG_BYTES;
}

/* A typed array argument of the given kind with at least `count` entries. */
static bool typed_of(napi_env env, napi_value v, napi_typedarray_type want, size_t count, void **data) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t len = 0;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return false;
  if (napi_get_typedarray_info(env, v, &type, &len, data, NULL, NULL) != napi_ok || type != want || len < count) return false;
  return true;
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
static napi_value open_texts(napi_env env, napi_callback_info info) {
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
      n = open_text(env, keys[k], texts[i], start, binding, binding_len, out + used, out_cap - used, &s);
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

static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  module_state *state = data;
  EVP_CIPHER_free(state->gcm);
  free(state);
}

NAPI_MODULE_INIT() {
  module_state *state = calloc(1, sizeof *state);
  if (!state) return NULL;
  state->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
  if (napi_set_instance_data(env, state, free_state, NULL) != napi_ok) {
    free_state(env, state, NULL);
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"aeadKey", NULL, aead_key_new, NULL, NULL, NULL, napi_default, NULL},
      {"macKey", NULL, mac_key_new, NULL, NULL, NULL, napi_default, NULL},
      {"seal", NULL, seal, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, open_one, NULL, NULL, NULL, napi_default, NULL},
      {"hmac", NULL, hmac, NULL, NULL, NULL, napi_default, NULL},
      {"openTexts", NULL, open_texts, NULL, NULL, NULL, napi_default, NULL},
      {"sealText", NULL, seal_text, NULL, NULL, NULL, napi_default, NULL},
      {"hmacText", NULL, hmac_text, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
