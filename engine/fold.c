/*
 * fold.c - events to run state.  See fold.h for the state machines.
 */
#include "engine/fold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"

static const char *const step_names[] = {
#define CAIRN_SS_NAME(n, s) s,
    CAIRN_STEP_STATUS_MAP(CAIRN_SS_NAME)
#undef CAIRN_SS_NAME
};

static const char *const run_names[] = {
#define CAIRN_RS_NAME(n, s) s,
    CAIRN_RUN_STATUS_MAP(CAIRN_RS_NAME)
#undef CAIRN_RS_NAME
};

const char *cairn_step_status_name(cairn_step_status s) { return step_names[s]; }
const char *cairn_run_status_name(cairn_run_status s) { return run_names[s]; }

bool cairn_run_status_terminal(cairn_run_status s) {
    return s == CAIRN_RUN_SUCCEEDED || s == CAIRN_RUN_FAILED || s == CAIRN_RUN_CANCELLED;
}

bool cairn_run_status_name_ends(const char *name) {
    static const cairn_run_status ends[] = {CAIRN_RUN_SUCCEEDED, CAIRN_RUN_FAILED, CAIRN_RUN_CANCELLED};
    for (size_t k = 0; name && k < sizeof ends / sizeof ends[0]; k++)
        if (strcmp(name, cairn_run_status_name(ends[k])) == 0) return true;
    return false;
}

/* ---- construction ------------------------------------------------------- */

/* qsort_r, not a static for the ids: a program may build run states on
 * several threads at once. */
static int cmp_order(const void *a, const void *b, void *ids) {
    char **id = ids;
    return strcmp(id[*(const int *)a], id[*(const int *)b]);
}

static void item_init(cairn_item_state *it) {
    memset(it, 0, sizeof *it);
    it->output = jv_null();
    it->error = jv_null();
}

cairn_run_state *cairn_run_state_new(const char *run_id, char **step_ids, int n_steps) {
    cairn_run_state *st = cairn_calloc(1, sizeof *st);
    snprintf(st->id, sizeof st->id, "%s", run_id);
    st->inputs = jv_object();
    st->trigger = jv_null();
    st->outputs = jv_null();
    st->error = jv_null();
    st->n_steps = n_steps;
    /* the ids' pointers and their text in one allocation: a run is made
     * and freed for every run started, ids and all */
    size_t text = 0;
    for (int i = 0; i < n_steps; i++) text += strlen(step_ids[i]) + 1;
    size_t ptrs = (size_t)(n_steps ? n_steps : 1) * sizeof *st->step_ids;
    st->step_ids = cairn_malloc(ptrs + text);
    char *at = (char *)st->step_ids + ptrs;
    for (int i = 0; i < n_steps; i++) {
        size_t len = strlen(step_ids[i]) + 1;
        st->step_ids[i] = memcpy(at, step_ids[i], len);
        at += len;
    }
    st->steps = cairn_calloc((size_t)n_steps, sizeof *st->steps);
    st->order = cairn_calloc((size_t)n_steps, sizeof *st->order);
    for (int i = 0; i < n_steps; i++) {
        st->order[i] = i;
        st->steps[i].output = jv_null();
        st->steps[i].error = jv_null();
        st->steps[i].approval = jv_null();
        st->steps[i].item_list = jv_null();
    }
    qsort_r(st->order, (size_t)n_steps, sizeof *st->order, cmp_order, st->step_ids);
    return st;
}

static void step_state_clear(cairn_step_state *s) {
    for (int i = 0; i < s->n_items; i++) {
        jv_free(s->items[i].output);
        jv_free(s->items[i].error);
    }
    free(s->items);
    jv_free(s->item_list);
    jv_free(s->output);
    jv_free(s->error);
    jv_free(s->approval);
}

void cairn_run_state_free(cairn_run_state *st) {
    if (st == NULL) return;
    for (int i = 0; i < st->n_steps; i++) step_state_clear(&st->steps[i]);
    free(st->steps);
    free(st->order);
    free(st->step_ids);   /* with their text */
    free(st->workflow);
    free(st->def_hash);
    free(st->parent);
    free(st->fork_run);
    free(st->fork_step);
    jv_free(st->inputs);
    jv_free(st->trigger);
    jv_free(st->outputs);
    jv_free(st->error);
    for (int i = 0; i < st->n_spawned; i++) free(st->spawned[i].host);
    free(st->spawned);
    free(st);
}

int cairn_run_state_step(const cairn_run_state *st, const char *id) {
    int lo = 0, hi = st->n_steps - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(id, st->step_ids[st->order[mid]]);
        if (c == 0) return st->order[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return -1;
}

/* ---- applying ----------------------------------------------------------- */

/* An event as the fold's steps read it: the event with its data parsed. */
typedef struct fold_ev {
    const char *run_id;
    int64_t seq, time_ms;
    cairn_event_type type;
    const char *step;
    int attempt;
    const unsigned char *hash;
    jv data;                       /* borrowed */
    int step_at;                   /* where the caller says step is, or -1 */
    /* cairn_fold_apply_step: data is not made; these are its members */
    bool given;
    int index;
    jv output;                     /* borrowed */
} fold_ev;

/* The member key of the event's data, or jv_invalid().  A scan of the few
 * keys an event has, not jv_object_get: that wants a jv string made (and
 * hashed) for every lookup, two lookups an event. */
static jv field(const fold_ev *ev, const char *key) {
    if (ev->given) {
        if (strcmp(key, "index") == 0) return ev->index >= 0 ? jv_number(ev->index) : jv_invalid();
        if (strcmp(key, "output") == 0) return jv_copy(ev->output);
        return jv_invalid();
    }
    jv d = ev->data;
    size_t len = strlen(key);
    for (int it = jv_object_iter(d); jv_object_iter_valid(d, it); it = jv_object_iter_next(d, it)) {
        jv k = jv_object_iter_key(d, it);
        bool hit = (size_t)jv_string_length_bytes(jv_copy(k)) == len &&
                   memcmp(jv_string_value(k), key, len) == 0;
        jv_free(k);
        if (hit) return jv_object_iter_value(d, it);
    }
    return jv_invalid();
}

static char *field_str(const fold_ev *ev, const char *key) {
    jv v = field(ev, key);
    char *s = jv_get_kind(v) == JV_KIND_STRING ? cairn_strdup(jv_string_value(v)) : NULL;
    jv_free(v);
    return s;
}

static void set_jv(jv *slot, jv v) {
    jv_free(*slot);
    *slot = v;
}

/* The item index of a step event, -1 for the step itself. */
static int event_index(const fold_ev *ev) {
    if (ev->given) return ev->index;
    jv v = field(ev, "index");
    int i = jv_get_kind(v) == JV_KIND_NUMBER ? (int)jv_number_value(v) : -1;
    jv_free(v);
    return i;
}

static int corrupt(const fold_ev *ev, cairn_err *err, const char *why) {
    return cairn_err_set(err, CAIRN_ECORRUPT, "run %s event %lld (%s): %s", ev->run_id,
                         (long long)ev->seq, cairn_event_type_name(ev->type), why);
}

static void apply_run_created(cairn_run_state *st, const fold_ev *ev) {
    st->workflow = field_str(ev, "workflow");
    st->def_hash = field_str(ev, "def_hash");
    st->parent = field_str(ev, "parent");
    jv fork = field(ev, "fork");
    if (jv_get_kind(fork) == JV_KIND_OBJECT) {
        fold_ev in = *ev;
        in.data = fork;
        st->fork_run = field_str(&in, "run");
        st->fork_step = field_str(&in, "step");
    }
    jv_free(fork);
    set_jv(&st->inputs, field(ev, "inputs"));
    set_jv(&st->trigger, field(ev, "trigger"));
    st->created_ms = ev->time_ms;
    st->status = CAIRN_RUN_RUNNING;
    st->status_ms = ev->time_ms;
}

static jv item_outputs(const cairn_step_state *s) {
    jv arr = jv_array();
    for (int i = 0; i < s->n_items; i++) arr = jv_array_append(arr, jv_copy(s->items[i].output));
    return arr;
}

/* Fields shared by steps and items, so one function moves either. */
typedef struct {
    cairn_step_status *status;
    int *attempts;
    bool *in_flight;
    int64_t *wake_at;
    jv *output, *error;
} slot;

static int64_t field_ms(const fold_ev *ev, const char *key) {
    jv v = field(ev, key);
    int64_t ms = jv_get_kind(v) == JV_KIND_NUMBER ? (int64_t)jv_number_value(v) : 0;
    jv_free(v);
    return ms;
}

static void apply_to_slot(slot s, const fold_ev *ev) {
    switch (ev->type) {
    case CAIRN_EV_STEP_STARTED:
        *s.status = CAIRN_STEP_RUNNING;
        *s.attempts = ev->attempt;
        *s.in_flight = true;
        break;
    case CAIRN_EV_STEP_SUCCEEDED:
        *s.status = CAIRN_STEP_SUCCEEDED;
        *s.in_flight = false;
        set_jv(s.output, field(ev, "output"));
        set_jv(s.error, jv_null());   /* an earlier attempt's error is history */
        break;
    case CAIRN_EV_STEP_FAILED: {
        if (ev->attempt > *s.attempts) *s.attempts = ev->attempt;
        *s.in_flight = false;
        set_jv(s.error, field(ev, "error"));
        /* an attempt stopped by the run's cancellation ends cancelled */
        jv kind = jv_get_kind(*s.error) == JV_KIND_OBJECT
                      ? jv_object_get(jv_copy(*s.error), jv_string("kind"))
                      : jv_null();
        bool cancelled = jv_get_kind(kind) == JV_KIND_STRING &&
                         strcmp(jv_string_value(kind), "cancelled") == 0;
        jv_free(kind);
        *s.status = cancelled ? CAIRN_STEP_CANCELLED : CAIRN_STEP_FAILED;
        break;
    }
    case CAIRN_EV_STEP_CRASHED: {
        *s.in_flight = false;
        char *action = field_str(ev, "action");
        if (action && strcmp(action, "retry") == 0) *s.status = CAIRN_STEP_PENDING;
        free(action);
        break;
    }
    case CAIRN_EV_STEP_RETRYING:
        if (ev->attempt > *s.attempts) *s.attempts = ev->attempt;
        *s.status = CAIRN_STEP_WAITING;
        *s.in_flight = false;
        *s.wake_at = field_ms(ev, "retry_at");
        set_jv(s.error, field(ev, "error"));
        break;
    case CAIRN_EV_STEP_WAITING:
        *s.status = CAIRN_STEP_WAITING;
        *s.in_flight = false;   /* a timer, not an attempt: nothing to lose in a crash */
        *s.wake_at = field_ms(ev, "until");
        break;
    default:   /* step_interrupted: the attempt stays in flight for recovery */
        break;
    }
}

/* Approvals: the request opens, decisions and escalations update it:
 * "approvals" lists who approved, "decisions" every decision as journaled
 * ({decision, by, comment, at}).  The step's own outcome is a
 * step_succeeded / step_failed after them. */
static void apply_approval(cairn_step_state *s, const fold_ev *ev) {
    if (ev->type == CAIRN_EV_APPROVAL_REQUESTED) {
        jv a = jv_object_set(jv_copy(ev->data), jv_string("approvals"), jv_array());
        a = jv_object_set(a, jv_string("decisions"), jv_array());
        set_jv(&s->approval, a);
        s->status = CAIRN_STEP_WAITING;
        s->in_flight = false;
        s->wake_at = field_ms(ev, "deadline");
        return;
    }
    if (jv_get_kind(s->approval) != JV_KIND_OBJECT) return;
    if (ev->type == CAIRN_EV_APPROVAL_ESCALATED) {
        s->approval = jv_object_set(s->approval, jv_string("approvers"), field(ev, "approvers"));
        s->approval = jv_object_set(s->approval, jv_string("deadline"), field(ev, "deadline"));
        s->approval = jv_object_set(s->approval, jv_string("escalated"), jv_true());
        s->wake_at = field_ms(ev, "deadline");
        return;
    }
    jv decisions = jv_object_get(jv_copy(s->approval), jv_string("decisions"));
    if (jv_get_kind(decisions) != JV_KIND_ARRAY) {   /* a request journaled before it had them */
        jv_free(decisions);
        decisions = jv_array();
    }
    s->approval = jv_object_set(s->approval, jv_string("decisions"),
                                jv_array_append(decisions, jv_copy(ev->data)));
    jv decision = field(ev, "decision");
    if (jv_get_kind(decision) == JV_KIND_STRING && strcmp(jv_string_value(decision), "approve") == 0) {
        jv names = jv_object_get(jv_copy(s->approval), jv_string("approvals"));
        s->approval = jv_object_set(s->approval, jv_string("approvals"),
                                    jv_array_append(names, field(ev, "by")));
    }
    jv_free(decision);
}

/* ---- process groups (step_spawned) ---------------------------------------- */

static bool attempt_in_flight(const cairn_run_state *st, const cairn_spawned *p) {
    const cairn_step_state *s = &st->steps[p->step];
    if (p->index < 0) return s->in_flight && s->attempts == p->attempt;
    return p->index < s->n_items && s->items[p->index].in_flight &&
           s->items[p->index].attempts == p->attempt;
}

/* Make room for one more record: drop those of attempts that have ended
 * first, and grow only when that frees too little. */
static void spawned_room(cairn_run_state *st) {
    if (st->n_spawned < st->cap_spawned) return;
    int kept = 0;
    for (int i = 0; i < st->n_spawned; i++) {
        if (attempt_in_flight(st, &st->spawned[i])) st->spawned[kept++] = st->spawned[i];
        else free(st->spawned[i].host);
    }
    st->n_spawned = kept;
    if (st->cap_spawned > 0 && kept * 2 <= st->cap_spawned) return;
    st->cap_spawned = st->cap_spawned ? st->cap_spawned * 2 : 4;
    st->spawned = cairn_realloc(st->spawned, (size_t)st->cap_spawned * sizeof *st->spawned);
}

static void apply_spawned(cairn_run_state *st, int step, int index, const fold_ev *ev) {
    int64_t pgid = field_ms(ev, "pgid");
    if (pgid <= 1) return;   /* names no group this engine could have made */
    spawned_room(st);
    st->spawned[st->n_spawned++] = (cairn_spawned){
        .step = step, .index = index, .attempt = ev->attempt, .pgid = pgid,
        .start = field_ms(ev, "start"), .host = field_str(ev, "host")};
}

const cairn_spawned *cairn_run_state_spawned(const cairn_run_state *st, int step, int index,
                                             int attempt) {
    for (int i = st->n_spawned - 1; i >= 0; i--) {
        const cairn_spawned *p = &st->spawned[i];
        if (p->step == step && p->index == index && p->attempt == attempt) return p;
    }
    return NULL;
}

/* foreach: the items are known.  The list is kept as journaled (older
 * journals hold the count only). */
static int apply_expanded(cairn_step_state *s, const fold_ev *ev, cairn_err *err) {
    jv n = field(ev, "count"), list = field(ev, "items");
    int count = jv_get_kind(n) == JV_KIND_NUMBER ? (int)jv_number_value(n) : -1;
    jv_free(n);
    bool listed = jv_get_kind(list) == JV_KIND_ARRAY;
    if (count < 0 || s->expanded || (listed && jv_array_length(jv_copy(list)) != count) ||
        (!listed && jv_is_valid(list))) {
        jv_free(list);
        return corrupt(ev, err, "bad foreach expansion");
    }
    s->expanded = true;
    s->n_items = count;
    s->items = cairn_calloc((size_t)(count ? count : 1), sizeof *s->items);
    for (int k = 0; k < count; k++) item_init(&s->items[k]);
    set_jv(&s->item_list, listed ? list : jv_null());
    s->status = CAIRN_STEP_RUNNING;
    return 0;
}

/* A fork's step takes the result the run it was forked from recorded: no
 * attempt, done at once.  Only at the fork's start (fold.h), as a step,
 * never an item. */
static int apply_carried(cairn_run_state *st, cairn_step_state *s, int index, const fold_ev *ev,
                         cairn_err *err) {
    static const cairn_step_status may[] = {CAIRN_STEP_SUCCEEDED, CAIRN_STEP_SKIPPED,
                                            CAIRN_STEP_FAILED};
    if (st->fork_run == NULL || ev->seq != st->n_carried + 2 || index >= 0)
        return corrupt(ev, err, "a carried result outside a fork's first events");
    const int n = (int)(sizeof may / sizeof *may);
    char *status = field_str(ev, "status");
    int k = 0;
    while (k < n && !(status && strcmp(status, cairn_step_status_name(may[k])) == 0)) k++;
    free(status);
    int64_t from = field_ms(ev, "from_seq");
    if (k == n || from <= 0) return corrupt(ev, err, "a carried result needs a status and from_seq");
    s->status = may[k];
    s->attempts = (int)field_ms(ev, "attempts");
    set_jv(&s->output, field(ev, "output"));
    set_jv(&s->error, field(ev, "error"));
    if (!jv_is_valid(s->output)) set_jv(&s->output, jv_null());
    if (!jv_is_valid(s->error)) set_jv(&s->error, jv_null());
    jv approval = field(ev, "approval");
    set_jv(&s->approval, jv_get_kind(approval) == JV_KIND_OBJECT ? approval : (jv_free(approval), jv_null()));
    char *child = field_str(ev, "child");
    snprintf(s->child, sizeof s->child, "%s", child ? child : "");
    free(child);
    s->carried_seq = from;
    s->done_seq = ev->seq;
    st->n_carried++;
    return 0;
}

/* Keep a foreach's counts of succeeded and failed items as one item moves
 * into (delta 1) or out of (delta -1) status. */
static void count_items(cairn_step_state *s, cairn_step_status status, int delta) {
    if (status == CAIRN_STEP_SUCCEEDED) s->items_succeeded += delta;
    if (status == CAIRN_STEP_FAILED) s->items_failed += delta;
}

/* The event's step, or -1 for none of the workflow's: where the caller
 * says, when that is so (one comparison), else looked up. */
static int event_step(const cairn_run_state *st, const fold_ev *ev) {
    if (ev->step == NULL) return -1;
    int at = ev->step_at;
    if (at >= 0 && at < st->n_steps && strcmp(st->step_ids[at], ev->step) == 0) return at;
    return cairn_run_state_step(st, ev->step);
}

#define FROM(status) (1u << CAIRN_STEP_##status)

/* The statuses a step event may find its step (or foreach item) in: the
 * transitions of the state machine in fold.h.  0: any (a record only). */
static unsigned from_statuses(cairn_event_type t) {
    switch (t) {
    case CAIRN_EV_STEP_STARTED: return FROM(PENDING) | FROM(WAITING);
    case CAIRN_EV_STEP_SUCCEEDED: return FROM(RUNNING) | FROM(WAITING);
    /* waiting: an on_crash ask answered "run it again" */
    case CAIRN_EV_STEP_CRASHED: return FROM(RUNNING) | FROM(WAITING);
    case CAIRN_EV_STEP_INTERRUPTED: return FROM(RUNNING);
    case CAIRN_EV_STEP_SKIPPED:
    case CAIRN_EV_STEP_EXPANDED:
    case CAIRN_EV_STEP_CARRIED: return FROM(PENDING);
    case CAIRN_EV_APPROVAL_DECIDED:
    case CAIRN_EV_APPROVAL_ESCALATED: return FROM(WAITING);
    case CAIRN_EV_STEP_FAILED:
    case CAIRN_EV_STEP_RETRYING:
    case CAIRN_EV_STEP_WAITING:
    case CAIRN_EV_APPROVAL_REQUESTED:
    case CAIRN_EV_CHILD_STARTED: return FROM(PENDING) | FROM(RUNNING) | FROM(WAITING);
    default: return 0;   /* step_spawned, approval_notified */
    }
}

/* CAIRN_ECORRUPT unless status is one ev may find its step or item in. */
static int check_from(const fold_ev *ev, cairn_step_status status, int index, cairn_err *err) {
    unsigned allowed = from_statuses(ev->type);
    if (allowed == 0 || (allowed & (1u << status))) return 0;
    char want[96] = "", why[CAIRN_ERR_MSG_MAX / 2];
    for (int k = 0; k < CAIRN_STEP_STATUS_COUNT; k++)
        if (allowed & (1u << k))
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", want[0] ? " or " : "",
                     cairn_step_status_name((cairn_step_status)k));
    if (index >= 0)
        snprintf(why, sizeof why, "step %s item %d is %s, not %s", ev->step, index,
                 cairn_step_status_name(status), want);
    else
        snprintf(why, sizeof why, "step %s is %s, not %s", ev->step,
                 cairn_step_status_name(status), want);
    return corrupt(ev, err, why);
}

static int apply_step(cairn_run_state *st, const fold_ev *ev, cairn_err *err) {
    int i = event_step(st, ev);
    if (i < 0) return corrupt(ev, err, "names no step of the workflow");
    cairn_step_state *s = &st->steps[i];
    int idx = event_index(ev);
    if (idx >= 0 && (!s->expanded || idx >= s->n_items))
        return corrupt(ev, err, "item index out of range");
    int rc = check_from(ev, idx >= 0 ? s->items[idx].status : s->status, idx, err);
    if (rc) return rc;
    if (ev->type == CAIRN_EV_APPROVAL_NOTIFIED) return 0;   /* a record only */
    if (ev->type == CAIRN_EV_CHILD_STARTED) {
        char *child = field_str(ev, "child");
        snprintf(s->child, sizeof s->child, "%s", child ? child : "");
        free(child);
        s->status = CAIRN_STEP_WAITING;
        s->in_flight = false;   /* the child is journaled: nothing is lost in a crash */
        s->wake_at = 0;
        return 0;
    }
    if (ev->type == CAIRN_EV_APPROVAL_REQUESTED || ev->type == CAIRN_EV_APPROVAL_DECIDED ||
        ev->type == CAIRN_EV_APPROVAL_ESCALATED) {
        apply_approval(s, ev);
        return 0;
    }
    if (ev->type == CAIRN_EV_STEP_EXPANDED) return apply_expanded(s, ev, err);
    if (ev->type == CAIRN_EV_STEP_CARRIED) return apply_carried(st, s, idx, ev, err);
    if (ev->type == CAIRN_EV_STEP_SKIPPED) {
        s->status = CAIRN_STEP_SKIPPED;
        s->done_seq = ev->seq;
        return 0;
    }
    if (ev->type == CAIRN_EV_STEP_SPAWNED) {
        apply_spawned(st, i, idx, ev);
        return 0;
    }
    if (idx >= 0) {
        cairn_item_state *it = &s->items[idx];
        cairn_step_status was = it->status;
        apply_to_slot((slot){&it->status, &it->attempts, &it->in_flight, &it->wake_at,
                             &it->output, &it->error}, ev);
        count_items(s, was, -1);
        count_items(s, it->status, 1);
        return 0;
    }
    apply_to_slot((slot){&s->status, &s->attempts, &s->in_flight, &s->wake_at, &s->output,
                         &s->error}, ev);
    if (ev->type == CAIRN_EV_STEP_SUCCEEDED && s->expanded) set_jv(&s->output, item_outputs(s));
    if (ev->type == CAIRN_EV_STEP_SUCCEEDED || ev->type == CAIRN_EV_STEP_FAILED)
        s->done_seq = ev->seq;
    return 0;
}

static void cancel_unfinished(cairn_run_state *st) {
    for (int i = 0; i < st->n_steps; i++) {
        cairn_step_status s = st->steps[i].status;
        if (s == CAIRN_STEP_PENDING || s == CAIRN_STEP_RUNNING || s == CAIRN_STEP_WAITING)
            st->steps[i].status = CAIRN_STEP_CANCELLED;
    }
}

/* A running run reads paused until unpaused; the flag alone elsewhere (a
 * rollback runs on, paused or not).  status_ms moves only with the status,
 * as the runs table's updated_at does (store_sqlite.c). */
static int apply_pause(cairn_run_state *st, const fold_ev *ev) {
    bool pause = ev->type == CAIRN_EV_RUN_PAUSED;
    cairn_run_status from = pause ? CAIRN_RUN_RUNNING : CAIRN_RUN_PAUSED;
    st->paused = pause;
    if (st->status == from) {
        st->status = pause ? CAIRN_RUN_PAUSED : CAIRN_RUN_RUNNING;
        st->status_ms = ev->time_ms;
    }
    return 0;
}

static int apply_run(cairn_run_state *st, const fold_ev *ev) {
    switch (ev->type) {
    case CAIRN_EV_RUN_CREATED: apply_run_created(st, ev); break;
    case CAIRN_EV_RUN_CANCEL_REQUESTED: st->cancel_requested = true; break;
    case CAIRN_EV_RUN_PAUSED:
    case CAIRN_EV_RUN_UNPAUSED: return apply_pause(st, ev);
    case CAIRN_EV_RUN_COMPENSATING:
        st->status = CAIRN_RUN_COMPENSATING;
        set_jv(&st->error, field(ev, "error"));
        break;
    case CAIRN_EV_RUN_SUCCEEDED:
        st->status = CAIRN_RUN_SUCCEEDED;
        set_jv(&st->outputs, field(ev, "outputs"));
        break;
    case CAIRN_EV_RUN_FAILED:
        st->status = CAIRN_RUN_FAILED;
        set_jv(&st->error, field(ev, "error"));
        break;
    case CAIRN_EV_RUN_CANCELLED:
        st->status = CAIRN_RUN_CANCELLED;
        cancel_unfinished(st);
        break;
    case CAIRN_EV_TRIGGER_RESOLVED: {
        jv t = jv_get_kind(st->trigger) == JV_KIND_OBJECT ? jv_copy(st->trigger) : jv_object();
        set_jv(&st->trigger, jv_object_set(t, jv_string("resolved"), field(ev, "event")));
        return 0;   /* the status stays, and its time */
    }
    default: break;
    }
    if (ev->type != CAIRN_EV_RUN_CANCEL_REQUESTED) st->status_ms = ev->time_ms;
    return 0;
}

static bool is_run_event(cairn_event_type t) {
    return t == CAIRN_EV_RUN_CREATED || t == CAIRN_EV_RUN_CANCEL_REQUESTED ||
           t == CAIRN_EV_RUN_COMPENSATING || t == CAIRN_EV_RUN_PAUSED || t == CAIRN_EV_RUN_UNPAUSED ||
           t == CAIRN_EV_RUN_SUCCEEDED || t == CAIRN_EV_RUN_FAILED || t == CAIRN_EV_RUN_CANCELLED ||
           t == CAIRN_EV_TRIGGER_RESOLVED;
}

static int fold(cairn_run_state *st, const fold_ev *ev, cairn_err *err) {
    jv data = ev->data;
    if (ev->type == CAIRN_EV_NONE) return corrupt(ev, err, "unknown event type");
    if (ev->seq != st->last_seq + 1) return corrupt(ev, err, "sequence gap or reordering");
    if ((ev->seq == 1) != (ev->type == CAIRN_EV_RUN_CREATED))
        return corrupt(ev, err, "run_created must come first, and only once");
    if (ev->seq > 1 && cairn_run_status_terminal(st->status))
        return corrupt(ev, err, "event after the run ended");
    if (!ev->given && jv_get_kind(data) != JV_KIND_OBJECT)
        return corrupt(ev, err, "data is not a JSON object");
    int rc = is_run_event(ev->type) ? apply_run(st, ev) : apply_step(st, ev, err);
    if (rc) return rc;
    st->last_seq = ev->seq;
    st->updated_ms = ev->time_ms;
    memcpy(st->head, ev->hash, CAIRN_HASH_LEN);
    return 0;
}

int cairn_fold_apply(cairn_run_state *st, const cairn_event *event, int step, jv data,
                     cairn_err *err) {
    fold_ev in = {event->run_id, event->seq, event->time_ms, event->type, event->step,
                  event->attempt, event->hash, data, step, false, -1, jv_invalid()};
    return fold(st, &in, err);
}

int cairn_fold_apply_step(cairn_run_state *st, const cairn_event *event, int step, int index,
                          jv output, cairn_err *err) {
    fold_ev in = {event->run_id, event->seq, event->time_ms, event->type, event->step,
                  event->attempt, event->hash, jv_invalid(), step, true, index, output};
    if (in.type != CAIRN_EV_STEP_STARTED && in.type != CAIRN_EV_STEP_SUCCEEDED)
        return corrupt(&in, err, "not a step_started or step_succeeded");
    return fold(st, &in, err);
}

int cairn_fold_event(cairn_run_state *st, const cairn_event *ev, cairn_err *err) {
    jv data = jv_parse_sized(ev->data ? ev->data : "", ev->data ? (int)strlen(ev->data) : 0);
    int rc = cairn_fold_apply(st, ev, -1, data, err);
    jv_free(data);
    return rc;
}

/* ---- presenting --------------------------------------------------------- */

cairn_run_status cairn_run_state_status(const cairn_run_state *st) {
    if (st->status != CAIRN_RUN_RUNNING) return st->status;
    bool waiting = false;
    for (int i = 0; i < st->n_steps; i++) {
        if (st->steps[i].status == CAIRN_STEP_RUNNING) return st->status;
        waiting |= st->steps[i].status == CAIRN_STEP_WAITING;
    }
    return waiting ? CAIRN_RUN_WAITING : st->status;
}

static jv time_json(int64_t ms) {
    char when[40];
    return jv_string(cairn_rfc3339(ms, when, sizeof when));
}

jv cairn_approval_to_json(jv approval) {
    jv a = jv_copy(approval);
    jv d = jv_object_get(jv_copy(a), jv_string("deadline"));
    int64_t ms = jv_get_kind(d) == JV_KIND_NUMBER ? (int64_t)jv_number_value(d) : 0;
    jv_free(d);
    return jv_object_set(a, jv_string("deadline"), ms > 0 ? time_json(ms) : jv_null());
}

/* in_flight: an attempt started and has no end in the journal (after a
 * crash, until the engine resumes the run, the attempts it cut short). */
static jv item_json(const cairn_item_state *it, int index) {
    jv io = jv_object();
    io = jv_object_set(io, jv_string("index"), jv_number(index));
    io = jv_object_set(io, jv_string("status"), jv_string(cairn_step_status_name(it->status)));
    io = jv_object_set(io, jv_string("attempts"), jv_number(it->attempts));
    io = jv_object_set(io, jv_string("in_flight"), jv_bool(it->in_flight));
    io = jv_object_set(io, jv_string("output"), jv_copy(it->output));
    return jv_object_set(io, jv_string("error"), jv_copy(it->error));
}

static jv step_json(const cairn_run_state *st, const cairn_step_state *s) {
    jv o = jv_object();
    o = jv_object_set(o, jv_string("status"), jv_string(cairn_step_status_name(s->status)));
    o = jv_object_set(o, jv_string("attempts"), jv_number(s->attempts));
    o = jv_object_set(o, jv_string("output"), jv_copy(s->output));
    o = jv_object_set(o, jv_string("error"), jv_copy(s->error));
    if (jv_get_kind(s->approval) == JV_KIND_OBJECT)
        o = jv_object_set(o, jv_string("approval"), cairn_approval_to_json(s->approval));
    if (s->child[0]) o = jv_object_set(o, jv_string("child"), jv_string(s->child));
    if (s->carried_seq > 0) {
        jv from = jv_object_set(jv_object(), jv_string("run"), jv_string(st->fork_run));
        o = jv_object_set(o, jv_string("carried"),
                          jv_object_set(from, jv_string("seq"), jv_number((double)s->carried_seq)));
    }
    if (s->expanded) {
        jv items = jv_array();
        for (int i = 0; i < s->n_items; i++) items = jv_array_append(items, item_json(&s->items[i], i));
        o = jv_object_set(o, jv_string("items"), items);
    }
    return o;
}

jv cairn_run_state_to_json(const cairn_run_state *st) {
    jv o = jv_object();
    o = jv_object_set(o, jv_string("id"), jv_string(st->id));
    o = jv_object_set(o, jv_string("workflow"), st->workflow ? jv_string(st->workflow) : jv_null());
    o = jv_object_set(o, jv_string("status"), jv_string(cairn_run_status_name(cairn_run_state_status(st))));
    o = jv_object_set(o, jv_string("inputs"), jv_copy(st->inputs));
    o = jv_object_set(o, jv_string("outputs"), jv_copy(st->outputs));
    o = jv_object_set(o, jv_string("error"), jv_copy(st->error));
    if (st->parent) o = jv_object_set(o, jv_string("parent"), jv_string(st->parent));
    if (st->fork_run) {
        jv fork = jv_object_set(jv_object(), jv_string("run"), jv_string(st->fork_run));
        fork = jv_object_set(fork, jv_string("step"), jv_string(st->fork_step ? st->fork_step : ""));
        o = jv_object_set(o, jv_string("fork"), fork);
    }
    o = jv_object_set(o, jv_string("paused"), jv_bool(st->paused));
    o = jv_object_set(o, jv_string("created_at"), time_json(st->created_ms));
    o = jv_object_set(o, jv_string("updated_at"), time_json(st->updated_ms));
    jv steps = jv_object();
    for (int i = 0; i < st->n_steps; i++)
        steps = jv_object_set(steps, jv_string(st->step_ids[i]), step_json(st, &st->steps[i]));
    return jv_object_set(o, jv_string("steps"), steps);
}
