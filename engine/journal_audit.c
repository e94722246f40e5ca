/*
 * journal_audit.c - what `cairn verify`, `export` and `import` need of the
 * journal beyond reading runs (journal.h, "audit").
 *
 * The runs a journal holds are listed from its events as well as from its
 * runs table (the store's run_ids), so that a run whose row was deleted is
 * still found.
 *
 * Verifying every run reads the events once, in id order (the order they
 * were appended), in one read transaction with the runs rows and, where
 * the store keeps one, the event index (store.h, scan: SQLite's in
 * store_sqlite_scan.c, PostgreSQL's in store_pg_audit.c), and folds each
 * run as its events go by; a
 * run that ends is checked against its row and its state dropped.  Loading
 * runs one by one instead cost a B-tree descent per event through the
 * index, on pages far apart when runs ran side by side.  The pass only ever
 * says "ok": a run that does anything unexpected in it (an event out of seq
 * order or after its end, an event the index does not list where its seq
 * says, a broken link, a fold or row that does not check) is checked again
 * alone (cairn_journal_verify_run), which says what is wrong exactly as
 * before.  So the pass must prove what a load would: the index lists
 * exactly the run's events up to index_state.upto in seq order, and the
 * rest follow in id order, so a load reads the very events the pass
 * folded.
 *
 * A store without an event index (PostgreSQL's) gives none, and every
 * event counts as the tail.  The definitions the runs pin are read before
 * the events (the store's one connection streams them), so the pass asks
 * nothing of the store while they come.  A store without scan has its runs
 * verified one by one.
 */
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "common/idlist.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "engine/journal_int.h"

void cairn_journal_ids_free(char **ids, bool *in_runs, int n) {
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(in_runs);
}

int cairn_journal_run_ids(cairn_journal *j, char ***ids, bool **in_runs, int *n, cairn_err *err) {
    return j->reader->ops->run_ids(j->reader, ids, in_runs, n, err);
}

static void hex_of(const unsigned char *p, int n, char *hex) {
    for (int i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", p[i]);
}

void cairn_journal_identity(cairn_journal *j, char id[CAIRN_JOURNAL_ID_HEX + 1],
                            char key_check[2 * CAIRN_HASH_LEN + 1]) {
    cairn_err err;
    char *v = NULL;
    id[0] = key_check[0] = '\0';
    if (j->reader->ops->get_meta && j->reader->ops->get_meta(j->reader, "journal_id", &v, &err) == 0)
        snprintf(id, CAIRN_JOURNAL_ID_HEX + 1, "%s", v);
    free(v);
    v = NULL;
    if (j->reader->ops->get_meta && j->reader->ops->get_meta(j->reader, "key_check", &v, &err) == 0)
        snprintf(key_check, 2 * CAIRN_HASH_LEN + 1, "%s", v);
    free(v);
}

int cairn_journal_key_of(const char *where, cairn_chain **chain,
                         char key_check[2 * CAIRN_HASH_LEN + 1], cairn_err *err) {
    unsigned char key[32], mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    *chain = NULL;
    int rc = cairn_journal_key(where, false, key, err);
    if (rc) return rc;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)CAIRN_KEY_CHECK_TEXT,
         strlen(CAIRN_KEY_CHECK_TEXT), mac, &n);
    hex_of(mac, CAIRN_HASH_LEN, key_check);
    *chain = cairn_chain_new(key, 32);
    memset(key, 0, sizeof key);
    return 0;
}

int cairn_journal_import(cairn_journal *j, const cairn_workflow *wf, cairn_event *const *evs,
                         int n, cairn_err *err) {
    cairn_run_row row;
    if (n == 0) return cairn_err_set(err, CAIRN_EINVAL, "nothing to import");
    int rc = j->reader->ops->get_run(j->reader, evs[0]->run_id, &row, err);
    if (rc == 0) {
        cairn_run_row_clear(&row);
        return cairn_err_set(err, CAIRN_EEXISTS, "%s: run %s is in this journal already;"
                             " nothing was written", j->where, evs[0]->run_id);
    }
    if (rc != CAIRN_ENOTFOUND) return rc;
    rc = cairn_journal_put_definition(j, wf, err);
    if (rc == 0) rc = j->reader->ops->append(j->reader, evs, n, err);
    return rc;
}

/* ---- verify: every run in one pass over the events ------------------------ */

void cairn_run_verdict_clear(cairn_run_verdict *v) {
    free(v->err);
    v->err = NULL;
}

void cairn_run_verdicts_free(cairn_run_verdict *v, int n) {
    for (int i = 0; i < n; i++) cairn_run_verdict_clear(&v[i]);
    free(v);
}

static void verdict_failed(cairn_run_verdict *v, int rc, const cairn_err *err) {
    v->rc = rc;
    v->err = cairn_malloc(sizeof *v->err);
    *v->err = *err;
}

/* The row against the fold: 0 and the verdict's head, or why not. */
static int settle_verdict(cairn_run_verdict *v, const cairn_run_row *row,
                          const cairn_run_state *st, cairn_err *err) {
    int rc = cairn_run_row_check(row, st, err);
    if (rc == 0) {
        v->rc = 0;
        v->forked = st->fork_run != NULL;
        v->last_seq = st->last_seq;
        memcpy(v->head, st->head, CAIRN_HASH_LEN);
    }
    return rc;
}

void cairn_journal_verify_run(cairn_journal *j, const char *run_id, bool has_row,
                              cairn_run_verdict *v) {
    cairn_run_state *st = NULL;
    cairn_run_row row;
    cairn_err err;
    memset(v, 0, sizeof *v);
    snprintf(v->run_id, sizeof v->run_id, "%s", run_id);
    v->has_row = has_row;
    if (!has_row) {
        v->rc = CAIRN_ENOTFOUND;
        return;
    }
    int rc = cairn_journal_load_run(j, run_id, &st, NULL, &err);
    if (rc == 0 && (rc = cairn_journal_get_run(j, run_id, &row, &err)) == 0) {
        rc = settle_verdict(v, &row, st, &err);
        cairn_run_row_clear(&row);
    }
    if (rc) verdict_failed(v, rc, &err);
    cairn_run_state_free(st);
}

/* A run as the pass meets it. */
enum { SCAN_NEW, SCAN_FOLDING, SCAN_DONE, SCAN_ALONE };

typedef struct {
    cairn_run_row row;           /* its runs row (id NULL: none) */
    int state;                   /* SCAN_*; SCAN_ALONE: checked on its own afterwards */
    cairn_run_state *st;         /* SCAN_FOLDING */
    const cairn_strmap *step_at; /* its definition's step id -> index */
    int64_t *index;              /* the event index: the id of seq k at [k - 1] */
    int64_t n_index, indexed;    /* its length; events met with ids it covers */
    cairn_run_verdict v;         /* SCAN_DONE, or held when the pass ends */
} scan_run;

typedef struct {
    cairn_journal *j;
    cairn_strmap *by_id;         /* run id -> index in runs */
    scan_run *runs;
    int n, cap, held;
    cairn_strmap *defs;          /* def hash -> index in steps, or -1: not to be had */
    char ***steps;
    int *n_steps, n_defs;
    cairn_strmap **step_at;      /* per definition: step id -> its index */
    jv empty;                    /* {}: the data the fold gets of most step events */
    int64_t upto;                /* the event index covers ids up to this */
    bool cached_only;            /* the store streams events: read no definition now */
} scan;

static scan_run *scan_add(scan *s, const char *run_id) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->runs = cairn_realloc(s->runs, (size_t)s->cap * sizeof *s->runs);
    }
    scan_run *r = &s->runs[s->n];
    memset(r, 0, sizeof *r);
    snprintf(r->v.run_id, sizeof r->v.run_id, "%s", run_id);
    cairn_strmap_put(s->by_id, run_id, s->n++);
    return r;
}

static scan_run *scan_find(scan *s, const char *run_id) {
    int64_t k;
    return cairn_strmap_get(s->by_id, run_id, &k) ? &s->runs[k] : NULL;
}

/* A runs row, moved into the pass. */
static void scan_row(void *ud, cairn_run_row *row) {
    scan_run *r = scan_add(ud, row->id);
    r->row = *row;
    r->v.has_row = true;
}

/* One event_index row of a run with a runs row: its ids at seqs first_seq
 * on.  Rows that do not follow on from the one before leave the run to be
 * checked alone (where the load says what is wrong). */
static void scan_index_row(scan_run *r, int64_t first_seq, const unsigned char *p, size_t len) {
    long count = cairn_idlist_count(p, len);
    if (r->state == SCAN_ALONE) return;
    if (count < 0 || first_seq != r->n_index + 1) {
        r->state = SCAN_ALONE;
        return;
    }
    r->index = cairn_realloc(r->index, (size_t)(r->n_index + count + 1) * sizeof *r->index);
    size_t pos = 0;
    int64_t id = 0;
    while (cairn_idlist_next(p, len, &pos, id, &id) == 0) r->index[r->n_index++] = id;
}

static void scan_indexed(void *ud, int64_t upto) {
    scan *s = ud;
    s->upto = upto;
}

static void scan_index_rows(void *ud, const char *run_id, int64_t first_seq,
                            const unsigned char *ids, size_t len) {
    scan_run *r = scan_find(ud, run_id);
    if (r && r->v.has_row) scan_index_row(r, first_seq, ids, len);
}

/* The step ids of a definition, its source checked once however many
 * runs pin it; NULL when it cannot be had (the run is checked alone, and
 * its load says why). */
static char **scan_steps(scan *s, const char *hash, int *n, cairn_strmap **at) {
    int64_t k;
    bool known = cairn_strmap_get(s->defs, hash, &k);
    if (!known && s->cached_only) return NULL;
    if (!known) {
        cairn_err err;
        int count = 0;
        char **ids = cairn_journal_pinned_steps(s->j, hash, NULL, &count, &err);
        k = ids ? s->n_defs : -1;
        if (ids) {
            size_t grow = (size_t)(s->n_defs + 1);
            s->steps = cairn_realloc(s->steps, grow * sizeof *s->steps);
            s->n_steps = cairn_realloc(s->n_steps, grow * sizeof *s->n_steps);
            s->step_at = cairn_realloc(s->step_at, grow * sizeof *s->step_at);
            s->step_at[s->n_defs] = cairn_strmap_new();
            for (int i = count - 1; i >= 0; i--) cairn_strmap_put(s->step_at[s->n_defs], ids[i], i);
            s->steps[s->n_defs] = ids;
            s->n_steps[s->n_defs++] = count;
        }
        cairn_strmap_put(s->defs, hash, k);
    }
    if (k < 0) return NULL;
    *n = s->n_steps[k];
    *at = s->step_at[k];
    return s->steps[k];
}

static void scan_drop_state(scan *s, scan_run *r) {
    if (r->st) s->held--;
    cairn_run_state_free(r->st);
    r->st = NULL;
}

static void scan_alone(scan *s, scan_run *r) {
    scan_drop_state(s, r);
    r->state = SCAN_ALONE;
}

/* run_created of a run with a row: the state, with the steps of the
 * definition it pins, which its row must name too. */
static void scan_begin(scan *s, scan_run *r, const cairn_event *ev) {
    jv data = jv_parse_sized(ev->data, (int)ev->data_len);
    jv h = jv_get_kind(data) == JV_KIND_OBJECT ? jv_object_get(data, jv_string("def_hash"))
                                               : (jv_free(data), jv_invalid());
    int n = 0;
    char **ids = NULL;
    if (jv_get_kind(h) == JV_KIND_STRING && strcmp(jv_string_value(h), r->row.def_hash) == 0)
        ids = scan_steps(s, r->row.def_hash, &n, (cairn_strmap **)&r->step_at);
    jv_free(h);
    if (ids == NULL || s->held >= CAIRN_VERIFY_HELD) {
        r->state = SCAN_ALONE;
        return;
    }
    r->st = cairn_run_state_new(r->v.run_id, ids, n);
    r->state = SCAN_FOLDING;
    s->held++;
}

/* The run's row against its fold, once its last event is folded. */
static void scan_settle(scan *s, scan_run *r) {
    cairn_err err;
    if (settle_verdict(&r->v, &r->row, r->st, &err) != 0) {
        scan_alone(s, r);
        return;
    }
    scan_drop_state(s, r);
    r->state = SCAN_DONE;
}

/* The data the fold gets of an event.  Of step_started and step_succeeded,
 * the two events of every step, it reads the item index and, of
 * step_succeeded, the output, which it keeps for `show` and a verdict
 * never reads: so those members are found in the text without making a
 * value of it (cairn_json_members, which still checks that it is one JSON
 * object), and the output is left out.  Every other event is parsed whole,
 * and so is any text those members cannot be found in plainly (the fold
 * then says what is wrong with it). */
static jv fold_data(scan *s, const cairn_event *ev) {
    static const char *const keys[] = {"index"};
    cairn_json_span at[1];
    if ((ev->type == CAIRN_EV_STEP_STARTED || ev->type == CAIRN_EV_STEP_SUCCEEDED) &&
        cairn_json_members(ev->data, ev->data_len, keys, 1, at)) {
        if (at[0].len == 0) return jv_copy(s->empty);
        return JV_OBJECT(jv_string("index"), jv_parse_sized(ev->data + at[0].at, (int)at[0].len));
    }
    return jv_parse_sized(ev->data, (int)ev->data_len);
}

/* One event, in the order the events were appended. */
static void scan_event(scan *s, int64_t id, const cairn_event *ev) {
    scan_run *r = scan_find(s, ev->run_id);
    if (r == NULL) r = scan_add(s, ev->run_id);   /* events without a row */
    if (!r->v.has_row || r->state == SCAN_ALONE) return;
    if (r->state == SCAN_DONE) {   /* an event after the last: let the load say what */
        scan_alone(s, r);
        return;
    }
    if (id <= s->upto) {   /* the index must list it at its seq */
        if (ev->seq < 1 || ev->seq > r->n_index || r->index[ev->seq - 1] != id) {
            scan_alone(s, r);
            return;
        }
        r->indexed++;
    }
    if (r->state == SCAN_NEW) {
        if (ev->seq != 1 || ev->type != CAIRN_EV_RUN_CREATED) {
            r->state = SCAN_ALONE;
            return;
        }
        scan_begin(s, r, ev);
        if (r->state != SCAN_FOLDING) return;
    }
    cairn_event copy = *ev;
    cairn_err err;
    cairn_chain *chain = cairn_journal_chain(s->j);
    if (chain) cairn_chain_hash(chain, ev->seq > 1 ? r->st->head : NULL, &copy);
    if (chain && memcmp(copy.hash, ev->hash, CAIRN_HASH_LEN) != 0) {
        scan_alone(s, r);
        return;
    }
    int64_t step = -1;
    if (ev->step && !cairn_strmap_get(r->step_at, ev->step, &step)) step = -1;
    jv data = fold_data(s, ev);
    int rc = cairn_fold_apply(r->st, ev, (int)step, data, &err);
    jv_free(data);
    if (rc) {
        scan_alone(s, r);
        return;
    }
    if (cairn_event_ends_run(ev->type)) scan_settle(s, r);
}

/* Runs still folding when the events end (not ended: running, waiting,
 * paused), and the index's count of each run's events. */
static void scan_finish(scan *s) {
    for (int i = 0; i < s->n; i++) {
        scan_run *r = &s->runs[i];
        if (r->state == SCAN_FOLDING) scan_settle(s, r);
        if (r->state == SCAN_DONE && r->indexed != r->n_index) r->state = SCAN_ALONE;
        if (r->state == SCAN_NEW && r->v.has_row) r->state = SCAN_ALONE;   /* a row, no events */
        if (!r->v.has_row) r->v.rc = CAIRN_ENOTFOUND;
    }
}

static int cmp_verdict(const void *a, const void *b) {
    return strcmp(((const cairn_run_verdict *)a)->run_id, ((const cairn_run_verdict *)b)->run_id);
}

static void scan_free(scan *s) {
    for (int i = 0; i < s->n; i++) {
        cairn_run_state_free(s->runs[i].st);
        free(s->runs[i].index);
        cairn_run_row_clear(&s->runs[i].row);
        cairn_run_verdict_clear(&s->runs[i].v);
    }
    free(s->runs);
    for (int i = 0; i < s->n_defs; i++) {
        cairn_step_ids_free(s->steps[i], s->n_steps[i]);
        cairn_strmap_free(s->step_at[i]);
    }
    free(s->step_at);
    jv_free(s->empty);
    free(s->steps);
    free(s->n_steps);
    cairn_strmap_free(s->by_id);
    cairn_strmap_free(s->defs);
}

/* The steps of every definition a runs row pins, read before the events
 * stream (scan_steps then reads nothing more). */
static int scan_pins(void *ud, cairn_err *err) {
    scan *s = ud;
    (void)err;
    for (int i = 0; i < s->n; i++) {
        const cairn_strmap *at;
        int n;
        if (s->runs[i].row.def_hash) scan_steps(s, s->runs[i].row.def_hash, &n, (cairn_strmap **)&at);
    }
    s->cached_only = true;
    return 0;
}

static void scan_streamed(void *ud, int64_t id, const cairn_event *ev) { scan_event(ud, id, ev); }

/* Every run verified alone: a store the one pass does not read. */
static int verify_each(cairn_journal *j, cairn_run_verdict **out, int *n, cairn_err *err) {
    char **ids = NULL;
    bool *rows = NULL;
    int k = 0;
    int rc = cairn_journal_run_ids(j, &ids, &rows, &k, err);
    if (rc) return rc;
    cairn_run_verdict *v = cairn_calloc((size_t)(k ? k : 1), sizeof *v);
    for (int i = 0; i < k; i++) cairn_journal_verify_run(j, ids[i], rows[i], &v[i]);
    qsort(v, (size_t)k, sizeof *v, cmp_verdict);
    cairn_journal_ids_free(ids, rows, k);
    *out = v;
    *n = k;
    return 0;
}

int cairn_journal_verify_runs(cairn_journal *j, cairn_run_verdict **out, int *n, cairn_err *err) {
    if (j->reader->ops->scan == NULL) return verify_each(j, out, n, err);
    scan s = {.j = j, .by_id = cairn_strmap_new(), .defs = cairn_strmap_new(), .empty = jv_object()};
    cairn_scan_cb cb = {scan_row, scan_indexed, scan_index_rows, scan_pins, scan_streamed, &s};
    *out = NULL;
    *n = 0;
    int rc = j->reader->ops->scan(j->reader, &cb, err);
    if (rc == 0) {
        scan_finish(&s);
        cairn_run_verdict *v = cairn_calloc((size_t)(s.n ? s.n : 1), sizeof *v);
        for (int i = 0; i < s.n; i++) {
            scan_run *r = &s.runs[i];
            if (r->state == SCAN_ALONE) cairn_journal_verify_run(j, r->v.run_id, true, &v[i]);
            else v[i] = r->v;
            if (r->state != SCAN_ALONE) memset(&r->v, 0, sizeof r->v);   /* moved */
        }
        qsort(v, (size_t)s.n, sizeof *v, cmp_verdict);
        *out = v;
        *n = s.n;
    }
    scan_free(&s);
    return rc;
}
