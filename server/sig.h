/*
 * sig.h - the small pieces of cryptography the server's checks share:
 * SHA-256 and HMAC-SHA-256 (OpenSSL's libcrypto), hex and base64, random
 * bytes, and a comparison whose time does not depend on the bytes compared.
 *
 * cairn_sig_equal compares the SHA-256 digests of its two arguments with
 * CRYPTO_memcmp: the time it takes depends on their lengths only, never on
 * where they first differ, so a guessed token or signature learns nothing
 * from how fast it was refused.
 *
 * Memory: every output goes to a buffer the caller provides, of the size
 * each function names; nothing is allocated.
 */
#ifndef CAIRN_SIG_H
#define CAIRN_SIG_H

#include <stdbool.h>
#include <stddef.h>

#define CAIRN_SIG_SHA256_LEN 32

void cairn_sig_sha256(const void *p, size_t n, unsigned char out[CAIRN_SIG_SHA256_LEN]);

/* HMAC-SHA-256 under key over the bytes a followed by the bytes b (b may be
 * NULL with blen 0): the two parts of "timestamp:body"-style messages are
 * signed without copying the body. */
void cairn_sig_hmac(const void *key, size_t klen, const void *a, size_t alen, const void *b,
                    size_t blen, unsigned char out[CAIRN_SIG_SHA256_LEN]);

/* True when the n bytes of a equal the m bytes of b, in time that does not
 * depend on their contents. */
bool cairn_sig_equal(const void *a, size_t n, const void *b, size_t m);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void cairn_sig_hex(const unsigned char *p, size_t n, char *out);

/* Decode len hex digits of s (either case) into out (at most max bytes);
 * returns the number of bytes, or -1 for an odd length, a non-hex digit or
 * more than max bytes. */
int cairn_sig_unhex(const char *s, size_t len, unsigned char *out, size_t max);

/* Base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes): the URL-safe
 * alphabet without padding when url, else the standard one with padding. */
void cairn_sig_b64(const unsigned char *p, size_t n, bool url, char *out);

/* Decode len characters of base64 (url: the URL-safe alphabet, padding
 * optional; else the standard one, padded) into out (at most max bytes);
 * returns the number of bytes or -1 when s is not such base64. */
int cairn_sig_unb64(const char *s, size_t len, bool url, unsigned char *out, size_t max);

/* n bytes from the operating system's random source; 0 or -1. */
int cairn_sig_random(unsigned char *out, size_t n);

#endif
