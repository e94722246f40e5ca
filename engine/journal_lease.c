/*
 * journal_lease.c - an engine's lease on a shared journal, its heartbeat,
 * and the runs it holds (journal_lease.h).
 */
#include "engine/journal_lease.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "engine/store_pg.h"

/* A list of run ids. */
typedef struct {
    char **ids;
    int n, cap;
} id_list;

static void list_push(id_list *l, const char *id) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->ids = cairn_realloc(l->ids, (size_t)l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = cairn_strdup(id);
}

/* A set of run ids, in a list for walks (removal moves the last into the
 * hole). */
typedef struct {
    cairn_strmap *slot;          /* run id -> position in list */
    id_list list;
} id_set;

static void set_add(id_set *s, const char *id) {
    int64_t at;
    if (cairn_strmap_get(s->slot, id, &at)) return;
    list_push(&s->list, id);
    cairn_strmap_put(s->slot, id, s->list.n - 1);
}

static void set_remove(id_set *s, const char *id) {
    int64_t at;
    if (!cairn_strmap_get(s->slot, id, &at)) return;
    cairn_strmap_remove(s->slot, id);
    free(s->list.ids[at]);
    int last = --s->list.n;
    if (at != last) {
        s->list.ids[at] = s->list.ids[last];
        cairn_strmap_put(s->slot, s->list.ids[at], at);
    }
}

/* Hand the list over (the caller's), leaving it empty. */
static int list_take(id_list *l, char ***out) {
    int n = l->n;
    *out = l->ids;
    memset(l, 0, sizeof *l);
    return n;
}

static void list_free(id_list *l) {
    for (int i = 0; i < l->n; i++) free(l->ids[i]);
    free(l->ids);
}

struct cairn_lease {
    cairn_store *conn;           /* the heartbeat's own */
    char *owner;
    int64_t lease_ms;
    pthread_t thread;
    int wake[2];                 /* a pipe: a byte wakes the heartbeat (stop, take-over on) */
    bool serving;                /* the heartbeat's own: marked as taking placed runs */
    pthread_mutex_t mu;          /* everything below */
    bool stop, take_over;
    bool serve_now;              /* take-over was turned on or off: serve() at once */
    bool mine_too;               /* runs were lost to a lapse: claim our own again */
    int64_t until;               /* monotonic ms: the lease holds before this */
    bool unreachable;
    char why[CAIRN_ERR_MSG_MAX];
    cairn_strmap *slot;          /* run id -> position in held */
    id_list held;
    int64_t *epochs;             /* beside held.ids */
    id_list lost, claimed;
    cairn_strmap *lost_set;      /* the ids in lost, each once */
    id_set gone;                 /* lost, and the engine has not let go of them yet
                                    (cairn_lease_forget): not claimed again meanwhile */
    id_list placed;              /* runs placed on this engine, taken, not yet handed out */
    cairn_strmap *placing;       /* run id -> index in both lists: the runs this */
    id_list placing_ids, placing_on; /* engine creates for another, and that engine */
    id_set tried;                /* could not be resumed here: never claimed again */
    void (*news)(void *);
    void *news_ud;
};

/* ---- the runs held (under mu) --------------------------------------------------- */

static void hold_locked(cairn_lease *l, const char *run_id, int64_t epoch) {
    int64_t at;
    if (!cairn_strmap_get(l->slot, run_id, &at)) {
        list_push(&l->held, run_id);
        at = l->held.n - 1;
        l->epochs = cairn_realloc(l->epochs, (size_t)l->held.cap * sizeof *l->epochs);
        cairn_strmap_put(l->slot, run_id, at);
    }
    l->epochs[at] = epoch;
}

static bool drop_locked(cairn_lease *l, const char *run_id) {
    int64_t at;
    if (!cairn_strmap_get(l->slot, run_id, &at)) return false;
    cairn_strmap_remove(l->slot, run_id);
    free(l->held.ids[at]);
    int last = --l->held.n;
    if (at != last) {
        l->held.ids[at] = l->held.ids[last];
        l->epochs[at] = l->epochs[last];
        cairn_strmap_put(l->slot, l->held.ids[at], at);
    }
    return true;
}

void cairn_lease_hold(cairn_lease *l, const char *run_id, int64_t epoch) {
    pthread_mutex_lock(&l->mu);
    hold_locked(l, run_id, epoch);
    pthread_mutex_unlock(&l->mu);
}

bool cairn_lease_epoch(cairn_lease *l, const char *run_id, int64_t *epoch) {
    pthread_mutex_lock(&l->mu);
    int64_t at;
    bool found = cairn_strmap_get(l->slot, run_id, &at);
    if (found) *epoch = l->epochs[at];
    pthread_mutex_unlock(&l->mu);
    return found;
}

void cairn_lease_release(cairn_lease *l, const char *run_id) {
    pthread_mutex_lock(&l->mu);
    drop_locked(l, run_id);
    pthread_mutex_unlock(&l->mu);
}

void cairn_lease_let_go(cairn_lease *l, const char *run_id, bool released, bool again) {
    pthread_mutex_lock(&l->mu);
    drop_locked(l, run_id);
    if (!released) l->mine_too = true;
    else if (!again) set_add(&l->tried, run_id);
    pthread_mutex_unlock(&l->mu);
}

/* Listed lost, once however often it is lost before it is taken. */
static void lost_locked(cairn_lease *l, const char *run_id) {
    int64_t one;
    set_add(&l->gone, run_id);
    if (cairn_strmap_get(l->lost_set, run_id, &one)) return;
    cairn_strmap_put(l->lost_set, run_id, 1);
    list_push(&l->lost, run_id);
}

void cairn_lease_lose(cairn_lease *l, const char *run_id) {
    pthread_mutex_lock(&l->mu);
    drop_locked(l, run_id);
    lost_locked(l, run_id);
    pthread_mutex_unlock(&l->mu);
}

static int lose_all_locked(cairn_lease *l) {
    int n = l->held.n;
    for (int i = 0; i < n; i++) lost_locked(l, l->held.ids[i]);
    for (int i = 0; i < n; i++) free(l->held.ids[i]);
    l->held.n = 0;
    cairn_strmap_clear(l->slot);
    if (n > 0) l->mine_too = true;
    return n;
}

void cairn_lease_lose_all(cairn_lease *l) {
    pthread_mutex_lock(&l->mu);
    lose_all_locked(l);
    pthread_mutex_unlock(&l->mu);
}

int cairn_lease_take_lost(cairn_lease *l, char ***ids) {
    pthread_mutex_lock(&l->mu);
    int n = list_take(&l->lost, ids);
    if (n) cairn_strmap_clear(l->lost_set);
    pthread_mutex_unlock(&l->mu);
    return n;
}

void cairn_lease_forget(cairn_lease *l, const char *run_id) {
    pthread_mutex_lock(&l->mu);
    set_remove(&l->gone, run_id);
    pthread_mutex_unlock(&l->mu);
}

int cairn_lease_take_claimed(cairn_lease *l, char ***ids) {
    pthread_mutex_lock(&l->mu);
    int n = list_take(&l->claimed, ids);
    pthread_mutex_unlock(&l->mu);
    return n;
}

int cairn_lease_take_placed(cairn_lease *l, char ***ids) {
    pthread_mutex_lock(&l->mu);
    int n = list_take(&l->placed, ids);
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* ---- runs created for another engine ------------------------------------------- */

void cairn_lease_place(cairn_lease *l, const char *run_id, const char *node) {
    pthread_mutex_lock(&l->mu);
    list_push(&l->placing_ids, run_id);
    list_push(&l->placing_on, node);
    cairn_strmap_put(l->placing, run_id, l->placing_on.n - 1);
    pthread_mutex_unlock(&l->mu);
}

bool cairn_lease_placing(cairn_lease *l, const char *run_id, char *node, size_t len) {
    pthread_mutex_lock(&l->mu);
    int64_t at;
    bool found = cairn_strmap_get(l->placing, run_id, &at);
    if (found) {   /* out of both lists: the last pair moves into the hole */
        snprintf(node, len, "%s", l->placing_on.ids[at]);
        cairn_strmap_remove(l->placing, run_id);
        free(l->placing_ids.ids[at]);
        free(l->placing_on.ids[at]);
        int last = --l->placing_ids.n;
        l->placing_on.n--;
        if (at != last) {
            l->placing_ids.ids[at] = l->placing_ids.ids[last];
            l->placing_on.ids[at] = l->placing_on.ids[last];
            cairn_strmap_put(l->placing, l->placing_ids.ids[at], at);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return found;
}

/* ---- the lease's state ------------------------------------------------------------ */

int64_t cairn_lease_connect_deadline(void *lease) {
    cairn_lease *l = lease;
    pthread_mutex_lock(&l->mu);
    int64_t now = cairn_now_ms(), at = l->until > now ? l->until : now + l->lease_ms / CAIRN_LEASE_BEATS;
    pthread_mutex_unlock(&l->mu);
    return at;
}

bool cairn_lease_held(cairn_lease *l) {
    pthread_mutex_lock(&l->mu);
    bool held = cairn_now_ms() < l->until;
    pthread_mutex_unlock(&l->mu);
    return held;
}

int cairn_lease_state(cairn_lease *l, cairn_err *err) {
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    if (l->unreachable)
        rc = cairn_err_set(err, CAIRN_EIO, "journal unreachable: %s", l->why);
    else if (cairn_now_ms() >= l->until)
        rc = cairn_err_set(err, CAIRN_ESTATE, "lease lapsed: not renewed for %lld ms",
                           (long long)(cairn_now_ms() - l->until + l->lease_ms));
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void cairn_lease_unreachable(cairn_lease *l, const cairn_err *err) {
    pthread_mutex_lock(&l->mu);
    if (!l->unreachable) fprintf(stderr, "cairn: journal unreachable: %s\n", err->msg);
    l->unreachable = true;
    snprintf(l->why, sizeof l->why, "%s", err->msg);
    pthread_mutex_unlock(&l->mu);
}

void cairn_lease_on_news(cairn_lease *l, void (*fn)(void *), void *ud) {
    pthread_mutex_lock(&l->mu);
    l->news = fn;
    l->news_ud = ud;
    pthread_mutex_unlock(&l->mu);
}

/* Wake the heartbeat from its rest (any thread; a full pipe has a byte
 * in it already). */
static void nudge(cairn_lease *l) {
    ssize_t w = write(l->wake[1], "", 1);
    (void)w;
}

void cairn_lease_take_over(cairn_lease *l, bool on) {
    pthread_mutex_lock(&l->mu);
    l->take_over = on;
    l->serve_now = true;
    pthread_mutex_unlock(&l->mu);
    nudge(l);
}

/* Under the lock, so that cairn_lease_on_news(NULL) returning means the
 * last call is over (fn only wakes a loop: it does not block). */
static void tell(cairn_lease *l) {
    pthread_mutex_lock(&l->mu);
    if (l->news) l->news(l->news_ud);
    pthread_mutex_unlock(&l->mu);
}

/* ---- the heartbeat ------------------------------------------------------------------ */

/* After a lapse: lose the runs held that another engine claimed meanwhile.
 * The held list is read under the lock, checked without it. */
static int lose_taken(cairn_lease *l, cairn_err *err) {
    pthread_mutex_lock(&l->mu);
    int n = l->held.n;
    cairn_pg_hold *holds = cairn_calloc((size_t)n + 1, sizeof *holds);
    for (int i = 0; i < n; i++)
        holds[i] = (cairn_pg_hold){.run_id = cairn_strdup(l->held.ids[i]), .epoch = l->epochs[i]};
    pthread_mutex_unlock(&l->mu);
    int rc = cairn_pg_check_held(l->conn, l->owner, holds, n, err), lost = 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n; i++) {
        int64_t at;
        if (rc == 0 && holds[i].refused && cairn_strmap_get(l->slot, holds[i].run_id, &at) &&
            l->epochs[at] == holds[i].epoch) {
            drop_locked(l, holds[i].run_id);
            lost_locked(l, holds[i].run_id);
            lost++;
        }
        free((char *)holds[i].run_id);
    }
    pthread_mutex_unlock(&l->mu);
    free(holds);
    if (lost) fprintf(stderr, "cairn: the lease had lapsed: %d run(s) held by another engine now\n", lost);
    return rc;
}

/* Copies of list's ids at dst[*n] on. */
static void copy_ids(char **dst, int *n, const id_list *list) {
    for (int i = 0; i < list->n; i++) dst[(*n)++] = cairn_strdup(list->ids[i]);
}

/* Claim what lapsed engines held: true when a full batch came (look again
 * at once). */
static bool take_over(cairn_lease *l) {
    pthread_mutex_lock(&l->mu);
    bool on = l->take_over, mine = l->mine_too;
    /* not claimed: the runs held (when our own are looked for), the runs
     * lost whose old events may still be on their way to the writer, and
     * those that could not be resumed here */
    int n_held = 0;
    char **held = cairn_calloc((size_t)((mine ? l->held.n : 0) + l->gone.list.n +
                                        l->tried.list.n + 1), sizeof *held);
    if (mine) copy_ids(held, &n_held, &l->held);
    copy_ids(held, &n_held, &l->gone.list);
    copy_ids(held, &n_held, &l->tried.list);
    pthread_mutex_unlock(&l->mu);
    char **ids = NULL;
    int64_t *epochs = NULL;
    int n = 0;
    cairn_err err;
    int rc = on ? cairn_pg_claim_lapsed(l->conn, l->owner, CAIRN_TAKE_OVER_BATCH, mine,
                                        (const char *const *)held, n_held, &ids, &epochs, &n, &err)
                : 0;
    for (int i = 0; i < n_held; i++) free(held[i]);
    free(held);
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n; i++) {
        hold_locked(l, ids[i], epochs[i]);
        list_push(&l->claimed, ids[i]);
        free(ids[i]);
    }
    if (on && rc == 0 && n < CAIRN_TAKE_OVER_BATCH) l->mine_too = false;   /* families: n may pass it */
    pthread_mutex_unlock(&l->mu);
    free(ids);
    free(epochs);
    if (rc) fprintf(stderr, "cairn: taking over lapsed runs: %s\n", err.msg);
    if (n) tell(l);
    return n >= CAIRN_TAKE_OVER_BATCH;
}

/* One beat: renew, and what follows from how it went.  true: beat again
 * at once. */
static bool beat(cairn_lease *l) {
    int64_t sent = cairn_now_ms();
    cairn_err err;
    int rc = cairn_pg_lease_renew(l->conn, l->owner, l->lease_ms, &err);
    pthread_mutex_lock(&l->mu);
    /* lapsed at some moment up to now: the renewal itself may have waited */
    bool lapsed = cairn_now_ms() >= l->until, was_unreachable = l->unreachable;
    int lost = 0;
    if (rc) {
        if (!l->unreachable) fprintf(stderr, "cairn: journal unreachable: %s\n", err.msg);
        l->unreachable = true;
        snprintf(l->why, sizeof l->why, "%s", err.msg);
        if (cairn_now_ms() >= l->until) lost = lose_all_locked(l);
    }
    pthread_mutex_unlock(&l->mu);
    if (lost) fprintf(stderr, "cairn: the lease lapsed out of the journal's reach: %d run(s)"
                      " dropped\n", lost);
    if (rc) {
        if (lost) tell(l);
        return false;
    }
    /* before the lease counts as held again: what others took is lost */
    if (lapsed && lose_taken(l, &err) != 0) return false;
    pthread_mutex_lock(&l->mu);
    l->until = sent + l->lease_ms - l->lease_ms / 10;
    l->unreachable = false;
    pthread_mutex_unlock(&l->mu);
    if (was_unreachable || lapsed) fprintf(stderr, "cairn: the lease is renewed\n");
    if (was_unreachable || lapsed) tell(l);
    return take_over(l);
}

/* ---- runs placed on this engine -------------------------------------------------- */

/* With take-over on: marked as an engine that takes runs placed on it,
 * and listening for them (once; again at each beat until it worked).
 * Off (a server draining): no longer marked, so none is placed here. */
static void serve(cairn_lease *l) {
    pthread_mutex_lock(&l->mu);
    bool on = l->take_over;
    pthread_mutex_unlock(&l->mu);
    if (on == l->serving) return;
    cairn_err err;
    int rc = on ? cairn_pg_lease_serve(l->conn, l->owner, &err) : cairn_pg_lease_unserve(l->conn, l->owner, &err);
    if (rc == 0 && on) rc = cairn_pg_hear_placed(l->conn, &err);
    if (rc == 0) l->serving = on;
    else fprintf(stderr, "cairn: taking runs placed on this engine: %s\n", err.msg);
}

/* Claim the runs placed on this engine (while its lease holds), for the
 * orchestrator to start: true when a full batch came (look again). */
static bool take_placed(cairn_lease *l) {
    if (!l->serving || !cairn_lease_held(l)) return false;
    char **ids = NULL;
    int64_t *epochs = NULL;
    int n = 0;
    cairn_err err;
    int rc = cairn_pg_take_placed(l->conn, l->owner, CAIRN_TAKE_OVER_BATCH, &ids, &epochs, &n, &err);
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n; i++) {
        hold_locked(l, ids[i], epochs[i]);
        list_push(&l->placed, ids[i]);
        free(ids[i]);
    }
    pthread_mutex_unlock(&l->mu);
    free(ids);
    free(epochs);
    if (rc) fprintf(stderr, "cairn: taking the runs placed on this engine: %s\n", err.msg);
    if (n) tell(l);
    return n == CAIRN_TAKE_OVER_BATCH;
}

typedef enum { WOKE_BEAT, WOKE_PLACED, WOKE_STOP } woke;

/* Rest until the monotonic ms `until` (the next beat), a stop, or a run
 * placed on this engine heard of (its NOTIFY, on the lease's connection);
 * take-over turned on serves at once. */
static woke rest(cairn_lease *l, int64_t until) {
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop, now = l->serve_now;
        l->serve_now = false;
        pthread_mutex_unlock(&l->mu);
        if (stop) return WOKE_STOP;
        if (now) serve(l);
        if (l->serving && cairn_pg_placed_heard(l->conn, l->owner)) return WOKE_PLACED;
        int64_t left = until - cairn_now_ms();
        if (left <= 0) return WOKE_BEAT;
        struct pollfd fds[2] = {{.fd = l->wake[0], .events = POLLIN},
                                {.fd = l->serving ? cairn_pg_socket(l->conn) : -1, .events = POLLIN}};
        if (poll(fds, 2, (int)left) > 0 && (fds[0].revents & POLLIN)) {
            char drain[64];
            while (read(l->wake[0], drain, sizeof drain) > 0) {}
        }
    }
}

static void *heartbeat(void *arg) {
    cairn_lease *l = arg;
    int64_t next = cairn_now_ms() + l->lease_ms / CAIRN_LEASE_BEATS;
    for (;;) {
        woke w = rest(l, next);
        if (w == WOKE_STOP) break;
        bool again = w == WOKE_PLACED ? take_placed(l) : false;
        if (w == WOKE_BEAT) {
            serve(l);
            again = beat(l);
            again |= take_placed(l);   /* placed while the NOTIFY went unheard */
            next = cairn_now_ms() + l->lease_ms / CAIRN_LEASE_BEATS;
        }
        if (again) next = cairn_now_ms();
    }
    return NULL;
}

/* ---- starting and stopping ------------------------------------------------------------ */

int cairn_lease_start(const char *url, const char *owner, int64_t lease_ms, cairn_lease **out,
                      cairn_err *err) {
    *out = NULL;
    cairn_lease *l = cairn_calloc(1, sizeof *l);
    l->owner = cairn_strdup(owner);
    l->lease_ms = lease_ms;
    l->slot = cairn_strmap_new();
    l->lost_set = cairn_strmap_new();
    l->gone.slot = cairn_strmap_new();
    l->placing = cairn_strmap_new();
    l->wake[0] = l->wake[1] = -1;
    l->tried.slot = cairn_strmap_new();
    pthread_mutex_init(&l->mu, NULL);
    int64_t sent = cairn_now_ms();
    l->until = sent + lease_ms - lease_ms / 10;   /* the first connection waits no longer */
    cairn_pg_bound bound = {cairn_lease_connect_deadline, l};
    int rc = pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) == 0
                 ? 0 : cairn_err_set(err, CAIRN_EIO, "cannot make the lease's wake pipe");
    if (rc == 0)
        rc = cairn_store_open_pg_bounded(url, CAIRN_PG_CREATE, CAIRN_SYNC_FULL, &bound, &l->conn, err);
    if (rc == 0) rc = cairn_pg_lease_renew(l->conn, owner, lease_ms, err);
    if (rc == 0 && pthread_create(&l->thread, NULL, heartbeat, l) != 0)
        rc = cairn_err_set(err, CAIRN_EIO, "cannot start the lease's heartbeat thread");
    else if (rc == 0)
        pthread_setname_np(l->thread, "cairn-lease");
    if (rc) {
        cairn_store_close(l->conn);
        l->conn = NULL;
        l->stop = true;   /* no thread to join */
        cairn_lease_stop(l);
        return rc;
    }
    *out = l;
    return 0;
}

void cairn_lease_stop(cairn_lease *l) {
    if (l == NULL) return;
    pthread_mutex_lock(&l->mu);
    bool running = !l->stop;
    l->stop = true;
    pthread_mutex_unlock(&l->mu);
    if (running) {
        nudge(l);
        pthread_join(l->thread, NULL);
    }
    if (l->conn) cairn_pg_lease_end(l->conn, l->owner, NULL);
    cairn_store_close(l->conn);
    pthread_mutex_destroy(&l->mu);
    for (int i = 0; i < 2; i++)
        if (l->wake[i] >= 0) close(l->wake[i]);
    cairn_strmap_free(l->slot);
    cairn_strmap_free(l->lost_set);
    cairn_strmap_free(l->gone.slot);
    list_free(&l->gone.list);
    cairn_strmap_free(l->tried.slot);
    list_free(&l->tried.list);
    list_free(&l->held);
    list_free(&l->lost);
    list_free(&l->claimed);
    list_free(&l->placed);
    list_free(&l->placing_ids);
    list_free(&l->placing_on);
    cairn_strmap_free(l->placing);
    free(l->epochs);
    free(l->owner);
    free(l);
}
