/*
 * event.c - event type names, the canonical bytes, and the HMAC chain.
 *
 * The HMAC is computed by hand from two pre-keyed SHA-256 states (RFC 2104),
 * over the canonical bytes gathered in one buffer: the orchestrator hashes
 * every event it appends, so this must be cheap.
 */
#include "engine/event.h"

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

static const char *const type_names[] = {
    [CAIRN_EV_NONE] = "none",
#define CAIRN_EV_NAME(name, str) [CAIRN_EV_##name] = str,
    CAIRN_EVENT_MAP(CAIRN_EV_NAME)
#undef CAIRN_EV_NAME
};

#define N_TYPES ((int)(sizeof type_names / sizeof type_names[0]))

bool cairn_event_type_known(long t) {
    return t > 0 && t < N_TYPES;
}

const char *cairn_event_type_name(cairn_event_type t) {
    return cairn_event_type_known(t) ? type_names[t] : "none";
}

bool cairn_event_ends_run(cairn_event_type t) {
    return t == CAIRN_EV_RUN_SUCCEEDED || t == CAIRN_EV_RUN_FAILED || t == CAIRN_EV_RUN_CANCELLED;
}

cairn_event_type cairn_event_type_parse(const char *s) {
    for (int i = 1; i < N_TYPES; i++)
        if (strcmp(type_names[i], s) == 0) return (cairn_event_type)i;
    return CAIRN_EV_NONE;
}

void cairn_event_clear(cairn_event *ev) {
    if (ev == NULL) return;
    free(ev->step);
    free(ev->data);
    ev->step = NULL;
    ev->data = NULL;
    ev->data_len = 0;
}

/* SHA-256 states with the HMAC pads already absorbed.  The low-level SHA256_*
 * calls are deprecated in OpenSSL 3 but copy as plain structs: no allocation
 * and no provider dispatch per event. */
struct cairn_chain {
    SHA256_CTX inner, outer;
    cairn_buf msg;
};

cairn_chain *cairn_chain_new(const unsigned char *key, int keylen) {
    unsigned char block[64] = {0}, pad[64];
    if (keylen > 64)
        SHA256(key, (size_t)keylen, block);
    else
        memcpy(block, key, (size_t)keylen);
    cairn_chain *c = cairn_calloc(1, sizeof *c);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&c->inner);
    SHA256_Update(&c->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&c->outer);
    SHA256_Update(&c->outer, pad, 64);
    return c;
}

void cairn_chain_free(cairn_chain *c) {
    if (c == NULL) return;
    cairn_buf_free(&c->msg);
    free(c);
}

/* The canonical bytes go into one buffer sized once, each field copied with
 * its NUL: no per-field call into the buffer's growth check (this runs for
 * every event the journal writes). */
#define NUM_MAX 21   /* "-9223372036854775808" and its NUL */

static char *put_str(char *p, const char *s, size_t len) {
    memcpy(p, s, len);
    p[len] = '\0';
    return p + len + 1;
}

/* v in decimal, as "%lld" writes it, and a NUL. */
static char *put_num(char *p, long long v) {
    char num[NUM_MAX], *q = num + sizeof num;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--q = '-';
    return put_str(p, q, (size_t)(num + sizeof num - q));
}

void cairn_chain_hash(cairn_chain *c, const unsigned char *prev, cairn_event *ev) {
    static const unsigned char zero[CAIRN_HASH_LEN];
    unsigned char inner[CAIRN_HASH_LEN];
    const char *type = cairn_event_type_name(ev->type), *step = ev->step ? ev->step : "";
    const char *data = ev->data ? ev->data : "";
    size_t run_len = strnlen(ev->run_id, sizeof ev->run_id), type_len = strlen(type);
    size_t step_len = strlen(step), data_len = strlen(data);
    cairn_buf *m = &c->msg;
    cairn_buf_reset(m);
    cairn_buf_reserve(m, CAIRN_HASH_LEN + run_len + type_len + step_len + data_len + 4 +
                             3 * NUM_MAX);
    char *p = m->data;
    memcpy(p, prev ? prev : zero, CAIRN_HASH_LEN);
    p = put_str(p + CAIRN_HASH_LEN, ev->run_id, run_len);
    p = put_num(p, ev->seq);
    p = put_num(p, ev->time_ms);
    p = put_str(p, type, type_len);
    p = put_str(p, step, step_len);
    p = put_num(p, ev->attempt);
    p = put_str(p, data, data_len);
    m->len = (size_t)(p - m->data);
    SHA256_CTX ctx = c->inner;
    SHA256_Update(&ctx, m->data, m->len);
    SHA256_Final(inner, &ctx);
    ctx = c->outer;
    SHA256_Update(&ctx, inner, sizeof inner);
    SHA256_Final(ev->hash, &ctx);
}

