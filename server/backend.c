/*
 * backend.c - the server's one door to the engine and the journal
 * (backend.h): calls into the orchestrator, waits for durability, reads
 * through journals of its own (journal.h), and the idempotency keys.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "engine/engine.h"
#include "engine/journal.h"
#include "engine/owner.h"
#include "server/backend.h"
#include "server/forward.h"

/* Someone waiting for an event of a run to be durable. */
typedef struct waiter {
    const char *run_id;
    int64_t seq;                 /* wants an event with seq >= this */
    int64_t seen;                /* the highest seq of the run reported meanwhile */
    bool done;
    struct waiter *next;
} waiter;

/* A follower's queue of the run's durable events (backend.h). */
struct srv_follow {
    char run_id[CAIRN_RUN_ID_MAX];
    srv_followed *q;             /* in seq order */
    int n, cap;
    bool caught_up;              /* the journal was read once */
    int64_t last_read;           /* when, monotonic ms */
    struct srv_follow *next;
};

struct srv_backend {
    srv_backend_config cfg;
    char *db_path;
    cairn_engine *engine;
    pthread_t orchestrator;      /* the thread that opened the backend, to run the loop */
    atomic_bool running;         /* srv_backend_run is turning the loop */
    bool closed;                 /* the loop has ended: no call reaches it (mu) */
    atomic_bool stopping;
    atomic_int_fast64_t last_turn_ms;
    pthread_mutex_t mu;          /* waiters, calls, durable */
    pthread_cond_t cond;
    waiter *waiters;
    int sleepers;                /* threads in srv_backend_wait_event */
    srv_follow *follows;         /* runs followed */
    cairn_strmap *durable;       /* run id -> its last durable seq, for recent runs */
    pthread_mutex_t read_mu;     /* folds compile jq: one at a time */
    pthread_mutex_t idem_mu;     /* the idempotency table, starting */
    pthread_cond_t idem_cond;    /* a key's start ended */
    struct inflight *starting;   /* keys whose run a request is starting */
    cairn_journal *keys;         /* the idempotency keys and the health probe (idem_mu) */
    cairn_journal *engine_journal; /* the engine's (borrowed): its lease, for the health probe */
    srv_place *place;            /* where new runs start */
    int64_t claims_written;      /* deferred claims taken on keys (idem_mu) */
    pthread_mutex_t sync_mu;     /* the claims' group sync: */
    pthread_cond_t sync_cond;
    int64_t claims_synced;       /* claims known durable */
    bool claims_syncing;         /* a thread syncs now */
    bool claims_failed;          /* a sync failed: nothing later is known durable */
    bool sticky;
    cairn_err sticky_err;
};

/* ---- durable events -------------------------------------------------------- */

static bool ends_run(cairn_event_type t) {
    return t == CAIRN_EV_RUN_SUCCEEDED || t == CAIRN_EV_RUN_FAILED || t == CAIRN_EV_RUN_CANCELLED;
}

/* An event as its JSON text: the object srv_backend_events gives, keys in
 * canonical order, data as journaled. */
static srv_followed followed_of(const cairn_event *ev) {
    char when[40];
    cairn_buf t = {0};
    cairn_buf_printf(&t, "{\"attempt\":%d,\"data\":%s,\"seq\":%lld,\"step\":", ev->attempt,
                     ev->data ? ev->data : "null", (long long)ev->seq);
    if (ev->step) cairn_json_write_string(&t, ev->step, strlen(ev->step));
    else cairn_buf_puts(&t, "null");
    cairn_buf_printf(&t, ",\"time\":\"%s\",\"type\":\"%s\"}",
                     cairn_rfc3339(ev->time_ms, when, sizeof when), cairn_event_type_name(ev->type));
    return (srv_followed){.seq = ev->seq, .type = cairn_event_type_name(ev->type),
                          .ends = ends_run(ev->type), .text = cairn_buf_detach(&t)};
}

/* Queue ev for f (b->mu held); a queue past its bound drops the event: the
 * follower finds the gap and reads the journal. */
static void follow_push(srv_follow *f, const cairn_event *ev) {
    if (f->n >= CAIRN_SERVE_FOLLOW_QUEUE_MAX) return;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->q = cairn_realloc(f->q, (size_t)f->cap * sizeof *f->q);
    }
    f->q[f->n++] = followed_of(ev);
}

static void on_event(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    srv_backend *b = ud;
    if (b->cfg.on_event) b->cfg.on_event(ev, st, b->cfg.ud);   /* first: before anyone is told */
    pthread_mutex_lock(&b->mu);
    for (srv_follow *f = b->follows; f; f = f->next)
        if (strcmp(f->run_id, ev->run_id) == 0) {
            follow_push(f, ev);
            pthread_cond_broadcast(&b->cond);
        }
    if (cairn_strmap_count(b->durable) >= CAIRN_SERVE_RECENT_RUNS) cairn_strmap_clear(b->durable);
    cairn_strmap_put(b->durable, ev->run_id, ev->seq);
    bool wake = b->sleepers > 0;
    for (waiter *w = b->waiters; w; w = w->next) {
        if (w->done || strcmp(w->run_id, ev->run_id) != 0) continue;
        if (ev->seq > w->seen) w->seen = ev->seq;
        if (w->seen >= w->seq) w->done = wake = true;
    }
    if (wake) pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

static jv approval_links(const char *run_id, const char *step, jv approvers, int64_t expires_ms,
                         void *ud) {
    srv_backend *b = ud;
    return b->cfg.approval_links
               ? b->cfg.approval_links(run_id, step, approvers, expires_ms, b->cfg.ud) : jv_object();
}

static void on_batch(int n, void *ud) {
    srv_backend *b = ud;
    if (b->cfg.on_batch) b->cfg.on_batch(n, b->cfg.ud);
}

static void deadline_in(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* Wait (b->mu held) until w is done or the deadline passes. */
static bool wait_done(srv_backend *b, waiter *w, int timeout_ms) {
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    while (!w->done && !b->closed)   /* also before the loop turns: it will */
        if (pthread_cond_timedwait(&b->cond, &b->mu, &ts) != 0) break;
    return w->done;
}

static void waiter_add(srv_backend *b, waiter *w) {
    w->next = b->waiters;
    b->waiters = w;
}

static void waiter_remove(srv_backend *b, waiter *w) {
    for (waiter **p = &b->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            return;
        }
}

bool srv_backend_wait_event(srv_backend *b, const char *run_id, int64_t after, int timeout_ms) {
    waiter w = {.run_id = run_id, .seq = after + 1};
    pthread_mutex_lock(&b->mu);
    waiter_add(b, &w);
    b->sleepers++;
    bool got = !atomic_load(&b->stopping) && wait_done(b, &w, timeout_ms);
    b->sleepers--;
    waiter_remove(b, &w);
    pthread_mutex_unlock(&b->mu);
    return got;
}

/* ---- calls into the orchestrator ------------------------------------------ */

/* A call the poster waits for.  `fn` runs on the orchestrator; e is NULL
 * when the engine closed before it ran. */
typedef struct call {
    srv_backend *b;
    void (*fn)(cairn_engine *e, struct call *c);
    bool ran, done;
    int rc;
    cairn_err err;
    /* arguments and results, as each call needs */
    const char *hash, *run_id, *type, *data;
    const char *node;            /* a start's engine (place.h); "" here */
    jv inputs, trigger;
    cairn_workflow *wf;
    char out_hash[65];
    int64_t seq;
} call;

static void trampoline(cairn_engine *e, void *ud) {
    call *c = ud;
    if (e) c->fn(e, c);
    else c->rc = cairn_err_set(&c->err, CAIRN_ESTATE, "the server is stopping");
    pthread_mutex_lock(&c->b->mu);
    c->ran = e != NULL;
    c->done = true;
    pthread_cond_broadcast(&c->b->cond);
    pthread_mutex_unlock(&c->b->mu);
}

/* Run c->fn on the orchestrator and wait for it: here on the orchestrator's
 * own thread (also before the loop turns: the thread that opened the
 * backend is to run it); from any other, posted, so that a request that
 * arrives while the server is still starting waits for the loop rather than
 * running engine code beside it. */
static int call_sync(srv_backend *b, call *c) {
    c->b = b;
    pthread_mutex_lock(&b->mu);
    bool here = pthread_equal(pthread_self(), b->orchestrator);
    pthread_mutex_unlock(&b->mu);
    if (here && !b->closed) {
        c->fn(b->engine, c);
        c->ran = true;
        return c->rc;
    }
    pthread_mutex_lock(&b->mu);
    if (b->closed) {
        c->rc = cairn_err_set(&c->err, CAIRN_ESTATE, "the server is stopping");
    } else {
        cairn_engine_call(b->engine, trampoline, c);   /* done even if closed meanwhile */
        while (!c->done) pthread_cond_wait(&b->cond, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return c->rc;
}

/* Make the call, then wait until the events it appended (up to c->seq)
 * are durable.  The waiter is in place before the call, so a report that
 * comes before the poster wakes is not missed. */
static int call_then_wait(srv_backend *b, call *c, cairn_err *err) {
    waiter w = {.run_id = c->run_id, .seq = INT64_MAX};
    pthread_mutex_lock(&b->mu);
    waiter_add(b, &w);
    pthread_mutex_unlock(&b->mu);
    int rc = call_sync(b, c);
    pthread_mutex_lock(&b->mu);
    bool ok = rc == 0;
    if (ok) {
        w.seq = c->seq;
        w.done = w.seen >= w.seq;
        ok = wait_done(b, &w, CAIRN_SERVE_DURABLE_WAIT_MS);
    }
    waiter_remove(b, &w);
    pthread_mutex_unlock(&b->mu);
    if (rc) {
        *err = c->err;
        return rc;
    }
    if (ok) return 0;
    return cairn_err_set(err, CAIRN_EIO, "run %s: its events did not become durable (journal"
                         " failing, or the server stopping)", c->run_id);
}

/* ---- opening, running ------------------------------------------------------- */

/* A reader's journal for the server's threads (the engine's belongs to
 * the orchestrator). */
static int open_read(srv_backend *b, cairn_journal **j, cairn_err *err) {
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    return cairn_journal_open(b->db_path, &jc, j, err);
}

int srv_backend_open(const srv_backend_config *cfg, srv_backend **out, cairn_err *err) {
    srv_backend *b = cairn_calloc(1, sizeof *b);
    b->cfg = *cfg;
    b->orchestrator = pthread_self();
    b->db_path = cairn_strdup(cfg->db_path);
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->read_mu, NULL);
    pthread_mutex_init(&b->idem_mu, NULL);
    pthread_cond_init(&b->idem_cond, NULL);
    pthread_cond_init(&b->cond, NULL);
    pthread_mutex_init(&b->sync_mu, NULL);
    pthread_cond_init(&b->sync_cond, NULL);
    b->durable = cairn_strmap_new();
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_ENGINE, .sync = cfg->sync,
                               .lease_ms = cfg->lease_ms};
    cairn_engine_config ec = {.grace_ms = cfg->grace_ms, .serve = true, .on_event = on_event,
                              .on_batch = on_batch, .approval_links = approval_links, .ud = b};
    int rc = cairn_journal_open(b->db_path, &jc, &ec.journal, err);
    b->engine_journal = ec.journal;
    if (rc == 0) rc = cairn_engine_open(&ec, &b->engine, err);
    if (rc == 0) rc = open_read(b, &b->keys, err);
    if (rc == 0)
        rc = srv_place_new(b->db_path, cfg->placement, cairn_journal_owner(b->engine_journal),
                           &b->place, err);
    if (rc) {
        srv_backend_close(b);
        return rc;
    }
    atomic_store(&b->last_turn_ms, cairn_now_ms());
    *out = b;
    return 0;
}

void srv_backend_close(srv_backend *b) {
    if (b == NULL) return;
    cairn_engine_close(b->engine);
    cairn_journal_close(b->keys);
    srv_place_free(b->place);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->read_mu);
    pthread_mutex_destroy(&b->idem_mu);
    pthread_cond_destroy(&b->idem_cond);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->sync_mu);
    pthread_cond_destroy(&b->sync_cond);
    cairn_strmap_free(b->durable);
    free(b->db_path);
    free(b);
}

static void do_add_workflow(cairn_engine *e, call *c) {
    c->rc = cairn_engine_add_workflow(e, c->wf, c->out_hash, &c->err);
}

int srv_backend_add_workflow(srv_backend *b, cairn_workflow *wf, char hash[65], cairn_err *err) {
    call c = {.fn = do_add_workflow, .wf = wf};
    int rc = call_sync(b, &c);
    if (rc == 0) memcpy(hash, c.out_hash, 65);
    else *err = c.err;
    return rc;
}

int srv_backend_resume(srv_backend *b, int *taken, cairn_err *err) {
    return cairn_engine_resume(b->engine, NULL, taken, err);
}

/* The loop's heartbeat: a call that notes the time, posted by whoever asks
 * whether the engine turns. */
static void heartbeat(cairn_engine *e, void *ud) {
    srv_backend *b = ud;
    if (e) atomic_store(&b->last_turn_ms, cairn_now_ms());
}

int srv_backend_run(srv_backend *b, cairn_err *err) {
    pthread_mutex_lock(&b->mu);
    b->orchestrator = pthread_self();
    atomic_store(&b->running, true);
    pthread_mutex_unlock(&b->mu);
    int rc = cairn_engine_run(b->engine, err);
    if (rc) {
        b->sticky = true;
        b->sticky_err = *err;
    }
    /* Close the engine here: calls still queued run with e NULL and their
     * posters learn so; later calls are refused (call_sync). */
    pthread_mutex_lock(&b->mu);
    b->closed = true;
    atomic_store(&b->running, false);
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
    cairn_engine_close(b->engine);
    b->engine = NULL;
    return rc;
}

bool srv_backend_running(srv_backend *b) { return atomic_load(&b->running); }

int srv_backend_runs_held(srv_backend *b) {
    pthread_mutex_lock(&b->mu);   /* the engine is closed once `closed` is set */
    int n = b->closed ? 0 : cairn_engine_runs_held(b->engine);
    pthread_mutex_unlock(&b->mu);
    return n;
}

void srv_backend_stop(srv_backend *b) {
    atomic_store(&b->stopping, true);
    pthread_mutex_lock(&b->mu);
    if (!b->closed) {
        cairn_journal_take_over(b->engine_journal, false);   /* nothing is placed on it now */
        cairn_engine_request_stop(b->engine);
    }
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
}

void srv_backend_wake(srv_backend *b) {
    pthread_mutex_lock(&b->mu);
    if (!b->closed) cairn_engine_wake(b->engine);
    pthread_mutex_unlock(&b->mu);
}

bool srv_backend_stopping(srv_backend *b) {
    pthread_mutex_lock(&b->mu);
    bool closed = b->closed;
    pthread_mutex_unlock(&b->mu);
    return closed || atomic_load(&b->stopping);
}

bool srv_backend_healthy(srv_backend *b, int64_t within_ms, cairn_err *err) {
    if (!atomic_load(&b->running) || atomic_load(&b->stopping)) {
        cairn_err_set(err, CAIRN_ESTATE, "the engine is not running");
        return false;
    }
    if (b->sticky) {
        *err = b->sticky_err;
        return false;
    }
    if (cairn_journal_lease_state(b->engine_journal, err) != 0) return false;
    pthread_mutex_lock(&b->mu);
    if (!b->closed) cairn_engine_call(b->engine, heartbeat, b);
    pthread_mutex_unlock(&b->mu);
    int64_t deadline = cairn_now_ms() + within_ms;
    while (cairn_now_ms() - atomic_load(&b->last_turn_ms) > within_ms) {
        if (cairn_now_ms() > deadline) {
            cairn_err_set(err, CAIRN_EBUSY, "the engine has not turned for %lld ms",
                          (long long)(cairn_now_ms() - atomic_load(&b->last_turn_ms)));
            return false;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&b->idem_mu);
    cairn_err why;
    int rc = cairn_journal_takes_writes(b->keys, &why);
    pthread_mutex_unlock(&b->idem_mu);
    if (rc) cairn_err_set(err, CAIRN_EIO, "the journal takes no writes: %s", why.msg);
    return rc == 0;
}

/* ---- starting runs ------------------------------------------------------------ */

/* The last seq of run_id known durable here, or 0 (not recent, or not ours). */
static int64_t durable_seq(srv_backend *b, const char *run_id) {
    int64_t seq = 0;
    pthread_mutex_lock(&b->mu);
    if (!cairn_strmap_get(b->durable, run_id, &seq)) seq = 0;
    pthread_mutex_unlock(&b->mu);
    return seq;
}

/* Whether a read that found `have` events of run_id (-1: no run) should
 * wait for SQLite to catch up with what is durable, until deadline. */
static bool behind(srv_backend *b, const char *run_id, int64_t have, int64_t deadline) {
    if (cairn_now_ms() > deadline || have >= durable_seq(b, run_id)) return false;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return true;
}

static void do_start(cairn_engine *e, call *c) {
    c->rc = cairn_engine_start_run_on(e, c->hash, c->inputs, c->trigger, c->run_id,
                                      c->node[0] ? c->node : NULL, &c->err);
    c->inputs = c->trigger = jv_invalid();
    c->seq = 1;   /* run_created */
}

/* v (consumed) made again from its parts, sharing none with any other
 * value: jq counts references without atomics (and hashes a string into
 * it when used as a key), so a value the orchestrator takes must not share
 * a string, array or object with one the calling thread keeps - a
 * webhook's run trigger shares its strings with the delivery's answer.
 * Numbers, booleans and null are not on the heap in jq 1.6. */
static jv unshared(jv v) {
    jv out = v;
    switch (jv_get_kind(v)) {
    case JV_KIND_STRING:
        out = jv_string_sized(jv_string_value(v), jv_string_length_bytes(jv_copy(v)));
        jv_free(v);
        break;
    case JV_KIND_ARRAY:
        out = jv_array();
        jv_array_foreach(v, i, x) out = jv_array_append(out, unshared(x));
        jv_free(v);
        break;
    case JV_KIND_OBJECT:
        out = jv_object();
        jv_object_foreach(v, k, x) out = jv_object_set(out, unshared(k), unshared(x));
        jv_free(v);
        break;
    default:
        break;
    }
    return out;
}

static int start_as(srv_backend *b, const char *hash, jv inputs, jv trigger, const char *run_id,
                    cairn_err *err) {
    if (atomic_load(&b->stopping)) {
        jv_free(inputs);
        jv_free(trigger);
        return cairn_err_set(err, CAIRN_ESTATE, "the server is stopping");
    }
    char node[CAIRN_PLACE_NODE_MAX];
    srv_place_choose(b->place, node);
    call c = {.fn = do_start, .hash = hash, .run_id = run_id, .node = node,
              .inputs = unshared(inputs), .trigger = unshared(trigger)};
    int rc = call_then_wait(b, &c, err);
    srv_place_done(b->place, node);
    if (c.ran == false && rc) {   /* never reached the engine: the values are still ours */
        jv_free(c.inputs);
        jv_free(c.trigger);
    }
    return rc;
}

/* Whether run_id is in the journal (or held here, durable, not yet applied). */
static bool run_exists(srv_backend *b, const char *run_id) {
    cairn_journal *j = NULL;
    cairn_run_row row = {0};
    bool found = open_read(b, &j, NULL) == 0 && cairn_journal_get_run(j, run_id, &row, NULL) == 0;
    cairn_run_row_clear(&row);
    cairn_journal_close(j);
    return found || durable_seq(b, run_id) > 0;
}

int srv_backend_start_as(srv_backend *b, const char *hash, jv inputs, jv trigger,
                         const char *run_id, cairn_err *err) {
    return start_as(b, hash, inputs, trigger, run_id, err);
}

int srv_backend_run_ended(srv_backend *b, const char *run_id, bool *ended, cairn_err *err) {
    cairn_journal *j = NULL;
    cairn_run_row row = {0};
    int rc = open_read(b, &j, err);
    if (rc == 0) rc = cairn_journal_get_run(j, run_id, &row, err);
    if (rc == 0)
        *ended = cairn_run_status_name_ends(row.status);
    else if (rc == CAIRN_ENOTFOUND && durable_seq(b, run_id) > 0)
        rc = 0, *ended = false;   /* handed out here, not applied to SQLite yet */
    cairn_run_row_clear(&row);
    cairn_journal_close(j);
    return rc;
}

/* Wait until claim number `mine` is durable: the first thread to ask syncs
 * every claim written so far, the others wait for it, and the claims
 * written meanwhile share the next sync (group commit, as the engine's
 * writer does for events). */
static int claims_durable(srv_backend *b, int64_t mine, cairn_err *err) {
    int rc = 0;
    pthread_mutex_lock(&b->sync_mu);
    while (rc == 0 && b->claims_synced < mine) {
        if (b->claims_failed) {
            rc = cairn_err_set(err, CAIRN_EIO, "the journal's claims could not be synced");
        } else if (b->claims_syncing) {
            pthread_cond_wait(&b->sync_cond, &b->sync_mu);
        } else {
            b->claims_syncing = true;
            pthread_mutex_unlock(&b->sync_mu);
            pthread_mutex_lock(&b->idem_mu);
            int64_t upto = b->claims_written;   /* every one of these has returned */
            pthread_mutex_unlock(&b->idem_mu);
            rc = cairn_journal_sync_claims(b->keys, err);
            pthread_mutex_lock(&b->sync_mu);
            b->claims_syncing = false;
            if (rc == 0 && upto > b->claims_synced) b->claims_synced = upto;
            b->claims_failed |= rc != 0;
            pthread_cond_broadcast(&b->sync_cond);
        }
    }
    pthread_mutex_unlock(&b->sync_mu);
    return rc;
}

int srv_backend_claim(srv_backend *b, const char *space, const char *key, const char *value,
                      const char *replace, char **held, cairn_err *err) {
    pthread_mutex_lock(&b->idem_mu);
    int rc = cairn_journal_claim_deferred(b->keys, space, key, value, replace, held, err);
    int64_t mine = ++b->claims_written;
    pthread_mutex_unlock(&b->idem_mu);
    if (rc != 0 && rc != CAIRN_EEXISTS) return rc;
    int synced = claims_durable(b, mine, err);   /* also a claim found held: it may be new */
    if (synced) {
        free(*held);
        *held = NULL;
        return synced;
    }
    return rc;
}

int srv_backend_get_claim(srv_backend *b, const char *space, const char *key, char **value,
                          cairn_err *err) {
    pthread_mutex_lock(&b->idem_mu);
    int rc = cairn_journal_get_claim(b->keys, space, key, value, err);
    pthread_mutex_unlock(&b->idem_mu);
    return rc;
}

bool srv_backend_owner_alive(srv_backend *b, const char *owner) {
    pthread_mutex_lock(&b->idem_mu);
    bool alive = cairn_journal_owner_alive(b->keys, owner);
    pthread_mutex_unlock(&b->idem_mu);
    return alive;
}

/* A key whose run is being started by a request now (b->idem_mu held). */
typedef struct inflight {
    const char *key;
    struct inflight *next;
} inflight;

static bool in_flight(const srv_backend *b, const char *key) {
    for (const inflight *f = b->starting; f; f = f->next)
        if (strcmp(f->key, key) == 0) return true;
    return false;
}

static int find_request(srv_backend *b, const char *key, char run_id[CAIRN_RUN_ID_MAX],
                        char known[65], cairn_err *err) {
    pthread_mutex_lock(&b->idem_mu);
    int rc = cairn_journal_find_request(b->keys, key, run_id, known, err);
    pthread_mutex_unlock(&b->idem_mu);
    return rc;
}

/* The run of a key another server is starting (its claim's owner, alive)
 * once it is durable: CAIRN_EBUSY when it is not within the wait. */
static int await_theirs(srv_backend *b, const char *run_id, cairn_err *err) {
    int64_t deadline = cairn_now_ms() + CAIRN_SERVE_FORWARD_WAIT_MS;
    while (!run_exists(b, run_id)) {
        if (cairn_now_ms() > deadline || atomic_load(&b->stopping))
            return cairn_err_set(err, CAIRN_EBUSY, "another server is starting run %s for this"
                                 " Idempotency-Key and has not made it durable", run_id);
        struct timespec ts = {0, CAIRN_SERVE_FORWARD_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Which server starts a key's run: the one whose value "RUN OWNER" holds
 * the claim (space "idempotency"), taken over from an owner that died
 * before the run was durable.  0 with *start and run_id (the run to start,
 * or the one another server started: then it exists), or an error. */
static int keyed_run(srv_backend *b, const char *key, const char *request,
                     char run_id[CAIRN_RUN_ID_MAX], bool *start, cairn_err *err) {
    char owner[256], known[65], value[CAIRN_RUN_ID_MAX + sizeof owner + 1];
    char *held = NULL, *replace = NULL;
    cairn_owner_self(owner, sizeof owner);
    int rc = CAIRN_EBUSY;
    *start = false;
    for (int round = 0; round < CAIRN_SERVE_IDEM_TRIES; round++) {
        if ((rc = find_request(b, key, run_id, known, err)) != 0) break;
        bool found = run_id[0] != '\0';
        if (found && strcmp(known, request) != 0) {
            rc = cairn_err_set(err, CAIRN_EEXISTS, "Idempotency-Key '%s' was used for another"
                               " request (run %s)", key, run_id);
            break;
        }
        if (found && run_exists(b, run_id)) break;   /* started: it existed */
        if (!found) cairn_new_run_id(run_id);
        snprintf(value, sizeof value, "%s %s", run_id, owner);
        free(held);
        held = NULL;
        rc = srv_backend_claim(b, "idempotency", key, value, replace, &held, err);
        free(replace);
        replace = NULL;
        if (rc == 0) {                               /* ours to start */
            *start = true;
            if (!found) {
                pthread_mutex_lock(&b->idem_mu);
                rc = cairn_journal_put_request(b->keys, key, request, run_id, err);
                pthread_mutex_unlock(&b->idem_mu);
            }
            break;
        }
        if (rc != CAIRN_EEXISTS) break;
        const char *sp = held ? strchr(held, ' ') : NULL;
        size_t n = sp ? (size_t)(sp - held) : 0;
        if (n == 0 || n >= CAIRN_RUN_ID_MAX || strcmp(sp + 1, owner) == 0 ||
            !srv_backend_owner_alive(b, sp + 1)) {
            replace = held;                          /* not live: take it over */
            held = NULL;
            continue;
        }
        memcpy(run_id, held, n);
        run_id[n] = '\0';
        if ((rc = await_theirs(b, run_id, err)) != 0) break;
    }
    if (rc == CAIRN_EEXISTS && held)
        rc = cairn_err_set(err, CAIRN_EBUSY, "Idempotency-Key '%s': changed hands %d times while"
                           " starting", key, CAIRN_SERVE_IDEM_TRIES);
    free(held);
    free(replace);
    return rc;
}

/* A key whose run this server could not start (its inputs refused, the
 * journal failing): its claim is left to no live owner, so that a repeat
 * sent to any server tries again at once instead of waiting for this one. */
static void release_key(srv_backend *b, const char *key, const char *run_id) {
    char owner[256], *mine = NULL, *none = cairn_sprintf("%s -", run_id), *held = NULL;
    cairn_owner_self(owner, sizeof owner);
    mine = cairn_sprintf("%s %s", run_id, owner);
    cairn_err ignored;   /* a claim left as it is only makes a repeat wait */
    srv_backend_claim(b, "idempotency", key, none, mine, &held, &ignored);
    free(held);
    free(none);
    free(mine);
}

/* One request at a time starts a key's run in this process (the others
 * wait for it, then find the run); across servers the key's claim decides
 * (keyed_run): two starting one id could journal its run twice. */
int srv_backend_start(srv_backend *b, const char *hash, jv inputs, jv trigger,
                      const char *idem_key, const char *request, char run_id[CAIRN_RUN_ID_MAX],
                      bool *existed, cairn_err *err) {
    *existed = false;
    if (idem_key == NULL) {
        cairn_new_run_id(run_id);
        return start_as(b, hash, inputs, trigger, run_id, err);
    }
    inflight mine = {.key = idem_key};
    pthread_mutex_lock(&b->idem_mu);
    while (in_flight(b, idem_key)) pthread_cond_wait(&b->idem_cond, &b->idem_mu);
    mine.next = b->starting;
    b->starting = &mine;
    pthread_mutex_unlock(&b->idem_mu);
    bool start = false;
    int rc = keyed_run(b, idem_key, request, run_id, &start, err);
    if (rc == 0 && start) {
        rc = start_as(b, hash, inputs, trigger, run_id, err);
        inputs = trigger = jv_invalid();
        if (rc) release_key(b, idem_key, run_id);
    }
    *existed = rc == 0 && !start;
    pthread_mutex_lock(&b->idem_mu);
    for (inflight **p = &b->starting; *p; p = &(*p)->next)
        if (*p == &mine) {
            *p = mine.next;
            break;
        }
    pthread_cond_broadcast(&b->idem_cond);
    pthread_mutex_unlock(&b->idem_mu);
    jv_free(inputs);
    jv_free(trigger);
    return rc;
}

bool srv_backend_run_exists(srv_backend *b, const char *run_id) { return run_exists(b, run_id); }

/* ---- commands ------------------------------------------------------------------ */

static void do_command(cairn_engine *e, call *c) {
    c->rc = cairn_engine_command(e, c->run_id, c->type, c->data, &c->seq, &c->err);
}

int srv_backend_command_here(srv_backend *b, const char *run_id, const char *type,
                             const char *data, bool *held, cairn_err *err) {
    *held = false;
    if (atomic_load(&b->stopping)) return cairn_err_set(err, CAIRN_ESTATE, "the server is stopping");
    call c = {.fn = do_command, .run_id = run_id, .type = type, .data = data};
    int rc = call_then_wait(b, &c, err);
    *held = rc != CAIRN_ENOTFOUND || c.seq != -1;
    return *held ? rc : 0;
}

static int load_run(srv_backend *b, const char *run_id, cairn_run_state **st, cairn_err *err);

/* A decision ("decide" data) checked on the run as the journal holds it,
 * as the engine holding it will check it again: the caller hears a refusal
 * now.  *last receives the run's last seq. */
static int decision_check(srv_backend *b, const char *run_id, const char *data, int64_t *last,
                          cairn_err *err) {
    enum { STEP, BY, DECISION, GROUPS, N_FIELDS };
    static const char *const names[N_FIELDS] = {"step", "by", "decision", "groups"};
    jv d = cairn_json_parse(data, strlen(data)), f[N_FIELDS];
    for (int i = 0; i < N_FIELDS; i++)
        f[i] = jv_get_kind(d) == JV_KIND_OBJECT ? jv_object_get(jv_copy(d), jv_string(names[i]))
                                                : jv_null();
    cairn_run_state *st = NULL;
    int rc = CAIRN_EINVAL;
    if (jv_get_kind(f[STEP]) != JV_KIND_STRING || jv_get_kind(f[BY]) != JV_KIND_STRING ||
        jv_get_kind(f[DECISION]) != JV_KIND_STRING)
        cairn_err_set(err, CAIRN_EINVAL, "a decision names step, by and decision");
    else if ((rc = load_run(b, run_id, &st, err)) == 0) {
        *last = st->last_seq;
        rc = cairn_approval_check(st, jv_string_value(f[STEP]), jv_string_value(f[BY]),
                                  jv_is_valid(f[GROUPS]) ? f[GROUPS] : jv_null(),
                                  strcmp(jv_string_value(f[DECISION]), "approve") == 0, err);
    }
    cairn_run_state_free(st);
    for (int i = 0; i < N_FIELDS; i++) jv_free(f[i]);
    jv_free(d);
    return rc;
}

/* A command for a run this engine does not hold: one another engine holds
 * (a node of the same cluster, or a `cairn run`) is recorded for it and
 * waited for (forward.h); an ended run is refused. */
static int command_anywhere(srv_backend *b, const char *run_id, const char *type, const char *data,
                            bool *recorded, cairn_err *err) {
    bool held;
    *recorded = false;
    int rc = srv_backend_command_here(b, run_id, type, data, &held, err);
    if (rc || held) return rc;
    cairn_journal *j = NULL;
    cairn_run_row row = {0};
    int64_t last = 0;
    rc = open_read(b, &j, err);
    if (rc == 0) rc = cairn_journal_get_run(j, run_id, &row, err);
    if (rc == 0 && cairn_run_status_name_ends(row.status))
        rc = cairn_err_set(err, CAIRN_ESTATE, "run %s has already ended (%s)", run_id, row.status);
    else if (rc == 0 && strcmp(type, "decide") == 0)
        rc = decision_check(b, run_id, data, &last, err);
    if (rc == 0)
        rc = srv_forward_command(j, run_id, row.owner, type, data, last,
                                 CAIRN_SERVE_FORWARD_WAIT_MS, recorded, err);
    cairn_run_row_clear(&row);
    cairn_journal_close(j);
    return rc;
}

int srv_backend_command(srv_backend *b, const char *run_id, const char *type, const char *data,
                        bool *recorded, cairn_err *err) {
    return command_anywhere(b, run_id, type, data, recorded, err);
}

int srv_backend_decide_anywhere(srv_backend *b, const char *run_id, const char *data,
                                bool *recorded, cairn_err *err) {
    return command_anywhere(b, run_id, "decide", data, recorded, err);
}

/* ---- reading -------------------------------------------------------------------- */

/* A compiled definition freed under the read lock, as it was compiled. */
static void free_def(srv_backend *b, cairn_workflow *wf) {
    pthread_mutex_lock(&b->read_mu);
    cairn_workflow_free(wf);
    pthread_mutex_unlock(&b->read_mu);
}

/* Fold run_id, waiting (bounded) for a run handed out here to reach SQLite;
 * *def (may be NULL) receives the definition it pins, compiled (free_def). */
static int load_run_def(srv_backend *b, const char *run_id, cairn_run_state **st,
                        cairn_workflow **def, cairn_err *err) {
    int64_t deadline = cairn_now_ms() + CAIRN_SERVE_APPLY_WAIT_MS;
    for (;;) {
        cairn_journal *j = NULL;
        cairn_workflow *wf = NULL;
        pthread_mutex_lock(&b->read_mu);
        int rc = open_read(b, &j, err);
        if (rc == 0) rc = cairn_journal_load_run(j, run_id, st, &wf, err);
        if (def == NULL) cairn_workflow_free(wf);
        pthread_mutex_unlock(&b->read_mu);
        cairn_journal_close(j);
        int64_t have = rc == 0 ? (*st)->last_seq : rc == CAIRN_ENOTFOUND ? -1 : INT64_MAX;
        if (!behind(b, run_id, have, deadline)) {
            if (def) *def = wf;
            return rc;
        }
        if (def) free_def(b, wf);
        cairn_run_state_free(*st);
        *st = NULL;
    }
}

static int load_run(srv_backend *b, const char *run_id, cairn_run_state **st, cairn_err *err) {
    return load_run_def(b, run_id, st, NULL, err);
}

/* The engine holding run_id (runs.owner; place.h), or null. */
static jv node_of(srv_backend *b, const char *run_id) {
    cairn_journal *j = NULL;
    cairn_run_row row = {0};
    jv node = open_read(b, &j, NULL) == 0 && cairn_journal_get_run(j, run_id, &row, NULL) == 0 &&
                      row.owner ? jv_string(row.owner) : jv_null();
    cairn_run_row_clear(&row);
    cairn_journal_close(j);
    return node;
}

int srv_backend_get_run(srv_backend *b, const char *run_id, jv *out, cairn_err *err) {
    cairn_run_state *st = NULL;
    int rc = load_run(b, run_id, &st, err);
    if (rc == 0) *out = jv_object_set(cairn_run_state_to_json(st), jv_string("node"), node_of(b, run_id));
    cairn_run_state_free(st);
    return rc;
}

static jv step_json(const cairn_step *s, const cairn_step *block) {
    jv needs = jv_array();
    for (int k = 0; k < s->n_needs; k++) needs = jv_array_append(needs, jv_string(block[s->needs[k]].id));
    jv o = jv_object_set(jv_object(), jv_string("id"), jv_string(s->id));
    o = jv_object_set(o, jv_string("name"), s->name ? jv_string(s->name) : jv_null());
    o = jv_object_set(o, jv_string("uses"), jv_string(s->uses));
    o = jv_object_set(o, jv_string("needs"), needs);
    o = jv_object_set(o, jv_string("if"), jv_bool(s->if_ != NULL));
    o = jv_object_set(o, jv_string("foreach"), jv_bool(s->foreach != NULL));
    return jv_object_set(o, jv_string("compensate"), jv_bool(s->compensate != NULL));
}

int srv_backend_graph(srv_backend *b, const char *run_id, jv *out, cairn_err *err) {
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    int rc = load_run_def(b, run_id, &st, &wf, err);
    if (rc == 0) {
        jv steps = jv_array(), on_failure = jv_array();
        for (int i = 0; i < wf->n_steps; i++)
            steps = jv_array_append(steps, step_json(&wf->steps[i], wf->steps));
        for (int i = 0; i < wf->n_on_failure; i++)
            on_failure = jv_array_append(on_failure, step_json(&wf->on_failure[i], wf->on_failure));
        jv o = jv_object_set(jv_object(), jv_string("run"), jv_string(run_id));
        o = jv_object_set(o, jv_string("workflow"), jv_string(wf->name));
        o = jv_object_set(o, jv_string("def_hash"), jv_string(wf->sha256));
        o = jv_object_set(o, jv_string("steps"), steps);
        *out = jv_object_set(o, jv_string("on_failure"), on_failure);
    }
    free_def(b, wf);
    cairn_run_state_free(st);
    return rc;
}

static jv event_json(const cairn_event *ev) {
    char when[40];
    jv o = jv_object_set(jv_object(), jv_string("seq"), jv_number((double)ev->seq));
    o = jv_object_set(o, jv_string("time"), jv_string(cairn_rfc3339(ev->time_ms, when, sizeof when)));
    o = jv_object_set(o, jv_string("type"), jv_string(cairn_event_type_name(ev->type)));
    o = jv_object_set(o, jv_string("step"), ev->step ? jv_string(ev->step) : jv_null());
    o = jv_object_set(o, jv_string("attempt"), jv_number(ev->attempt));
    const char *t = ev->data ? ev->data : "null";
    return jv_object_set(o, jv_string("data"), cairn_json_parse(t, strlen(t)));
}

int srv_backend_events(srv_backend *b, const char *run_id, int64_t after, int limit, jv *out,
                       bool *ended, cairn_err *err) {
    int64_t deadline = cairn_now_ms() + CAIRN_SERVE_APPLY_WAIT_MS;
    cairn_event *evs = NULL;
    int n = 0, rc;
    for (;;) {
        cairn_journal *j = NULL;
        rc = open_read(b, &j, err);
        if (rc == 0) rc = cairn_journal_load_events(j, run_id, &evs, &n, NULL, err);
        cairn_journal_close(j);
        int64_t have = rc == 0 ? (n ? evs[n - 1].seq : 0) : rc == CAIRN_ENOTFOUND ? -1 : INT64_MAX;
        if (!behind(b, run_id, have, deadline)) break;
        cairn_events_free(evs, n);
        evs = NULL;
        n = 0;
    }
    if (rc) return rc;
    *out = jv_array();
    *ended = n > 0 && ends_run(evs[n - 1].type);
    int taken = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].seq <= after) continue;
        if (taken == limit) {
            *ended = false;   /* more to read */
            break;
        }
        *out = jv_array_append(*out, event_json(&evs[i]));
        taken++;
    }
    cairn_events_free(evs, n);
    return 0;
}

/* A run as the list's objects name it; times RFC 3339. */
static jv row_json(const cairn_run_row *row) {
    char when[40];
    jv r = jv_object();
    r = jv_object_set(r, jv_string("id"), jv_string(row->id));
    r = jv_object_set(r, jv_string("workflow"), jv_string(row->workflow ? row->workflow : ""));
    r = jv_object_set(r, jv_string("status"), jv_string(row->status ? row->status : ""));
    r = jv_object_set(r, jv_string("created_at"),
                      jv_string(cairn_rfc3339(row->created_at, when, sizeof when)));
    r = jv_object_set(r, jv_string("updated_at"),
                      jv_string(cairn_rfc3339(row->updated_at, when, sizeof when)));
    r = jv_object_set(r, jv_string("parent"), row->parent_id ? jv_string(row->parent_id) : jv_null());
    return jv_object_set(r, jv_string("node"), row->owner ? jv_string(row->owner) : jv_null());
}

/* A cursor is "CREATED_AT.ID" of the last run of the page before. */
static int parse_cursor(const char *cursor, int64_t *at, char id[CAIRN_RUN_ID_MAX], cairn_err *err) {
    const char *dot = strchr(cursor, '.');
    size_t idlen = dot ? strlen(dot + 1) : 0;
    bool ok = dot && dot > cursor && dot - cursor <= 15 && idlen > 0 && idlen < CAIRN_RUN_ID_MAX;
    for (const char *p = cursor; ok && p < dot; p++) ok = *p >= '0' && *p <= '9';
    for (const char *p = dot ? dot + 1 : ""; ok && *p; p++)
        ok = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z');
    if (!ok) return cairn_err_set(err, CAIRN_EINVAL, "cursor '%.64s' is not one this server gave", cursor);
    *at = strtoll(cursor, NULL, 10);
    memcpy(id, dot + 1, idlen + 1);
    return 0;
}

int srv_backend_list_runs(srv_backend *b, const char *status, const char *workflow,
                          const char *cursor, int limit, jv *out,
                          char next_cursor[CAIRN_SERVE_CURSOR_LEN], cairn_err *err) {
    int64_t at = 0;
    char after[CAIRN_RUN_ID_MAX] = "";
    next_cursor[0] = '\0';
    if (cursor && *cursor && parse_cursor(cursor, &at, after, err)) return CAIRN_EINVAL;
    /* one more than asked: is there a next page? */
    cairn_run_page q = {.status = status, .workflow = workflow, .after_id = after, .after_at = at,
                        .limit = limit + 1};
    cairn_journal *j = NULL;
    cairn_run_row *rows = NULL;
    int n = 0, rc = open_read(b, &j, err);
    if (rc == 0) rc = cairn_journal_page_runs(j, &q, &rows, &n, err);
    cairn_journal_close(j);
    if (rc) return rc;
    *out = jv_array();
    for (int i = 0; i < n && i < limit; i++) *out = jv_array_append(*out, row_json(&rows[i]));
    if (n > limit)   /* the next page starts after the last row given */
        snprintf(next_cursor, CAIRN_SERVE_CURSOR_LEN, "%lld.%s", (long long)rows[limit - 1].created_at,
                 rows[limit - 1].id);
    cairn_run_rows_free(rows, n);
    return 0;
}

int srv_backend_approvals(srv_backend *b, jv *out, cairn_err *err) {
    jv runs;
    char next[CAIRN_SERVE_CURSOR_LEN];
    int rc = srv_backend_list_runs(b, CAIRN_RUNS_UNFINISHED, NULL, NULL, INT32_MAX - 1,
                                   &runs, next, err);
    if (rc) return rc;
    *out = jv_array();
    jv_array_foreach(runs, k, r) {
        jv id = jv_object_get(r, jv_string("id"));
        cairn_run_state *st = NULL;
        cairn_err one;
        if (load_run(b, jv_string_value(id), &st, &one) == 0) {
            for (int i = 0; i < st->n_steps; i++) {
                const cairn_step_state *s = &st->steps[i];
                if (s->status != CAIRN_STEP_WAITING || jv_get_kind(s->approval) != JV_KIND_OBJECT)
                    continue;
                jv a = cairn_approval_to_json(s->approval);
                a = jv_object_set(a, jv_string("run"), jv_string(st->id));
                a = jv_object_set(a, jv_string("workflow"), jv_string(st->workflow ? st->workflow : ""));
                *out = jv_array_append(*out, jv_object_set(a, jv_string("step"),
                                                           jv_string(st->step_ids[i])));
            }
        }
        cairn_run_state_free(st);
        jv_free(id);
    }
    jv_free(runs);
    return 0;
}

int srv_backend_approval_check(srv_backend *b, const char *run_id, const char *step,
                               const char *by, bool approve, cairn_err *err) {
    cairn_run_state *st = NULL;
    int rc = load_run(b, run_id, &st, err);
    if (rc == 0) rc = cairn_approval_check(st, step, by, jv_null(), approve, err);
    cairn_run_state_free(st);
    return rc;
}

int srv_backend_derive_key(srv_backend *b, const char *purpose,
                           unsigned char out[CAIRN_HASH_LEN], cairn_err *err) {
    pthread_mutex_lock(&b->idem_mu);
    int rc = cairn_journal_derive_key(b->keys, purpose, out, err);
    pthread_mutex_unlock(&b->idem_mu);
    return rc;
}

/* ---- following a run ------------------------------------------------------------ */

srv_follow *srv_backend_follow(srv_backend *b, const char *run_id) {
    srv_follow *f = cairn_calloc(1, sizeof *f);
    snprintf(f->run_id, sizeof f->run_id, "%s", run_id);
    pthread_mutex_lock(&b->mu);
    f->next = b->follows;
    b->follows = f;
    pthread_mutex_unlock(&b->mu);
    return f;
}

void srv_backend_unfollow(srv_backend *b, srv_follow *f) {
    if (f == NULL) return;
    pthread_mutex_lock(&b->mu);
    for (srv_follow **p = &b->follows; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < f->n; i++) free(f->q[i].text);
    free(f->q);
    free(f);
}

/* Take the queued events that follow `after` without a gap (b->mu held).
 * *gap: the queue starts past after + 1. */
static int take_queued(srv_follow *f, int64_t after, srv_followed *out, int max, bool *gap) {
    int drop = 0, k = 0;
    while (drop < f->n && f->q[drop].seq <= after) free(f->q[drop++].text);
    while (drop + k < f->n && k < max && f->q[drop + k].seq == after + 1 + k) {
        out[k] = f->q[drop + k];
        k++;
    }
    *gap = k == 0 && drop < f->n;
    if (drop + k > 0) memmove(f->q, f->q + drop + k, (size_t)(f->n - drop - k) * sizeof *f->q);
    f->n -= drop + k;
    return k;
}

/* The run's events after `after` from the journal: how many, or -1. */
static int read_followed(srv_backend *b, const char *run_id, int64_t after, srv_followed *out,
                         int max) {
    cairn_journal *j = NULL;
    cairn_event *evs = NULL;
    int n = 0, k = 0;
    int rc = open_read(b, &j, NULL);
    if (rc == 0) rc = cairn_journal_load_events(j, run_id, &evs, &n, NULL, NULL);
    cairn_journal_close(j);
    if (rc == CAIRN_ENOTFOUND && durable_seq(b, run_id) > 0) return 0;   /* not applied yet */
    if (rc) return -1;
    for (int i = 0; i < n && k < max; i++)
        if (evs[i].seq > after) out[k++] = followed_of(&evs[i]);
    cairn_events_free(evs, n);
    return k;
}

int srv_backend_follow_next(srv_backend *b, srv_follow *f, int64_t after, srv_followed *out,
                            int max, int timeout_ms) {
    int64_t deadline = cairn_now_ms() + timeout_ms;
    for (;;) {
        bool gap;
        pthread_mutex_lock(&b->mu);
        int k = take_queued(f, after, out, max, &gap);
        pthread_mutex_unlock(&b->mu);
        if (k > 0) return k;
        int64_t now = cairn_now_ms();
        if (!f->caught_up || gap || now - f->last_read >= CAIRN_SERVE_FOLLOW_READ_MS) {
            k = read_followed(b, f->run_id, after, out, max);
            f->caught_up = true;
            f->last_read = now;
            if (k != 0) return k;
        }
        if (srv_backend_stopping(b)) return -1;
        if (now >= deadline) return 0;
        if (gap) {   /* filled once SQLite holds what the engine reported */
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
            continue;
        }
        struct timespec ts;
        deadline_in(&ts, (int)(deadline - now < 200 ? deadline - now : 200));
        pthread_mutex_lock(&b->mu);
        if (f->n == 0 && !b->closed) pthread_cond_timedwait(&b->cond, &b->mu, &ts);
        pthread_mutex_unlock(&b->mu);
    }
}
