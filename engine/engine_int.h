/*
 * engine_int.h - the engine's private structures, shared by its files:
 *   engine.c   the public API, the orchestrator loop, the inbox
 *   sched.c    deciding what runs next: readiness, if, foreach, outputs, ending
 *   attempt.c  one action attempt: render, prepare, journal, dispatch, finish
 *   recover.c  loading runs from the journal, on_crash
 *   orphan.c   attempts' process groups: journaled, killed after a crash
 *   writer.c   the group-commit journal writer thread
 *   pool.c     the worker threads
 */
#ifndef CAIRN_ENGINE_INT_H
#define CAIRN_ENGINE_INT_H

#include <pthread.h>

#include "actions/action.h"
#include "common/strmap.h"
#include "engine/engine.h"
#include "engine/journal.h"
#include "engine/secrets.h"

typedef struct eng_run eng_run;
typedef struct eng_attempt eng_attempt;
typedef struct eng_msg eng_msg;

/* A durable timer: a retry's back-off or a `wait` step.  The deadline is wall
 * clock (Unix ms), as journaled, so it means the same after a restart. */
typedef struct eng_timer {
    int64_t at;
    char run_id[CAIRN_RUN_ID_MAX];
    int step, index;
} eng_timer;

/* Object keys set on every step, made once per plan: copying one costs a
 * reference count where jv_string would allocate, copy and hash anew. */
typedef enum {
    KEY_STATUS, KEY_OUTPUT, KEY_ERROR, KEY_ATTEMPTS, KEY_STEPS, KEY_INDEX, KEY_COUNT
} eng_key_name;

/* A compiled workflow and what the scheduler derives from it once. */
typedef struct eng_plan {
    cairn_workflow *wf;
    /* Every step a run journals (cairn_step_ids): [0, n_main) the steps,
     * [n_main, n_main + n_on_failure) the on_failure steps, then the
     * compensate bodies.  comp_of[i] is step i's compensate body, or -1. */
    int n_main, n_on_failure, n_all;
    const cairn_step **steps;
    int *comp_of;
    void **retry_on;             /* per step: compiled retry.on (pcre2_code *), or NULL */
    char **ids;
    int *n_dependents;
    int **dependents;            /* dependents[i]: steps whose needs include i */
    jv pending_steps;            /* `.steps` of a run where nothing has started (sched.c) */
    bool *with_reads_attempt;    /* per step: `with` may read .step, .item or .index */
    jv keys[KEY_COUNT];
    jv *id_keys;                 /* ids[i] as jv strings */
    jv status_names[CAIRN_STEP_STATUS_COUNT];
    struct eng_plan *next;
} eng_plan;

static inline jv eng_key(const eng_plan *p, eng_key_name k) { return jv_copy(p->keys[k]); }
static inline jv eng_id_key(const eng_plan *p, int step) { return jv_copy(p->id_keys[step]); }
static inline jv eng_status_name(const eng_plan *p, cairn_step_status s) {
    return jv_copy(p->status_names[s]);
}

struct eng_attempt {
    eng_run *run;
    int step, index;             /* index: foreach item, or -1 */
    int attempt;
    const cairn_action *action;
    void *job;
    char idem_key[CAIRN_RUN_ID_MAX + 2 * CAIRN_ID_MAX + 16];
    cairn_attempt_info info;
    cairn_stop stop;
    int64_t ticket;              /* dispatch once this much of the journal is durable */
    bool interrupted;            /* stopped by a shutdown: journal it as interrupted */
    bool executed;               /* handed to execute(); else the job is only discarded */
    bool side;                   /* an approval's notification: journaled as
                                    approval_notified, the step's state untouched */
    eng_msg *result;             /* queued for the pool: the message its worker posts */
    eng_attempt *next;           /* in the durability queue, the inbox, the pool */
    eng_attempt *live_prev, *live_next;   /* every attempt in flight */
};

struct eng_run {
    cairn_run_state *st;
    eng_plan *plan;
    jv ctx;                      /* the expression document, kept up to date */
    char **env;                  /* rendered workflow env, "NAME=value", NULL-terminated */
    int *waiting_on;             /* per step: needs not yet done */
    int *items_running;          /* foreach: items in flight, per step */
    int *items_next;             /* foreach: items below this index have started, per step */
    jv *items;                   /* foreach: the items its attempts render with, per step
                                    (as the expression gave them; jv_null() before) */
    int in_flight;               /* attempts started and not finished */
    int done;                    /* steps done */
    bool failing;                /* a step failed for good: start nothing more */
    jv fail_error;               /* the error that fails the run */
    bool rolling_back;           /* compensations, then on_failure steps, run one by one */
    int *rollback;               /* their order: plan step indices */
    int n_rollback;
    bool ended;                  /* its terminal event is appended */
    bool parent_told;            /* a child run: its parent has taken its outcome */
    int64_t end_ticket;
    int slot;                    /* position in the engine's runs array */
    eng_run *ended_next;         /* in the engine's queue of ended runs */
    int *ready;                  /* steps ready to start: a FIFO */
    int ready_head, n_ready;
};

/* An event the engine made: the journal's event, the run it belongs to, and
 * its step id and data text in the same allocation (one malloc an event,
 * not three: an event is made and freed twice a step, and three
 * allocations each were a tenth of the orchestrator's time in W2).  Only
 * the engine makes and frees these (eng_event_free); the writer threads
 * see the cairn_event inside. */
typedef struct eng_event {
    cairn_event ev;
    eng_run *run;
} eng_event;

/* A new event of run r (may be NULL) for step (NULL: a run event) with data
 * text[0..len) copied. */
cairn_event *eng_event_new(eng_run *r, const char *step, const char *text, size_t len);
/* The run an event made by eng_event_new belongs to. */
static inline eng_run *eng_event_run(const cairn_event *ev) {
    return ((const eng_event *)(const void *)ev)->run;
}
void eng_event_free(cairn_event *ev);

/* A batch of events handed to the writer, or handed back once durable. */
typedef struct eng_batch {
    cairn_event **events;
    int n, cap;
    int64_t ticket;              /* highest ticket in the batch */
} eng_batch;

typedef enum { MSG_DURABLE, MSG_RESULT, MSG_WRITE_FAILED, MSG_SPAWNED } eng_msg_kind;

struct eng_msg {
    eng_msg_kind kind;
    eng_batch batch;             /* MSG_DURABLE */
    eng_attempt *attempt;        /* MSG_RESULT, MSG_SPAWNED */
    int64_t pgid, start;         /* MSG_SPAWNED: the group the attempt started */
    cairn_err err;               /* MSG_WRITE_FAILED */
    int64_t log_end;             /* its record's end in the commit log, if it has one */
    struct eng_msg *next;
};

/* How long a thread that expects a hand-off within one commit's time spins
 * for it before it sleeps.  Waking a sleeping thread costs tens of
 * microseconds on a virtual machine, a sixth of a commit and two of them a
 * step; spinning (yielding to any thread that has work) costs idle CPU,
 * only while a commit is in flight, and on a virtual machine some of the
 * disk's speed: a thread spinning beside a loop of syncs was measured to
 * slow it by a tenth to a quarter.  See eng_spin_for. */
#define CAIRN_SPIN_US 500

/* The largest batch the orchestrator writes and syncs itself when the writer
 * and syncer are idle and no mail waits (a sequential step's batch is two
 * events, a step's result and the next one's start; a few runs at once
 * stay under 8): a run going step by step then
 * commits as a loop of syncs does, on one thread, with no hand-off and no
 * thread spinning beside the sync (W1 in `make bench`: from 0.45-0.56 to
 * 0.53-0.62 of the fsync rate measured beside it).  The orchestrator then
 * blocks for one sync, only when it had nothing else to do; a large batch
 * (many runs at once) goes to the writer, whose work overlaps the
 * orchestrator's. */
#define CAIRN_COMMIT_HERE_MAX 8

/* With the commit log (clog.h), events reach SQLite this many at once, or
 * this long after they became durable, whichever comes first, and at once
 * when a run ends or someone waits to read them (eng_writer_catch_up): so
 * another process (`cairn show`, `cairn runs`) sees a step's end at most
 * this late.  Applying less often spares the step's path (W1 in `make
 * bench`, applying to SQLite beside the log's syncs: batch by batch
 * 0.53-0.69 of the fsync rate, every 16 events 0.70-0.75, every 128
 * 0.78-0.80). */
#define CAIRN_CLOG_APPLY_EVENTS 256
#define CAIRN_CLOG_APPLY_MS 20
/* ... and at once when the orchestrator has been idle this long (waiting
 * for a step that takes a while, an approval or a timer).  Far longer
 * than a hand-off to a worker and back (tens of microseconds), so W1's
 * steps on the pool do not trigger it. */
#define CAIRN_CLOG_IDLE_MS 1

/* Spin until *flag is set or CAIRN_SPIN_US pass. */
void eng_spin_for(atomic_int *flag);

/* Attempts started from one durable batch, or results taken from the inbox,
 * between hand-offs to the writer (see eng_dispatch_durable). */
#define CAIRN_SUBMIT_EVERY 64

typedef struct eng_writer eng_writer;
typedef struct eng_pool eng_pool;

struct cairn_engine {
    cairn_engine_config cfg;
    cairn_journal *journal;      /* the engine's: reads, claims, commands; the writer's */
    cairn_chain *chain;          /* the journal's, under its key */
    eng_writer *writer;
    bool logged;                 /* the journal writes ahead (its commit log) */
    eng_pool *pool;
    eng_plan *plans;
    cairn_secrets *secrets;      /* .secrets; every event is masked with them */
    char *secrets_file, *secrets_key_file;
    int64_t secrets_mtime_ns;    /* of the file when loaded; -1: not loaded */

    eng_run **runs;              /* live runs held by this engine */
    int n_runs, cap_runs;
    cairn_strmap *run_slots;     /* run id -> position in runs */
    eng_run *ended_head, *ended_tail;   /* ended runs, in order of end_ticket */

    eng_batch out;               /* events appended since the last hand-off */
    cairn_buf event_text;        /* the event being made: its data's canonical text */
    int64_t next_ticket, durable;
    eng_attempt *await_head, *await_tail;   /* started, waiting for durability */
    eng_attempt *live;                      /* every attempt in flight */
    eng_timer *timers;                      /* a min-heap on `at` */
    int n_timers, cap_timers;

    pthread_mutex_t inbox_mu;
    eng_msg *inbox_head, *inbox_tail;
    int wake_fd;                 /* eventfd: the inbox has mail, or stop */
    atomic_int mail;             /* the inbox has mail: read while spinning */
    atomic_int sleeping;         /* the orchestrator may sleep in poll: posters write wake_fd */
    volatile int stop_requested; /* set from a signal handler */
    volatile int poll_now;       /* set from a signal handler: read commands now */
    bool stopping;
    int64_t stop_deadline;
    int64_t next_command_poll;
    /* Commands carried out whose answering event may not be in SQLite yet
     * (its row goes in the same transaction): not to be carried out again. */
    struct eng_taken { int64_t id, created_at; } *taken;
    int n_taken, cap_taken;
    int64_t data_version;
    int total_in_flight;
    bool sticky;
    cairn_err sticky_err;
};

/* engine.c */
void eng_post(cairn_engine *e, eng_msg *m);
eng_run *eng_find_run(cairn_engine *e, const char *id);
void eng_add_run(cairn_engine *e, eng_run *r);
/* The plan of the definition pinned by def_hash: one this engine holds, or
 * loaded (and checked against the hash) from the journal for run_id (NULL:
 * for no run yet).  NULL with *err on failure. */
eng_plan *eng_plan_for(cairn_engine *e, const char *def_hash, const char *run_id, cairn_err *err);
void eng_run_free(eng_run *r);
void eng_apply_commands(cairn_engine *e, const eng_run *only);

/* Append an event to run r: seq, time, hash, fold; queued for the writer.
 * data is consumed.  Returns the event's ticket, or -1 on a fold error
 * (which is sticky). */
int64_t eng_emit(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                 int attempt, jv data);

/* As eng_emit, with the event's time given: for an event whose data holds a
 * deadline computed from that same instant (retry_at = time + back-off). */
int64_t eng_emit_at(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                    int attempt, jv data, int64_t time_ms);

/* step_started (with idempotency_key, value the input) or step_succeeded
 * (idempotency_key NULL, value the output): as eng_emit with data
 * {idempotency_key?, index?, input|output: value}; value is consumed. */
int64_t eng_emit_step(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                      int attempt, const char *idempotency_key, jv value);

/* Load the secrets again if their file changed since the last load. */
int eng_secrets_refresh(cairn_engine *e, cairn_err *err);

/* sched.c */
eng_run *eng_run_new(cairn_engine *e, eng_plan *plan, const char *run_id);
void eng_run_rebuild(cairn_engine *e, eng_run *r);   /* after a fold from the journal */
void eng_schedule(cairn_engine *e, eng_run *r);      /* start what is ready, or end the run */
void eng_step_done(cairn_engine *e, eng_run *r, int step);
void eng_step_failed(cairn_engine *e, eng_run *r, int step, jv error);
/* Whether step i belongs to the rollback (a compensate body or on_failure). */
bool eng_is_rollback_step(const eng_run *r, int step);
void eng_item_finished(cairn_engine *e, eng_run *r, int step, int index, bool ok, jv error);
bool eng_step_is_done(const eng_run *r, int step);
jv eng_error(const char *kind, const char *message);
/* Render t over the run's document with `extra` fields added (an object,
 * or jv_null() for none; consumed). */
int eng_render(eng_run *r, const cairn_tmpl *t, jv extra, jv *out, cairn_err *err);
void eng_cancel_run(cairn_engine *e, eng_run *r, int64_t command_id);
/* Pause (or unpause) a run: journaled; a paused run starts no new step. */
void eng_pause_run(cairn_engine *e, eng_run *r, bool pause, int64_t command_id);

/* timer.c */
void eng_timer_add(cairn_engine *e, eng_run *r, int step, int index, int64_t at);
int64_t eng_timer_next(const cairn_engine *e);       /* wall ms, or INT64_MAX */
void eng_timers_fire(cairn_engine *e);               /* every timer that is due */
void eng_timers_rearm(cairn_engine *e, eng_run *r);  /* after recovery */

/* retry.c */
/* An attempt failed with error (consumed): retry it after its back-off if
 * the step's retry allows, else fail the step or item for good. */
void eng_attempt_failed(cairn_engine *e, eng_run *r, int step, int index, int attempt, jv error);
/* A succeeded attempt: true when retry.until holds (or there is none);
 * else *error (kind until or expression) says why not. */
bool eng_until_met(eng_run *r, int step, jv output, jv *error);
/* Start a `wait` step: journal its deadline and arm its timer. */
void eng_start_wait(cairn_engine *e, eng_run *r, int step, int index);
void eng_plan_compile_retry(eng_plan *p);
void eng_plan_free_retry(eng_plan *p);

/* engine.c: start a run of plan; parent (or NULL) is the run whose
 * `workflow` step starts it.  inputs and trigger are consumed. */
int eng_start_run(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                  char run_id[CAIRN_RUN_ID_MAX], cairn_err *err);
/* As eng_start_run with the id chosen already (run_id holds it, or "" for a new one). */
int eng_start_run_as(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                     char run_id[CAIRN_RUN_ID_MAX], cairn_err *err);

/* child.c */
void eng_start_child(cairn_engine *e, eng_run *r, int step, int index);
/* A run with a parent has ended: the parent's step takes its outcome. */
void eng_child_ended(cairn_engine *e, eng_run *child);
/* After recovery: a parent step whose child ended meanwhile takes its outcome. */
void eng_reconcile_children(cairn_engine *e, eng_run *parent);
/* Cancel the live children of r. */
void eng_cancel_children(cairn_engine *e, eng_run *r);

/* approval.c */
void eng_start_approval(cairn_engine *e, eng_run *r, int step, int index);
void eng_ask_after_crash(cairn_engine *e, eng_run *r, int step);
void eng_apply_decision(cairn_engine *e, eng_run *r, const char *data, int64_t command_id);
void eng_approval_timeout(cairn_engine *e, eng_run *r, int step);

/* attempt.c */
/* Send an approval's `notify` body (a notify action's with, consumed) for
 * step i; its result is journaled as approval_notified. */
void eng_start_side_notify(cairn_engine *e, eng_run *r, int i, jv with);
void eng_start_attempt(cairn_engine *e, eng_run *r, int step, int index);
/* What `with` may read of the attempt being rendered: {step: {id, attempt,
 * idempotency_key}}, plus item and index for a foreach item (index >= 0). */
jv eng_attempt_scope(const eng_run *r, int step, int index, int attempt, const char *idem_key);
void eng_dispatch_durable(cairn_engine *e);
void eng_finish_attempt(cairn_engine *e, eng_attempt *a);
void eng_stop_attempts(cairn_engine *e, eng_run *r);   /* r NULL: every run */

/* orphan.c: an attempt's process groups, journaled as they start and
 * killed at recovery if a crash left them running */
/* cairn_attempt_info.spawned: a worker thread posts MSG_SPAWNED. */
void eng_attempt_spawned(const cairn_attempt_info *info, int64_t pgid, int64_t start);
void eng_spawned(cairn_engine *e, eng_msg *m);   /* journals step_spawned */
/* Kill what is left of the process group recorded for that attempt, if
 * any, and note the outcome in a step_crashed event's data (consumed). */
jv eng_kill_orphan(const eng_run *r, int step, int index, int attempt, jv data);

/* recover.c */
int eng_resume_run(cairn_engine *e, const char *run_id, cairn_err *err);

/* writer.c: posts every batch back through post(ud, msg), in submission
 * order, from its own thread.  From here on the writer threads use the
 * journal's writer operations (journal.h) and nothing else does. */
typedef void (*eng_post_fn)(void *ud, eng_msg *m);
eng_writer *eng_writer_start(cairn_journal *journal, eng_post_fn post, void *ud);
void eng_writer_submit(eng_writer *w, eng_batch *batch);   /* takes the batch's events */
/* When the writer and syncer are idle (nothing submitted, written or syncing),
 * write and sync the batch on the calling thread, post its result as they
 * would, and return true (taking its events); else return false and leave
 * the batch as it is. */
bool eng_writer_commit_if_idle(eng_writer *w, eng_batch *batch);
/* Have the writer apply what is durable now rather than at its deadline. */
void eng_writer_apply_soon(eng_writer *w);
/* Wait until every batch submitted is durable and in the store, where
 * another connection can read it.  CAIRN_EIO if the journal failed. */
int eng_writer_catch_up(eng_writer *w, cairn_err *err);
/* Flush, join, and apply what the journal wrote ahead. */
void eng_writer_stop(eng_writer *w);

/* pool.c */
eng_pool *eng_pool_start(cairn_engine *e, int threads);
void eng_pool_queue(eng_pool *p, eng_attempt *a);   /* orchestrator: runs at the next flush */
void eng_pool_flush(eng_pool *p);                   /* hands every queued attempt to the workers */
void eng_pool_stop(eng_pool *p);

/* batches */
void eng_batch_push(eng_batch *b, cairn_event *ev);
void eng_batch_free_events(eng_batch *b);

#endif
