/*
 * backend.h - everything the HTTP server needs of the engine and the
 * journal, in one place: the engine runs in this process, and this is the
 * only file that knows how it is reached.
 *
 * Threads: srv_backend_run runs the engine's orchestrator on the calling
 * thread, normally the one that opened the backend (engine.h,
 * invariant 4).  Every other function may be called from any thread (the
 * HTTP server's) while it runs, or before: a call that needs the loop waits
 * for it to turn: what changes runs goes to
 * the orchestrator through cairn_engine_call and waits until its events are
 * durable; what reads runs opens a read connection of its own.  jq is not
 * known to be safe on two threads at once, so folds that compile a
 * definition are done one at a time (the backend's read lock).
 *
 * Durability of answers: a run's id is handed out (srv_backend_start
 * returns) only once its run_created event is durable, and a command is
 * answered once the events it caused are durable, so what a client was
 * told survives a crash.  The journal's SQLite tables trail the commit log
 * by milliseconds (engine_int.h, CAIRN_CLOG_APPLY_MS); a read of a run
 * whose newest durable event SQLite does not hold yet waits for it, bounded
 * by CAIRN_SERVE_APPLY_WAIT_MS: a client reads what it was told is done.
 *
 * Idempotency keys are journaled in the table `idempotency`
 * (schema/journal.sql, through cairn_journal_put_request), synced before the run they name is started, with
 * the run's id chosen then: a repeat after a crash finds the key and starts
 * that same id if the run never became durable, and a repeat with another
 * body is refused.  A table rather than the run's trigger data: a lookup by
 * key must not scan every run.  Which server starts a key's run is decided
 * by a claim (space "idempotency", value "RUN OWNER", journal.h) taken
 * before the key is recorded: a server whose request finds another live
 * server's claim waits for that run to be durable and answers with it, and
 * one whose owner died is taken over by compare-and-set.
 *
 * Memory: jv values passed in are consumed; those returned are the caller's.
 * A value handed on to the orchestrator is first made again from its parts
 * on the caller's thread (jq's reference counts are not atomic), so the
 * caller may keep values that share parts with what it passed.
 */
#ifndef CAIRN_SERVER_BACKEND_H
#define CAIRN_SERVER_BACKEND_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "dsl/workflow.h"
#include "engine/engine.h"
#include "engine/event.h"
#include "engine/fold.h"
#include "engine/store.h"
#include "server/place.h"

#define CAIRN_SERVE_APPLY_WAIT_MS 2000   /* a handed-out run appearing in SQLite */
#define CAIRN_SERVE_DURABLE_WAIT_MS 30000 /* an answer waiting for its events to be durable */
#define CAIRN_SERVE_RECENT_RUNS 65536    /* runs whose last durable seq is kept for that wait */
#define CAIRN_IDEMPOTENCY_KEY_MAX 255    /* bytes of an Idempotency-Key */
#define CAIRN_SERVE_IDEM_TRIES 8         /* compare-and-set rounds for one key's claim */
#define CAIRN_SERVE_FOLLOW_QUEUE_MAX 10000 /* events queued for one follower; past it, read again */
#define CAIRN_SERVE_FOLLOW_READ_MS 1000  /* a follower reads the journal at least this often */

typedef struct srv_backend srv_backend;

/* Called on the orchestrator thread for every durable event (engine.h's
 * on_event), after the backend has taken note of it: metrics. */
typedef void (*srv_event_fn)(const cairn_event *ev, const cairn_run_state *st, void *ud);

typedef struct srv_backend_config {
    const char *db_path;
    cairn_sync_mode sync;
    int64_t grace_ms;            /* 0: the engine's default */
    int64_t lease_ms;            /* 0: the journal's default (journal.h) */
    srv_place_mode placement;    /* where new runs start (place.h) */
    srv_event_fn on_event;       /* may be NULL */
    cairn_batch_cb on_batch;     /* may be NULL: each group commit's size */
    cairn_links_cb approval_links; /* may be NULL: links for an approval that opens */
    void *ud;
} srv_backend_config;

int srv_backend_open(const srv_backend_config *cfg, srv_backend **out, cairn_err *err);
void srv_backend_close(srv_backend *b);

/* Give the engine a workflow (consumed); *hash receives its pinned hash.
 * Before srv_backend_run on the thread that will run it, or from any
 * thread while it runs. */
int srv_backend_add_workflow(srv_backend *b, cairn_workflow *wf, char hash[65], cairn_err *err);

/* Take every unfinished run whose engine is gone; *taken counts them.
 * Before srv_backend_run, on its thread. */
int srv_backend_resume(srv_backend *b, int *taken, cairn_err *err);

/* Turn the orchestrator on this thread until srv_backend_stop, then drain
 * as `cairn run` does on SIGTERM.  Returns 0 or the sticky journal error. */
int srv_backend_run(srv_backend *b, cairn_err *err);

/* Whether srv_backend_run is turning the loop now.  A program that runs
 * the loop on another thread than the one that opened the backend (a test)
 * calls from the opening thread again only once this says so. */
bool srv_backend_running(srv_backend *b);

/* How many runs this server's engine holds now (cairn_engine_runs_held);
 * 0 once the loop has ended and the engine is closed. */
int srv_backend_runs_held(srv_backend *b);

/* Stop taking work and drain (from any thread; not from a signal
 * handler).  Starts and commands asked for afterwards are refused with
 * CAIRN_ESTATE. */
void srv_backend_stop(srv_backend *b);

/* Read commands other processes left in the journal now (SIGUSR1, which
 * they send to the engine holding a run). */
void srv_backend_wake(srv_backend *b);

/* Whether srv_backend_stop was called, or the loop has ended. */
bool srv_backend_stopping(srv_backend *b);

/* Whether the orchestrator has turned within the last `within_ms` (healthz)
 * and the journal takes writes (its sticky error unset; on PostgreSQL, the
 * engine's lease holds and the journal is in reach: else err says "lease
 * lapsed" or "journal unreachable"). */
bool srv_backend_healthy(srv_backend *b, int64_t within_ms, cairn_err *err);

/* Start a run of the definition hash with inputs and trigger (consumed).
 * With idem_key (may be NULL), a key seen before returns its run
 * (*existed true) when request (a hash of what was asked) matches, and
 * CAIRN_EEXISTS when it does not.  Input errors: CAIRN_EINVAL and friends
 * from the workflow's checks. */
int srv_backend_start(srv_backend *b, const char *hash, jv inputs, jv trigger,
                      const char *idem_key, const char *request, char run_id[CAIRN_RUN_ID_MAX],
                      bool *existed, cairn_err *err);

/* Start a run under an id chosen before (a claim names it): as
 * srv_backend_start without a key. */
int srv_backend_start_as(srv_backend *b, const char *hash, jv inputs, jv trigger,
                         const char *run_id, cairn_err *err);

/* Whether run_id has ended (*ended), as the journal has it or, for a run
 * handed out here and not yet in SQLite, live.  CAIRN_ENOTFOUND: no such
 * run is durable. */
int srv_backend_run_ended(srv_backend *b, const char *run_id, bool *ended, cairn_err *err);

/* cairn_journal_claim on the backend's own connection: the claims of
 * concurrent callers are taken one at a time and made durable together,
 * one sync for all (cairn_journal_claim_deferred); each returns once its
 * own is durable. */
int srv_backend_claim(srv_backend *b, const char *space, const char *key, const char *value,
                      const char *replace, char **held, cairn_err *err);

/* cairn_journal_owner_alive on the backend's own connection. */
bool srv_backend_owner_alive(srv_backend *b, const char *owner);

/* cairn_journal_get_claim likewise: CAIRN_ENOTFOUND when (space, key) is free. */
int srv_backend_get_claim(srv_backend *b, const char *space, const char *key, char **value,
                          cairn_err *err);

/* Whether run_id is in the journal (or durable here, on its way there). */
bool srv_backend_run_exists(srv_backend *b, const char *run_id);

/* Runs, newest first, as objects {id, workflow, status, created_at,
 * updated_at, parent}; status and workflow filter when not NULL (status a
 * comma list).  cursor ("" for the first page) is what a page's
 * *next_cursor gave ("" on the last page); CAIRN_EINVAL for one that is
 * not. */
#define CAIRN_SERVE_CURSOR_LEN 64   /* bytes of a cursor and its NUL */
int srv_backend_list_runs(srv_backend *b, const char *status, const char *workflow,
                          const char *cursor, int limit, jv *out,
                          char next_cursor[CAIRN_SERVE_CURSOR_LEN], cairn_err *err);

/* A run as `cairn show --json` gives it.  CAIRN_ENOTFOUND when there is none. */
int srv_backend_get_run(srv_backend *b, const char *run_id, jv *out, cairn_err *err);

/* The step graph of the definition run_id pins: {run, workflow, def_hash,
 * steps: [{id, name, uses, needs: [ids], if, foreach, compensate}],
 * on_failure: [the same]}, steps in the definition's order.  CAIRN_ENOTFOUND
 * when there is no such run. */
int srv_backend_graph(srv_backend *b, const char *run_id, jv *out, cairn_err *err);

/* The run's events with seq > after, at most limit, as `cairn journal
 * --json` gives them; *ended whether the run has ended (its last event is
 * among those read). */
int srv_backend_events(srv_backend *b, const char *run_id, int64_t after, int limit, jv *out,
                       bool *ended, cairn_err *err);

/* Wait until an event of run_id with seq > after is durable, the backend
 * stops, or timeout_ms pass.  True when such an event came. */
bool srv_backend_wait_event(srv_backend *b, const char *run_id, int64_t after, int timeout_ms);

/* Following a run: its events as they become durable, pushed from the
 * engine into the follower's queue (no read of the journal per event), and
 * read from the journal only for what came before or a gap (events durable
 * before the queue existed, which SQLite may still trail).  Each event is
 * its JSON text, as srv_backend_events gives the object. */
typedef struct srv_follow srv_follow;
typedef struct srv_followed {
    int64_t seq;
    const char *type;            /* static: the event type's name */
    bool ends;                   /* the run's last event */
    char *text;                  /* owned */
} srv_followed;

srv_follow *srv_backend_follow(srv_backend *b, const char *run_id);
/* The events after seq `after` (at most max) into out (the caller frees
 * each text), waiting up to timeout_ms for one.  Returns how many (0 when
 * none came), or -1 when the run does not exist, the journal fails or the
 * backend stops. */
int srv_backend_follow_next(srv_backend *b, srv_follow *f, int64_t after, srv_followed *out,
                            int max, int timeout_ms);
void srv_backend_unfollow(srv_backend *b, srv_follow *f);

/* A command for a run: "cancel", "pause", "unpause", "decide" (data as
 * cairn_journal_put_command takes it).  For a run this engine holds it is
 * carried out at once and answered when durable (*recorded false).  For a
 * run another engine holds (another node on the same journal, a `cairn
 * run`) a decision is first checked on the run as the journal has it, then
 * the command is recorded in the commands table for that engine and waited
 * for (forward.h): *recorded false once the holder has carried it out,
 * true when it is left for the next holder (none lives, or it did not
 * answer within CAIRN_SERVE_FORWARD_WAIT_MS).  CAIRN_ENOTFOUND: no such
 * run; CAIRN_ESTATE: the run has ended, the backend stops, or the holder
 * found a decision moot; a decision's refusal as cairn_approval_check
 * gives it. */
int srv_backend_command(srv_backend *b, const char *run_id, const char *type, const char *data,
                        bool *recorded, cairn_err *err);

/* A decision ("decide" data) as srv_backend_command carries it out: for a
 * caller that cannot be told which server holds its run (an approval
 * link). */
int srv_backend_decide_anywhere(srv_backend *b, const char *run_id, const char *data,
                                bool *recorded, cairn_err *err);

/* As srv_backend_command for a run this engine holds; *held false (and
 * 0, nothing done) for any other. */
int srv_backend_command_here(srv_backend *b, const char *run_id, const char *type,
                             const char *data, bool *held, cairn_err *err);

/* Open approvals, as `cairn approvals --json` lists them. */
int srv_backend_approvals(srv_backend *b, jv *out, cairn_err *err);

/* Whether by (bringing no groups) may decide step of run_id now, as
 * cairn_approval_check says on the run as the journal holds it. */
int srv_backend_approval_check(srv_backend *b, const char *run_id, const char *step,
                               const char *by, bool approve, cairn_err *err);

/* A key for purpose derived from the journal's key (journal.h,
 * cairn_journal_derive_key): the same in every server on the journal. */
int srv_backend_derive_key(srv_backend *b, const char *purpose,
                           unsigned char out[CAIRN_HASH_LEN], cairn_err *err);

#endif
