/*
 * sig.c - hashing, MACs, encodings and comparisons for the server (sig.h).
 */
#include "server/sig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <string.h>

void cairn_sig_sha256(const void *p, size_t n, unsigned char out[CAIRN_SIG_SHA256_LEN]) {
    unsigned int len = 0;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

void cairn_sig_hmac(const void *key, size_t klen, const void *a, size_t alen, const void *b,
                    size_t blen, unsigned char out[CAIRN_SIG_SHA256_LEN]) {
    size_t len = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (c == NULL || EVP_MAC_init(c, key, klen, params) != 1 || EVP_MAC_update(c, a, alen) != 1 ||
        (blen && EVP_MAC_update(c, b, blen) != 1) ||
        EVP_MAC_final(c, out, &len, CAIRN_SIG_SHA256_LEN) != 1)
        memset(out, 0, CAIRN_SIG_SHA256_LEN);   /* equals no real MAC of anything */
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
}

bool cairn_sig_equal(const void *a, size_t n, const void *b, size_t m) {
    unsigned char da[CAIRN_SIG_SHA256_LEN], db[CAIRN_SIG_SHA256_LEN];
    cairn_sig_sha256(a, n, da);
    cairn_sig_sha256(b, m, db);
    return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

void cairn_sig_hex(const unsigned char *p, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int cairn_sig_unhex(const char *s, size_t len, unsigned char *out, size_t max) {
    if (len % 2 || len / 2 > max) return -1;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return (int)(len / 2);
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void cairn_sig_b64(const unsigned char *p, size_t n, bool url, char *out) {
    const char *abc = url ? b64_url : b64_std;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t k = 0; k < 4; k++) {
            if (k < chars) out[o++] = abc[(v >> (18 - 6 * k)) & 63];
            else if (!url) out[o++] = '=';
        }
    }
    out[o] = '\0';
}

int cairn_sig_unb64(const char *s, size_t len, bool url, unsigned char *out, size_t max) {
    const char *abc = url ? b64_url : b64_std;
    if (!url && len % 4) return -1;
    while (len > 0 && s[len - 1] == '=') len--;
    if (len % 4 == 1) return -1;
    size_t o = 0;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        const char *at = s[i] ? strchr(abc, s[i]) : NULL;
        if (at == NULL) return -1;
        v = v << 6 | (unsigned)(at - abc);
        if (i % 4 == 3 || i == len - 1) {
            size_t got = i % 4 + 1, bytes = got - 1;
            v <<= 6 * (4 - got);
            if (o + bytes > max) return -1;
            for (size_t k = 0; k < bytes; k++) out[o++] = (unsigned char)(v >> (16 - 8 * k));
            v = 0;
        }
    }
    return (int)o;
}

int cairn_sig_random(unsigned char *out, size_t n) {
    return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}
