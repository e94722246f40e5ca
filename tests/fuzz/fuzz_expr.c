/*
 * Fuzz target: the native expression parser and evaluator
 * (dsl/expr_native.c, dsl/expr_nateval.c), differentially against libjq.
 * The input is a program, a NUL byte, and a JSON document.  When the native
 * parser accepts the program, libjq must compile it, and the native first
 * two results over the document must be libjq's (the same values with the
 * same key order and number formatting, the same error message, or none),
 * unless the native evaluator defers to jq.
 */
#include <jq.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "dsl/expr_int.h"

static void drop(void *data, jv msg) {
    (void)data;
    jv_free(msg);
}

/* A result as text: JSON in its own key order, the error's message, or "". */
static jv key(jv v) {
    if (jv_is_valid(v)) return jv_dump_string(v, 0);
    jv msg = jv_invalid_get_msg(v);
    if (jv_get_kind(msg) == JV_KIND_STRING) return jv_string_concat(jv_string("error: "), msg);
    jv_free(msg);
    return jv_string("");
}

/* text compiled by libjq; aborts when it does not compile. */
static jq_state *jq_compiled(const char *text) {
    jq_state *jq = jq_init();
    jq_set_error_cb(jq, drop, NULL);
    if (!jq_compile(jq, text)) abort();          /* the native subset is valid jq */
    return jq;
}

/* jq's first two results as two jq_next calls give them, joined as keys. */
static jv jq_two(const char *text, jv doc) {
    jq_state *jq = jq_compiled(text);
    jq_start(jq, jv_copy(doc), 0);
    jv a = jq_next(jq), b = jv_is_valid(a) ? jq_next(jq) : jv_invalid();
    jv out = jv_string_concat(jv_string_concat(key(a), jv_string(" | ")), key(b));
    jq_teardown(&jq);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *nul = memchr(data, '\0', size);
    if (nul == NULL || size > 4096) return 0;
    size_t plen = (size_t)(nul - (const char *)data);
    cairn_exprnative *e = cairn__exprnative_parse((const char *)data, plen);
    if (e == NULL) return 0;
    char *text = strndup((const char *)data, plen);
    jv doc = cairn_json_parse(nul + 1, size - plen - 1);
    jv first, second;
    if (!jv_is_valid(doc)) {
        jq_state *jq = jq_compiled(text);        /* still: it must compile */
        jq_teardown(&jq);
    } else if (cairn__exprnative_run(e, doc, &first, &second)) {
        jv got = jv_string_concat(jv_string_concat(key(first), jv_string(" | ")), key(second));
        jv want = jq_two(text, doc);
        if (!jv_equal(got, want)) abort();
    }
    jv_free(doc);
    free(text);
    cairn__exprnative_free(e);
    return 0;
}
