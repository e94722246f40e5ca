/*
 * store_sqlite_index.c - the event index of the SQLite journal, and loading
 * a run through it.
 *
 * The event index.  Loading a run reads its events by (run_id, seq); a
 * B-tree on that key, kept up to date by every append, costs each commit one
 * more page per run it touches, and with many runs in flight those pages lie
 * all over the index: it doubled what the engine wrote per step.  An entry
 * per event added in bulk still cost the writer a B-tree descent per event.
 * So the index holds a row per run per stretch of the journal:
 *
 *   event_index (run_id, first_seq) -> ids  the run's events first_seq,
 *                                           first_seq + 1, ... with id <= upto,
 *                                           their ids packed (common/idlist.h)
 *   index_state.upto                        how far event_index reaches
 *   the tail: events with id > upto         at most CAIRN_EVENT_INDEX_BATCH
 *                                           of them, found by a short scan
 *
 * An append that takes the tail to CAIRN_EVENT_INDEX_BATCH events indexes it
 * in the same transaction: each run's events grouped in id order, and the
 * rows go in in run order.  The connection that appended the tail has
 * grouped it as the events went in (struct sq_tail); it reads the tail back
 * in one pass only when it cannot vouch for having seen it all.  Every connection that
 * writes indexes the tail when it opens, so recovery finds an empty one.
 * Readers see rows and upto change in one commit, and read a run's rows and
 * the tail in one snapshot.
 *
 * With no unique index on (run_id, seq), the store checks sequence numbers
 * itself: an event must follow its run's last one (seq + 1), else the whole
 * batch is refused, as a second engine writing the same run would be.  The
 * last seq of each run in flight is kept in memory (last_seq), learned from
 * run_created or from one query, and forgotten when the run ends; a commit
 * by another connection that appended events (PRAGMA data_version, then the
 * newest event id) empties it, and so does a failed append, whose numbers
 * never reached the disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/idlist.h"
#include "common/mem.h"
#include "engine/store_sqlite_int.h"

#define EVENT_COLUMNS "seq, time, type, step, attempt, data, hash"
static const char load_rows_sql[] =
    "SELECT first_seq, ids FROM event_index WHERE run_id = ? ORDER BY first_seq";
static const char load_one_sql[] =
    "SELECT " EVENT_COLUMNS " FROM events WHERE id = ? AND run_id = ?";
static const char load_tail_sql[] =
    "SELECT " EVENT_COLUMNS " FROM events WHERE id > ? AND run_id = ? ORDER BY id";
static const char load_v1_sql[] =
    "SELECT " EVENT_COLUMNS " FROM events WHERE run_id = ? ORDER BY seq";

/* One run's events in a stretch of the tail: consecutive seqs, their ids. */
typedef struct {
    char *run_id;
    int64_t first_seq, last_seq, last_id;
    cairn_buf ids;
} stretch;

/* The tail grouped by run: a stretch per run (per stretch of consecutive
 * seqs), found through `at`. */
typedef struct {
    cairn_strmap *at;    /* run id -> index in v of its latest stretch */
    stretch *v;
    int n, cap;
} grouping;

/* What this connection appended since it last indexed, grouped as it went
 * in, so that indexing need not read the tail back: known while it holds
 * every event with from < id <= last_id, which is the whole tail when from
 * is upto and last_id the newest event.  Anything it cannot vouch for (an
 * append rolled back or nested in a batch, another connection's commit,
 * an id not one past the last, a break in a run's seqs) makes it unknown,
 * and the next index reads the tail from the table as before. */
struct sq_tail {
    grouping g;
    int64_t from, last_id;
    bool known;
};

static int cmp_stretch(const void *a, const void *b) {
    return strcmp(((const stretch *)a)->run_id, ((const stretch *)b)->run_id);
}

/* Empty g, keeping its map (free: let go of that too). */
static void grouping_clear(grouping *g, bool free_map) {
    for (int i = 0; i < g->n; i++) {
        free(g->v[i].run_id);
        cairn_buf_free(&g->v[i].ids);
    }
    free(g->v);
    g->v = NULL;
    g->n = g->cap = 0;
    if (free_map) cairn_strmap_free(g->at);
    else cairn_strmap_clear(g->at);
}

/* Start a new stretch for run at (seq, id). */
static void new_stretch(grouping *g, const char *run, int64_t seq) {
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->v = cairn_realloc(g->v, (size_t)g->cap * sizeof *g->v);
    }
    g->v[g->n] = (stretch){.run_id = cairn_strdup(run), .first_seq = seq, .ids = CAIRN_BUF_INIT};
    cairn_strmap_put(g->at, run, g->n++);
}

static void add_id(stretch *x, int64_t seq, int64_t id) {
    cairn_idlist_put(&x->ids, x->last_id, id);
    x->last_id = id;
    x->last_seq = seq;
}

static int write_stretch(sqlite_store *s, const stretch *x) {
    sqlite3_stmt *st = s->stmt[ST_INDEX_ROW];
    sqlite3_bind_text(st, 1, x->run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, x->first_seq);
    sqlite3_bind_blob(st, 3, x->ids.data, (int)x->ids.len, SQLITE_STATIC);
    return sq_step_done(st);
}

/* Add the event at (run, seq, id) to its run's stretch, starting one (and
 * writing out the one before) where the seqs do not follow on. */
static int add_to_stretch(sqlite_store *s, grouping *g, const char *run, int64_t seq,
                          int64_t id) {
    int64_t k;
    if (!cairn_strmap_get(g->at, run, &k)) {
        new_stretch(g, run, seq);
        k = g->n - 1;
    } else if (seq != g->v[k].last_seq + 1) {
        stretch *x = &g->v[k];
        int rc = write_stretch(s, x);
        if (rc) return rc;
        cairn_buf_reset(&x->ids);
        x->first_seq = seq;
        x->last_id = 0;
    }
    add_id(&g->v[k], seq, id);
    return 0;
}

/* Group the events with upto < id <= through by reading them back. */
static int read_tail(sqlite_store *s, int64_t through, grouping *g) {
    sqlite3_stmt *st = s->stmt[ST_TAIL_ROWS];
    sqlite3_bind_int64(st, 1, s->upto);
    sqlite3_bind_int64(st, 2, through);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = add_to_stretch(s, g, (const char *)sqlite3_column_text(st, 0),
                            sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
        if (rc) break;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

void sq_tail_forget(sqlite_store *s) {
    if (s->tail) s->tail->known = false;
}

/* The tail is empty from `from` on (everything up to it is indexed). */
static void tail_restart(sqlite_store *s, int64_t from) {
    if (s->tail == NULL) {
        s->tail = cairn_calloc(1, sizeof *s->tail);
        s->tail->g.at = cairn_strmap_new();
    }
    grouping_clear(&s->tail->g, false);
    s->tail->from = s->tail->last_id = from;
    s->tail->known = true;
}

void sq_tail_free(sqlite_store *s) {
    if (s->tail == NULL) return;
    grouping_clear(&s->tail->g, true);
    free(s->tail);
    s->tail = NULL;
}

void sq_tail_note(sqlite_store *s, const char *run, int64_t seq, int64_t id) {
    struct sq_tail *t = s->tail;
    int64_t k;
    if (t == NULL || !t->known) return;
    if (id != t->last_id + 1) {
        t->known = false;
        return;
    }
    if (!cairn_strmap_get(t->g.at, run, &k)) {
        new_stretch(&t->g, run, seq);
        k = t->g.n - 1;
    } else if (seq != t->g.v[k].last_seq + 1) {   /* a second stretch: read the table */
        t->known = false;
        return;
    }
    add_id(&t->g.v[k], seq, id);
    t->last_id = id;
}

/* Index the events with upto < id <= through and move upto: one row per
 * run (per stretch of consecutive seqs), written in run order.  Inside the
 * caller's transaction.  The events come from the tail this connection
 * kept when it holds them all, else from the table. */
int sq_index_tail(sqlite_store *s, int64_t through) {
    struct sq_tail *t = s->tail;
    bool kept = t && t->known && t->from == s->upto && t->last_id == through;
    grouping read = {.at = cairn_strmap_new()}, *g = kept ? &t->g : &read;
    int rc = kept ? 0 : read_tail(s, through, g);
    if (rc == 0) qsort(g->v, (size_t)g->n, sizeof *g->v, cmp_stretch);
    for (int i = 0; rc == 0 && i < g->n; i++) rc = write_stretch(s, &g->v[i]);
    if (rc == 0) {
        sqlite3_stmt *st = s->stmt[ST_SET_UPTO];
        sqlite3_bind_int64(st, 1, through);
        rc = sq_step_done(st);
    }
    grouping_clear(&read, true);
    if (rc == 0) tail_restart(s, through);
    else sq_tail_forget(s);
    return rc;
}

/* Read upto (and the last event id) as the transaction sees them. */
static int read_upto(sqlite_store *s, int64_t *last_id) {
    sqlite3_stmt *st = s->stmt[ST_GET_UPTO];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->upto = sqlite3_column_int64(st, 0);
        *last_id = sqlite3_column_int64(st, 1);
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    return rc;
}

/* A connection that writes starts with the whole journal indexed.  The
 * write lock is taken only when there is a tail to index.  The data version
 * is read first: a commit by another connection after it, however soon,
 * makes the next append read upto again. */
int sq_catch_up(sqlite_store *s, cairn_err *err) {
    int64_t last = 0;
    int rc;
    s->last_seq = cairn_strmap_new();
    s->data_version = sq_step_int(s->stmt[ST_DATA_VERSION], 0, &rc);
    if (rc == SQLITE_OK) rc = read_upto(s, &last);
    if (rc == SQLITE_OK && last > s->upto) {
        rc = sq_step_done(s->stmt[ST_BEGIN]);
        if (rc == 0) rc = read_upto(s, &last);   /* again, under the lock */
        if (rc == 0 && last > s->upto) rc = sq_index_tail(s, last);
        if (rc == 0) rc = sq_step_done(s->stmt[ST_COMMIT]);
        if (rc == 0) s->upto = last;
    }
    if (rc) {
        sq_db_error(s, err, "indexing the journal");
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return CAIRN_EIO;
    }
    s->last_event_id = last;
    tail_restart(s, last);
    return 0;
}

/* Catch up with what another connection committed since this one's last
 * append: upto may have moved (a connection that opens indexes the tail),
 * and if events were appended (a second engine), the runs' last seqs known
 * here may be stale.  Most such commits append none (a claim, a command):
 * the newest event id tells.  Inside the append's transaction. */
int sq_forget_if_changed(sqlite_store *s) {
    int rc;
    int64_t v = sq_step_int(s->stmt[ST_DATA_VERSION], 0, &rc), last_id = 0;
    if (rc != SQLITE_OK || v == s->data_version) return rc;
    s->data_version = v;
    int64_t upto = s->upto;
    rc = read_upto(s, &last_id);
    bool appended = rc == SQLITE_OK && last_id != s->last_event_id;
    if (appended) {
        cairn_strmap_clear(s->last_seq);
        s->last_event_id = last_id;
    }
    if (rc != SQLITE_OK || appended || upto != s->upto) sq_tail_forget(s);   /* not ours */
    return rc;
}

/* A run's last seq as the journal has it: its last index row, then the tail. */
static int last_seq_in_journal(sqlite_store *s, const char *run_id, int64_t *last) {
    sqlite3_stmt *st = s->stmt[ST_LAST_ROW];
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *last = 0;
    if (rc == SQLITE_ROW) {
        long count = cairn_idlist_count(sqlite3_column_blob(st, 1),
                                        (size_t)sqlite3_column_bytes(st, 1));
        *last = sqlite3_column_int64(st, 0) + count - 1;
        rc = count > 0 ? SQLITE_OK : SQLITE_CORRUPT;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_OK) return rc;
    st = s->stmt[ST_TAIL_MAX];
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, s->upto);
    int64_t tail = sq_step_int(st, 0, &rc);
    sqlite3_clear_bindings(st);
    if (tail > *last) *last = tail;
    return rc;
}

/* The seq the run's next event must carry; a run not in memory is looked up
 * in the journal once. */
int sq_next_seq(sqlite_store *s, const char *run_id, int64_t *next) {
    int64_t last;
    int rc = SQLITE_OK;
    if (!cairn_strmap_get(s->last_seq, run_id, &last)) rc = last_seq_in_journal(s, run_id, &last);
    *next = last + 1;
    return rc;
}

/* ---- loading a run ------------------------------------------------------ */

/* A run's events as they are read, in seq order. */
typedef struct {
    const char *run_id;
    cairn_event *v;
    int n, cap;
    int64_t bad_seq;    /* the event the index lists and the events do not hold */
} event_list;

/* Append the row st stands on (EVENT_COLUMNS). */
static cairn_event *add_event(event_list *l, sqlite3_stmt *st) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = cairn_realloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    cairn_event *ev = &l->v[l->n++];
    memset(ev, 0, sizeof *ev);
    snprintf(ev->run_id, sizeof ev->run_id, "%s", l->run_id);
    ev->seq = sqlite3_column_int64(st, 0);
    ev->time_ms = sqlite3_column_int64(st, 1);
    ev->type = cairn_event_type_parse((const char *)sqlite3_column_text(st, 2));
    ev->step = sq_col_text(st, 3);
    ev->attempt = sqlite3_column_int(st, 4);
    ev->data = sq_col_text(st, 5);
    ev->data_len = ev->data ? (size_t)sqlite3_column_bytes(st, 5) : 0;
    if (sqlite3_column_bytes(st, 6) == CAIRN_HASH_LEN)
        memcpy(ev->hash, sqlite3_column_blob(st, 6), CAIRN_HASH_LEN);
    return ev;
}

/* Every row of st (bound by the caller); SQLITE_DONE at the end. */
static int add_rows(event_list *l, sqlite3_stmt *st) {
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) add_event(l, st);
    sqlite3_reset(st);
    return rc;
}

/* The events one index row lists: first_seq, first_seq + 1, ... by id. */
static int add_indexed(sqlite_store *s, event_list *l, int64_t first_seq,
                       const unsigned char *ids, size_t len) {
    sqlite3_stmt *one = sq_kept(s, &s->load_one, load_one_sql);
    if (one == NULL) return SQLITE_ERROR;
    size_t pos = 0;
    int64_t id = 0;
    int rc = SQLITE_OK;
    for (int64_t seq = first_seq; rc == SQLITE_OK && pos < len; seq++) {
        l->bad_seq = seq;
        if (cairn_idlist_next(ids, len, &pos, id, &id) != 0) return SQLITE_CORRUPT;
        sqlite3_bind_int64(one, 1, id);
        sqlite3_bind_text(one, 2, l->run_id, -1, SQLITE_STATIC);
        /* not there, another run's, or another seq: the index is wrong */
        if (sqlite3_step(one) != SQLITE_ROW || add_event(l, one)->seq != seq) rc = SQLITE_CORRUPT;
        sqlite3_reset(one);
    }
    return rc;
}

/* Index rows, then the tail, read in one snapshot (a savepoint), so that a
 * commit that indexes the tail meanwhile can neither hide events nor show
 * them twice. */
static int load_indexed(sqlite_store *s, event_list *l) {
    sqlite3_stmt *upto = sq_kept(s, &s->load_upto, "SELECT upto FROM index_state");
    sqlite3_stmt *rows = sq_kept(s, &s->load_rows, load_rows_sql);
    sqlite3_stmt *tail = sq_kept(s, &s->load_tail, load_tail_sql);
    sqlite3_stmt *begin = sq_kept(s, &s->load_begin, "SAVEPOINT load");
    sqlite3_stmt *end = sq_kept(s, &s->load_end, "RELEASE load");
    if (!upto || !rows || !tail || !begin || !end || sq_step_done(begin) != 0) return SQLITE_ERROR;
    int rc;
    int64_t after = sq_step_int(upto, 0, &rc);
    sqlite3_bind_text(rows, 1, l->run_id, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && (rc = sqlite3_step(rows)) == SQLITE_ROW)
        rc = add_indexed(s, l, sqlite3_column_int64(rows, 0), sqlite3_column_blob(rows, 1),
                         (size_t)sqlite3_column_bytes(rows, 1));
    sqlite3_reset(rows);
    if (rc == SQLITE_DONE) {
        sqlite3_bind_int64(tail, 1, after);
        sqlite3_bind_text(tail, 2, l->run_id, -1, SQLITE_STATIC);
        rc = add_rows(l, tail);
    }
    sq_step_done(end);
    return rc;
}

int sq_load_events(cairn_store *base, const char *run_id, cairn_event **out, int *n,
                          cairn_err *err) {
    sqlite_store *s = (sqlite_store *)base;
    event_list l = {.run_id = run_id};
    int rc;
    if (s->version == CAIRN_SCHEMA_V1) {   /* read-only: a writer upgrades at open */
        sqlite3_stmt *st = sq_kept(s, &s->load_rows, load_v1_sql);
        if (st) sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
        rc = st ? add_rows(&l, st) : SQLITE_ERROR;
    } else {
        rc = load_indexed(s, &l);
    }
    if (rc != SQLITE_DONE) {
        cairn_events_free(l.v, l.n);
        if (rc == SQLITE_CORRUPT)
            return cairn_err_set(err, CAIRN_ECORRUPT, "%s: run %s: event %lld is not where the"
                                 " event index puts it (events deleted, moved or added behind"
                                 " the journal's back)", s->path, run_id, (long long)l.bad_seq);
        return sq_db_error(s, err, "reading events");
    }
    *out = l.v ? l.v : cairn_calloc(1, sizeof *l.v);
    *n = l.n;
    return 0;
}
