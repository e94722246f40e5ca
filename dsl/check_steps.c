/*
 * check_steps.c - one step, on_failure step or compensate body: its keys,
 * its action, and the defaults it inherits.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

static const char *const step_keys[] = {
    "id", "name", "uses", "run", "shell", "with", "needs", "if", "timeout", "retry",
    "continue_on_error", "on_crash", "compensate", "foreach", "concurrency", NULL};
static const char *const failure_keys[] = {
    "id", "name", "uses", "run", "shell", "with", "if", "timeout", "retry",
    "continue_on_error", "on_crash", "foreach", "concurrency", NULL};
static const char *const failure_refused[] = {"needs", "compensate", NULL};
static const char *const body_keys[] = {"name", "uses", "run", "shell", "with", "timeout",
                                        "retry", NULL};
static const char *const body_refused[] = {
    "id", "needs", "if", "continue_on_error", "on_crash", "compensate", "foreach",
    "concurrency", NULL};

static const char *const retry_keys[] = {
    "max_attempts", "backoff", "delay", "max_delay", "jitter", "on", "until", NULL};
static const char *const backoffs[] = {"constant", "linear", "exponential", NULL};
static const char *const on_crashes[] = {"retry", "fail", "ask", NULL};

/* The actions of DSL.md, offered as did-you-mean when the catalogue has them. */
static const char *const action_names[] = {
    "set", "fail", "shell", "http", "ssh", "db", "llm", "notify", "match", "approval",
    "wait", "workflow", NULL};

/* Index of n's text in words, or -1 after reporting with a did-you-mean. */
static int pick(wf_ctx *c, const cairn_node *n, const char *what, const char *const *words) {
    if (!cairn__want_text(c, n, what)) return -1;
    for (int i = 0; words[i]; i++)
        if (strcmp(words[i], n->text) == 0) return i;
    const char *hint = cairn__suggest(n->text, words, -1);
    cairn_buf b = CAIRN_BUF_INIT;
    for (int i = 0; words[i]; i++) cairn_buf_printf(&b, "%s%s", i ? ", " : "", words[i]);
    if (hint)
        cairn__wf_error(c, n, "%s: unknown value '%s' (did you mean '%s'?)", what, n->text, hint);
    else
        cairn__wf_error(c, n, "%s: unknown value '%.60s'; expected one of: %s", what, n->text, b.data);
    cairn_buf_free(&b);
    return -1;
}

/* ---- retry ---------------------------------------------------------------- */

static void retry_delays(wf_ctx *c, const cairn_node *n, cairn_retry *r) {
    const cairn_node *d = cairn_node_get(n, "delay"), *md = cairn_node_get(n, "max_delay");
    bool d_ok = d && cairn__want_duration(c, d, "retry.delay", true, &r->delay_ms);
    bool md_ok = md && cairn__want_duration(c, md, "retry.max_delay", false, &r->max_delay_ms);
    if (d_ok && md_ok && r->delay_ms > r->max_delay_ms)
        cairn__wf_error(c, d, "retry.delay (%s) is longer than retry.max_delay (%s)", d->text,
                        md->text);
}

static void retry_on(wf_ctx *c, const cairn_node *on, cairn_retry *r) {
    pcre2_code *re = cairn__compile_pattern(c, on, "retry.on");
    if (re) r->on = cairn_strdup(on->text);
    pcre2_code_free(re);
}

bool cairn__check_retry(wf_ctx *c, const cairn_node *n, cairn_retry *r) {
    int before = cairn_diags_count(c->diags);
    r->max_attempts = 1;
    if (!cairn__want_map(c, n, "retry")) return false;
    cairn__check_keys(c, n, retry_keys, "retry", NULL, NULL);
    const cairn_node *v;
    if ((v = cairn_node_get(n, "max_attempts")))
        cairn__want_count(c, v, "retry.max_attempts", CAIRN_MAX_ATTEMPTS, &r->max_attempts);
    int i;
    if ((v = cairn_node_get(n, "backoff")) && (i = pick(c, v, "retry.backoff", backoffs)) >= 0)
        r->backoff = (cairn_backoff)i;
    retry_delays(c, n, r);
    if ((v = cairn_node_get(n, "jitter"))) cairn__want_bool(c, v, "retry.jitter", &r->jitter);
    if ((v = cairn_node_get(n, "on"))) retry_on(c, v, r);
    if ((v = cairn_node_get(n, "until"))) {
        r->until = cairn__expr_field(c, v, "retry.until", EXPR_ONLY);
        if (!cairn_node_get(n, "max_attempts"))
            cairn__wf_error(c, cairn_node_key(n, "until"),
                            "retry.until needs an explicit max_attempts, so that polling ends");
    }
    return cairn_diags_count(c->diags) == before;
}

/* defaults.retry was checked once; re-read it for this step, reporting
 * nothing (each step gets its own `until` template). */
static void default_retry(wf_ctx *c, cairn_retry *r) {
    cairn_diags quiet = CAIRN_DIAGS_INIT, *real = c->diags;
    c->diags = &quiet;
    cairn__check_retry(c, c->default_retry, r);
    c->diags = real;
    cairn_diags_free(&quiet);
}

/* ---- id and action -------------------------------------------------------- */

static void check_id(wf_ctx *c, const cairn_node *step, cairn_step *s) {
    const cairn_node *n = cairn_node_get(step, "id");
    if (n == NULL) {
        cairn__wf_error(c, step, "a step needs an 'id'");
        return;
    }
    if (!cairn__want_text(c, n, "id")) return;
    s->id = cairn_strdup(n->text);
    if (n->len > CAIRN_ID_MAX)
        cairn__wf_error(c, n, "id: longer than %d characters", CAIRN_ID_MAX);
    else if (n->text[0] < 'a' || n->text[0] > 'z' ||
             strspn(n->text, "abcdefghijklmnopqrstuvwxyz0123456789_") != n->len)
        cairn__wf_error(c, n, "id: '%s' is not a valid step id: use a-z, 0-9 and '_', "
                        "starting with a letter", n->text);
}

static void unknown_action(wf_ctx *c, const cairn_node *n) {
    const char *known[sizeof action_names / sizeof action_names[0]];
    int k = 0;
    for (int i = 0; action_names[i]; i++)
        if (c->lookup(action_names[i])) known[k++] = action_names[i];
    const char *hint = cairn__suggest(n->text, known, k);
    bool listed = false;
    for (int i = 0; action_names[i]; i++) listed |= strcmp(action_names[i], n->text) == 0;
    if (listed)
        cairn__wf_error(c, n, "uses: action '%s' is not available in this build", n->text);
    else if (hint)
        cairn__wf_error(c, n, "uses: unknown action '%s' (did you mean '%s'?)", n->text, hint);
    else
        cairn__wf_error(c, n, "uses: unknown action '%.60s'", n->text);
}

/* Resolve `uses` or `run:` into s->uses; returns the action's signature. */
static const cairn_action_sig *check_action(wf_ctx *c, const cairn_node *step, cairn_step *s,
                                            const char *what) {
    const cairn_node *uses = cairn_node_get(step, "uses"), *run = cairn_node_get(step, "run");
    if (uses && run) {
        cairn__wf_error(c, cairn_node_key(step, "run"),
                        "give either 'uses' or 'run' (shorthand for uses: shell), not both");
        return NULL;
    }
    if (!uses && !run) {
        cairn__wf_error(c, step, "%s needs 'uses' (an action) or 'run' (a shell script)", what);
        return NULL;
    }
    if (!run && cairn_node_get(step, "shell")) {
        cairn__wf_error(c, cairn_node_key(step, "shell"), "shell: goes with run: (with uses: "
                        "shell, give with.shell)");
        return NULL;
    }
    const char *name = run ? "shell" : cairn__want_text(c, uses, "uses") ? uses->text : NULL;
    if (name == NULL) return NULL;
    s->uses = cairn_strdup(name);
    if (c->lookup == NULL) return NULL;
    const cairn_action_sig *sig = c->lookup(name);
    if (sig == NULL && run)
        cairn__wf_error(c, cairn_node_key(step, "run"), "run: the shell action is not available");
    else if (sig == NULL)
        unknown_action(c, uses);
    return sig;
}

/* ---- the step ------------------------------------------------------------- */

static void check_keys_for(wf_ctx *c, const cairn_node *n, wf_block_kind kind) {
    if (kind == BLOCK_STEPS)
        cairn__check_keys(c, n, step_keys, "a step", NULL, NULL);
    else if (kind == BLOCK_ON_FAILURE)
        cairn__check_keys(c, n, failure_keys, "an on_failure step", failure_refused,
                          "on_failure steps run in order, after rollback");
    else
        cairn__check_keys(c, n, body_keys, "a compensate body", body_refused,
                          "it holds uses/with or run, timeout and retry");
}

static void check_run_keys(wf_ctx *c, const cairn_node *n, cairn_step *s) {
    const cairn_node *v;
    if ((v = cairn_node_get(n, "if"))) s->if_ = cairn__expr_field(c, v, "if", EXPR_OR_BOOL);
    if ((v = cairn_node_get(n, "continue_on_error")))
        cairn__want_bool(c, v, "continue_on_error", &s->continue_on_error);
    int i;
    if ((v = cairn_node_get(n, "on_crash")) && (i = pick(c, v, "on_crash", on_crashes)) >= 0)
        s->on_crash = (cairn_on_crash)i;
    if ((v = cairn_node_get(n, "foreach")))
        s->foreach = cairn__expr_field(c, v, "foreach", EXPR_OR_LIST);
    if ((v = cairn_node_get(n, "concurrency"))) {
        cairn__want_count(c, v, "concurrency", CAIRN_MAX_CONCURRENCY, &s->concurrency);
        if (!cairn_node_get(n, "foreach"))
            cairn__wf_error(c, cairn_node_key(n, "concurrency"), "concurrency is only allowed "
                            "with foreach");
    }
}

static void check_limits(wf_ctx *c, const cairn_node *n, cairn_step *s) {
    const cairn_node *v;
    if ((v = cairn_node_get(n, "timeout")))
        cairn__want_duration(c, v, "timeout", false, &s->timeout_ms);
    else
        s->timeout_ms = c->default_timeout_ms;
    if ((v = cairn_node_get(n, "retry")))
        cairn__check_retry(c, v, &s->retry);
    else if (c->default_retry)
        default_retry(c, &s->retry);
    else
        s->retry.max_attempts = 1;
}

static void check_compensate(wf_ctx *c, const cairn_node *n, cairn_step *s) {
    const cairn_node *v = cairn_node_get(n, "compensate");
    if (v == NULL) return;
    c->n_bodies++;
    s->compensate = cairn_calloc(1, sizeof *s->compensate);
    cairn__check_step(c, v, s->compensate, BLOCK_COMPENSATE, NULL);
}

void cairn__check_step(wf_ctx *c, const cairn_node *n, cairn_step *s, wf_block_kind kind,
                       const cairn_node **needs) {
    s->line = n->line;
    s->col = n->col;
    const char *what = kind == BLOCK_COMPENSATE ? "compensate" : "a step";
    if (!cairn__want_map(c, n, what)) return;
    check_keys_for(c, n, kind);
    if (kind == BLOCK_COMPENSATE) s->id = cairn_strdup("");
    else check_id(c, n, s);
    const cairn_node *v;
    if ((v = cairn_node_get(n, "name")) && cairn__want_text(c, v, "name"))
        s->name = cairn_strdup(v->text);
    const cairn_action_sig *sig = check_action(c, n, s, what);
    cairn__check_with(c, n, cairn_node_get(n, "with"), sig, s);
    if (needs) *needs = kind == BLOCK_STEPS ? cairn_node_get(n, "needs") : NULL;
    check_limits(c, n, s);
    if (kind == BLOCK_COMPENSATE) return;
    check_run_keys(c, n, s);
    if (kind == BLOCK_STEPS) check_compensate(c, n, s);
}

void cairn__step_free(cairn_step *s) {
    if (s == NULL) return;
    free(s->id);
    free(s->name);
    free(s->uses);
    cairn_tmpl_free(s->with);
    free(s->needs);
    cairn_tmpl_free(s->if_);
    free(s->retry.on);
    cairn_tmpl_free(s->retry.until);
    cairn_tmpl_free(s->foreach);
    if (s->compensate) {
        cairn__step_free(s->compensate);
        free(s->compensate);
    }
}
