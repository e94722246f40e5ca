/*
 * commands.c - commands from other processes: cancel, pause, unpause,
 * approval decisions and a trigger's resolved event, recorded in the journal (cairn_journal_put_command)
 * and carried out by the engine that holds the run.
 *
 * The engine reads them when the journal changed (cheap to poll, every
 * CAIRN_COMMAND_POLL_MS) or at once when woken (SIGUSR1, which
 * cairn_journal_put_command sends to a live holder).  A command's row
 * leaves the table in the transaction that writes the event answering it,
 * which may come a while after the event is durable (the commit log applies
 * in bulk).  Until then the engine remembers it as taken.  The row's time
 * goes with its id: SQLite may give a deleted row's id to the next command.
 *
 * A serving engine also takes a command for a run it holds straight from
 * its caller (cairn_engine_command): carried out at once, with no row.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_commands {
    struct eng_taken { int64_t id, created_at; } *taken;
    int n_taken, cap_taken;
    int64_t changes;             /* cairn_journal_changes at the last look */
    int64_t next_poll;           /* monotonic ms */
    atomic_int poll_now;         /* set from a signal handler or another thread: read now */
};

eng_commands *eng_commands_new(int64_t changes) {
    eng_commands *c = cairn_calloc(1, sizeof *c);
    c->changes = changes;
    return c;
}

void eng_commands_free(eng_commands *c) {
    if (c == NULL) return;
    free(c->taken);
    free(c);
}

static int find_taken(const eng_commands *c, const cairn_command *cmd) {
    for (int i = 0; i < c->n_taken; i++)
        if (c->taken[i].id == cmd->id && c->taken[i].created_at == cmd->created_at) return i;
    return -1;
}

static void add_taken(eng_commands *c, const cairn_command *cmd) {
    if (c->n_taken == c->cap_taken) {
        c->cap_taken = c->cap_taken ? c->cap_taken * 2 : 8;
        c->taken = cairn_realloc(c->taken, (size_t)c->cap_taken * sizeof *c->taken);
    }
    c->taken[c->n_taken].id = cmd->id;
    c->taken[c->n_taken++].created_at = cmd->created_at;
}

/* Forget taken commands whose rows are gone (cmds is every row there is). */
static void prune_taken(eng_commands *c, const cairn_command *cmds, int n) {
    int kept = 0;
    for (int i = 0; i < c->n_taken; i++) {
        bool listed = false;
        for (int k = 0; k < n && !listed; k++)
            listed = cmds[k].id == c->taken[i].id && cmds[k].created_at == c->taken[i].created_at;
        if (listed) c->taken[kept++] = c->taken[i];
    }
    c->n_taken = kept;
}

static void on_cancel(cairn_engine *e, eng_run *r, const cairn_command *c) {
    eng_cancel_run(e, r, c->id);
}

static void on_pause(cairn_engine *e, eng_run *r, const cairn_command *c) {
    eng_pause_run(e, r, true, c->id);
}

static void on_unpause(cairn_engine *e, eng_run *r, const cairn_command *c) {
    eng_pause_run(e, r, false, c->id);
}

static void on_decide(cairn_engine *e, eng_run *r, const cairn_command *c) {
    eng_apply_decision(e, r, c->data, c->id);
}

/* {"event": {...}}: the resolved webhook event for the run its dedupe key
 * started, journaled as trigger_resolved once; a run resolved already, or
 * data without an event, takes nothing more (the command row is dropped). */
static void on_resolve(cairn_engine *e, eng_run *r, const cairn_command *c) {
    jv d = cairn_json_parse(c->data, strlen(c->data));
    jv ev = jv_get_kind(d) == JV_KIND_OBJECT ? jv_object_get(jv_copy(d), jv_string("event")) : jv_null();
    jv_free(d);
    bool once = jv_get_kind(r->st->trigger) != JV_KIND_OBJECT ||
                !jv_object_has(jv_copy(r->st->trigger), jv_string("resolved"));
    if (jv_get_kind(ev) != JV_KIND_OBJECT || !once) {
        jv_free(ev);
        if (c->id > 0) cairn_journal_drop_command(e->journal, c->id);
        return;
    }
    int64_t t = eng_emit(e, r, CAIRN_EV_TRIGGER_RESOLVED, -1, -1, 0,
                         jv_object_set(jv_object(), jv_string("event"), ev));
    if (t > 0) eng_mark_answer(e, c->id);
    /* expressions read .run.trigger from the run's document: the fold's
     * trigger, now with `resolved` */
    jv run = jv_object_get(jv_copy(r->ctx), jv_string("run"));
    if (jv_get_kind(run) == JV_KIND_OBJECT)
        r->ctx = jv_object_set(r->ctx, jv_string("run"),
                               jv_object_set(run, jv_string("trigger"), jv_copy(r->st->trigger)));
    else
        jv_free(run);
    eng_schedule(e, r);
}

/* {"child": ID}: a child run another engine held has ended (child.c). */
static void on_child(cairn_engine *e, eng_run *r, const cairn_command *c) {
    eng_child_told(e, r, c->data, c->id);
}

typedef void (*command_fn)(cairn_engine *e, eng_run *r, const cairn_command *c);

/* The commands a run takes, whichever way they arrive (the commands table
 * or cairn_engine_command); an engine's own (`child`, which one engine
 * sends another through the table) only from the table. */
static const struct {
    const char *type;
    command_fn apply;
    bool engines_only;
} kinds[] = {
    {"cancel", on_cancel, false}, {"pause", on_pause, false}, {"unpause", on_unpause, false},
    {"decide", on_decide, false}, {"resolve", on_resolve, false}, {"child", on_child, true},
};

static command_fn apply_of(const char *type, bool from_caller) {
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(kinds[k].type, type) == 0)
            return from_caller && kinds[k].engines_only ? NULL : kinds[k].apply;
    return NULL;
}

static void apply_one(cairn_engine *e, eng_run *r, const cairn_command *c) {
    command_fn apply = apply_of(c->type, false);
    if (apply) apply(e, r, c);
}

/* A decision refused here answers its caller; the table's path drops it. */
static int decision_check(const eng_run *r, const char *data, cairn_err *err) {
    jv d = cairn_json_parse(data, strlen(data));
    bool obj = jv_get_kind(d) == JV_KIND_OBJECT;
    jv step = obj ? jv_object_get(jv_copy(d), jv_string("step")) : jv_null();
    jv by = obj ? jv_object_get(jv_copy(d), jv_string("by")) : jv_null();
    jv decision = obj ? jv_object_get(jv_copy(d), jv_string("decision")) : jv_null();
    jv groups = obj ? jv_object_get(jv_copy(d), jv_string("groups")) : jv_null();
    int rc;
    if (jv_get_kind(step) != JV_KIND_STRING || jv_get_kind(by) != JV_KIND_STRING ||
        jv_get_kind(decision) != JV_KIND_STRING)
        rc = cairn_err_set(err, CAIRN_EINVAL, "a decision names step, by and decision");
    else
        rc = cairn_approval_check(r->st, jv_string_value(step), jv_string_value(by), groups,
                                  strcmp(jv_string_value(decision), "approve") == 0, err);
    jv_free(step);
    jv_free(by);
    jv_free(decision);
    jv_free(groups);
    jv_free(d);
    return rc;
}

int cairn_engine_command(cairn_engine *e, const char *run_id, const char *type, const char *data,
                         int64_t *seq, cairn_err *err) {
    command_fn apply = apply_of(type, true);
    eng_run *r = eng_find_run(e, run_id);
    *seq = r ? r->st->last_seq : -1;
    if (apply == NULL) return cairn_err_set(err, CAIRN_EINVAL, "no command '%s'", type);
    if (r == NULL) return cairn_err_set(err, CAIRN_ENOTFOUND, "this engine holds no run %s", run_id);
    if (r->ended)
        return cairn_err_set(err, CAIRN_ESTATE, "run %s has already ended (%s)", run_id,
                             cairn_run_status_name(r->st->status));
    cairn_command c = {.run_id = (char *)run_id, .type = (char *)type,
                       .data = (char *)(data ? data : "{}")};
    if (apply == on_decide && decision_check(r, c.data, err) != 0) return err->code;
    int64_t before = r->st->last_seq;
    apply(e, r, &c);
    *seq = r->st->last_seq > before ? r->st->last_seq : 0;   /* 0: nothing to wait for */
    return 0;
}

void eng_apply_commands(cairn_engine *e, const eng_run *only) {
    eng_commands *c = e->commands;
    cairn_command *cmds = NULL;
    int n = 0;
    if (cairn_journal_take_commands(e->journal, &cmds, &n, NULL) != 0) return;
    prune_taken(c, cmds, n);
    for (int i = 0; i < n; i++) {
        eng_run *r = eng_find_run(e, cmds[i].run_id);
        if (r == NULL || (only && r != only) || r->ended || find_taken(c, &cmds[i]) >= 0) continue;
        int mark = eng_appended(e);
        apply_one(e, r, &cmds[i]);
        if (eng_answered_since(e, mark, cmds[i].id)) add_taken(c, &cmds[i]);
    }
    cairn_commands_free(cmds, n);
}

void eng_commands_wake(eng_commands *c) { atomic_store(&c->poll_now, 1); }

int64_t eng_commands_next(const eng_commands *c) { return c->next_poll; }

void eng_poll_commands(cairn_engine *e, int64_t now) {
    eng_commands *c = e->commands;
    /* taken and cleared in one step: a wake between a look and a clear
     * would otherwise be lost until the next poll */
    if (atomic_exchange(&c->poll_now, 0)) c->next_poll = now;
    if (now < c->next_poll || e->stopping) return;
    c->next_poll = now + CAIRN_COMMAND_POLL_MS;
    int64_t v = cairn_journal_changes(e->journal);
    if (v == c->changes) return;
    c->changes = v;
    eng_apply_commands(e, NULL);
}
