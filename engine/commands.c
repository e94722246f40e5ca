/*
 * commands.c - commands from other processes: cancel, pause, unpause and
 * approval decisions, recorded in the journal (cairn_journal_put_command)
 * and carried out by the engine that holds the run.
 *
 * The engine reads them when the journal changed (cheap to poll, every
 * CAIRN_COMMAND_POLL_MS) or at once when woken (SIGUSR1, which
 * cairn_journal_put_command sends to a live holder).  A command's row
 * leaves the table in the transaction that writes the event answering it,
 * which may come a while after the event is durable (the commit log applies
 * in bulk).  Until then the engine remembers it as taken.  The row's time
 * goes with its id: SQLite may give a deleted row's id to the next command.
 */
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_commands {
    struct eng_taken { int64_t id, created_at; } *taken;
    int n_taken, cap_taken;
    int64_t changes;             /* cairn_journal_changes at the last look */
    int64_t next_poll;           /* monotonic ms */
    volatile int poll_now;       /* set from a signal handler: read commands now */
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

static const struct {
    const char *type;
    void (*apply)(cairn_engine *e, eng_run *r, const cairn_command *c);
} kinds[] = {
    {"cancel", on_cancel}, {"pause", on_pause}, {"unpause", on_unpause}, {"decide", on_decide},
};

static void apply_one(cairn_engine *e, eng_run *r, const cairn_command *c) {
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(kinds[k].type, c->type) == 0) kinds[k].apply(e, r, c);
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

void eng_commands_wake(eng_commands *c) { c->poll_now = 1; }

int64_t eng_commands_next(const eng_commands *c) { return c->next_poll; }

void eng_poll_commands(cairn_engine *e, int64_t now) {
    eng_commands *c = e->commands;
    if (c->poll_now) {
        c->poll_now = 0;
        c->next_poll = now;
    }
    if (now < c->next_poll || e->stopping) return;
    c->next_poll = now + CAIRN_COMMAND_POLL_MS;
    int64_t v = cairn_journal_changes(e->journal);
    if (v == c->changes) return;
    c->changes = v;
    eng_apply_commands(e, NULL);
}
