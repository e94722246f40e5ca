/*
 * Fuzz target: the native expression parser and evaluator
 * (dsl/expr_native.c), differentially against libjq.  The input is a
 * program, a NUL byte, and a JSON document.  When the native parser accepts
 * the program, its result over the document must be libjq's (the same value,
 * or the same error message), unless it defers to jq.
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

/* jq's first result, or its error; null when it yields nothing. */
static jv jq_first(const char *text, jv doc, int *compiled) {
    jq_state *jq = jq_init();
    jq_set_error_cb(jq, drop, NULL);
    *compiled = jq_compile(jq, text);
    jv v = jv_null();
    if (*compiled) {
        jq_start(jq, jv_copy(doc), 0);
        v = jq_next(jq);
        if (!jv_is_valid(v) && !jv_invalid_has_msg(jv_copy(v))) {
            jv_free(v);
            v = jv_null();
        }
    }
    jq_teardown(&jq);
    return v;
}

static jv key(jv v) {
    if (jv_is_valid(v)) return jv_dump_string(v, JV_PRINT_SORTED);
    return jv_invalid_get_msg(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *nul = memchr(data, '\0', size);
    if (nul == NULL || size > 4096) return 0;
    size_t plen = (size_t)(nul - (const char *)data);
    cairn_exprnative *e = cairn__exprnative_parse((const char *)data, plen);
    if (e == NULL) return 0;
    jv doc = cairn_json_parse(nul + 1, size - plen - 1);
    if (!jv_is_valid(doc)) {
        jv_free(doc);
        cairn__exprnative_free(e);
        return 0;
    }
    jv got = cairn__exprnative_eval(e, doc);
    if (jv_is_valid(got) || jv_invalid_has_msg(jv_copy(got))) {
        char *text = strndup((const char *)data, plen);
        int compiled = 0;
        jv want = jq_first(text, doc, &compiled);
        if (!compiled) abort();              /* the native subset is valid jq */
        jv a = key(got), b = key(want);
        if (!jv_equal(a, b)) abort();
        free(text);
    } else {
        jv_free(got);
    }
    jv_free(doc);
    cairn__exprnative_free(e);
    return 0;
}
