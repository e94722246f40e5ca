/*
 * engine_int.h - the engine's private structures and the functions its
 * files call in one another.  Which file owns which state, and who calls
 * whom, is written at the top of engine.h.
 */
#ifndef CAIRN_ENGINE_INT_H
#define CAIRN_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>

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
    cairn_strmap *step_at;       /* ids -> index: a step an expression names, found in
                                    the plan's one map, not in each run's sorted ids */
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

/* An idempotency key: <run id>/<step id>[/<index>] (attempt.c). */
#define CAIRN_IDEM_KEY_MAX (CAIRN_RUN_ID_MAX + 2 * CAIRN_ID_MAX + 16)

/* A value's canonical text kept beside the value: an attempt keeps its
 * input's, written as `with` is rendered (cairn_tmpl_render_text), so that
 * its step_started and an output identical to the input (set, and any
 * action that passes its input on) are written without walking it again. */
typedef struct eng_text_memo {
    jv value;                    /* valid while text is set */
    char *text;
    size_t len;
} eng_text_memo;
void eng_text_memo_clear(eng_text_memo *m);
/* m takes value (borrowed: a reference is kept) and text, its canonical
 * text (detached: text is left empty). */
void eng_text_memo_set(eng_text_memo *m, jv value, cairn_buf *text);

struct eng_attempt {
    eng_run *run;
    int step, index;             /* index: foreach item, or -1 */
    int attempt;
    const cairn_action *action;
    void *job;
    char idem_key[CAIRN_IDEM_KEY_MAX];
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
    eng_text_memo input;         /* its step_started's input and text */
};

/* A step as the run's expression document shows it (`.steps.<id>`): its
 * state when the document last took it (eng_ctx_step), which the fold has
 * moved past since (a running step shows as it was before it started). */
typedef struct eng_view {
    cairn_step_status status;
    int attempts;
    jv output, error;
    bool stale;                  /* ctx's `.steps` does not show it yet */
    int next_stale;              /* then the next such step, or -1 */
} eng_view;

struct eng_run {
    cairn_run_state *st;
    eng_plan *plan;
    /* The expression document (sched.c): ctx holds every field; its
     * `.steps` entries are brought up to date from views only when an
     * expression needs the whole document, since most read a step's field
     * through a path that views answer directly (eng_render). */
    jv ctx;
    eng_view *views;             /* per step */
    int stale;                   /* the first step whose view ctx does not show yet, or -1 */
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
    int slot;                    /* position in the run table (runs.c) */
    eng_run *ended_next;         /* in the queue of ended runs (durable.c) */
    int *ready;                  /* steps ready to start: a FIFO */
    int ready_head, n_ready;
    /* The hash chain is computed by whoever writes a batch (writer.c), not
     * on the orchestrator: the hash of the run's last event written,
     * primed from the state loaded before its first event is queued. */
    bool lost;                   /* another engine holds it now (runs.c: eng_lose_run) */
    int64_t lost_ticket;         /* its events up to here pass the writer before it is freed */
    eng_run *lost_next;          /* in the list of lost runs (runs.c) */
    bool chain_primed;           /* orchestrator: chain_head holds st->head as loaded */
    unsigned char chain_head[CAIRN_HASH_LEN];   /* then the writer's alone */
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
    bool hashed;                 /* ev.hash is computed (eng_event_hash) */
} eng_event;

/* A new event of run r (may be NULL) for step (NULL: a run event) with data
 * text[0..len) copied. */
cairn_event *eng_event_new(eng_run *r, const char *step, const char *text, size_t len);
/* The run an event made by eng_event_new belongs to. */
static inline eng_run *eng_event_run(const cairn_event *ev) {
    return ((const eng_event *)(const void *)ev)->run;
}
void eng_event_free(cairn_event *ev);
/* Writer side, in the order events are written: ev's link of its run's
 * hash chain (once; a batch written again keeps it). */
void eng_event_hash(cairn_chain *chain, cairn_event *ev);

/* A batch of events handed to the writer, or handed back once durable. */
typedef struct eng_batch {
    cairn_event **events;
    int n, cap;
    int64_t ticket;              /* highest ticket in the batch */
    atomic_int *holders;         /* NULL: one holder; else how many still hold the
                                    events (eng_batch_share) */
} eng_batch;

typedef enum { MSG_DURABLE, MSG_RESULT, MSG_WRITE_FAILED, MSG_SPAWNED, MSG_CALL } eng_msg_kind;

struct eng_msg {
    eng_msg_kind kind;
    eng_batch batch;             /* MSG_DURABLE */
    eng_attempt *attempt;        /* MSG_RESULT, MSG_SPAWNED */
    int64_t pgid, start;         /* MSG_SPAWNED: the group the attempt started */
    cairn_err err;               /* MSG_WRITE_FAILED */
    int64_t log_end;             /* its record's end in the commit log, if it has one */
    cairn_engine_call_fn call;   /* MSG_CALL */
    void *call_ud;
    struct eng_msg *next;
};

/* How long a thread that expects a hand-off within one commit's time spins
 * for it before it sleeps, at most (each place adapts: eng_spin_for).  Waking a sleeping thread costs tens of
 * microseconds on a virtual machine, a sixth of a commit and two of them a
 * step; spinning (yielding to any thread that has work) costs idle CPU,
 * only while a commit is in flight, and on a virtual machine some of the
 * disk's speed: a thread spinning beside a loop of syncs was measured to
 * slow it by a tenth to a quarter.  See eng_spin_for. */
#define CAIRN_SPIN_US 500
#define CAIRN_SPIN_MIN_US 20      /* the least budget a spinner keeps */
#define CAIRN_SPIN_LATE_US 50     /* a yield back later than this: the CPU is wanted */

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

/* Attempts started from one durable batch, or results taken from the inbox,
 * between hand-offs to the writer (see eng_dispatch_durable). */
#define CAIRN_SUBMIT_EVERY 64

typedef struct eng_writer eng_writer;
typedef struct eng_pool eng_pool;
typedef struct eng_inbox eng_inbox;
typedef struct eng_durable eng_durable;
typedef struct eng_timers eng_timers;
typedef struct eng_runs eng_runs;
typedef struct eng_commands eng_commands;

/* The engine: each part is owned by the one file that defines it (see
 * engine.h); the rest of the engine reaches it through that file's
 * functions.  engine.c owns the configuration and the stop. */
struct cairn_engine {
    cairn_engine_config cfg;
    cairn_journal *journal;      /* the door to the journal (journal.h) */
    eng_durable *dq;             /* durable.c: appending, and what waits for durability */
    eng_inbox *inbox;            /* inbox.c: messages from the other threads */
    eng_runs *runs;              /* runs.c: the runs held, and the plans */
    eng_timers *timers;          /* timer.c: the durable timers */
    eng_commands *commands;      /* commands.c: commands from other processes */
    eng_writer *writer;          /* writer.c: the journal writer threads */
    eng_pool *pool;              /* pool.c: the worker threads */
    atomic_int stop_requested;   /* set from a signal handler or another thread */
    bool stopping;
    int64_t stop_deadline;
};

/* Whether the attempts started now are to be stopped at once: the engine
 * is stopping and the grace period has passed. */
static inline bool eng_past_grace(const cairn_engine *e, int64_t now) {
    return e->stopping && now >= e->stop_deadline;
}

/* Whether step i belongs to the rollback (a compensate body or on_failure). */
static inline bool eng_is_rollback_step(const eng_run *r, int i) { return i >= r->plan->n_main; }

/* inbox.c: messages posted by the writer, the workers and signal handlers,
 * taken by the orchestrator. */
eng_inbox *eng_inbox_new(void);
void eng_inbox_free(eng_inbox *ib);    /* frees the messages left; NULL ok */
void eng_post(eng_inbox *ib, eng_msg *m);                  /* any thread */
eng_msg *eng_inbox_take(eng_inbox *ib);                    /* every message, in order */
/* Sleep until mail comes or timeout_ms pass; after idle_ms (when less) call
 * idle(ud) once and sleep on. */
void eng_inbox_wait(eng_inbox *ib, int timeout_ms, int idle_ms, void (*idle)(void *), void *ud);
void eng_inbox_wake(eng_inbox *ib);    /* async-signal-safe */
bool eng_inbox_has_mail(eng_inbox *ib);
/* A place that spins for a hand-off, and how long it spins there: it
 * adapts to the waits it sees (eng_spin_for).  Zeroed to begin. */
typedef struct eng_spinner {
    int budget_us;               /* 0: not yet adapted (CAIRN_SPIN_US) */
} eng_spinner;
/* Spin (yielding) until *flag is set, for at most the spinner's budget.
 * The budget follows the waits: twice the last wait that ended in the
 * flag, halved by a spin that did not; and a yield that comes back later
 * than CAIRN_SPIN_LATE_US says another thread wanted this CPU (the
 * machine is busy), so the spin ends there and the budget halves.  true
 * when the flag was seen. */
bool eng_spin_for(eng_spinner *s, atomic_int *flag);
/* Spin for the inbox's mail, as eng_spin_for. */
void eng_inbox_spin(eng_inbox *ib);

/* durable.c: appending events (stamp, hash, fold, queue for the writer) and
 * what waits for them to be durable: attempts (their step_started), ended
 * runs (their last event).  Also the secrets every event is masked with. */
/* The secrets' file names become its. */
eng_durable *eng_durable_new(char *secrets_file, char *secrets_key_file);
void eng_durable_free(eng_durable *d);   /* frees the events not handed over; NULL ok */

/* Append an event to run r: seq, time, hash, fold; queued for the writer.
 * data is consumed.  Returns the event's ticket, or -1 on a fold error or
 * once the journal failed (sticky). */
int64_t eng_emit(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                 int attempt, jv data);
/* As eng_emit, with the event's time given: for an event whose data holds a
 * deadline computed from that same instant (retry_at = time + back-off). */
int64_t eng_emit_at(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                    int attempt, jv data, int64_t time_ms);
/* step_started (with idempotency_key, value the input) or step_succeeded
 * (idempotency_key NULL, value the output): as eng_emit with data
 * {idempotency_key?, index?, input|output: value}; value is consumed.
 * memo (may be NULL): step_started keeps the input's text there, and
 * step_succeeded takes it when the output is that very value. */
int64_t eng_emit_step(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                      int attempt, const char *idempotency_key, eng_text_memo *memo, jv value);
/* The event appended last answers command_id (>0): its row is deleted in
 * the transaction that stores the event. */
void eng_mark_answer(cairn_engine *e, int64_t command_id);
/* Events appended and not yet handed to the writer: a mark, and whether an
 * event appended since the mark answers command_id. */
int eng_appended(const cairn_engine *e);
bool eng_answered_since(const cairn_engine *e, int mark, int64_t command_id);
/* The ticket the next event appended will have (an approval's notify
 * waits for the request before it). */
int64_t eng_next_ticket(const cairn_engine *e);
/* Hand the events appended so far to the writer; with `here`, a small
 * batch is committed on this thread when the writer is idle and no mail
 * waits (CAIRN_COMMIT_HERE_MAX). */
void eng_submit(cairn_engine *e, bool here);
/* A batch came back durable: remember how far, call on_event(ev) for each
 * event, then on_batch once; the events are freed. */
void eng_durable_reached(cairn_engine *e, eng_batch *batch);
/* Whether every event appended is durable. */
bool eng_all_durable(const cairn_engine *e);
/* Whether the events up to ticket have come back from the writer. */
bool eng_ticket_durable(const cairn_engine *e, int64_t ticket);

/* The journal failed (or a fold did): sticky (invariant 5). */
void eng_sticky(cairn_engine *e, const cairn_err *err);
bool eng_is_sticky(const cairn_engine *e);
const cairn_err *eng_sticky_err(const cairn_engine *e);

/* Attempts: started (in flight) until finished. */
void eng_attempt_started(cairn_engine *e, eng_attempt *a);   /* waits for a->ticket */
void eng_attempt_ended(cairn_engine *e, eng_attempt *a);
/* The next started attempt whose ticket is durable, taken off the queue,
 * or NULL; with `all`, the next one whatever its ticket. */
eng_attempt *eng_take_ready(cairn_engine *e, bool all);
/* Every attempt in flight, for stopping them: the first, and the next. */
eng_attempt *eng_live_first(const cairn_engine *e);
int eng_in_flight(const cairn_engine *e);
/* The next ended run whose last event is durable, taken off the queue. */
eng_run *eng_take_ended(cairn_engine *e);

/* Load the secrets again if their file changed since the last load. */
int eng_secrets_refresh(cairn_engine *e, cairn_err *err);
/* The secrets loaded (every event is masked with them), or NULL. */
const cairn_secrets *eng_secrets(const cairn_engine *e);
/* An error value: {kind, message}. */
jv eng_error(const char *kind, const char *message);

/* runs.c: the runs this engine holds (by id, and in a list), and the plans
 * of the workflows it knows. */
eng_runs *eng_runs_new(void);
void eng_runs_free(eng_runs *rs);        /* the runs and the plans; NULL ok */
eng_run *eng_find_run(cairn_engine *e, const char *id);
void eng_add_run(cairn_engine *e, eng_run *r);
void eng_drop_run(cairn_engine *e, eng_run *r);   /* takes it out and frees it */
/* Another engine holds r now (fencing, journal.h): out of the table at
 * once, so nothing finds it by id (timers, commands, children); the
 * results of its live attempts are discarded (the caller asks them to
 * stop); nothing more is appended or started for it.  Freed by eng_free_lost once no
 * attempt of it is in flight and every event it appended has passed the
 * writer (the writer's batches point at it). */
void eng_lose_run(cairn_engine *e, eng_run *r);
void eng_free_lost(cairn_engine *e);
int eng_run_count(const cairn_engine *e);
eng_run *eng_run_at(const cairn_engine *e, int i);
eng_run *eng_run_new(eng_plan *plan, const char *run_id);
void eng_run_free(eng_run *r);
/* The plan of the definition pinned by def_hash: one this engine holds, or
 * loaded (and checked against the hash) from the journal for run_id (NULL:
 * for no run yet).  NULL with *err on failure. */
eng_plan *eng_plan_for(cairn_engine *e, const char *def_hash, const char *run_id, cairn_err *err);
/* The plan of wf (ownership passes), made unless there is one already. */
eng_plan *eng_plan_add(cairn_engine *e, cairn_workflow *wf);
bool eng_plan_known(cairn_engine *e, const char *def_hash);

/* commands.c: commands from other processes (cancel, pause, decide). */
eng_commands *eng_commands_new(int64_t changes);
void eng_commands_free(eng_commands *c);
/* Carry out the commands waiting for runs this engine holds (only for run
 * `only` when it is not NULL). */
void eng_apply_commands(cairn_engine *e, const eng_run *only);
/* At the next poll (every CAIRN_COMMAND_POLL_MS, or at once after a
 * wake), when the journal changed since the last look: eng_apply_commands.
 * now is monotonic ms. */
void eng_poll_commands(cairn_engine *e, int64_t now);
int64_t eng_commands_next(const eng_commands *c);   /* monotonic ms */
void eng_commands_wake(eng_commands *c);             /* async-signal-safe */

/* carried.c: steps the engine carries out itself (approval, wait, child
 * workflow: actions with CAIRN_ACTION_ENGINE), found by their action. */
typedef struct eng_carried {
    const cairn_action *action;
    /* Start the step (or item) instead of an attempt. */
    void (*start)(cairn_engine *e, eng_run *r, int step, int index);
    /* Its timer fired (the step still waits for that deadline); NULL: the
     * timer is a retry's back-off, which starts the step again. */
    void (*timer)(cairn_engine *e, eng_run *r, int step, int index);
    /* The `with` its step_started journals (eng_step_input); NULL: as an
     * attempt's (eng_scoped_input). */
    int (*input)(eng_run *r, int step, int index, int attempt, jv *with, cairn_err *err);
} eng_carried;
const eng_carried *eng_carried_for(const cairn_action *action);   /* NULL: an attempt */

/* Decisions: what the engine decides from a run's state alone, taken by
 * the functions below both live and by `cairn replay` (replay.h), which
 * re-takes them over a journal and compares: the same code, not a copy.
 * None of them appends, arms a timer or starts anything. */
/* sched.c: how many of step i's needs are not done yet (0: ready). */
int eng_needs_waiting(const eng_run *r, int i);
/* sched.c: whether a ready step may start now: the run is not failing,
 * cancelled or paused. */
bool eng_may_start(const eng_run *r);
/* sched.c: step i's `if` (true when it has none): 0 and *go, or the
 * render's error (the step then fails with kind expression). */
int eng_if_holds(eng_run *r, int i, bool *go, cairn_err *err);
/* sched.c: step i's foreach list: 0 and *items (an array of at most
 * CAIRN_FOREACH_MAX_ITEMS), or an error. */
int eng_foreach_items(eng_run *r, int i, jv *items, cairn_err *err);
/* sched.c: items of step in flight at once at most. */
int eng_foreach_window(const cairn_step *step);
/* sched.c: r->items[i] after a fold: the journaled list, or the one
 * rendered again when it masks to exactly that (it then holds the secrets'
 * values the live list held). */
void eng_recall_items(eng_run *r, int i, const cairn_secrets *secrets);
/* sched.c: the run's outputs rendered: 0 and *out, or -1 and *out the
 * error that fails the run ({kind: expression, message, output}). */
int eng_run_outputs(eng_run *r, jv *out);
/* sched.c: the rollback's order into order[] (p->n_all at most): the
 * compensate bodies of succeeded steps, latest completion first, then the
 * on_failure steps as written.  Returns how many. */
int eng_rollback_order(const eng_plan *p, const cairn_run_state *st, int *order);
/* sched.c: succeeded, failed, skipped or cancelled. */
bool eng_settled(cairn_step_status s);
/* sched.c: the expression document from the run's state (every step's
 * view as folded), with secrets' values under .secrets; eng_ctx_step
 * brings step i's view up to date in it (when it is done or fails): its
 * entry in ctx's `.steps` follows once an expression needs the whole
 * document (eng_render). */
void eng_build_ctx(eng_run *r, const cairn_secrets *secrets);
void eng_ctx_step(eng_run *r, int i);
/* sched.c: the document set aside whole (ctx with `.steps` up to date, and
 * the views), so that a caller may render over one rebuilt from the state
 * (eng_build_ctx) and then put the run's own back, with eng_doc_restore. */
typedef struct eng_doc_saved {
    jv ctx;
    eng_view *views;
} eng_doc_saved;
eng_doc_saved eng_doc_save(eng_run *r);
/* runs.c: n views of untouched steps (pending, null output and error). */
eng_view *eng_views_new(int n);
void eng_views_free(eng_view *v, int n);
void eng_doc_restore(eng_run *r, eng_doc_saved saved);
/* retry.c: whether step may start an attempt now that its back-off is
 * over, or retry at all: a rollback body may; otherwise the run must not
 * be failing or cancelled. */
bool eng_may_go_on(const eng_run *r, int step);
/* retry.c: whether a failed attempt (error borrowed) is retried: attempts
 * left, eng_may_go_on, and error, as "<kind>: <message>", matches retry.on. */
bool eng_retry_allowed(const eng_run *r, int step, int attempt, jv error);
/* retry.c: the back-off before the attempt after `attempt`: exactly lo ==
 * hi without jitter, else the bounds jitter picks between. */
void eng_backoff_range(const cairn_retry *rt, int attempt, int64_t *lo, int64_t *hi);
/* sched.c: the number of the next attempt of step state s (item index,
 * or -1), and its idempotency key. */
int eng_next_attempt(const cairn_step_state *s, int index);
void eng_idem_key(const eng_run *r, int i, int index, char *key, size_t len);
/* sched.c: an attempt's `with` rendered, with the attempt's own fields
 * (.step, .item, .index) when it reads them. */
int eng_scoped_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err);
/* As eng_scoped_input, and the canonical text of *with appended to text. */
int eng_scoped_input_text(eng_run *r, int i, int index, int attempt, jv *with, cairn_buf *text,
                          cairn_err *err);
/* attempt.c: the `with` step i's step_started journals (before masking):
 * a carried step's own (eng_carried.input), else eng_scoped_input. */
int eng_step_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err);
/* approval.c: the request approval_requested journals for `with`
 * (borrowed), its deadline counted from now (wall ms). */
jv eng_approval_request(const eng_run *r, jv with, int64_t now);
/* approval.c: whether the approvals so far (the fold's approval, borrowed)
 * make its quorum. */
bool eng_quorum_met(jv approval);
/* approval.c, wait.c: their steps' `with` (eng_carried.input): an
 * approval's is always its first attempt's; a wait's has no attempt fields. */
int eng_approval_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err);
int eng_wait_input(eng_run *r, int i, int index, int attempt, jv *with, cairn_err *err);
/* recover.c: what happens to step i's attempt found in flight after a
 * crash (ask is fail for foreach items), and its name in step_crashed. */
cairn_on_crash eng_on_crash(const eng_run *r, int i);
const char *eng_on_crash_name(cairn_on_crash oc);

/* runs.c: a plan of wf (ownership passes) held by no engine, for replay;
 * free it with eng_plan_free. */
eng_plan *eng_plan_new(cairn_workflow *wf);
void eng_plan_free(eng_plan *p);

/* sched.c: deciding what runs next */
/* Start a run of plan; parent (or NULL) is the run whose `workflow` step
 * starts it.  run_id holds the id chosen already, or "" for a new one (it
 * receives it).  inputs and trigger are consumed. */
int eng_start_run(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                  char run_id[CAIRN_RUN_ID_MAX], cairn_err *err);
/* eng_start_run's first half: journal run_created (extra: more members of
 * its data, an object, or jv_null(); consumed) and hold the run, *out;
 * nothing is scheduled (a fork appends its carried results first). */
int eng_create_run(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                   jv extra, char run_id[CAIRN_RUN_ID_MAX], eng_run **out, cairn_err *err);
void eng_run_rebuild(cairn_engine *e, eng_run *r);   /* after a fold from the journal */
void eng_schedule(cairn_engine *e, eng_run *r);      /* start what is ready, or end the run */
void eng_step_done(cairn_engine *e, eng_run *r, int step);
void eng_step_failed(cairn_engine *e, eng_run *r, int step, jv error);
void eng_item_finished(cairn_engine *e, eng_run *r, int step, int index, bool ok, jv error);
bool eng_step_is_done(const eng_run *r, int step);
/* What `with` may read of the attempt being rendered: {step: {id, attempt,
 * idempotency_key}}, plus item and index for a foreach item (index >= 0). */
jv eng_attempt_scope(const eng_run *r, int step, int index, int attempt, const char *idem_key);
/* Render t over the run's document with `extra` fields added (an object,
 * or jv_null() for none; consumed). */
int eng_render(eng_run *r, const cairn_tmpl *t, jv extra, jv *out, cairn_err *err);
/* As eng_render; with text (may be NULL), *out's canonical text (json.h)
 * appended to it. */
int eng_render_text(eng_run *r, const cairn_tmpl *t, jv extra, jv *out, cairn_buf *text,
                    cairn_err *err);
void eng_cancel_run(cairn_engine *e, eng_run *r, int64_t command_id);
/* Pause (or unpause) a run: journaled; a paused run starts no new step. */
void eng_pause_run(cairn_engine *e, eng_run *r, bool pause, int64_t command_id);

/* timer.c: the durable timers, a min-heap; it calls nobody (engine.c
 * carries out what a timer that fires means). */
eng_timers *eng_timers_new(void);
void eng_timers_free(eng_timers *t);
void eng_timer_add(cairn_engine *e, eng_run *r, int step, int index, int64_t at);
int64_t eng_timer_next(const cairn_engine *e);       /* wall ms, or INT64_MAX */
/* Take the earliest timer if it is due at now (wall ms): true and *t. */
bool eng_timer_take_due(cairn_engine *e, int64_t now, eng_timer *t);
void eng_timers_rearm(cairn_engine *e, eng_run *r);  /* after recovery */

/* retry.c: what follows a failed or succeeded attempt */
/* An attempt failed with error (consumed): retry it after its back-off if
 * the step's retry allows, else fail the step or item for good. */
void eng_attempt_failed(cairn_engine *e, eng_run *r, int step, int index, int attempt, jv error);
/* A succeeded attempt: true when retry.until holds (or there is none);
 * else *error (kind until or expression) says why not. */
bool eng_until_met(eng_run *r, int step, jv output, jv *error);

/* wait.c: the `wait` step (carried: its start, and its timer) */
void eng_start_wait(cairn_engine *e, eng_run *r, int step, int index);
void eng_wait_over(cairn_engine *e, eng_run *r, int step, int index);

/* child.c: the `workflow` step (carried) */
void eng_start_child(cairn_engine *e, eng_run *r, int step, int index);
/* A run with a parent has ended: the parent's step takes its outcome. */
void eng_child_ended(cairn_engine *e, eng_run *child);
/* After recovery: a parent step whose child ended meanwhile takes its outcome. */
void eng_reconcile_children(cairn_engine *e, eng_run *parent);
/* A child whose end is durable, and whose parent this engine does not
 * hold: the parent's holder is told by a "child" command (whoever holds
 * it, or the next engine to resume it). */
void eng_tell_parent_elsewhere(cairn_engine *e, const eng_run *child);
/* The "child" command for parent: {"child": ID} ended; answered by the
 * outcome taken (command_id), or dropped when no step waits for it. */
void eng_child_told(cairn_engine *e, eng_run *parent, const char *data, int64_t command_id);
/* Cancel the live children of r. */
void eng_cancel_children(cairn_engine *e, eng_run *r);

/* approval.c: the `approval` step (carried), and on_crash ask */
void eng_start_approval(cairn_engine *e, eng_run *r, int step, int index);
void eng_ask_after_crash(cairn_engine *e, eng_run *r, int step);
void eng_apply_decision(cairn_engine *e, eng_run *r, const char *data, int64_t command_id);
void eng_approval_timer(cairn_engine *e, eng_run *r, int step, int index);

/* attempt.c */
/* Send an approval's `notify` body (a notify action's with, consumed) for
 * step i; its result is journaled as approval_notified. */
void eng_start_side_notify(cairn_engine *e, eng_run *r, int i, jv with);
void eng_start_attempt(cairn_engine *e, eng_run *r, int step, int index);
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
/* Several engines on one journal (journal.h): drop the runs lost to
 * another engine, resume those taken over, and once the lease holds again
 * start the attempts that waited for it: every turn of the loop.  With
 * lost_only, only the first: before a durable batch is acted on (the runs
 * it refused are lost before its attempts would start). */
void eng_poll_holds(cairn_engine *e, bool lost_only);

/* writer.c: posts every batch back through post(ud, msg), in submission
 * order, from its own thread.  From here on the writer threads use the
 * journal's writer operations (journal.h) and nothing else does. */
typedef void (*eng_post_fn)(void *ud, eng_msg *m);
/* chain (the writer's, may be NULL: events are written as they are)
 * hashes each event into its run's chain as it is written. */
eng_writer *eng_writer_start(cairn_journal *journal, cairn_chain *chain, eng_post_fn post,
                             void *ud);
void eng_writer_submit(eng_writer *w, eng_batch *batch);   /* takes the batch's events */
/* When the writer and syncer are idle (nothing submitted, written or syncing),
 * write and sync the batch on the calling thread, post its result as they
 * would, and return true (taking its events); else return false and leave
 * the batch as it is. */
bool eng_writer_commit_if_idle(eng_writer *w, eng_batch *batch);
/* Have the applier apply what is durable now rather than at its deadline. */
void eng_writer_apply_soon(eng_writer *w);
/* Wait until every batch submitted is durable and in the store, where
 * another connection can read it.  CAIRN_EIO if the journal failed. */
int eng_writer_catch_up(eng_writer *w, cairn_err *err);
/* Flush, join, and apply what the journal wrote ahead. */
void eng_writer_stop(eng_writer *w);

/* pool.c: results go back through the inbox */
eng_pool *eng_pool_start(eng_inbox *inbox, int threads);
void eng_pool_queue(eng_pool *p, eng_attempt *a);   /* orchestrator: runs at the next flush */
void eng_pool_flush(eng_pool *p);                   /* hands every queued attempt to the workers */
void eng_pool_stop(eng_pool *p);

/* batches */
void eng_batch_push(eng_batch *b, cairn_event *ev);
/* Let go of b's events (b is emptied): they are freed by the last holder. */
void eng_batch_free_events(eng_batch *b);
/* A second holder of b's events (the applier, until it has applied them to
 * the journal of record): *copy receives b as it is; b and copy each let
 * go with eng_batch_free_events, on any thread (events hold no jv). */
void eng_batch_share(eng_batch *b, eng_batch *copy);

#endif
