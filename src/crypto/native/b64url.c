/* The envelope's base64url: unpadded, and strict when decoding. */
#include "pce.h"

static const char B64URL_ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of len bytes: exactly ceil(4 * len / 3) characters. */
size_t b64url_length(size_t len) { return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1); }

size_t b64url_encode(const unsigned char *in, size_t len, char *out) {
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
long b64url_decode(const unsigned char *in, size_t len, unsigned char *out) {
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
