/*
 * approval.c - approval gates: a step that waits for people.
 *
 * Starting an approval step journals approval_requested (who may decide,
 * how many approvals make a quorum, the deadline) and parks the step as
 * waiting: no thread, only a timer when there is a time-out.  Decisions
 * arrive as commands from any process (`cairn approve`, `cairn reject`), are
 * checked against the request (approvers, no self-approval, one vote each,
 * still open) and journaled as approval_decided; a quorum of approvals
 * succeeds the step, one rejection fails it with kind "rejected".  At the
 * deadline, on_timeout rejects, approves, or escalates once to escalate_to
 * with a fresh time-out.  on_crash: ask turns an interrupted attempt into
 * such a request: approving runs the step again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

static jv get(jv o, const char *key) {
    return jv_get_kind(o) == JV_KIND_OBJECT ? jv_object_get(jv_copy(o), jv_string(key)) : jv_null();
}

static jv get_or_null(jv o, const char *key) {
    jv v = get(o, key);
    return jv_is_valid(v) ? v : (jv_free(v), jv_null());
}

static bool str_in(jv list, const char *name) {
    bool found = false;
    if (jv_get_kind(list) != JV_KIND_ARRAY) return false;
    jv_array_foreach(list, i, v) {
        found |= jv_get_kind(v) == JV_KIND_STRING && strcmp(jv_string_value(v), name) == 0;
        jv_free(v);
    }
    return found;
}

/* The entry of approvers that admits by: by itself, or "group:G" for a G
 * of groups; NULL when none does.  A group entry admits only through
 * groups, never as a name: a decider calling itself "group:oncall" (the
 * CLI's --as) is no member.  Borrowed from approvers. */
static const char *admitting(jv approvers, const char *by, jv groups) {
    const char *found = NULL;
    size_t plen = strlen(CAIRN_APPROVER_GROUP);
    jv_array_foreach(approvers, i, v) {
        const char *name = jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) : "";
        bool group = strncmp(name, CAIRN_APPROVER_GROUP, plen) == 0;
        if (found == NULL && (group ? str_in(groups, name + plen) : strcmp(name, by) == 0))
            found = name;
        jv_free(v);   /* the array still holds the string */
    }
    return found;
}

const char *cairn_run_starter(jv trigger) {
    const char *who = NULL;
    jv user = get(trigger, "user"), source = get(trigger, "source");
    if (jv_get_kind(user) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(user)) > 0)
        who = jv_string_value(user);
    else if (jv_get_kind(source) == JV_KIND_STRING && jv_string_length_bytes(jv_copy(source)) > 0)
        who = jv_string_value(source);
    jv_free(user);   /* trigger still holds both strings */
    jv_free(source);
    return who;
}

/* Whether by may not decide: not among approvers (a list that is not
 * empty), directly or through a group. */
static int not_an_approver(jv approvers, const char *by, jv groups, cairn_err *err) {
    if (jv_get_kind(approvers) != JV_KIND_ARRAY || jv_array_length(jv_copy(approvers)) == 0 ||
        admitting(approvers, by, groups))
        return 0;
    jv text = jv_dump_string(jv_copy(approvers), 0);
    int rc = cairn_err_set(err, CAIRN_EAUTH, "%s may not decide this approval: not among its"
                           " approvers %s, nor in a group they name", by, jv_string_value(text));
    jv_free(text);
    return rc;
}

int cairn_approval_check(const cairn_run_state *st, const char *step, const char *by, jv groups,
                         bool approve, cairn_err *err) {
    int i = cairn_run_state_step(st, step);
    if (cairn_run_status_terminal(st->status))
        return cairn_err_set(err, CAIRN_ESTATE, "run %s has already ended (%s)", st->id,
                             cairn_run_status_name(st->status));
    if (i < 0) return cairn_err_set(err, CAIRN_ENOTFOUND, "run %s has no step '%s'", st->id, step);
    const cairn_step_state *s = &st->steps[i];
    if (jv_get_kind(s->approval) != JV_KIND_OBJECT)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "step '%s' of run %s asks for no approval",
                             step, st->id);
    if (s->status != CAIRN_STEP_WAITING)
        return cairn_err_set(err, CAIRN_ESTATE, "the approval of step '%s' is already decided (%s)",
                             step, cairn_step_status_name(s->status));
    jv approvers = get(s->approval, "approvers"), forbidden = get(s->approval, "forbidden");
    jv votes = get(s->approval, "approvals");
    int rc = not_an_approver(approvers, by, groups, err);
    if (rc == 0 && approve && jv_get_kind(forbidden) == JV_KIND_STRING &&
        strcmp(jv_string_value(forbidden), by) == 0)
        rc = cairn_err_set(err, CAIRN_EAUTH, "%s started this run and may not approve it"
                           " (allow_self_approval is false)", by);
    else if (rc == 0 && approve && str_in(votes, by))
        rc = cairn_err_set(err, CAIRN_EEXISTS, "%s has already approved step '%s'", by, step);
    jv_free(approvers);
    jv_free(forbidden);
    jv_free(votes);
    return rc;
}

/* ---- opening ------------------------------------------------------------ */

static int64_t duration_of(jv with, const char *key) {
    jv v = get(with, key);
    int64_t ms = 0;
    if (jv_get_kind(v) == JV_KIND_STRING) cairn_duration_parse(jv_string_value(v), &ms);
    jv_free(v);
    return ms;
}

jv eng_approval_request(const eng_run *r, jv with, int64_t now) {
    jv req = jv_object();
    jv prompt = get(with, "prompt"), approvers = get(with, "approvers"), q = get(with, "quorum");
    jv esc = get(with, "escalate_to"), on_timeout = get(with, "on_timeout"), self = get(with, "allow_self_approval");
    int64_t timeout = duration_of(with, "timeout");
    req = jv_object_set(req, jv_string("prompt"), prompt);
    req = jv_object_set(req, jv_string("approvers"), jv_get_kind(approvers) == JV_KIND_ARRAY ? approvers : (jv_free(approvers), jv_array()));
    req = jv_object_set(req, jv_string("quorum"), jv_get_kind(q) == JV_KIND_NUMBER ? q : (jv_free(q), jv_number(1)));
    req = jv_object_set(req, jv_string("escalate_to"), jv_get_kind(esc) == JV_KIND_ARRAY ? esc : (jv_free(esc), jv_array()));
    req = jv_object_set(req, jv_string("on_timeout"), jv_get_kind(on_timeout) == JV_KIND_STRING ? on_timeout : (jv_free(on_timeout), jv_string("reject")));
    req = jv_object_set(req, jv_string("timeout_ms"), jv_number((double)timeout));
    req = jv_object_set(req, jv_string("deadline"), jv_number(timeout ? (double)(now + timeout) : 0));
    const char *starter = cairn_run_starter(r->st->trigger);
    if (jv_get_kind(self) != JV_KIND_TRUE && starter)
        req = jv_object_set(req, jv_string("forbidden"), jv_string(starter));
    jv_free(self);
    return req;
}

/* What the step's `with` renders over besides the run's document: the
 * attempt (when it reads it) and `.approval`, {links: {NAME: URL},
 * expires_at} (links {} and expires_at null until links are made). */
static jv approval_scope(eng_run *r, int i, int index, jv links, int64_t expires_ms) {
    char when[40], key[CAIRN_IDEM_KEY_MAX];
    jv extra = jv_object();
    if (r->plan->with_reads_attempt[i]) {   /* its attempt is always the first */
        jv_free(extra);
        eng_idem_key(r, i, index, key, sizeof key);
        extra = eng_attempt_scope(r, i, index, 1, key);
    }
    jv a = jv_object_set(jv_object(), jv_string("links"), links);
    a = jv_object_set(a, jv_string("expires_at"),
                      expires_ms ? jv_string(cairn_rfc3339(expires_ms, when, sizeof when)) : jv_null());
    return jv_object_set(extra, jv_string("approval"), a);
}

/* `with` as step_started journals it (and replay renders it again): .step
 * and .approval with no links yet. */
int eng_approval_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err) {
    (void)attempt;
    return eng_render(r, r->plan->steps[i]->with, approval_scope(r, i, index, jv_object(), 0), with,
                      err);
}

/* The notify body again, rendered with the approvers' links when the
 * engine makes them (cairn_links_cb).  The links reach the message only:
 * step_started keeps the `with` rendered without them, so no journal
 * holds a usable link. */
static jv notify_with_links(cairn_engine *e, eng_run *r, int i, jv req, jv notify) {
    if (e->cfg.approval_links == NULL) return notify;
    jv d = get(req, "deadline"), approvers = get(req, "approvers");
    int64_t now = cairn_wall_ms(), deadline = (int64_t)jv_number_value(d);
    int64_t expires = deadline > 0 && deadline - now < CAIRN_APPROVAL_LINK_TTL_MAX_MS
                          ? deadline : now + CAIRN_APPROVAL_LINK_TTL_MAX_MS;
    jv links = e->cfg.approval_links(r->st->id, r->plan->ids[i], approvers, expires, e->cfg.ud);
    jv with = jv_invalid();
    cairn_err err;
    if (jv_get_kind(links) == JV_KIND_OBJECT && jv_object_length(jv_copy(links)) > 0 &&
        eng_render(r, r->plan->steps[i]->with, approval_scope(r, i, -1, jv_copy(links), expires),
                   &with, &err) == 0) {
        jv_free(notify);
        notify = get(with, "notify");
    }
    jv_free(with);
    jv_free(links);
    jv_free(approvers);
    jv_free(d);
    return notify;
}

void eng_start_approval(cairn_engine *e, eng_run *r, int i, int index) {
    jv with = jv_invalid();
    cairn_err err;
    if (index >= 0) {
        eng_attempt_failed(e, r, i, index, 1, eng_error("schema", "an approval step cannot use foreach"));
        return;
    }
    if (eng_approval_input(r, i, -1, 1, &with, &err) != 0) {
        eng_attempt_failed(e, r, i, -1, 1, eng_error("expression", err.msg));
        return;
    }
    jv req = eng_approval_request(r, with, cairn_wall_ms());
    eng_emit(e, r, CAIRN_EV_STEP_STARTED, i, -1, 1,
             jv_object_set(jv_object(), jv_string("input"), jv_copy(with)));
    int64_t deadline = (int64_t)jv_number_value(jv_object_get(jv_copy(req), jv_string("deadline")));
    jv notify = get(with, "notify");
    if (jv_get_kind(notify) == JV_KIND_OBJECT) notify = notify_with_links(e, r, i, req, notify);
    eng_emit(e, r, CAIRN_EV_APPROVAL_REQUESTED, i, -1, 1, req);
    if (deadline) eng_timer_add(e, r, i, -1, deadline);
    jv_free(with);
    if (jv_get_kind(notify) == JV_KIND_OBJECT) eng_start_side_notify(e, r, i, notify);
    else jv_free(notify);
}

void eng_ask_after_crash(cairn_engine *e, eng_run *r, int i) {
    char prompt[256];
    snprintf(prompt, sizeof prompt, "Step %s was running when the engine stopped; run it again?",
             r->plan->ids[i]);
    jv req = jv_object_set(jv_object(), jv_string("prompt"), jv_string(prompt));
    req = jv_object_set(req, jv_string("approvers"), jv_array());
    req = jv_object_set(req, jv_string("quorum"), jv_number(1));
    req = jv_object_set(req, jv_string("deadline"), jv_number(0));
    req = jv_object_set(req, jv_string("ask"), jv_true());
    eng_emit(e, r, CAIRN_EV_APPROVAL_REQUESTED, i, -1, r->st->steps[i].attempts, req);
}

/* ---- deciding ------------------------------------------------------------ */

bool eng_quorum_met(jv approval) {
    jv votes = get(approval, "approvals"), q = get(approval, "quorum");
    int need = jv_get_kind(q) == JV_KIND_NUMBER ? (int)jv_number_value(q) : 1;
    int n = jv_get_kind(votes) == JV_KIND_ARRAY ? jv_array_length(votes) : (jv_free(votes), 0);
    jv_free(q);
    return n >= need;
}

/* Each approval given, in order: [{by, comment, at}] (a rejection ends the
 * step, so none is among them). */
static jv approvals_made(jv approval) {
    jv out = jv_array(), all = get(approval, "decisions");
    if (jv_get_kind(all) == JV_KIND_ARRAY) {
        jv_array_foreach(all, k, d) {
            jv what = get(d, "decision");
            if (jv_get_kind(what) == JV_KIND_STRING && strcmp(jv_string_value(what), "approve") == 0) {
                jv one = jv_object_set(jv_object(), jv_string("by"), get_or_null(d, "by"));
                one = jv_object_set(one, jv_string("comment"), get_or_null(d, "comment"));
                out = jv_array_append(out, jv_object_set(one, jv_string("at"), get_or_null(d, "at")));
            }
            jv_free(what);
            jv_free(d);
        }
    }
    jv_free(all);
    return out;
}

/* The step succeeds: its output says who approved, with what comments.
 * comment: the one that made the quorum (or the time-out's). */
static void approved(cairn_engine *e, eng_run *r, int i, const char *comment) {
    cairn_step_state *s = &r->st->steps[i];
    jv ask = get(s->approval, "ask");
    bool is_ask = jv_get_kind(ask) == JV_KIND_TRUE;
    jv_free(ask);
    if (is_ask) {   /* run it again, with the same idempotency key */
        eng_emit(e, r, CAIRN_EV_STEP_CRASHED, i, -1, s->attempts,
                 jv_object_set(jv_object(), jv_string("action"), jv_string("retry")));
        eng_start_attempt(e, r, i, -1);
        return;
    }
    char when[40];
    jv out = jv_object_set(jv_object(), jv_string("decision"), jv_string("approved"));
    out = jv_object_set(out, jv_string("by"), get(s->approval, "approvals"));
    out = jv_object_set(out, jv_string("comment"), comment ? jv_string(comment) : jv_null());
    out = jv_object_set(out, jv_string("at"), jv_string(cairn_rfc3339(cairn_wall_ms(), when, sizeof when)));
    out = jv_object_set(out, jv_string("decisions"), approvals_made(s->approval));
    eng_emit(e, r, CAIRN_EV_STEP_SUCCEEDED, i, -1, s->attempts,
             jv_object_set(jv_object(), jv_string("output"), out));
    eng_step_done(e, r, i);
}

static void rejected(cairn_engine *e, eng_run *r, int i, const char *why) {
    r->st->steps[i].attempts = r->st->steps[i].attempts ? r->st->steps[i].attempts : 1;
    eng_attempt_failed(e, r, i, -1, r->plan->steps[i]->retry.max_attempts,
                       eng_error("rejected", why));
}

/* The decision event's record of how by was admitted: "as", the entry of
 * approvers that let it decide when that was a group ("group:oncall"), and
 * "via", what carried the decision when it said ("api", "link"). */
static jv decided_how(jv ev, jv approval, const char *by, jv groups, jv d) {
    jv approvers = get(approval, "approvers"), via = get(d, "via");
    const char *as = jv_get_kind(approvers) == JV_KIND_ARRAY ? admitting(approvers, by, groups) : NULL;
    if (as && strcmp(as, by) != 0) ev = jv_object_set(ev, jv_string("as"), jv_string(as));
    if (jv_get_kind(via) == JV_KIND_STRING) ev = jv_object_set(ev, jv_string("via"), jv_copy(via));
    jv_free(approvers);
    jv_free(via);
    return ev;
}

void eng_apply_decision(cairn_engine *e, eng_run *r, const char *data, int64_t command_id) {
    jv d = jv_parse(data ? data : "{}");
    jv step = get(d, "step"), by = get(d, "by"), decision = get(d, "decision"), comment = get(d, "comment");
    jv groups = get(d, "groups");
    cairn_err err;
    bool ok = jv_get_kind(step) == JV_KIND_STRING && jv_get_kind(by) == JV_KIND_STRING &&
              jv_get_kind(decision) == JV_KIND_STRING &&
              cairn_approval_check(r->st, jv_string_value(step), jv_string_value(by), groups,
                                   strcmp(jv_string_value(decision), "approve") == 0, &err) == 0;
    if (!ok) {   /* moot by now (decided meanwhile): drop it, journal nothing */
        cairn_journal_drop_command(e->journal, command_id);
    } else {
        int i = cairn_run_state_step(r->st, jv_string_value(step));
        char when[40];
        bool approve = strcmp(jv_string_value(decision), "approve") == 0;
        const char *c = jv_get_kind(comment) == JV_KIND_STRING ? jv_string_value(comment) : NULL;
        jv ev = jv_object_set(jv_object(), jv_string("decision"), jv_string(approve ? "approve" : "reject"));
        ev = jv_object_set(ev, jv_string("by"), jv_copy(by));
        ev = jv_object_set(ev, jv_string("comment"), c ? jv_string(c) : jv_null());
        ev = jv_object_set(ev, jv_string("at"), jv_string(cairn_rfc3339(cairn_wall_ms(), when, sizeof when)));
        ev = decided_how(ev, r->st->steps[i].approval, jv_string_value(by), groups, d);
        int64_t t = eng_emit(e, r, CAIRN_EV_APPROVAL_DECIDED, i, -1, r->st->steps[i].attempts, ev);
        if (t > 0) eng_mark_answer(e, command_id);
        if (!approve) {
            char why[512];
            snprintf(why, sizeof why, "rejected by %s%s%s", jv_string_value(by), c ? ": " : "", c ? c : "");
            rejected(e, r, i, why);
        } else {
            if (eng_quorum_met(r->st->steps[i].approval)) approved(e, r, i, c);
        }
        eng_schedule(e, r);
    }
    jv_free(step);
    jv_free(by);
    jv_free(decision);
    jv_free(comment);
    jv_free(groups);
    jv_free(d);
}

/* The approval's time-out passed: on_timeout says what follows. */
void eng_approval_timer(cairn_engine *e, eng_run *r, int i, int index) {
    if (jv_get_kind(r->st->steps[i].approval) != JV_KIND_OBJECT) {   /* a retry's back-off */
        eng_start_attempt(e, r, i, index);
        return;
    }
    jv a = jv_copy(r->st->steps[i].approval);
    jv on_timeout = get(a, "on_timeout"), esc = get(a, "escalate_to"), escalated = get(a, "escalated");
    const char *what = jv_get_kind(on_timeout) == JV_KIND_STRING ? jv_string_value(on_timeout) : "reject";
    if (strcmp(what, "approve") == 0) {
        approved(e, r, i, "approved when the time-out passed");
    } else if (strcmp(what, "escalate") == 0 && jv_get_kind(escalated) != JV_KIND_TRUE &&
               jv_array_length(jv_copy(esc)) > 0) {
        jv t = get(a, "timeout_ms");
        int64_t deadline = cairn_wall_ms() + (int64_t)jv_number_value(t);
        jv_free(t);
        jv data = jv_object_set(jv_object(), jv_string("approvers"), jv_copy(esc));
        data = jv_object_set(data, jv_string("deadline"), jv_number((double)deadline));
        eng_emit(e, r, CAIRN_EV_APPROVAL_ESCALATED, i, -1, r->st->steps[i].attempts, data);
        eng_timer_add(e, r, i, -1, deadline);
    } else {
        rejected(e, r, i, "no decision before the time-out");
    }
    jv_free(on_timeout);
    jv_free(esc);
    jv_free(escalated);
    jv_free(a);
}
