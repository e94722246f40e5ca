/*
 * engine.c - the engine's public API and the orchestrator loop.
 *
 * The loop: hand the events appended since the last turn to the writer;
 * sleep on the inbox until the writer says what is durable, a worker
 * returns an attempt, a command arrives, or a deadline passes; then act on
 * each message, fire the timers that are due, and read commands.  While a
 * commit is in flight the loop spins a little before it sleeps
 * (eng_spin_for): the writer's answer is that close.  Everything that
 * changes run state happens here, on one thread.
 *
 * This file is the top of the engine (engine.h says who owns what): it
 * calls the others, and none calls it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

void cairn_engine_request_stop(cairn_engine *e) {
    atomic_store(&e->stop_requested, 1);
    eng_inbox_wake(e->inbox);
}

void cairn_engine_wake(cairn_engine *e) {
    eng_commands_wake(e->commands);
    eng_inbox_wake(e->inbox);
}

int cairn_engine_add_workflow(cairn_engine *e, cairn_workflow *wf, char def_hash[65],
                              cairn_err *err) {
    snprintf(def_hash, 65, "%s", wf->sha256);
    if (eng_plan_known(e, wf->sha256)) {
        cairn_workflow_free(wf);
        return 0;
    }
    int rc = cairn_journal_put_definition(e->journal, wf, err);
    if (rc) {
        cairn_workflow_free(wf);
        return rc;
    }
    eng_plan_add(e, wf);
    return 0;
}

/* ---- opening and closing ------------------------------------------------- */

static void post_from_writer(void *inbox, eng_msg *m) {
    eng_post(inbox, m);
}

static void wake_inbox(void *inbox) {
    eng_inbox_wake(inbox);
}

int cairn_engine_open(const cairn_engine_config *cfg, cairn_engine **out, cairn_err *err) {
    *out = NULL;
    if (cfg->journal == NULL) return cairn_err_set(err, CAIRN_EINVAL, "no journal");
    cairn_engine *e = cairn_calloc(1, sizeof *e);
    e->cfg = *cfg;
    e->journal = cfg->journal;
    e->cfg.journal = NULL;
    if (e->cfg.workers <= 0) e->cfg.workers = CAIRN_DEFAULT_WORKERS;
    if (e->cfg.grace_ms <= 0) e->cfg.grace_ms = CAIRN_DEFAULT_GRACE_MS;
    /* other processes send SIGUSR1 to say "new command" (cairn_owner_wake);
     * its default would end this process: ignore it unless the program
     * handles it (the CLI calls cairn_engine_wake) */
    struct sigaction old;
    if (sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGUSR1, SIG_IGN);
    char *secrets = NULL, *secrets_key = NULL;
    cairn_journal_secrets_paths(e->journal, &secrets, &secrets_key);
    e->inbox = eng_inbox_new();
    e->runs = eng_runs_new();
    e->timers = eng_timers_new();
    e->commands = eng_commands_new(cairn_journal_changes(e->journal));
    e->writer = eng_writer_start(e->journal, cairn_journal_new_chain(e->journal),
                                 post_from_writer, e->inbox);
    e->dq = eng_durable_new(secrets, secrets_key);
    e->pool = eng_pool_start(e->inbox, e->cfg.workers);
    /* several engines on one journal: the lease's news wakes the loop, and
     * a server takes over the runs of engines whose lease lapsed */
    cairn_journal_on_news(e->journal, wake_inbox, e->inbox);
    cairn_journal_take_over(e->journal, e->cfg.serve);
    *out = e;
    return 0;
}

void cairn_engine_close(cairn_engine *e) {
    if (e == NULL) return;
    cairn_journal_on_news(e->journal, NULL, NULL);
    eng_pool_stop(e->pool);
    eng_writer_stop(e->writer);
    eng_inbox_free(e->inbox);
    eng_durable_free(e->dq);
    eng_runs_free(e->runs);
    eng_timers_free(e->timers);
    eng_commands_free(e->commands);
    cairn_journal_close(e->journal);   /* after the writer: it releases the runs */
    free(e);
}

/* ---- starting and resuming runs ------------------------------------------- */

/* Start a run with id run_id, or a new one when it is empty: here, or
 * (node not NULL) placed on the engine node: created here, its
 * run_created naming node (the journal writes its row as node's), and let
 * go of at once: this engine drops it once the event is durable (runs.c,
 * as a run lost), node takes it. */
static int start_run(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                     char run_id[CAIRN_RUN_ID_MAX], const char *node, cairn_err *err) {
    eng_plan *plan = eng_plan_for(e, def_hash, NULL, err);
    int rc = plan ? 0 : CAIRN_ENOTFOUND;
    if (rc == 0 && run_id[0] && eng_find_run(e, run_id))
        rc = cairn_err_set(err, CAIRN_EEXISTS, "run %s exists already", run_id);
    if (rc == 0 && node) rc = cairn_journal_place(e->journal, run_id, node, err);
    if (rc) {
        jv_free(inputs);
        jv_free(trigger);
        return rc;
    }
    if (node == NULL) return eng_start_run(e, plan, inputs, trigger, NULL, run_id, err);
    eng_run *r = NULL;
    rc = eng_create_run(e, plan, inputs, trigger, NULL, jv_null(), run_id, &r, err);
    if (rc == 0) eng_lose_run(e, r);
    return rc;
}

int cairn_engine_start_run(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                           char run_id[CAIRN_RUN_ID_MAX], cairn_err *err) {
    run_id[0] = '\0';
    return start_run(e, def_hash, inputs, trigger, run_id, NULL, err);
}

int cairn_engine_start_run_as(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                              const char run_id[CAIRN_RUN_ID_MAX], cairn_err *err) {
    return cairn_engine_start_run_on(e, def_hash, inputs, trigger, run_id, NULL, err);
}

int cairn_engine_start_run_on(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                              const char run_id[CAIRN_RUN_ID_MAX], const char *node,
                              cairn_err *err) {
    char id[CAIRN_RUN_ID_MAX];
    snprintf(id, sizeof id, "%s", run_id);
    if (node && strcmp(node, cairn_journal_owner(e->journal)) == 0) node = NULL;   /* here */
    return start_run(e, def_hash, inputs, trigger, id, node, err);
}

/* Before reading runs to claim them: everything this engine wrote is in
 * the journal of record, and so is whatever a dead holder of the commit
 * log left there. */
static int settle_journal(cairn_engine *e, cairn_err *err) {
    if (!cairn_journal_writes_ahead(e->journal)) return cairn_journal_settle_others(e->journal, err);
    eng_submit(e, false);
    return eng_writer_catch_up(e->writer, err);
}

/* Every unfinished run in the journal; *count those taken. */
static int resume_all(cairn_engine *e, int *count, cairn_err *err) {
    cairn_run_row *rows = NULL;
    int n = 0;
    int rc = cairn_journal_list_runs(e->journal, CAIRN_RUNS_UNFINISHED, &rows, &n, err);
    /* one transaction for every claim: one sync, not one per run */
    bool batch = rc == 0 && n > 1 && cairn_journal_claims_begin(e->journal, NULL) == 0;
    for (int i = n - 1; rc == 0 && i >= 0; i--) {   /* oldest first */
        cairn_err one;
        int r1 = eng_resume_run(e, rows[i].id, &one);
        if (r1 == 0) (*count)++;
        else if (r1 != CAIRN_EBUSY) {
            char msg[CAIRN_ERR_MSG_MAX + 300];
            fprintf(stderr, "cairn: run %s not resumed: %s\n", rows[i].id,
                    cairn_err_format(&one, msg, sizeof msg));
        }
    }
    if (batch) rc = cairn_journal_claims_end(e->journal, err);
    cairn_run_rows_free(rows, n);
    return rc;
}

int cairn_engine_resume(cairn_engine *e, const char *run_id, int *taken, cairn_err *err) {
    int count = 0, rc = settle_journal(e, err);
    if (rc == 0 && run_id) {
        rc = eng_resume_run(e, run_id, err);
        count = rc == 0;
    } else if (rc == 0) {
        rc = resume_all(e, &count, err);
    }
    if (taken) *taken = count;
    return rc;
}

/* ---- timers ------------------------------------------------------------------ */

/* The waiting slot a timer belongs to, if it still waits for this deadline. */
static bool still_waiting(eng_run *r, const eng_timer *t) {
    if (r->ended || t->step >= r->st->n_steps) return false;
    const cairn_step_state *s = &r->st->steps[t->step];
    if (t->index < 0) return s->status == CAIRN_STEP_WAITING && s->wake_at == t->at;
    if (t->index >= s->n_items) return false;
    return s->items[t->index].status == CAIRN_STEP_WAITING && s->items[t->index].wake_at == t->at;
}

/* A timer fired: a carried step's (an approval's time-out, a wait's end),
 * or a retry's back-off, which starts the step again. */
static void fire(cairn_engine *e, eng_run *r, const eng_timer *t) {
    const cairn_step *step = r->plan->steps[t->step];
    const eng_carried *c = eng_carried_for(cairn_action_find(step->uses));
    if (c && c->timer)
        c->timer(e, r, t->step, t->index);
    else if (eng_may_go_on(r, t->step))
        eng_start_attempt(e, r, t->step, t->index);
    eng_schedule(e, r);
}

static void fire_timers(cairn_engine *e) {
    eng_timer t;
    while (!e->stopping && eng_timer_take_due(e, cairn_wall_ms(), &t)) {
        eng_run *r = eng_find_run(e, t.run_id);
        if (r && still_waiting(r, &t)) fire(e, r, &t);
    }
}

/* ---- the loop ---------------------------------------------------------------- */

static void handle(cairn_engine *e, eng_msg *m) {
    switch (m->kind) {
    case MSG_DURABLE:
        eng_poll_holds(e, true);   /* the runs its batch refused are lost first */
        eng_durable_reached(e, &m->batch);
        eng_dispatch_durable(e);
        break;
    case MSG_RESULT: eng_finish_attempt(e, m->attempt); break;
    case MSG_SPAWNED: eng_spawned(e, m); break;
    case MSG_CALL: m->call(e, m->call_ud); break;
    case MSG_WRITE_FAILED:
        eng_sticky(e, &m->err);
        eng_batch_free_events(&m->batch);
        break;
    }
}

/* Drop runs whose last event is durable: memory stays flat. */
static void drop_ended_runs(cairn_engine *e) {
    for (eng_run *r; (r = eng_take_ended(e)) != NULL;) {
        eng_tell_parent_elsewhere(e, r);   /* its end is durable: the parent may read it */
        eng_drop_run(e, r);
    }
}

/* Whether the loop has more to do.  After a journal failure nothing more can
 * become durable: wait only for attempts to come back. */
static bool active(const cairn_engine *e) {
    if (eng_in_flight(e) > 0) return true;
    if (eng_is_sticky(e)) return false;
    if (!eng_all_durable(e)) return true;
    if (e->stopping) return false;
    return eng_run_count(e) > 0 || e->cfg.serve;
}

static int poll_timeout(const cairn_engine *e, int64_t now) {
    int64_t t = eng_commands_next(e->commands) - now;
    int64_t timer = eng_timer_next(e);
    if (timer != INT64_MAX && timer - cairn_wall_ms() < t) t = timer - cairn_wall_ms();
    if (e->stopping && e->stop_deadline - now < t) t = e->stop_deadline - now;
    return t < 0 ? 0 : (int)t;
}

static void begin_stop(cairn_engine *e, int64_t now) {
    e->stopping = true;
    e->stop_deadline = now + e->cfg.grace_ms;
}

/* With the commit log, an orchestrator idle for CAIRN_CLOG_IDLE_MS (a step
 * that takes a while, an approval, a timer) has the writer apply what is
 * durable at once, so that other processes read a waiting run as it
 * stands. */
static void apply_soon(void *writer) {
    eng_writer_apply_soon(writer);
}

static void take_mail(cairn_engine *e) {
    int handled = 0;
    for (eng_msg *m = eng_inbox_take(e->inbox), *next; m; m = next) {
        next = m->next;
        handle(e, m);
        free(m);
        if (++handled % CAIRN_SUBMIT_EVERY == 0) eng_submit(e, false);
    }
}

int cairn_engine_run(cairn_engine *e, cairn_err *err) {
    bool ahead = cairn_journal_writes_ahead(e->journal);
    for (;;) {
        int64_t now = cairn_now_ms();
        if (atomic_load(&e->stop_requested) && !e->stopping) begin_stop(e, now);
        if (eng_is_sticky(e) && !e->stopping) {
            begin_stop(e, now);
            e->stop_deadline = now;
        }
        if (eng_past_grace(e, now)) eng_stop_attempts(e, NULL);
        eng_submit(e, true);
        drop_ended_runs(e);
        if (!active(e)) break;
        /* a commit is in flight: its result is due within microseconds */
        if (!eng_all_durable(e)) eng_inbox_spin(e->inbox);
        eng_inbox_wait(e->inbox, poll_timeout(e, now), CAIRN_CLOG_IDLE_MS,
                       ahead ? apply_soon : NULL, e->writer);
        take_mail(e);
        eng_poll_holds(e, false);
        fire_timers(e);
        eng_poll_commands(e, cairn_now_ms());
    }
    /* what is durable is also where other connections read it */
    cairn_err caught;
    if (!eng_is_sticky(e) && ahead && eng_writer_catch_up(e->writer, &caught) != 0)
        eng_sticky(e, &caught);
    if (!eng_is_sticky(e)) return 0;
    const cairn_err *sticky = eng_sticky_err(e);
    if (err) *err = *sticky;
    return sticky->code ? sticky->code : CAIRN_EIO;
}
