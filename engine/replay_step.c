/*
 * replay_step.c - the decisions step events record, re-taken over the
 * state before each (replay.h says which and how they are compared): a
 * step's beginning, its attempts and their end, and the steps the engine
 * carries out itself (wait, approval, child).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/replay_int.h"

extern const cairn_action cairn_action_approval, cairn_action_wait;

enum { BEGIN_GO, BEGIN_SKIP, BEGIN_EXPR_FAIL };

static const cairn_step_state *state(const replay *x) { return &x->r->st->steps[x->step]; }

static const cairn_step *step_def(const replay *x) { return x->r->plan->steps[x->step]; }

static const cairn_action *action_of(const replay *x) {
    return cairn_action_find(step_def(x)->uses);
}


/* ---- a step begins --------------------------------------------------------- */

/* Whether the event is its step's first: the step had not begun. */
static bool begins(const replay *x) {
    const cairn_step_state *s = state(x);
    return x->index < 0 && s->status == CAIRN_STEP_PENDING && s->attempts == 0 && !s->expanded;
}

/* A rollback body begins: it must be the next of the rollback's order. */
static bool check_rollback_next(replay *x) {
    eng_run *r = x->r;
    if (!r->rolling_back)
        return rp_differ(x, D_ROLLBACK, NULL, "no rollback runs: %s runs only in one",
                         rp_id_of(x, x->step));
    int k = 0;
    while (k < r->n_rollback && eng_settled(r->st->steps[r->rollback[k]].status)) k++;
    if (k < r->n_rollback && r->rollback[k] == x->step) {
        x->out->decisions++;
        return true;
    }
    char order[CAIRN_REPLAY_TEXT_MAX / 2] = "";
    for (int j = 0; j < r->n_rollback; j++)
        snprintf(order + strlen(order), sizeof order - strlen(order), "%s%s", j ? ", " : "",
                 rp_id_of(x, r->rollback[j]));
    if (k == r->n_rollback)
        return rp_differ(x, D_ROLLBACK, NULL, "the rollback has run every body (%s)", order);
    return rp_differ(x, D_ROLLBACK, NULL, "%s is next (order: %s)", rp_id_of(x, r->rollback[k]),
                     order);
}

static bool check_begin(replay *x, int outcome) {
    eng_run *r = x->r;
    int i = x->step;
    if (eng_is_rollback_step(r, i)) {
        if (!check_rollback_next(x)) return false;
    } else if (eng_needs_waiting(r, i) > 0) {
        const cairn_step *def = r->plan->steps[i];
        int k = 0;
        while (eng_step_is_done(r, def->needs[k])) k++;
        int need = def->needs[k];
        return rp_differ(x, D_READY, NULL, "%s waits for %s (%s)", rp_id_of(x, i),
                         rp_id_of(x, need), cairn_step_status_name(r->st->steps[need].status));
    } else if (!eng_may_start(r)) {
        return rp_differ(x, D_READY, NULL, "%s", rp_why_no_start(r));
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
        return rp_differ(x, D_FOREACH, NULL, "the foreach expression renders");
    }
    if (want == outcome) {
        x->out->decisions++;
        return true;
    }
    if (want == BEGIN_EXPR_FAIL)
        return rp_differ(x, D_IF, NULL, "`if` does not render: %s", err.msg);
    if (want == BEGIN_SKIP)
        return rp_differ(x, D_IF, NULL, "`if` is false: %s is skipped", rp_id_of(x, i));
    return rp_differ(x, D_IF, NULL, "%s%s starts", r->plan->steps[i]->if_ ? "`if` is true: " : "",
                     rp_id_of(x, i));
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
    jv with = jv_invalid(), journal = rp_field(x, "input");
    cairn_err err;
    bool ok;
    if (eng_step_input(x->r, x->step, x->index, x->ev->attempt, &with, &err) != 0)
        ok = rp_differ(x, D_INPUT, NULL, "`with` does not render: %s", err.msg);
    else
        ok = rp_same_value(x, D_INPUT, "input", with, journal);
    jv_free(journal);
    return ok;
}

static bool check_started(replay *x) {
    const cairn_step_state *s = state(x);
    const eng_carried *c = eng_carried_for(action_of(x));
    if (begins(x) && !check_begin(x, BEGIN_GO)) return false;
    if (x->index >= 0 && s->items[x->index].status == CAIRN_STEP_PENDING &&
        s->items[x->index].attempts == 0) {
        int window = eng_foreach_window(step_def(x));
        if (x->holding[x->step] >= window)
            return rp_differ(x, D_FOREACH, NULL, "%d items hold the window of %d: item %d waits",
                             x->holding[x->step], window, x->index);
    }
    if (pre_status(x) == CAIRN_STEP_WAITING && !(c && c->timer)) {   /* a retry's back-off */
        if (x->ev->time_ms < wake_at(x))
            return rp_differ(x, D_BACKOFF, NULL, "the next attempt starts at %lld, %lld ms later",
                             (long long)wake_at(x), (long long)(wake_at(x) - x->ev->time_ms));
        if (!eng_may_go_on(x->r, x->step))
            return rp_differ(x, D_RETRY, NULL, "%s", rp_why_no_start(x->r));
    }
    if (!(c && c->input)) {   /* approvals and waits number their own */
        int want = eng_next_attempt(s, x->index);
        if (x->ev->attempt != want)
            return rp_differ(x, D_INPUT, NULL, "attempt %d comes next", want);
    }
    x->started_ms = x->r->st->updated_ms;   /* approvals and waits count from before it */
    return check_input(x);
}

static bool check_retrying(replay *x) {
    char e[CAIRN_REPLAY_TEXT_MAX / 2];
    if (begins(x) && !check_begin(x, BEGIN_GO)) return false;
    const cairn_step *def = step_def(x);
    jv error = rp_field(x, "error");
    bool allowed = eng_retry_allowed(x->r, x->step, x->ev->attempt, error);
    jv_free(error);
    if (!allowed) {
        if (x->ev->attempt >= def->retry.max_attempts)
            return rp_differ(x, D_RETRY, NULL, "no retry: attempt %d of %d", x->ev->attempt,
                             def->retry.max_attempts);
        if (!eng_may_go_on(x->r, x->step))
            return rp_differ(x, D_RETRY, NULL, "no retry: %s", rp_why_no_start(x->r));
        return rp_differ(x, D_RETRY, NULL, "no retry: \"%s\" does not match retry.on %s",
                         rp_error_text(x, e, sizeof e), def->retry.on ? def->retry.on : "");
    }
    if (rp_event_error_is(x, "until") && def->retry.until == NULL)
        return rp_differ(x, D_UNTIL, NULL, "%s has no `until`", rp_id_of(x, x->step));
    int64_t lo, hi, d = rp_field_ms(x, "retry_at") - x->ev->time_ms;
    eng_backoff_range(&def->retry, x->ev->attempt, &lo, &hi);
    if (d < lo || d > hi) {
        char t[128];
        snprintf(t, sizeof t, "%s: retry after %lld ms", rp_id_of(x, x->step), (long long)d);
        if (lo == hi) return rp_differ(x, D_BACKOFF, t, "back-off of %lld ms", (long long)lo);
        return rp_differ(x, D_BACKOFF, t, "back-off of %lld to %lld ms (jitter)", (long long)lo,
                         (long long)hi);
    }
    x->out->decisions += 2;
    return true;
}

/* An approval step's end: its quorum, a rejection, or its time-out. */
static bool approval_ends(replay *x, bool approve) {
    jv a = state(x)->approval;
    jv on = rp_member(a, "on_timeout");
    bool timed_out = wake_at(x) > 0 && x->ev->time_ms >= wake_at(x);
    bool timeout_approves = rp_is(on, "approve");
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
        jv what = rp_member(last, "decision");
        jv_free(last);
        ok = rp_is(what, "reject") || (timed_out && !timeout_approves);
        jv_free(what);
        jv_free(decisions);
    }
    if (ok) {
        x->out->decisions++;
        return true;
    }
    if (approve) return rp_differ(x, D_APPROVAL, NULL, "not given: no quorum, no time-out");
    return rp_differ(x, D_APPROVAL, NULL, "not refused: no rejection, no time-out");
}

static bool check_succeeded(replay *x) {
    const cairn_step_state *s = state(x);
    const cairn_action *action = action_of(x);
    if (x->index < 0 && s->expanded) {
        if (s->items_succeeded == s->n_items) {
            x->out->decisions++;
            return true;
        }
        return rp_differ(x, D_FOREACH, NULL, "%d of %d items have succeeded", s->items_succeeded,
                         s->n_items);
    }
    if (action == &cairn_action_approval) return approval_ends(x, true);
    if (action == &cairn_action_wait) {
        if (x->ev->time_ms >= wake_at(x)) return true;
        return rp_differ(x, D_WAIT, NULL, "the wait ends at %lld", (long long)wake_at(x));
    }
    jv output = rp_field(x, "output"), error = jv_null();
    bool met = eng_until_met(x->r, x->step, output, &error);
    char why[CAIRN_REPLAY_TEXT_MAX / 2];
    rp_text_of(error, why, sizeof why);
    jv_free(output);
    jv_free(error);
    if (met) {
        x->out->decisions += step_def(x)->retry.until != NULL;
        return true;
    }
    return rp_differ(x, D_UNTIL, NULL, "`until` is not met by the journaled output: %s", why);
}

static bool check_failed(replay *x) {
    const cairn_step_state *s = state(x);
    char e[CAIRN_REPLAY_TEXT_MAX / 2];
    bool expr = rp_event_error_is(x, "expression");
    if (begins(x) && !check_begin(x, x->ev->attempt == 0 && expr ? BEGIN_EXPR_FAIL : BEGIN_GO))
        return false;
    if (rp_event_error_is(x, "cancelled")) return true;   /* a cancel's or a failing run's */
    if (rp_event_error_is(x, "crash")) {
        cairn_on_crash oc = eng_on_crash(x->r, x->step);
        if (x->index >= 0 ? oc != CAIRN_ON_CRASH_RETRY : oc == CAIRN_ON_CRASH_FAIL) return true;
        return rp_differ(x, D_CRASH, NULL, "on_crash is %s", eng_on_crash_name(oc));
    }
    if (rp_event_error_is(x, "rejected")) return approval_ends(x, false);
    if (x->index < 0 && s->expanded) {
        if (s->items_failed > 0) {
            x->out->decisions++;
            return true;
        }
        return rp_differ(x, D_FOREACH, NULL, "no item has failed");
    }
    if (x->ev->attempt == 0) return true;   /* before any attempt: no retry was weighed */
    jv error = rp_field(x, "error");
    bool allowed = eng_retry_allowed(x->r, x->step, x->ev->attempt, error);
    jv_free(error);
    if (allowed)
        return rp_differ(x, D_RETRY, NULL, "retry: \"%s\" is retried (attempt %d of %d)",
                         rp_error_text(x, e, sizeof e), x->ev->attempt,
                         step_def(x)->retry.max_attempts);
    if (rp_event_error_is(x, "until") && step_def(x)->retry.until == NULL)
        return rp_differ(x, D_UNTIL, NULL, "%s has no `until`", rp_id_of(x, x->step));
    x->out->decisions++;
    return true;
}

static bool check_skipped(replay *x) {
    jv reason = rp_field(x, "reason");
    bool settling = jv_get_kind(reason) == JV_KIND_STRING;   /* the run failed first */
    jv_free(reason);
    return settling || check_begin(x, BEGIN_SKIP);
}

static bool check_expanded(replay *x) {
    if (!check_begin(x, BEGIN_GO)) return false;
    jv items = jv_invalid(), journal = rp_field(x, "items");
    cairn_err err;
    bool ok;
    if (eng_foreach_items(x->r, x->step, &items, &err) != 0) {
        ok = rp_differ(x, D_FOREACH, NULL, "foreach does not render: %s", err.msg);
    } else if (jv_get_kind(journal) != JV_KIND_ARRAY) {   /* an older journal: the count */
        int n = jv_array_length(items);
        ok = n == (int)rp_field_ms(x, "count") ||
             rp_differ(x, D_FOREACH, NULL, "%d items", n);
    } else {
        ok = rp_same_value(x, D_FOREACH, "items", items, journal);
    }
    jv_free(journal);
    return ok;
}

static bool check_crashed(replay *x) {
    const cairn_step_state *s = state(x);
    bool asked = jv_get_kind(s->approval) == JV_KIND_OBJECT && s->status == CAIRN_STEP_WAITING;
    if (x->index < 0 && asked) return true;   /* on_crash ask answered: the approval decided it */
    jv action = rp_field(x, "action");
    const char *want = eng_on_crash_name(eng_on_crash(x->r, x->step));
    bool ok = jv_get_kind(action) == JV_KIND_STRING && strcmp(jv_string_value(action), want) == 0;
    jv_free(action);
    if (ok) {
        x->out->decisions++;
        return true;
    }
    return rp_differ(x, D_CRASH, NULL, "on_crash is %s", want);
}

/* ---- carried steps ------------------------------------------------------------ */

static int64_t duration_in(jv with, const char *key) {
    jv v = rp_member(with, key);
    int64_t ms = -1;
    if (jv_get_kind(v) == JV_KIND_STRING && cairn_duration_parse(jv_string_value(v), &ms) != 0)
        ms = -1;
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
    if (eng_wait_input(x->r, x->step, x->index, 1, &with, &err) != 0)
        return rp_differ(x, D_WAIT, NULL, "`with` does not render: %s", err.msg);
    int64_t ms = duration_in(with, "duration"), until = rp_field_ms(x, "until"), want = 0;
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
    if (ms >= 0)
        return rp_differ(x, D_WAIT, NULL, "the wait ends %lld ms after it began", (long long)ms);
    return rp_differ(x, D_WAIT, NULL, "the wait ends at %lld", (long long)want);
}

static bool check_requested(replay *x) {
    jv ask = rp_field(x, "ask");
    bool is_ask = jv_get_kind(ask) == JV_KIND_TRUE;
    jv_free(ask);
    if (is_ask) {
        if (eng_on_crash(x->r, x->step) == CAIRN_ON_CRASH_ASK) return true;
        return rp_differ(x, D_CRASH, NULL, "on_crash is %s, not ask",
                         eng_on_crash_name(eng_on_crash(x->r, x->step)));
    }
    jv with = jv_invalid();
    cairn_err err;
    if (eng_approval_input(x->r, x->step, x->index, 1, &with, &err) != 0)
        return rp_differ(x, D_APPROVAL, NULL, "`with` does not render: %s", err.msg);
    jv req = eng_approval_request(x->r, with, x->ev->time_ms);
    jv_free(with);
    jv t = rp_member(req, "timeout_ms");
    int64_t timeout = jv_get_kind(t) == JV_KIND_NUMBER ? (int64_t)jv_number_value(t) : 0;
    jv_free(t);
    int64_t deadline = rp_field_ms(x, "deadline");
    if (timeout ? !deadline_within(x, deadline, timeout) : deadline != 0) {
        jv_free(req);
        return rp_differ(x, D_APPROVAL, NULL, "the deadline is %lld ms after the request",
                         (long long)timeout);
    }
    req = jv_object_set(req, jv_string("deadline"), jv_number((double)deadline));
    return rp_same_value(x, D_APPROVAL, "request", req, x->data);
}

/* The groups a journaled decision was admitted through: its "as" entry
 * ("group:oncall"), the only one that counted. */
static jv groups_of(replay *x) {
    jv as = rp_field(x, "as"), groups = jv_array();
    size_t n = strlen(CAIRN_APPROVER_GROUP);
    if (jv_get_kind(as) == JV_KIND_STRING && strncmp(jv_string_value(as), CAIRN_APPROVER_GROUP, n) == 0)
        groups = jv_array_append(groups, jv_string(jv_string_value(as) + n));
    jv_free(as);
    return groups;
}

static bool check_decided(replay *x) {
    jv by = rp_field(x, "by"), decision = rp_field(x, "decision"), groups = groups_of(x);
    cairn_err err;
    bool ok = jv_get_kind(by) == JV_KIND_STRING && jv_get_kind(decision) == JV_KIND_STRING;
    if (!ok)
        cairn_err_set(&err, CAIRN_EINVAL, "a decision names who and what");
    else
        ok = cairn_approval_check(x->r->st, rp_id_of(x, x->step), jv_string_value(by), groups,
                                  strcmp(jv_string_value(decision), "approve") == 0, &err) == 0;
    jv_free(by);
    jv_free(decision);
    jv_free(groups);
    if (ok) {
        x->out->decisions++;
        return true;
    }
    return rp_differ(x, D_APPROVAL, NULL, "refused: %s", err.msg);
}

static bool check_escalated(replay *x) {
    jv a = state(x)->approval;
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
    return rp_differ(x, D_APPROVAL, NULL, "no escalation: on_timeout, escalate_to, "
                  "an escalation already made or the deadline say otherwise");
}

static bool check_child(replay *x) {
    if (x->rp->child == NULL) return true;
    jv child = rp_field(x, "child"), created = jv_invalid(), with = jv_invalid();
    const cairn_workflow *wf = NULL;
    cairn_err err;
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
        rp_differ(x, D_CHILD, NULL, "`with` does not render: %s", err.msg);
    } else if (!rp_is(name, wf->name)) {
        ok = rp_differ(x, D_CHILD, NULL, "the child is a run of %s, not of %s",
                       jv_get_kind(name) == JV_KIND_STRING ? jv_string_value(name) : "?", wf->name);
    } else if (!rp_is(parent, x->r->st->id)) {
        ok = rp_differ(x, D_CHILD, NULL, "the child's parent is %s", x->r->st->id);
    } else if (cairn_workflow_check_inputs(wf, inputs,
                                           &checked, &err) != 0) {
        ok = rp_differ(x, D_CHILD, NULL, "the child's inputs are refused: %s", err.msg);
    } else {
        jv got = jv_object_get(jv_copy(created), jv_string("inputs"));
        ok = rp_same_value(x, D_CHILD, "child.inputs", checked, got);
        checked = jv_invalid();
        jv_free(got);
    }
    jv_free(checked), jv_free(name), jv_free(inputs), jv_free(parent);
    jv_free(with), jv_free(created);
    return ok;
}

bool rp_check_step(replay *x) {
    switch (x->ev->type) {
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
    default: return true;   /* records: nothing decided */
    }
}
