/*
 * replay.c - re-taking a run's decisions over its journal.  See replay.h
 * for what is re-taken and how each is compared.
 *
 * Each event: check (the decision, over the state before it), then fold
 * (fold.h, the engine's), then keep the engine's derived state as it does
 * (the document, failing, a foreach's list and window).  A check that
 * finds a difference fills the result and the walk stops.
 */
#include "engine/replay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

extern const cairn_action cairn_action_approval, cairn_action_wait;

struct cairn_replayer {
    eng_plan *plan;
    const cairn_secrets *secrets;
    bool secrets_missing;        /* the workflow reads a secret by name not given */
    cairn_replay_child_fn child;
    void *ud;
};

cairn_replayer *cairn_replayer_new(cairn_workflow *wf, const cairn_secrets *secrets,
                                   cairn_replay_child_fn child, void *ud) {
    cairn_replayer *rp = cairn_calloc(1, sizeof *rp);
    rp->secrets = secrets;
    rp->child = child;
    rp->ud = ud;
    for (int k = 0; k < wf->n_secrets; k++)
        rp->secrets_missing |= !cairn_secrets_has(secrets, wf->secrets[k].name);
    rp->plan = eng_plan_new(wf);
    return rp;
}

void cairn_replayer_free(cairn_replayer *rp) {
    if (rp == NULL) return;
    eng_plan_free(rp->plan);
    free(rp);
}

/* One replay: the run as the engine would hold it, and the event at hand. */
typedef struct {
    cairn_replayer *rp;
    eng_run *r;
    const cairn_event *ev;
    jv data;                     /* the event's data (borrowed) */
    int step, index;             /* the event's step (-1: none) and item (-1) */
    int64_t started_ms;          /* time of the event before the last step_started */
    int *holding;                /* per step: items in flight or waiting */
    cairn_replay_result *out;
    cairn_err *err;
    int lookup_rc;               /* the child lookup failed: the replay's error */
    bool renders;                /* the divergence found renders an expression */
} replay;

/* The decisions re-taken (replay.h), and whether each renders an expression. */
typedef enum {
    D_READY, D_IF, D_INPUT, D_FOREACH, D_RETRY, D_BACKOFF, D_UNTIL, D_APPROVAL, D_WAIT, D_CHILD, D_CRASH, D_ROLLBACK, D_END, D_INPUTS, D_JOURNAL
} decision;

static const struct {
    const char *name;
    bool renders;
} decisions[] = {
    [D_READY] = {"ready", false},
    [D_IF] = {"if", true},
    [D_INPUT] = {"input", true},
    [D_FOREACH] = {"foreach", true},
    [D_RETRY] = {"retry", false},
    [D_BACKOFF] = {"backoff", false},
    [D_UNTIL] = {"until", true},
    [D_APPROVAL] = {"approval", true},
    [D_WAIT] = {"wait", true},
    [D_CHILD] = {"child", true},
    [D_CRASH] = {"crash", false},
    [D_ROLLBACK] = {"rollback", false},
    [D_END] = {"end", true},
    [D_INPUTS] = {"inputs", true},
    [D_JOURNAL] = {"journal", false},
};

enum { BEGIN_GO, BEGIN_SKIP, BEGIN_EXPR_FAIL };

/* ---- telling a difference ----------------------------------------------------- */

static bool differ(replay *x, decision d, const char *journal, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool differ(replay *x, decision d, const char *journal, const char *fmt, ...) {
    cairn_replay_result *o = x->out;
    o->verdict = CAIRN_REPLAY_DIVERGED;
    o->decision = decisions[d].name;
    x->renders = decisions[d].renders;
    snprintf(o->journal, sizeof o->journal, "%s", journal);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->replay, sizeof o->replay, fmt, ap);
    va_end(ap);
    return false;
}

/* v (borrowed) as compact JSON, cut to fit. */
static const char *text_of(jv v, char *buf, size_t len) {
    jv s = jv_is_valid(v) ? jv_dump_string(jv_copy(v), 0) : jv_string("(absent)");
    snprintf(buf, len, "%s", jv_string_value(s));
    if (strlen(jv_string_value(s)) >= len && len > 4) memcpy(buf + len - 4, "...", 4);
    jv_free(s);
    return buf;
}

/* The first place a and b (borrowed) differ: a path under prefix into
 * path, and each side's value there (borrowed into *pa, *pb, the caller's
 * to free). */
static void first_difference(jv a, jv b, char *path, size_t len, jv *pa, jv *pb) {
    if (jv_get_kind(a) == JV_KIND_OBJECT && jv_get_kind(b) == JV_KIND_OBJECT) {
        jv keys = jv_keys(jv_copy(b)), more = jv_keys(jv_copy(a));   /* b's keys, then a's */
        keys = jv_array_concat(keys, more);
        jv_array_foreach(keys, k, key) {
            jv va = jv_object_get(jv_copy(a), jv_copy(key)), vb = jv_object_get(jv_copy(b), jv_copy(key));
            if (!jv_equal(jv_copy(va), jv_copy(vb))) {
                size_t at = strlen(path);
                snprintf(path + at, len - at, ".%s", jv_string_value(key));
                first_difference(va, vb, path, len, pa, pb);
                jv_free(va), jv_free(vb), jv_free(key), jv_free(keys);
                return;
            }
            jv_free(va), jv_free(vb), jv_free(key);
        }
        jv_free(keys);
    } else if (jv_get_kind(a) == JV_KIND_ARRAY && jv_get_kind(b) == JV_KIND_ARRAY &&
               jv_array_length(jv_copy(a)) == jv_array_length(jv_copy(b))) {
        jv_array_foreach(a, k, va) {
            jv vb = jv_array_get(jv_copy(b), k);
            if (!jv_equal(jv_copy(va), jv_copy(vb))) {
                size_t at = strlen(path);
                snprintf(path + at, len - at, "[%d]", k);
                first_difference(va, vb, path, len, pa, pb);
                jv_free(va), jv_free(vb);
                return;
            }
            jv_free(va), jv_free(vb);
        }
    }
    *pa = jv_copy(a);
    *pb = jv_copy(b);
}

/* Whether the value replay made (consumed; masked here) is the journal's
 * (borrowed); else the difference is told, at its first path under what. */
static bool same_value(replay *x, decision d, const char *what, jv made, jv journal) {
    jv masked = cairn_secrets_mask(made, x->rp->secrets);
    if (jv_equal(jv_copy(masked), jv_copy(journal))) {
        jv_free(masked);
        x->out->decisions++;
        return true;
    }
    char path[256], a[CAIRN_REPLAY_TEXT_MAX / 2], b[CAIRN_REPLAY_TEXT_MAX / 2];
    char told[CAIRN_REPLAY_TEXT_MAX];
    snprintf(path, sizeof path, "%s", what);
    jv pa = jv_invalid(), pb = jv_invalid();
    first_difference(journal, masked, path, sizeof path, &pa, &pb);
    snprintf(told, sizeof told, "%s = %s", path, text_of(pa, a, sizeof a));
    differ(x, d, told, "%s = %s", path, text_of(pb, b, sizeof b));
    jv_free(pa);
    jv_free(pb);
    jv_free(masked);
    return false;
}

/* ---- reading the event ------------------------------------------------------ */

static jv field(const replay *x, const char *key) {
    return jv_object_get(jv_copy(x->data), jv_string(key));
}

static int64_t field_ms(const replay *x, const char *key) {
    jv v = field(x, key);
    int64_t ms = jv_get_kind(v) == JV_KIND_NUMBER ? (int64_t)jv_number_value(v) : 0;
    jv_free(v);
    return ms;
}

/* Whether error (borrowed) is an object of that kind. */
static bool error_kind_is(jv error, const char *kind) {
    jv k = jv_get_kind(error) == JV_KIND_OBJECT ? jv_object_get(jv_copy(error), jv_string("kind"))
                                                 : jv_null();
    bool is = jv_get_kind(k) == JV_KIND_STRING && strcmp(jv_string_value(k), kind) == 0;
    jv_free(k);
    return is;
}

static bool event_error_is(const replay *x, const char *kind) {
    jv e = field(x, "error");
    bool is = error_kind_is(e, kind);
    jv_free(e);
    return is;
}

/* "<kind>: <message>" of data.error, as retry.on reads it. */
static const char *error_text(const replay *x, char *buf, size_t len) {
    jv e = field(x, "error");
    jv k = jv_get_kind(e) == JV_KIND_OBJECT ? jv_object_get(jv_copy(e), jv_string("kind")) : jv_null();
    jv m = jv_get_kind(e) == JV_KIND_OBJECT ? jv_object_get(jv_copy(e), jv_string("message")) : jv_null();
    snprintf(buf, len, "%s: %s", jv_get_kind(k) == JV_KIND_STRING ? jv_string_value(k) : "",
             jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "");
    jv_free(k), jv_free(m), jv_free(e);
    return buf;
}

static const char *id_of(const replay *x, int i) { return x->r->plan->ids[i]; }

static const cairn_step_state *state(const replay *x) { return &x->r->st->steps[x->step]; }

static const cairn_step *step_def(const replay *x) { return x->r->plan->steps[x->step]; }

static const cairn_action *action_of(const replay *x) {
    return cairn_action_find(step_def(x)->uses);
}

/* What the journal says happened, for a divergence: "b: step_started". */
static const char *told(const replay *x, char *buf, size_t len) {
    if (x->index >= 0)
        snprintf(buf, len, "%s item %d: %s (attempt %d)", id_of(x, x->step), x->index,
                 cairn_event_type_name(x->ev->type), x->ev->attempt);
    else if (x->step >= 0)
        snprintf(buf, len, "%s: %s (attempt %d)", id_of(x, x->step),
                 cairn_event_type_name(x->ev->type), x->ev->attempt);
    else
        snprintf(buf, len, "%s", cairn_event_type_name(x->ev->type));
    return buf;
}

/* ---- a step begins --------------------------------------------------------- */

/* Whether the event is its step's first: the step had not begun. */
static bool begins(const replay *x) {
    const cairn_step_state *s = state(x);
    return x->index < 0 && s->status == CAIRN_STEP_PENDING && s->attempts == 0 && !s->expanded;
}

static const char *why_no_start(const eng_run *r) {
    if (r->st->cancel_requested) return "the run is cancelled: nothing new starts";
    if (r->st->paused) return "the run is paused: nothing new starts";
    return "the run is failing: nothing new starts";
}

/* A rollback body begins: it must be the next of the rollback's order. */
static bool check_rollback_next(replay *x) {
    eng_run *r = x->r;
    char t[128];
    told(x, t, sizeof t);
    if (!r->rolling_back)
        return differ(x, D_ROLLBACK, t, "no rollback runs: %s runs only in one", id_of(x, x->step));
    int k = 0;
    while (k < r->n_rollback && eng_settled(r->st->steps[r->rollback[k]].status)) k++;
    if (k < r->n_rollback && r->rollback[k] == x->step) {
        x->out->decisions++;
        return true;
    }
    char order[CAIRN_REPLAY_TEXT_MAX / 2] = "";
    for (int j = 0; j < r->n_rollback; j++)
        snprintf(order + strlen(order), sizeof order - strlen(order), "%s%s", j ? ", " : "",
                 id_of(x, r->rollback[j]));
    if (k == r->n_rollback)
        return differ(x, D_ROLLBACK, t, "the rollback has run every body (%s)", order);
    return differ(x, D_ROLLBACK, t, "%s is next (order: %s)", id_of(x, r->rollback[k]), order);
}

static bool check_begin(replay *x, int outcome) {
    eng_run *r = x->r;
    int i = x->step;
    char t[128];
    told(x, t, sizeof t);
    if (eng_is_rollback_step(r, i)) {
        if (!check_rollback_next(x)) return false;
    } else if (eng_needs_waiting(r, i) > 0) {
        const cairn_step *def = r->plan->steps[i];
        int need = 0;
        while (eng_step_is_done(r, def->needs[need])) need++;
        return differ(x, D_READY, t, "%s waits for %s (%s)", id_of(x, i), id_of(x, def->needs[need]),
                      cairn_step_status_name(r->st->steps[def->needs[need]].status));
    } else if (!eng_may_start(r)) {
        return differ(x, D_READY, t, "%s", why_no_start(r));
    }
    x->out->decisions++;
    bool go = true;
    cairn_err err;
    int want = eng_if_holds(r, i, &go, &err) != 0 ? BEGIN_EXPR_FAIL : go ? BEGIN_GO : BEGIN_SKIP;
    if (want == BEGIN_GO && outcome == BEGIN_EXPR_FAIL && r->plan->steps[i]->foreach) {
        jv items = jv_invalid();
        if (eng_foreach_items(r, i, &items, &err) != 0) want = BEGIN_EXPR_FAIL;
        jv_free(items);
        if (want == BEGIN_EXPR_FAIL) return true;
        return differ(x, D_FOREACH, t, "the foreach expression renders");
    }
    if (want == outcome) {
        x->out->decisions++;
        return true;
    }
    if (want == BEGIN_EXPR_FAIL) return differ(x, D_IF, t, "`if` does not render: %s", err.msg);
    if (want == BEGIN_SKIP) return differ(x, D_IF, t, "`if` is false: %s is skipped", id_of(x, i));
    return differ(x, D_IF, t, "%s%s starts", r->plan->steps[i]->if_ ? "`if` is true: " : "",
                  id_of(x, i));
}

/* ---- attempts ----------------------------------------------------------------- */

/* The time an item's or step's timer was armed for (retry_at, a wait, a
 * deadline). */
static int64_t wake_at(const replay *x) {
    const cairn_step_state *s = state(x);
    return x->index < 0 ? s->wake_at : s->items[x->index].wake_at;
}

static cairn_step_status pre_status(const replay *x) {
    const cairn_step_state *s = state(x);
    return x->index < 0 ? s->status : s->items[x->index].status;
}

static bool check_input(replay *x) {
    jv with = jv_invalid(), journal = field(x, "input");
    cairn_err err;
    char t[128];
    bool ok;
    if (eng_step_input(x->r, x->step, x->index, x->ev->attempt, &with, &err) != 0)
        ok = differ(x, D_INPUT, told(x, t, sizeof t), "`with` does not render: %s", err.msg);
    else
        ok = same_value(x, D_INPUT, "input", with, journal);
    jv_free(journal);
    return ok;
}

static bool check_started(replay *x) {
    const cairn_step_state *s = state(x);
    const eng_carried *c = eng_carried_for(action_of(x));
    char t[128];
    told(x, t, sizeof t);
    if (begins(x) && !check_begin(x, BEGIN_GO)) return false;
    if (x->index >= 0 && s->items[x->index].status == CAIRN_STEP_PENDING &&
        s->items[x->index].attempts == 0) {
        int window = eng_foreach_window(step_def(x));
        if (x->holding[x->step] >= window)
            return differ(x, D_FOREACH, t, "%d items hold the window of %d: item %d waits",
                          x->holding[x->step], window, x->index);
    }
    if (pre_status(x) == CAIRN_STEP_WAITING && !(c && c->timer)) {   /* a retry's back-off */
        if (x->ev->time_ms < wake_at(x))
            return differ(x, D_BACKOFF, t, "the next attempt starts at %lld, %lld ms later",
                          (long long)wake_at(x), (long long)(wake_at(x) - x->ev->time_ms));
        if (!eng_may_go_on(x->r, x->step)) return differ(x, D_RETRY, t, "%s", why_no_start(x->r));
    }
    if (!(c && c->input)) {   /* approvals and waits number their own */
        int want = eng_next_attempt(s, x->index);
        if (x->ev->attempt != want) return differ(x, D_INPUT, t, "attempt %d comes next", want);
    }
    x->started_ms = x->r->st->updated_ms;   /* approvals and waits count from before it */
    return check_input(x);
}

static bool check_retrying(replay *x) {
    char t[128], e[CAIRN_REPLAY_TEXT_MAX / 2];
    told(x, t, sizeof t);
    if (begins(x) && !check_begin(x, BEGIN_GO)) return false;
    const cairn_step *def = step_def(x);
    jv error = field(x, "error");
    bool allowed = eng_retry_allowed(x->r, x->step, x->ev->attempt, error);
    jv_free(error);
    if (!allowed) {
        if (x->ev->attempt >= def->retry.max_attempts)
            return differ(x, D_RETRY, t, "no retry: attempt %d of %d", x->ev->attempt,
                          def->retry.max_attempts);
        if (!eng_may_go_on(x->r, x->step)) return differ(x, D_RETRY, t, "no retry: %s", why_no_start(x->r));
        return differ(x, D_RETRY, t, "no retry: \"%s\" does not match retry.on %s",
                      error_text(x, e, sizeof e), def->retry.on ? def->retry.on : "");
    }
    if (event_error_is(x, "until") && def->retry.until == NULL)
        return differ(x, D_UNTIL, t, "%s has no `until`", id_of(x, x->step));
    int64_t lo, hi, d = field_ms(x, "retry_at") - x->ev->time_ms;
    eng_backoff_range(&def->retry, x->ev->attempt, &lo, &hi);
    if (d < lo || d > hi) {
        snprintf(t, sizeof t, "%s: retry after %lld ms", id_of(x, x->step), (long long)d);
        if (lo == hi) return differ(x, D_BACKOFF, t, "back-off of %lld ms", (long long)lo);
        return differ(x, D_BACKOFF, t, "back-off of %lld to %lld ms (jitter)", (long long)lo,
                      (long long)hi);
    }
    x->out->decisions += 2;
    return true;
}

/* An approval step's end: its quorum, a rejection, or its time-out. */
static bool approval_ends(replay *x, bool approve) {
    jv a = state(x)->approval;
    char t[128];
    told(x, t, sizeof t);
    jv on = jv_get_kind(a) == JV_KIND_OBJECT ? jv_object_get(jv_copy(a), jv_string("on_timeout"))
                                              : jv_null();
    bool timed_out = wake_at(x) > 0 && x->ev->time_ms >= wake_at(x);
    bool timeout_approves = jv_get_kind(on) == JV_KIND_STRING && strcmp(jv_string_value(on), "approve") == 0;
    jv_free(on);
    bool ok;
    if (jv_get_kind(a) != JV_KIND_OBJECT) {
        ok = !approve;   /* failed before it asked (with did not render) */
    } else if (approve) {
        ok = eng_quorum_met(a) || (timed_out && timeout_approves);
    } else {
        jv decisions = jv_object_get(jv_copy(a), jv_string("decisions"));
        int n = jv_get_kind(decisions) == JV_KIND_ARRAY ? jv_array_length(jv_copy(decisions)) : 0;
        jv last = n > 0 ? jv_array_get(jv_copy(decisions), n - 1) : jv_null();
        jv what = jv_get_kind(last) == JV_KIND_OBJECT ? jv_object_get(last, jv_string("decision"))
                                                      : (jv_free(last), jv_null());
        ok = (jv_get_kind(what) == JV_KIND_STRING && strcmp(jv_string_value(what), "reject") == 0) ||
             (timed_out && !timeout_approves);
        jv_free(what);
        jv_free(decisions);
    }
    if (ok) {
        x->out->decisions++;
        return true;
    }
    return differ(x, D_APPROVAL, t, approve ? "the approval is not given: no quorum, no time-out"
                                            : "the approval is not refused: no rejection, no time-out");
}

static bool check_succeeded(replay *x) {
    const cairn_step_state *s = state(x);
    const cairn_action *action = action_of(x);
    char t[128];
    told(x, t, sizeof t);
    if (x->index < 0 && s->expanded) {
        if (s->items_succeeded == s->n_items) {
            x->out->decisions++;
            return true;
        }
        return differ(x, D_FOREACH, t, "%d of %d items have succeeded", s->items_succeeded, s->n_items);
    }
    if (action == &cairn_action_approval) return approval_ends(x, true);
    if (action == &cairn_action_wait) {
        if (x->ev->time_ms >= wake_at(x)) return true;
        return differ(x, D_WAIT, t, "the wait ends at %lld", (long long)wake_at(x));
    }
    jv output = field(x, "output"), error = jv_null();
    bool met = eng_until_met(x->r, x->step, output, &error);
    char why[CAIRN_REPLAY_TEXT_MAX / 2];
    text_of(error, why, sizeof why);
    jv_free(output);
    jv_free(error);
    if (met) {
        x->out->decisions += step_def(x)->retry.until != NULL;
        return true;
    }
    return differ(x, D_UNTIL, t, "`until` is not met by the journaled output: %s", why);
}

static bool check_failed(replay *x) {
    const cairn_step_state *s = state(x);
    char t[128], e[CAIRN_REPLAY_TEXT_MAX / 2];
    told(x, t, sizeof t);
    bool expr = event_error_is(x, "expression");
    if (begins(x) && !check_begin(x, x->ev->attempt == 0 && expr ? BEGIN_EXPR_FAIL : BEGIN_GO))
        return false;
    if (event_error_is(x, "cancelled")) return true;   /* a cancel's or a failing run's */
    if (event_error_is(x, "crash")) {
        cairn_on_crash oc = eng_on_crash(x->r, x->step);
        if (x->index >= 0 ? oc != CAIRN_ON_CRASH_RETRY : oc == CAIRN_ON_CRASH_FAIL) return true;
        return differ(x, D_CRASH, t, "on_crash is %s", eng_on_crash_name(oc));
    }
    if (event_error_is(x, "rejected")) return approval_ends(x, false);
    if (x->index < 0 && s->expanded) {
        if (s->items_failed > 0) {
            x->out->decisions++;
            return true;
        }
        return differ(x, D_FOREACH, t, "no item has failed");
    }
    if (x->ev->attempt == 0) return true;   /* before any attempt: no retry was weighed */
    jv error = field(x, "error");
    bool allowed = eng_retry_allowed(x->r, x->step, x->ev->attempt, error);
    jv_free(error);
    if (allowed)
        return differ(x, D_RETRY, t, "retry: \"%s\" is retried (attempt %d of %d)",
                      error_text(x, e, sizeof e), x->ev->attempt, step_def(x)->retry.max_attempts);
    if (event_error_is(x, "until") && step_def(x)->retry.until == NULL)
        return differ(x, D_UNTIL, t, "%s has no `until`", id_of(x, x->step));
    x->out->decisions++;
    return true;
}

static bool check_skipped(replay *x) {
    jv reason = field(x, "reason");
    bool settling = jv_get_kind(reason) == JV_KIND_STRING;   /* the run failed first */
    jv_free(reason);
    return settling || check_begin(x, BEGIN_SKIP);
}

static bool check_expanded(replay *x) {
    if (!check_begin(x, BEGIN_GO)) return false;
    jv items = jv_invalid(), journal = field(x, "items");
    cairn_err err;
    char t[128];
    bool ok;
    if (eng_foreach_items(x->r, x->step, &items, &err) != 0) {
        ok = differ(x, D_FOREACH, told(x, t, sizeof t), "foreach does not render: %s", err.msg);
    } else if (jv_get_kind(journal) != JV_KIND_ARRAY) {   /* an older journal: the count */
        int n = jv_array_length(items);
        ok = n == (int)field_ms(x, "count") ||
             differ(x, D_FOREACH, told(x, t, sizeof t), "%d items", n);
    } else {
        ok = same_value(x, D_FOREACH, "items", items, journal);
    }
    jv_free(journal);
    return ok;
}

static bool check_crashed(replay *x) {
    const cairn_step_state *s = state(x);
    char t[128];
    if (x->index < 0 && jv_get_kind(s->approval) == JV_KIND_OBJECT && s->status == CAIRN_STEP_WAITING)
        return true;   /* on_crash ask answered: the approval decided it */
    jv action = field(x, "action");
    const char *want = eng_on_crash_name(eng_on_crash(x->r, x->step));
    bool ok = jv_get_kind(action) == JV_KIND_STRING && strcmp(jv_string_value(action), want) == 0;
    jv_free(action);
    if (ok) {
        x->out->decisions++;
        return true;
    }
    return differ(x, D_CRASH, told(x, t, sizeof t), "on_crash is %s", want);
}

/* ---- carried steps ------------------------------------------------------------ */

static int64_t duration_in(jv with, const char *key) {
    jv v = jv_get_kind(with) == JV_KIND_OBJECT ? jv_object_get(jv_copy(with), jv_string(key)) : jv_null();
    int64_t ms = -1;
    if (jv_get_kind(v) == JV_KIND_STRING && cairn_duration_parse(jv_string_value(v), &ms) != 0) ms = -1;
    jv_free(v);
    return ms;
}

/* A deadline journaled at the event, ms after a moment the engine read the
 * clock: after the event before the step's step_started, no later than
 * this one. */
static bool deadline_within(const replay *x, int64_t deadline, int64_t ms) {
    return deadline >= x->started_ms + ms && deadline <= x->ev->time_ms + ms;
}

static bool check_waiting(replay *x) {
    jv with = jv_invalid();
    cairn_err err;
    char t[128];
    told(x, t, sizeof t);
    if (eng_wait_input(x->r, x->step, x->index, 1, &with, &err) != 0)
        return differ(x, D_WAIT, t, "`with` does not render: %s", err.msg);
    int64_t ms = duration_in(with, "duration"), until = field_ms(x, "until"), want = 0;
    jv u = jv_object_get(jv_copy(with), jv_string("until"));
    bool ok = ms >= 0 ? deadline_within(x, until, ms)
                      : jv_get_kind(u) == JV_KIND_STRING &&
                            cairn_rfc3339_parse(jv_string_value(u), &want) == 0 && want == until;
    jv_free(u);
    jv_free(with);
    if (ok) {
        x->out->decisions++;
        return true;
    }
    return differ(x, D_WAIT, t, ms >= 0 ? "the wait ends %lld ms after it began" : "the wait ends at %lld",
                  (long long)(ms >= 0 ? ms : want));
}

static bool check_requested(replay *x) {
    char t[128];
    told(x, t, sizeof t);
    jv ask = field(x, "ask");
    bool is_ask = jv_get_kind(ask) == JV_KIND_TRUE;
    jv_free(ask);
    if (is_ask) {
        if (eng_on_crash(x->r, x->step) == CAIRN_ON_CRASH_ASK) return true;
        return differ(x, D_CRASH, t, "on_crash is %s, not ask",
                      eng_on_crash_name(eng_on_crash(x->r, x->step)));
    }
    jv with = jv_invalid();
    cairn_err err;
    if (eng_approval_input(x->r, x->step, x->index, 1, &with, &err) != 0)
        return differ(x, D_APPROVAL, t, "`with` does not render: %s", err.msg);
    jv req = eng_approval_request(x->r, with, x->ev->time_ms);
    jv_free(with);
    int64_t timeout = (int64_t)jv_number_value(jv_object_get(jv_copy(req), jv_string("timeout_ms")));
    int64_t deadline = field_ms(x, "deadline");
    if (timeout ? !deadline_within(x, deadline, timeout) : deadline != 0) {
        jv_free(req);
        return differ(x, D_APPROVAL, t, "the deadline is %lld ms after the request",
                      (long long)timeout);
    }
    req = jv_object_set(req, jv_string("deadline"), jv_number((double)deadline));
    return same_value(x, D_APPROVAL, "request", req, x->data);
}

static bool check_decided(replay *x) {
    jv by = field(x, "by"), decision = field(x, "decision");
    cairn_err err;
    char t[128];
    bool ok = jv_get_kind(by) == JV_KIND_STRING && jv_get_kind(decision) == JV_KIND_STRING;
    if (!ok)
        cairn_err_set(&err, CAIRN_EINVAL, "a decision names who and what");
    else
        ok = cairn_approval_check(x->r->st, id_of(x, x->step), jv_string_value(by),
                                  strcmp(jv_string_value(decision), "approve") == 0, &err) == 0;
    jv_free(by);
    jv_free(decision);
    if (ok) {
        x->out->decisions++;
        return true;
    }
    return differ(x, D_APPROVAL, told(x, t, sizeof t), "refused: %s", err.msg);
}

static bool check_escalated(replay *x) {
    jv a = state(x)->approval;
    char t[128];
    jv on = jv_object_get(jv_copy(a), jv_string("on_timeout"));
    jv esc = jv_object_get(jv_copy(a), jv_string("escalate_to"));
    jv done = jv_object_get(jv_copy(a), jv_string("escalated"));
    bool ok = jv_get_kind(on) == JV_KIND_STRING && strcmp(jv_string_value(on), "escalate") == 0 &&
              jv_get_kind(done) != JV_KIND_TRUE && jv_get_kind(esc) == JV_KIND_ARRAY &&
              jv_array_length(jv_copy(esc)) > 0 && x->ev->time_ms >= wake_at(x);
    jv_free(on), jv_free(esc), jv_free(done);
    if (ok) {
        x->out->decisions++;
        return true;
    }
    return differ(x, D_APPROVAL, told(x, t, sizeof t), "no escalation: on_timeout, escalate_to, "
                  "an escalation already made or the deadline say otherwise");
}

static bool check_child(replay *x) {
    if (x->rp->child == NULL) return true;
    jv child = field(x, "child"), created = jv_invalid(), with = jv_invalid();
    const cairn_workflow *wf = NULL;
    cairn_err err;
    char t[128];
    told(x, t, sizeof t);
    int rc = jv_get_kind(child) == JV_KIND_STRING
                 ? x->rp->child(x->rp->ud, jv_string_value(child), &created, &wf, x->err)
                 : CAIRN_ENOTFOUND;
    jv_free(child);
    if (rc) {
        if (rc != CAIRN_ENOTFOUND) x->lookup_rc = rc;
        return rc == CAIRN_ENOTFOUND;
    }
    bool ok = eng_scoped_input(x->r, x->step, -1, x->ev->attempt, &with, &err) == 0;
    jv name = ok ? jv_object_get(jv_copy(with), jv_string("name")) : jv_null();
    jv inputs = ok ? jv_object_get(jv_copy(with), jv_string("inputs")) : jv_null();
    if (jv_get_kind(inputs) == JV_KIND_NULL) inputs = jv_object();   /* as the engine starts it */
    jv parent = jv_object_get(jv_copy(created), jv_string("parent"));
    jv checked = jv_invalid();
    if (!ok) {
        differ(x, D_CHILD, t, "`with` does not render: %s", err.msg);
    } else if (jv_get_kind(name) != JV_KIND_STRING || strcmp(jv_string_value(name), wf->name) != 0) {
        ok = differ(x, D_CHILD, t, "the child is a run of %s, not of %s",
                    jv_get_kind(name) == JV_KIND_STRING ? jv_string_value(name) : "?", wf->name);
    } else if (jv_get_kind(parent) != JV_KIND_STRING ||
               strcmp(jv_string_value(parent), x->r->st->id) != 0) {
        ok = differ(x, D_CHILD, t, "the child's parent is %s", x->r->st->id);
    } else if (cairn_workflow_check_inputs(wf, inputs,
                                           &checked, &err) != 0) {
        ok = differ(x, D_CHILD, t, "the child's inputs are refused: %s", err.msg);
    } else {
        jv got = jv_object_get(jv_copy(created), jv_string("inputs"));
        ok = same_value(x, D_CHILD, "child.inputs", checked, got);
        checked = jv_invalid();
        jv_free(got);
    }
    jv_free(checked), jv_free(name), jv_free(inputs), jv_free(parent), jv_free(with), jv_free(created);
    return ok;
}

/* ---- the run ------------------------------------------------------------------ */

/* The first main step not done, or -1. */
static int first_not_done(const eng_run *r) {
    for (int i = 0; i < r->plan->n_main; i++)
        if (!eng_step_is_done(r, i)) return i;
    return -1;
}

static bool any_in_flight(const cairn_run_state *st) {
    for (int i = 0; i < st->n_steps; i++) {
        if (st->steps[i].in_flight) return true;
        for (int k = 0; k < st->steps[i].n_items; k++)
            if (st->steps[i].items[k].in_flight) return true;
    }
    return false;
}

static bool check_compensating(replay *x) {
    eng_run *r = x->r;
    char t[128];
    told(x, t, sizeof t);
    if (!r->failing && !r->st->cancel_requested)
        return differ(x, D_ROLLBACK, t, "the run is neither failing nor cancelled");
    if (any_in_flight(r->st)) return differ(x, D_ROLLBACK, t, "attempts still run: the rollback waits");
    if (eng_rollback_order(r->plan, r->st, r->rollback) == 0)
        return differ(x, D_ROLLBACK, t, "there is nothing to roll back");
    x->out->decisions++;
    return true;
}

/* The run ends failed or cancelled: after its rollback, or with none to run. */
static bool check_rollback_done(replay *x) {
    eng_run *r = x->r;
    char t[128];
    told(x, t, sizeof t);
    if (!r->rolling_back) {
        int n = eng_rollback_order(r->plan, r->st, r->rollback);
        if (n == 0) return true;
        return differ(x, D_ROLLBACK, t, "the rollback runs first: %s%s", id_of(x, r->rollback[0]),
                      n > 1 ? " and more" : "");
    }
    for (int k = 0; k < r->n_rollback; k++)
        if (!eng_settled(r->st->steps[r->rollback[k]].status))
            return differ(x, D_ROLLBACK, t, "%s has not run", id_of(x, r->rollback[k]));
    x->out->decisions++;
    return true;
}

static bool check_run_succeeded(replay *x) {
    eng_run *r = x->r;
    char t[128];
    told(x, t, sizeof t);
    int i = first_not_done(r);
    if (i >= 0)
        return differ(x, D_END, t, "%s is not done (%s)", id_of(x, i),
                      cairn_step_status_name(r->st->steps[i].status));
    if (r->failing || r->st->cancel_requested || r->st->paused)
        return differ(x, D_END, t, "%s", why_no_start(r));
    jv outputs = jv_invalid(), journal = field(x, "outputs");
    bool ok = eng_run_outputs(r, &outputs) == 0
                  ? same_value(x, D_END, "outputs", outputs, journal)
                  : (jv_free(outputs), differ(x, D_END, t, "an output does not render: the run fails"));
    jv_free(journal);
    return ok;
}

static bool check_run_failed(replay *x) {
    jv error = field(x, "error");
    jv output = jv_get_kind(error) == JV_KIND_OBJECT ? jv_object_get(jv_copy(error), jv_string("output"))
                                                      : jv_null();
    bool of_output = jv_get_kind(output) == JV_KIND_STRING && error_kind_is(error, "expression");
    jv_free(output);
    jv_free(error);
    char t[128];
    if (!of_output && !x->r->failing && !x->r->rolling_back)
        return differ(x, D_END, told(x, t, sizeof t), "the run is not failing");
    if (!of_output) return check_rollback_done(x);
    jv outputs = jv_invalid();
    bool fails = eng_run_outputs(x->r, &outputs) != 0;
    jv_free(outputs);
    if (fails) return true;
    return differ(x, D_END, told(x, t, sizeof t), "every output renders");
}

static bool check_created(replay *x) {
    jv inputs = field(x, "inputs"), checked = jv_invalid();
    cairn_err err;
    bool ok;
    if (cairn_workflow_check_inputs(x->r->plan->wf, inputs, &checked, &err) != 0)
        ok = differ(x, D_INPUTS, "run_created", "the inputs are refused: %s", err.msg);
    else
        ok = same_value(x, D_INPUTS, "inputs", checked, inputs);
    jv_free(inputs);
    return ok;
}

static bool check(replay *x) {
    switch (x->ev->type) {
    case CAIRN_EV_RUN_CREATED: return check_created(x);
    case CAIRN_EV_STEP_STARTED: return check_started(x);
    case CAIRN_EV_STEP_SKIPPED: return check_skipped(x);
    case CAIRN_EV_STEP_EXPANDED: return check_expanded(x);
    case CAIRN_EV_STEP_SUCCEEDED: return check_succeeded(x);
    case CAIRN_EV_STEP_FAILED: return check_failed(x);
    case CAIRN_EV_STEP_RETRYING: return check_retrying(x);
    case CAIRN_EV_STEP_CRASHED: return check_crashed(x);
    case CAIRN_EV_STEP_WAITING: return check_waiting(x);
    case CAIRN_EV_APPROVAL_REQUESTED: return check_requested(x);
    case CAIRN_EV_APPROVAL_DECIDED: return check_decided(x);
    case CAIRN_EV_APPROVAL_ESCALATED: return check_escalated(x);
    case CAIRN_EV_CHILD_STARTED: return check_child(x);
    case CAIRN_EV_RUN_COMPENSATING: return check_compensating(x);
    case CAIRN_EV_RUN_SUCCEEDED: return check_run_succeeded(x);
    case CAIRN_EV_RUN_FAILED: return check_run_failed(x);
    case CAIRN_EV_RUN_CANCELLED: return check_rollback_done(x);
    default: return true;   /* records, and commands people gave: nothing decided */
    }
}

/* A render that differs is tried once more over the document rebuilt from
 * the whole state, as the engine rebuilds it after a crash. */
static bool check_either_document(replay *x) {
    if (check(x) || x->lookup_rc) return x->lookup_rc == 0;
    if (x->rp->secrets_missing && x->renders) {   /* it may read that secret */
        x->out->verdict = CAIRN_REPLAY_CONSISTENT;
        x->out->unjudged++;
        return true;
    }
    eng_run *r = x->r;
    cairn_replay_result first = *x->out;
    jv live = jv_copy(r->ctx);
    for (char **p = r->env; p && *p; p++) free(*p);
    free(r->env);
    r->env = NULL;
    eng_build_ctx(r, x->rp->secrets);
    if (r->rolling_back) r->ctx = jv_object_set(r->ctx, jv_string("error"), jv_copy(r->st->error));
    first.verdict = CAIRN_REPLAY_DIVERGED;
    x->out->verdict = CAIRN_REPLAY_CONSISTENT;
    bool ok = check(x);
    jv_free(r->ctx);
    r->ctx = live;
    if (!ok) *x->out = first;
    return ok;
}

/* ---- keeping the engine's derived state --------------------------------------- */

static bool holds_place(const cairn_item_state *it) {
    return it->in_flight || it->status == CAIRN_STEP_WAITING;
}

/* A step's end the live engine brings into the document (eng_step_done,
 * eng_step_failed): succeeded, skipped, failed, not by a cancel.  Told by
 * the state the event leaves, not by its type, so that every event that
 * ends a step counts, a fork's carried results among them. */
static bool ends_step(cairn_step_status was, cairn_step_status now) {
    return !eng_settled(was) &&
           (now == CAIRN_STEP_SUCCEEDED || now == CAIRN_STEP_SKIPPED || now == CAIRN_STEP_FAILED);
}

/* After the event is folded: what the engine derives as it goes. */
static void after(replay *x, bool held, cairn_step_status was) {
    eng_run *r = x->r;
    const cairn_event *ev = x->ev;
    int i = x->step;
    if (i >= 0 && x->index >= 0) x->holding[i] += holds_place(&r->st->steps[i].items[x->index]) - held;
    if (ev->type == CAIRN_EV_RUN_COMPENSATING) {
        r->rolling_back = r->failing = true;
        r->n_rollback = eng_rollback_order(r->plan, r->st, r->rollback);
        r->ctx = jv_object_set(r->ctx, jv_string("error"), field(x, "error"));
        return;
    }
    if (i < 0 || x->index >= 0) return;
    if (ev->type == CAIRN_EV_STEP_EXPANDED) eng_recall_items(r, i, x->rp->secrets);
    cairn_step_status now = r->st->steps[i].status;
    if (!ends_step(was, now)) return;
    eng_ctx_step(r, i);
    if (now == CAIRN_STEP_FAILED && !eng_is_rollback_step(r, i) && !r->plan->steps[i]->continue_on_error)
        r->failing = true;
}

/* ---- the walk -------------------------------------------------------------------- */

static bool known_place(replay *x) {
    const cairn_run_state *st = x->r->st;
    if (x->ev->step == NULL) return true;
    x->step = cairn_run_state_step(st, x->ev->step);
    if (x->step < 0) return false;
    const cairn_step_state *s = &st->steps[x->step];
    jv idx = field(x, "index");
    x->index = jv_get_kind(idx) == JV_KIND_NUMBER ? (int)jv_number_value(idx) : -1;
    jv_free(idx);
    return x->index < 0 || (s->expanded && x->index < s->n_items);
}

/* One event: check, fold, keep up.  false: the walk stops. */
static bool replay_event(replay *x, const cairn_event *ev) {
    eng_run *r = x->r;
    cairn_err err;
    x->ev = ev;
    x->step = x->index = -1;
    x->data = jv_parse_sized(ev->data ? ev->data : "", ev->data ? (int)strlen(ev->data) : 0);
    bool known = jv_get_kind(x->data) == JV_KIND_OBJECT && known_place(x);
    bool held = known && x->index >= 0 && holds_place(&r->st->steps[x->step].items[x->index]);
    cairn_step_status was = known && x->step >= 0 ? r->st->steps[x->step].status : CAIRN_STEP_PENDING;
    bool ok = !known || ev->seq == 1 || check_either_document(x);
    if (ok && !x->lookup_rc) {
        if (cairn_fold_apply(r->st, ev, x->step, x->data, &err) != 0) {
            char t[128];
            snprintf(t, sizeof t, "%s%s%s", cairn_event_type_name(ev->type), ev->step ? " of " : "",
                     ev->step ? ev->step : "");
            ok = differ(x, D_JOURNAL, t, "%s", err.msg);
        } else {
            if (ev->seq == 1) {
                eng_build_ctx(r, x->rp->secrets);
                ok = check_created(x);
            }
            after(x, held, was);
        }
    }
    jv_free(x->data);
    x->data = jv_invalid();
    return ok && !x->lookup_rc;
}

static void fill_place(cairn_replay_result *out, const cairn_event *ev, int index) {
    out->seq = ev->seq;
    out->type = ev->type;
    snprintf(out->step, sizeof out->step, "%s", ev->step ? ev->step : "");
    out->attempt = ev->attempt;
    out->index = index;
}

int cairn_replay_run(cairn_replayer *rp, const cairn_event *evs, int n, cairn_replay_result *out,
                     cairn_err *err) {
    memset(out, 0, sizeof *out);
    out->index = -1;
    if (n == 0) return cairn_err_set(err, CAIRN_ENOTFOUND, "the run has no events");
    eng_plan *p = rp->plan;
    replay x = {.rp = rp, .r = eng_run_new(p, evs[0].run_id), .out = out, .err = err};
    x.holding = cairn_calloc((size_t)p->n_all + 1, sizeof *x.holding);
    for (int k = 0; k < n; k++) {
        out->events++;
        if (!replay_event(&x, &evs[k])) {
            fill_place(out, &evs[k], x.index);
            break;
        }
    }
    if (out->verdict != CAIRN_REPLAY_DIVERGED)
        out->verdict = cairn_run_status_terminal(x.r->st->status) ? CAIRN_REPLAY_CONSISTENT
                                                                  : CAIRN_REPLAY_UNFINISHED;
    out->status = cairn_run_status_name(cairn_run_state_status(x.r->st));
    int rc = x.lookup_rc;
    free(x.holding);
    eng_run_free(x.r);
    return rc;
}
