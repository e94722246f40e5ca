/*
 * Rendering a template with its canonical text (cairn_tmpl_render_text):
 * the text is cairn_json_write's of the value rendered, whatever the map's
 * shape, and the value is what cairn_tmpl_render gives, keys in the
 * author's order.  A small map's text is made partly at load: the parts
 * that depend on the document must follow it from one render to the next.
 */
#include "actions/action.h"
#include "common/json.h"
#include "common/mem.h"
#include "dsl/expr.h"
#include "dsl/expr_int.h"
#include "dsl/workflow.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static const char *const text_wf =
    "cairn: 1\nname: text\nsteps:\n"
    "  - id: two\n    uses: set\n    with: { n: 5, prev: \"${{ .x }}\" }\n"
    "  - id: order\n    uses: set\n"
    "    with: { b: 1, a: \"${{ .x }}\", aa: [1, 2], A: s, \"\": null, \"é\": 2, z: \"${{ .s }}\" }\n"
    "  - id: nested\n    uses: set\n"
    "    with: { m: { y: \"${{ .y }}\", x: 1 }, s: \"pre-${{ .x }}-${{ .s }}\", l: [\"${{ .f }}\", 2] }\n"
    "  - id: numbers\n    uses: set\n"
    "    with: { f: 1.5, g: -0.0, big: 1e300, d: \"${{ .f }}\", e: \"${{ .y.k }}\" }\n"
    "  - id: wide\n    uses: set\n"
    "    with: { k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: \"${{ .x }}\" }\n"
    "  - id: script\n    uses: shell\n"
    "    with: { run: \"echo ${{ .s }}\", env: { B: b, A: \"${{ .x }}\" } }\n"
    "  - id: fixed\n    uses: set\n    with: { b: 1, a: [x] }\n";

static cairn_workflow *load_src(const char *src) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    if (cairn_workflow_load("w.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d))
        TEST_FAIL("load: %s", d.count ? d.items[0].msg : "?");
    cairn_diags_free(&d);
    return wf;
}

/* Step i's `with` over doc (JSON): rendered with its text, which must be
 * the value's canonical text and the value cairn_tmpl_render's; the value
 * as jq prints it, keys in their order (caller frees). */
static char *render_checked(const cairn_workflow *wf, int i, const char *doc_text) {
    jv doc = jv_parse(doc_text), with, plain;
    cairn__jvdoc jd;
    cairn_buf text = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
    cairn_buf_puts(&text, "<");   /* appended to, not overwritten */
    cairn_err err;
    if (cairn_tmpl_render_text(wf->steps[i].with, wf->exprs, cairn__jvdoc_init(&jd, doc), &with,
                               &text, &err) != 0)
        TEST_FAIL("step %d: %s", i, err.msg);
    if (cairn_tmpl_render(wf->steps[i].with, wf->exprs, doc, &plain, &err) != 0)
        TEST_FAIL("step %d: %s", i, err.msg);
    cairn_buf_puts(&want, "<");
    cairn_json_write(&want, with);
    CHECK_STR(text.data, want.data);
    jv a = jv_dump_string(jv_copy(with), 0), b = jv_dump_string(plain, 0);
    CHECK_STR(jv_string_value(a), jv_string_value(b));
    char *out = cairn_strdup(jv_string_value(a));
    jv_free(a);
    jv_free(b);
    jv_free(with);
    jv_free(doc);
    cairn_buf_free(&text);
    cairn_buf_free(&want);
    return out;
}

#define CHECK_RENDERED(wf, i, doc, want)              \
    do {                                              \
        char *got_ = render_checked((wf), (i), (doc)); \
        CHECK_STR(got_, (want));                      \
        free(got_);                                   \
    } while (0)

static const char *const doc1 =
    "{\"x\": 7, \"y\": {\"k\": [1, \"two\"]}, \"s\": \"q\\\"\\\\\\n\\u0001\", \"f\": 0.1}";
static const char *const doc2 = "{\"x\": \"seven\", \"y\": null, \"s\": \"\", \"f\": -3}";

TEST(tmpl_text_is_the_canonical_text_of_the_value_rendered) {
    cairn_workflow *wf = load_src(text_wf);
    for (int i = 0; i < wf->n_steps; i++) {
        free(render_checked(wf, i, doc1));
        free(render_checked(wf, i, doc2));
    }
    /* keys in the author's order in the value, sorted by their bytes in the text */
    CHECK_RENDERED(wf, 1, doc1,
                   "{\"b\":1,\"a\":7,\"aa\":[1,2],\"A\":\"s\",\"\":null,\"é\":2,"
                   "\"z\":\"q\\\"\\\\\\n\\u0001\"}");
    jv doc = jv_parse(doc2), with;
    cairn__jvdoc jd;
    cairn_buf text = CAIRN_BUF_INIT;
    cairn_err err;
    CHECK_INT(cairn_tmpl_render_text(wf->steps[1].with, wf->exprs, cairn__jvdoc_init(&jd, doc),
                                     &with, &text, &err), 0);
    CHECK_STR(text.data, "{\"\":null,\"A\":\"s\",\"a\":\"seven\",\"aa\":[1,2],\"b\":1,\"z\":\"\","
                         "\"é\":2}");
    jv_free(with);
    jv_free(doc);
    cairn_buf_free(&text);
    cairn_workflow_free(wf);
}

/* The constant members' text is made once; the values read from the
 * document are written again at every render. */
TEST(tmpl_text_follows_the_document_from_one_render_to_the_next) {
    cairn_workflow *wf = load_src(text_wf);
    CHECK_RENDERED(wf, 0, doc1, "{\"n\":5,\"prev\":7}");
    CHECK_RENDERED(wf, 0, doc2, "{\"n\":5,\"prev\":\"seven\"}");
    CHECK_RENDERED(wf, 2, doc1,
                   "{\"m\":{\"y\":{\"k\":[1,\"two\"]},\"x\":1},"
                   "\"s\":\"pre-7-q\\\"\\\\\\n\\u0001\",\"l\":[0.1,2]}");
    CHECK_RENDERED(wf, 2, doc2, "{\"m\":{\"y\":null,\"x\":1},\"s\":\"pre-seven-\",\"l\":[-3,2]}");
    CHECK_RENDERED(wf, 3, doc1,
                   "{\"f\":1.5,\"g\":-0,\"big\":1e+300,\"d\":0.1,\"e\":[1,\"two\"]}");
    CHECK_RENDERED(wf, 3, doc2, "{\"f\":1.5,\"g\":-0,\"big\":1e+300,\"d\":-3,\"e\":null}");
    cairn_workflow_free(wf);
}

/* A member that fails to render fails the map, whichever member it is. */
TEST(tmpl_text_a_failing_member_fails_the_render) {
    static const char *const src =
        "cairn: 1\nname: bad\nsteps:\n"
        "  - id: a\n    uses: set\n"
        "    with: { p: \"${{ .x }}\", q: \"${{ .x | error }}\", r: \"${{ .x }}\" }\n";
    cairn_workflow *wf = load_src(src);
    jv doc = jv_parse("{\"x\": \"boom\"}"), with;
    cairn__jvdoc jd;
    cairn_buf text = CAIRN_BUF_INIT;
    cairn_err err;
    CHECK_INT(cairn_tmpl_render_text(wf->steps[0].with, wf->exprs, cairn__jvdoc_init(&jd, doc),
                                     &with, &text, &err), CAIRN_EEXPR);
    CHECK_CONTAINS(err.msg, "boom");
    CHECK(!jv_is_valid(with));
    jv_free(doc);
    cairn_buf_free(&text);
    cairn_workflow_free(wf);
}

/* A small map rendered again with the same dynamic values is given again
 * (its object and text kept from the last render); any other value, in
 * any of its members, is rendered anew: a number that differs only in its
 * sign bit, a string, a kind, and an object whose keys come in another
 * order (equal to jq, but not the same text to a reader of the value). */
TEST(tmpl_text_a_kept_render_is_given_only_for_the_same_values) {
    static const char *const src =
        "cairn: 1\nname: kept\nsteps:\n"
        "  - id: a\n    uses: set\n    with: { a: \"${{ .p }}\", b: \"${{ .q }}\", c: 1 }\n";
    static const char *const seq[][2] = {
        {"{\"p\": 1, \"q\": \"x\"}", "{\"a\":1,\"b\":\"x\",\"c\":1}"},
        {"{\"p\": 1, \"q\": \"x\"}", "{\"a\":1,\"b\":\"x\",\"c\":1}"},
        {"{\"p\": 1, \"q\": \"z\"}", "{\"a\":1,\"b\":\"z\",\"c\":1}"},
        {"{\"p\": 2, \"q\": \"z\"}", "{\"a\":2,\"b\":\"z\",\"c\":1}"},
        {"{\"p\": -0, \"q\": \"z\"}", "{\"a\":-0,\"b\":\"z\",\"c\":1}"},
        {"{\"p\": 0, \"q\": \"z\"}", "{\"a\":0,\"b\":\"z\",\"c\":1}"},
        {"{\"p\": false, \"q\": \"z\"}", "{\"a\":false,\"b\":\"z\",\"c\":1}"},
        {"{\"p\": null, \"q\": \"z\"}", "{\"a\":null,\"b\":\"z\",\"c\":1}"},
        {"{\"p\": null, \"q\": \"z\"}", "{\"a\":null,\"b\":\"z\",\"c\":1}"},
        {"{\"p\": {\"k\": 1, \"j\": 2}, \"q\": \"z\"}", "{\"a\":{\"k\":1,\"j\":2},\"b\":\"z\",\"c\":1}"},
        {"{\"p\": {\"j\": 2, \"k\": 1}, \"q\": \"z\"}", "{\"a\":{\"j\":2,\"k\":1},\"b\":\"z\",\"c\":1}"},
        {"{\"p\": [1], \"q\": \"z\"}", "{\"a\":[1],\"b\":\"z\",\"c\":1}"},
        {"{\"p\": 1, \"q\": \"x\"}", "{\"a\":1,\"b\":\"x\",\"c\":1}"},
    };
    cairn_workflow *wf = load_src(src);
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) CHECK_RENDERED(wf, 0, seq[i][0], seq[i][1]);
    cairn_workflow_free(wf);
}

/* The kept render is the very object rendered before; a render whose text
 * is larger than the bound is not kept, so a large value is not held once
 * its runs let it go. */
TEST(tmpl_text_keeps_small_renders_only) {
    static const char *const src =
        "cairn: 1\nname: big\nsteps:\n  - id: a\n    uses: set\n    with: { a: \"${{ .p }}\" }\n";
    cairn_workflow *wf = load_src(src);
    char *big = cairn_malloc(5001);
    memset(big, 'x', 5000);
    big[5000] = '\0';
    const char *const values[] = {"small", big};
    for (int k = 0; k < 2; k++) {
        jv doc = jv_object_set(jv_object(), jv_string("p"), jv_string(values[k])), first, again;
        cairn_err err;
        CHECK_INT(cairn_tmpl_render(wf->steps[0].with, wf->exprs, doc, &first, &err), 0);
        CHECK_INT(cairn_tmpl_render(wf->steps[0].with, wf->exprs, doc, &again, &err), 0);
        CHECK_INT(jv_identical(first, again), k == 0);
        jv_free(doc);
    }
    free(big);
    cairn_workflow_free(wf);
}
