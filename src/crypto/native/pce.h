/*
 * Shared declarations of the native AES-256-GCM / HMAC-SHA-256 module for prisma-column-encryption
 * (see module.c for why it exists). One translation unit per concern:
 *   napi_args.c  reading and checking arguments (the module's whole attack surface)
 *   gcm.c        one AES-256-GCM operation on a keyed context
 *   b64url.c     the envelope's base64url, strict in decoding
 *   handles.c    key, sealer and indexer handles (key state, lifetimes, wiping)
 *   bytes_api.c  seal / open / hmac on caller-allocated buffers
 *   text_api.c   stored text built here: envelopes and blind indexes
 *   open_text.c  envelope text decrypted here: what one value and a batch share, and openString
 *   open_batch.c a result's values in one call: openTexts, openStrings
 *   module.c     per-environment state (cipher, nonce pool) and the exports
 */
#ifndef PCE_H
#define PCE_H

#define NAPI_VERSION 8
/* HMAC_CTX is deprecated in OpenSSL 3 in favour of EVP_MAC, which wraps it with a provider lookup per
 * call; HMAC_CTX re-initialised from its keyed state is the cheaper of the two and still exported. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uchar.h>

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16
#define MAC_BYTES 32
/* Characters of a nonce in envelope text (16) and the ':' after it. */
#define NONCE_FIELD 17
/* Batch results (ends[i]) for values the fast path does not decide: the caller takes its reference path. */
#define NOT_HANDLED (-1)
/* Headers and index prefixes are ASCII and shorter than this. */
#define PREFIX_CAP 128
/* Values up to this many bytes are handled in stack buffers; longer ones in heap buffers. */
#define STACK_BYTES 1024
/* Nonces drawn from the CSPRNG in one call. */
#define NONCES_PER_BLOCK 256

/* ---- per environment (main thread, each worker) ---- module.c */
typedef struct {
  EVP_CIPHER *gcm; /* AES-256-GCM, fetched once rather than on every key set-up */
  unsigned char nonces[NONCES_PER_BLOCK * NONCE_BYTES];
  size_t nonce_at; /* next unused byte of nonces; a block is never handed out twice */
} module_state;

module_state *state_of(napi_env env);
/* A fresh random 96-bit nonce into out; false when the CSPRNG failed. */
bool draw_nonce(module_state *state, unsigned char *out);

/* ---- handles ---- handles.c */
/*
 * One context per key serves both directions: GCM runs the AES block cipher forwards either way, so
 * the key schedule is the same, and every operation passes its direction with its IV. Counted:
 * the key's own handle and every sealer made from it hold one reference each, so the context
 * (and the key schedule it holds) lives until the last of them is collected, then is wiped.
 */
typedef struct {
  EVP_CIPHER_CTX *ctx;
  unsigned refs;
} aead_key;

typedef struct {
  HMAC_CTX *ctx;
  unsigned refs;
} mac_key;

/* A key, its associated data and its envelope header bound once: every value of one field under one key. */
typedef struct {
  aead_key *key;
  module_state *state;
  unsigned char *aad;
  size_t aad_len;
  char header[PREFIX_CAP];
  size_t header_len;
} sealer;

/* An index key and its text prefix (`<key id>:`) bound once. */
typedef struct {
  mac_key *key;
  char prefix[PREFIX_CAP];
  size_t prefix_len;
} indexer;

extern const napi_type_tag AEAD_TAG, MAC_TAG, SEALER_TAG, INDEXER_TAG;

napi_value aead_key_new(napi_env env, napi_callback_info info);
napi_value mac_key_new(napi_env env, napi_callback_info info);
napi_value sealer_new(napi_env env, napi_callback_info info);
napi_value indexer_new(napi_env env, napi_callback_info info);

/* ---- arguments ---- napi_args.c */
#define CHECK(env, call)                                   \
  do {                                                     \
    if ((call) != napi_ok) return throw_last(env);         \
  } while (0)

napi_value throw_last(napi_env env);
napi_value type_error(napi_env env, const char *message);
napi_value undefined_value(napi_env env);
napi_value boolean_value(napi_env env, bool value);
bool bytes_of(napi_env env, napi_value v, const unsigned char **data, size_t *len);
bool typed_of(napi_env env, napi_value v, napi_typedarray_type want, size_t count, void **data);
bool unwrap(napi_env env, napi_value handle, const napi_type_tag *tag, void **out);
bool prefix_of(napi_env env, napi_value v, char *buf, size_t *len);

/*
 * Plaintext input given as a string (its UTF-8, as Buffer.from(s, 'utf8') gives it) or as bytes.
 * A string's UTF-8 is copied into `stack` or, when longer, the heap; plain_done wipes that copy.
 */
typedef struct {
  const unsigned char *data;
  size_t len;
  unsigned char *copy; /* the UTF-8 copy of a string input, wiped and (when on the heap) freed by plain_done */
  bool heap;
} plain_input;
bool plain_of(napi_env env, napi_value v, unsigned char *stack, size_t stack_len, plain_input *in);
void plain_done(plain_input *in);

/* ---- AES-256-GCM ---- gcm.c */
bool gcm_seal(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *in, size_t len, const unsigned char *aad,
              size_t aad_len, unsigned char *out);
bool gcm_open(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *sealed, size_t sealed_len,
              const unsigned char *aad, size_t aad_len, unsigned char *out);
bool mac_into(HMAC_CTX *ctx, const unsigned char *data, size_t len, unsigned char *out);

/* ---- base64url ---- b64url.c */
size_t b64url_length(size_t len);
size_t b64url_encode(const unsigned char *in, size_t len, char *out);
long b64url_decode(const unsigned char *in, size_t len, unsigned char *out);

/* ---- envelope text to plaintext, shared by one value and a batch ---- open_text.c */
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

scratch scratch_on(scratch_stack *st);
void scratch_free(scratch *s);
/* A string's UTF-16 into the scratch buffers; false for a non-string. */
bool read_units(napi_env env, napi_value text, scratch *s, size_t *len);
/* The plaintext of the text in the scratch buffers, into out; its length or NOT_HANDLED. */
long open_units(aead_key *key, scratch *s, size_t len, size_t start, const unsigned char *binding, size_t binding_len,
                unsigned char *out, size_t out_cap);

/* A decrypted value's plaintext on its way to a string: on the stack, or the heap when longer. */
typedef struct {
  unsigned char *data;
  size_t cap;
  unsigned char stack[SCRATCH_STACK];
} plain_out;
static inline void plain_out_init(plain_out *o) {
  o->data = o->stack;
  o->cap = sizeof o->stack;
}
/* Frees a heap buffer (its plaintext was wiped when its string was made) and goes back to the stack. */
void plain_out_free(plain_out *o);
/* The String value of the text in the scratch buffers: 1 with *result set, 0 not decided, -1 failed. */
int string_of(napi_env env, aead_key *key, scratch *s, size_t len, size_t start, const unsigned char *binding, size_t binding_len,
              plain_out *o, napi_value *result);

/* ---- exports ---- */
napi_value seal_bytes(napi_env env, napi_callback_info info);  /* bytes_api.c */
napi_value open_bytes(napi_env env, napi_callback_info info);
napi_value hmac_bytes(napi_env env, napi_callback_info info);
napi_value seal_with(napi_env env, napi_callback_info info);   /* text_api.c */
napi_value index_with(napi_env env, napi_callback_info info);
napi_value open_texts(napi_env env, napi_callback_info info);  /* open_batch.c */
napi_value open_strings(napi_env env, napi_callback_info info);
napi_value open_string(napi_env env, napi_callback_info info);  /* open_text.c */

#endif
