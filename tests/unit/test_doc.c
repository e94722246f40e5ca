/*
 * The run's expression document (engine/sched.c): `.steps` shows each step
 * as it was when the document last took it (eng_ctx_step), and a path
 * `.steps.ID.FIELD` is answered from that view without the whole document
 * being made.  Both ways of reading must give the same value, never the
 * fold's live state nor a view the document has let go stale.
 */
#include <string.h>

#include "actions/action.h"
#include "common/mem.h"
#include "engine/engine_int.h"
#include "test.h"

static const char *const doc_wf =
    "cairn: 1\nname: doc\nsteps:\n"
    "  - id: a\n    uses: set\n    with: { n: 7 }\n"
    "  - id: b\n    uses: set\n"
    "    with: { status: \"${{ .steps.a.status }}\", jq_status: \"${{ .steps.a | .status }}\",\n"
    "            n: \"${{ .steps.a.output.n }}\", jq_n: \"${{ .steps.a.output | .n }}\",\n"
    "            tries: \"${{ .steps.a.attempts }}\", jq_tries: \"${{ .steps.a | .attempts }}\",\n"
    "            none: \"${{ .steps.a.nothing }}\" }\n";

/* b's `with` rendered over the run's document, as compact JSON. */
static char *render_b(eng_run *r) {
    jv out = jv_invalid();
    cairn_err err;
    CHECK_INT(eng_render(r, r->plan->steps[1]->with, jv_null(), &out, &err), 0);
    jv text = jv_dump_string(out, JV_PRINT_SORTED);
    char *s = cairn_strdup(jv_string_value(text));
    jv_free(text);
    return s;
}

static void set_a(eng_run *r, cairn_step_status status, int attempts, int n) {
    cairn_step_state *s = &r->st->steps[0];
    s->status = status;
    s->attempts = attempts;
    jv_free(s->output);
    s->output = n < 0 ? jv_null() : jv_object_set(jv_object(), jv_string("n"), jv_number(n));
}

TEST(doc_steps_paths_answer_what_the_whole_document_holds) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    CHECK_INT(cairn_workflow_load("t.yaml", doc_wf, strlen(doc_wf), cairn_action_lookup_sig, &wf, &d), 0);
    cairn_diags_free(&d);
    eng_plan *p = eng_plan_new(wf);
    eng_run *r = eng_run_new(p, "r1");
    eng_build_ctx(r, NULL);
    char *got;

    set_a(r, CAIRN_STEP_RUNNING, 1, -1);   /* folded, not yet in the document */
    got = render_b(r);
    CHECK_STR(got, "{\"jq_n\":null,\"jq_status\":\"pending\",\"jq_tries\":0,\"n\":null,"
                   "\"none\":null,\"status\":\"pending\",\"tries\":0}");
    free(got);

    set_a(r, CAIRN_STEP_SUCCEEDED, 1, 7);
    eng_ctx_step(r, 0);                    /* done: the document takes it */
    got = render_b(r);
    CHECK_STR(got, "{\"jq_n\":7,\"jq_status\":\"succeeded\",\"jq_tries\":1,\"n\":7,"
                   "\"none\":null,\"status\":\"succeeded\",\"tries\":1}");
    free(got);

    set_a(r, CAIRN_STEP_RUNNING, 2, 8);    /* moved on in the fold only */
    got = render_b(r);
    CHECK_STR(got, "{\"jq_n\":7,\"jq_status\":\"succeeded\",\"jq_tries\":1,\"n\":7,"
                   "\"none\":null,\"status\":\"succeeded\",\"tries\":1}");
    free(got);

    set_a(r, CAIRN_STEP_SUCCEEDED, 2, 9);  /* taken twice before any whole read */
    eng_ctx_step(r, 0);
    set_a(r, CAIRN_STEP_FAILED, 3, 10);
    eng_ctx_step(r, 0);
    got = render_b(r);
    CHECK_STR(got, "{\"jq_n\":10,\"jq_status\":\"failed\",\"jq_tries\":3,\"n\":10,"
                   "\"none\":null,\"status\":\"failed\",\"tries\":3}");
    free(got);

    /* set aside and put back (replay renders over a rebuilt document) */
    set_a(r, CAIRN_STEP_SUCCEEDED, 4, 11);
    eng_doc_saved saved = eng_doc_save(r);
    eng_build_ctx(r, NULL);
    got = render_b(r);
    CHECK_STR(got, "{\"jq_n\":11,\"jq_status\":\"succeeded\",\"jq_tries\":4,\"n\":11,"
                   "\"none\":null,\"status\":\"succeeded\",\"tries\":4}");
    free(got);
    eng_doc_restore(r, saved);
    got = render_b(r);
    CHECK_STR(got, "{\"jq_n\":10,\"jq_status\":\"failed\",\"jq_tries\":3,\"n\":10,"
                   "\"none\":null,\"status\":\"failed\",\"tries\":3}");
    free(got);
    eng_run_free(r);
    eng_plan_free(p);
}
