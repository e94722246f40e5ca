/*
 * engine.c - the engine's public API and the orchestrator loop.
 *
 * The loop: hand the events appended since the last turn to the writer;
 * sleep on the inbox (an eventfd) until the writer says what is durable, a
 * worker returns an attempt, a command arrives, or a deadline passes; then
 * act on each message.  While a commit is in flight the loop spins a little
 * before it sleeps (eng_spin_for): the writer's answer is that close.
 * Everything that changes run state happens here, on one thread.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/strmap.h"
#include "engine/engine_int.h"
#include "engine/owner.h"

/* ---- inbox ------------------------------------------------------------- */

/* `mail` says the inbox has mail; the eventfd wakes an orchestrator that
 * sleeps in poll.  A poster writes the eventfd only when the orchestrator
 * says it may sleep (`sleeping`): while it runs or spins, `mail` is enough,
 * and each step saves two system calls.  Both sides store their flag, then
 * read the other's (sequentially consistent), so either the poster sees
 * `sleeping` and writes, or the orchestrator sees `mail` and does not sleep.
 * A stale `mail` costs one empty turn of the loop, never a lost message. */
void eng_post(cairn_engine *e, eng_msg *m) {
    m->next = NULL;
    pthread_mutex_lock(&e->inbox_mu);
    if (e->inbox_tail) e->inbox_tail->next = m; else e->inbox_head = m;
    e->inbox_tail = m;
    pthread_mutex_unlock(&e->inbox_mu);
    atomic_store(&e->mail, 1);
    if (!atomic_load(&e->sleeping)) return;
    uint64_t one = 1;
    if (write(e->wake_fd, &one, sizeof one) < 0) { /* the counter is full: already awake */ }
}

/* Poll the wake-up descriptor for up to timeout_ms; true when woken. */
static bool sleep_on_wake_fd(cairn_engine *e, int timeout_ms) {
    struct pollfd pfd = {.fd = e->wake_fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0) return false;
    uint64_t n;
    if (read(e->wake_fd, &n, sizeof n) < 0) { /* EAGAIN: drained already */ }
    return true;
}

/* Sleep until mail comes or timeout_ms pass.  With the commit log, an
 * orchestrator idle for CAIRN_CLOG_IDLE_MS (a step that takes a while, an
 * approval, a timer) has the writer apply what is durable at once, so that
 * other processes read a waiting run as it stands. */
static void wait_for_mail(cairn_engine *e, int timeout_ms) {
    atomic_store(&e->sleeping, 1);
    if (!atomic_load(&e->mail)) {
        int first = e->logged && timeout_ms > CAIRN_CLOG_IDLE_MS ? CAIRN_CLOG_IDLE_MS : timeout_ms;
        if (!sleep_on_wake_fd(e, first) && first < timeout_ms) {
            eng_writer_apply_soon(e->writer);
            sleep_on_wake_fd(e, timeout_ms - first);
        }
    }
    atomic_store(&e->sleeping, 0);
}

static void post_from_writer(void *e, eng_msg *m) {
    eng_post(e, m);
}

static eng_msg *take_inbox(cairn_engine *e) {
    atomic_store(&e->mail, 0);
    pthread_mutex_lock(&e->inbox_mu);
    eng_msg *m = e->inbox_head;
    e->inbox_head = e->inbox_tail = NULL;
    pthread_mutex_unlock(&e->inbox_mu);
    return m;
}

void eng_spin_for(atomic_int *flag) {
    int64_t until = cairn_now_us() + CAIRN_SPIN_US;
    while (!atomic_load(flag) && cairn_now_us() < until) sched_yield();
}

void cairn_engine_request_stop(cairn_engine *e) {
    e->stop_requested = 1;
    uint64_t one = 1;
    if (write(e->wake_fd, &one, sizeof one) < 0) { /* already awake */ }
}

/* ---- run ids and the run table ---------------------------------------- */

void cairn_new_run_id(char out[CAIRN_RUN_ID_MAX]) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuv";
    uint64_t ms = (uint64_t)cairn_wall_ms();
    unsigned char rnd[6];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) memset(rnd, 0, sizeof rnd);
    for (int i = 9; i >= 0; i--, ms >>= 5) out[i] = digits[ms & 31];
    for (int i = 0; i < 6; i++) out[10 + i] = digits[rnd[i] & 31];
    out[16] = '\0';
}

/* The run table: an array (for walks) plus a map from run id to position in
 * the array (for lookups: timers, commands and child runs name runs by id,
 * and an engine may hold tens of thousands of parked runs).  Each run knows
 * its own position, so adding and dropping a run cost O(1): a run that ends
 * while ten thousand others are parked must not cost a walk over them. */
eng_run *eng_find_run(cairn_engine *e, const char *id) {
    int64_t pos;
    return cairn_strmap_get(e->run_slots, id, &pos) ? e->runs[pos] : NULL;
}

void eng_add_run(cairn_engine *e, eng_run *r) {
    if (e->n_runs == e->cap_runs) {
        e->cap_runs = e->cap_runs ? e->cap_runs * 2 : 16;
        e->runs = cairn_realloc(e->runs, (size_t)e->cap_runs * sizeof *e->runs);
    }
    r->slot = e->n_runs;
    e->runs[e->n_runs++] = r;
    cairn_strmap_put(e->run_slots, r->st->id, r->slot);
}

/* Take r out of the table: the last run moves into its place. */
static void remove_run(cairn_engine *e, eng_run *r) {
    int pos = r->slot, last = e->n_runs - 1;
    cairn_strmap_remove(e->run_slots, r->st->id);
    if (pos != last) {
        e->runs[pos] = e->runs[last];
        e->runs[pos]->slot = pos;
        cairn_strmap_put(e->run_slots, e->runs[pos]->st->id, pos);
    }
    e->n_runs--;
}

/* Drop runs whose last event is durable: memory stays flat.  Runs end in
 * ticket order, so the queue's head is always the first to become durable. */
static void drop_ended_runs(cairn_engine *e) {
    while (e->ended_head && e->ended_head->end_ticket <= e->durable) {
        eng_run *r = e->ended_head;
        e->ended_head = r->ended_next;
        if (e->ended_head == NULL) e->ended_tail = NULL;
        remove_run(e, r);
        eng_run_free(r);
    }
}

/* ---- appending events --------------------------------------------------- */

static void sticky(cairn_engine *e, const cairn_err *err) {
    if (e->sticky) return;
    e->sticky = true;
    e->sticky_err = *err;
}

int64_t eng_emit(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                 int attempt, jv data) {
    return eng_emit_at(e, r, type, step, index, attempt, data, cairn_wall_ms());
}

cairn_event *eng_event_new(eng_run *r, const char *step, const char *text, size_t len) {
    size_t step_len = step ? strlen(step) + 1 : 0;
    eng_event *e = cairn_calloc(1, sizeof *e + step_len + len + 1);
    char *tail = (char *)(e + 1);
    cairn_event *ev = &e->ev;
    if (step) ev->step = memcpy(tail, step, step_len);
    ev->data = memcpy(tail + step_len, text, len);
    ev->data[len] = '\0';
    ev->data_len = len;
    e->run = r;
    return ev;
}

void eng_event_free(cairn_event *ev) {
    free(ev);   /* eng_event begins with it; step and data lie in the same block */
}

/* Stamp, hash, fold and queue an event whose data (consumed) and canonical
 * text (e->event_text, copied) are made. */
static int64_t emit(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int attempt,
                    jv data, int64_t time_ms) {
    cairn_run_state *st = r->st;
    if (e->sticky) {   /* invariant 5: nothing more is appended */
        jv_free(data);
        return -1;
    }
    cairn_event *ev = eng_event_new(r, step >= 0 ? r->plan->ids[step] : NULL,
                                    e->event_text.data, e->event_text.len);
    memcpy(ev->run_id, st->id, sizeof ev->run_id);   /* same size; NUL-terminated */
    ev->seq = st->last_seq + 1;
    ev->time_ms = time_ms;
    ev->type = type;
    ev->attempt = attempt;
    cairn_chain_hash(e->chain, ev->seq > 1 ? st->head : NULL, ev);
    cairn_err err;
    int rc = cairn_fold_apply(st, ev, data, &err);
    jv_free(data);                   /* folded: free it while it is in cache */
    if (rc != 0) {
        sticky(e, &err);
        eng_event_free(ev);
        return -1;
    }
    eng_batch_push(&e->out, ev);
    e->out.ticket = ++e->next_ticket;
    if (cairn_run_status_terminal(st->status) && !r->ended) {
        r->ended = true;
        r->end_ticket = e->out.ticket;
        if (e->ended_tail) e->ended_tail->ended_next = r;
        else e->ended_head = r;
        e->ended_tail = r;
    }
    return e->out.ticket;
}

int64_t eng_emit_at(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                    int attempt, jv data, int64_t time_ms) {
    if (index >= 0) data = jv_object_set(data, eng_key(r->plan, KEY_INDEX), jv_number(index));
    data = cairn_secrets_mask(data, e->secrets);   /* no secret reaches the journal */
    cairn_buf_reset(&e->event_text);
    cairn_json_write(&e->event_text, data);
    return emit(e, r, type, step, attempt, data, time_ms);
}

/* Two events a step: their data's text is written key by key, in canonical
 * order ("idempotency_key" < "index" < "input" < "output"), rather than
 * built as an object and then taken apart and sorted again.  The object the
 * fold gets holds only what it reads of these two events: the index and the
 * output (see cairn_fold_apply). */
int64_t eng_emit_step(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                      int attempt, const char *idempotency_key, jv value) {
    value = cairn_secrets_mask(value, e->secrets);   /* no secret reaches the journal */
    cairn_buf *b = &e->event_text;
    cairn_buf_reset(b);
    cairn_buf_putc(b, '{');
    if (idempotency_key) {
        cairn_buf_puts(b, "\"idempotency_key\":");
        cairn_json_write_string(b, idempotency_key, strlen(idempotency_key));
        cairn_buf_putc(b, ',');
    }
    if (index >= 0) {
        cairn_buf_puts(b, "\"index\":");
        cairn_buf_put_ll(b, index);
        cairn_buf_putc(b, ',');
    }
    bool started = type == CAIRN_EV_STEP_STARTED;
    cairn_buf_puts(b, started ? "\"input\":" : "\"output\":");
    cairn_json_write(b, value);
    cairn_buf_putc(b, '}');
    /* the fold reads the index, and of step_succeeded the output */
    jv data = jv_object();
    if (started) jv_free(value);
    else data = jv_object_set(data, eng_key(r->plan, KEY_OUTPUT), value);
    if (index >= 0) data = jv_object_set(data, eng_key(r->plan, KEY_INDEX), jv_number(index));
    return emit(e, r, type, step, attempt, data, cairn_wall_ms());
}

/* ---- plans (compiled workflows) ------------------------------------------ */

static eng_plan *plan_new(cairn_workflow *wf) {
    eng_plan *p = cairn_calloc(1, sizeof *p);
    p->wf = wf;
    p->n_main = wf->n_steps;
    p->n_on_failure = wf->n_on_failure;
    p->ids = cairn_step_ids(wf, &p->n_all);
    int n = p->n_all;
    p->steps = cairn_calloc((size_t)n + 1, sizeof *p->steps);
    p->comp_of = cairn_calloc((size_t)p->n_main + 1, sizeof *p->comp_of);
    int k = 0;
    for (int i = 0; i < wf->n_steps; i++) p->steps[k++] = &wf->steps[i];
    for (int i = 0; i < wf->n_on_failure; i++) p->steps[k++] = &wf->on_failure[i];
    for (int i = 0; i < wf->n_steps; i++) {
        p->comp_of[i] = wf->steps[i].compensate ? k : -1;
        if (wf->steps[i].compensate) p->steps[k++] = wf->steps[i].compensate;
    }
    p->n_dependents = cairn_calloc((size_t)n + 1, sizeof *p->n_dependents);
    p->dependents = cairn_calloc((size_t)n + 1, sizeof *p->dependents);
    for (int i = 0; i < p->n_main; i++)
        for (int j = 0; j < wf->steps[i].n_needs; j++) p->n_dependents[wf->steps[i].needs[j]]++;
    for (int i = 0; i < n; i++)
        p->dependents[i] = cairn_calloc((size_t)(p->n_dependents[i] + 1), sizeof(int));
    int *fill = cairn_calloc((size_t)n + 1, sizeof *fill);
    for (int i = 0; i < p->n_main; i++)
        for (int j = 0; j < wf->steps[i].n_needs; j++) {
            int need = wf->steps[i].needs[j];
            p->dependents[need][fill[need]++] = i;
        }
    free(fill);
    eng_plan_compile_retry(p);
    p->pending_steps = jv_invalid();
    static const char *const key_text[KEY_COUNT] = {
        [KEY_STATUS] = "status", [KEY_OUTPUT] = "output", [KEY_ERROR] = "error",
        [KEY_ATTEMPTS] = "attempts", [KEY_STEPS] = "steps", [KEY_INDEX] = "index"};
    for (int k = 0; k < KEY_COUNT; k++) p->keys[k] = jv_string(key_text[k]);
    p->id_keys = cairn_calloc((size_t)n + 1, sizeof *p->id_keys);
    for (int i = 0; i < n; i++) p->id_keys[i] = jv_string(p->ids[i]);
    for (int k = 0; k < CAIRN_STEP_STATUS_COUNT; k++)
        p->status_names[k] = jv_string(cairn_step_status_name((cairn_step_status)k));
    /* most steps never read their attempt's own fields: then rendering
     * `with` needs no per-attempt document (attempt.c) */
    p->with_reads_attempt = cairn_calloc((size_t)n + 1, sizeof *p->with_reads_attempt);
    for (int i = 0; i < n; i++) {
        const cairn_tmpl *w = p->steps[i]->with;
        p->with_reads_attempt[i] = cairn_tmpl_reads(w, wf->exprs, "step") ||
                                   cairn_tmpl_reads(w, wf->exprs, "item") ||
                                   cairn_tmpl_reads(w, wf->exprs, "index");
    }
    return p;
}

static void plan_free(eng_plan *p) {
    eng_plan_free_retry(p);
    jv_free(p->pending_steps);
    free(p->with_reads_attempt);
    for (int k = 0; k < KEY_COUNT; k++) jv_free(p->keys[k]);
    for (int k = 0; k < CAIRN_STEP_STATUS_COUNT; k++) jv_free(p->status_names[k]);
    for (int i = 0; i < p->n_all; i++) jv_free(p->id_keys[i]);
    free(p->id_keys);
    for (int i = 0; i < p->n_all; i++) free(p->dependents[i]);
    free(p->dependents);
    free(p->n_dependents);
    cairn_step_ids_free(p->ids, p->n_all);
    free(p->steps);
    free(p->comp_of);
    cairn_workflow_free(p->wf);
    free(p);
}

static eng_plan *find_plan(cairn_engine *e, const char *hash) {
    for (eng_plan *p = e->plans; p; p = p->next)
        if (strcmp(p->wf->sha256, hash) == 0) return p;
    return NULL;
}

static eng_plan *add_plan(cairn_engine *e, cairn_workflow *wf) {
    eng_plan *p = plan_new(wf);
    p->next = e->plans;
    e->plans = p;
    return p;
}

eng_plan *eng_plan_for(cairn_engine *e, const char *def_hash, const char *run_id, cairn_err *err) {
    eng_plan *p = find_plan(e, def_hash);
    cairn_workflow *wf = NULL;
    if (p == NULL && cairn_journal_definition(e->journal, def_hash, run_id, &wf, err) == 0)
        p = add_plan(e, wf);
    return p;
}

int cairn_engine_add_workflow(cairn_engine *e, cairn_workflow *wf, char def_hash[65],
                              cairn_err *err) {
    snprintf(def_hash, 65, "%s", wf->sha256);
    if (find_plan(e, wf->sha256)) {
        cairn_workflow_free(wf);
        return 0;
    }
    int rc = cairn_journal_put_definition(e->journal, wf, err);
    if (rc) {
        cairn_workflow_free(wf);
        return rc;
    }
    add_plan(e, wf);
    return 0;
}

/* ---- opening and closing ------------------------------------------------- */

/* Take the commit log, applying what it holds; *out stays NULL when
 * another process holds it: this engine then commits straight to SQLite,
 * and settles the log again before it claims runs (settle_journal).  With
 * syncs relaxed there is no sync for the log to save: only settle it. */
/* Before reading runs to claim them: everything this engine wrote is in
 * the journal of record, and so is whatever a dead holder of the commit
 * log left there. */
static int settle_journal(cairn_engine *e, cairn_err *err) {
    if (!e->logged) return cairn_journal_settle_others(e->journal, err);
    eng_writer_submit(e->writer, &e->out);
    return eng_writer_catch_up(e->writer, err);
}

int cairn_engine_open(const cairn_engine_config *cfg, cairn_engine **out, cairn_err *err) {
    *out = NULL;
    if (cfg->journal == NULL) return cairn_err_set(err, CAIRN_EINVAL, "no journal");
    cairn_engine *e = cairn_calloc(1, sizeof *e);
    e->run_slots = cairn_strmap_new();
    e->cfg = *cfg;
    e->journal = cfg->journal;
    e->cfg.journal = NULL;
    if (e->cfg.workers <= 0) e->cfg.workers = CAIRN_DEFAULT_WORKERS;
    if (e->cfg.grace_ms <= 0) e->cfg.grace_ms = CAIRN_DEFAULT_GRACE_MS;
    pthread_mutex_init(&e->inbox_mu, NULL);
    e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* other processes send SIGUSR1 to say "new command" (cairn_owner_wake);
     * its default would end this process: ignore it unless the program
     * handles it (the CLI calls cairn_engine_wake) */
    struct sigaction old;
    if (sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGUSR1, SIG_IGN);
    e->chain = cairn_journal_chain(e->journal);
    e->logged = cairn_journal_writes_ahead(e->journal);
    e->writer = eng_writer_start(e->journal, post_from_writer, e);
    e->pool = eng_pool_start(e, e->cfg.workers);
    e->data_version = cairn_journal_changes(e->journal);
    cairn_journal_secrets_paths(e->journal, &e->secrets_file, &e->secrets_key_file);
    e->secrets_mtime_ns = -1;
    *out = e;
    return 0;
}

int eng_secrets_refresh(cairn_engine *e, cairn_err *err) {
    struct stat sb;
    int64_t mtime = stat(e->secrets_file, &sb) == 0
                        ? (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec : 0;
    if (e->secrets && mtime == e->secrets_mtime_ns) return 0;
    cairn_secrets *s = NULL;
    int rc = cairn_secrets_load(e->secrets_file, e->secrets_key_file, &s, err);
    if (rc) return rc;
    cairn_secrets_free(e->secrets);
    e->secrets = s;
    e->secrets_mtime_ns = mtime;
    return 0;
}

void cairn_engine_close(cairn_engine *e) {
    if (e == NULL) return;
    eng_pool_stop(e->pool);
    eng_writer_stop(e->writer);
    /* Messages left (a stop with work queued): free their events here, on
     * the thread that owns jv. */
    for (eng_msg *m = take_inbox(e), *next; m; m = next) {
        next = m->next;
        eng_batch_free_events(&m->batch);
        free(m);
    }
    eng_batch_free_events(&e->out);
    for (int i = 0; i < e->n_runs; i++) eng_run_free(e->runs[i]);
    free(e->runs);
    cairn_strmap_free(e->run_slots);
    free(e->timers);
    while (e->plans) {
        eng_plan *p = e->plans;
        e->plans = p->next;
        plan_free(p);
    }
    free(e->taken);
    cairn_buf_free(&e->event_text);
    cairn_secrets_free(e->secrets);
    free(e->secrets_file);
    free(e->secrets_key_file);
    if (e->wake_fd >= 0) close(e->wake_fd);
    pthread_mutex_destroy(&e->inbox_mu);
    cairn_journal_close(e->journal);   /* after the writer: it releases the runs */
    free(e);
}

/* ---- starting runs --------------------------------------------------------- */

int eng_start_run(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                  char run_id[CAIRN_RUN_ID_MAX], cairn_err *err) {
    run_id[0] = '\0';
    return eng_start_run_as(e, plan, inputs, trigger, parent, run_id, err);
}

int eng_start_run_as(cairn_engine *e, eng_plan *plan, jv inputs, jv trigger, const char *parent,
                     char run_id[CAIRN_RUN_ID_MAX], cairn_err *err) {
    jv checked = jv_invalid();
    int rc = cairn_workflow_check_inputs(plan->wf, inputs, &checked, err);
    jv_free(inputs);
    if (rc == 0) rc = eng_secrets_refresh(e, err);
    if (rc) {
        jv_free(checked);
        jv_free(trigger);
        return rc;
    }
    if (run_id[0] == '\0') cairn_new_run_id(run_id);
    eng_run *r = eng_run_new(e, plan, run_id);
    jv data = jv_object();
    data = jv_object_set(data, jv_string("workflow"), jv_string(plan->wf->name));
    data = jv_object_set(data, jv_string("def_hash"), jv_string(plan->wf->sha256));
    data = jv_object_set(data, jv_string("inputs"), checked);
    data = jv_object_set(data, jv_string("trigger"), trigger);
    if (parent) data = jv_object_set(data, jv_string("parent"), jv_string(parent));
    if (eng_emit(e, r, CAIRN_EV_RUN_CREATED, -1, -1, 0, data) < 0) {
        *err = e->sticky_err;
        eng_run_free(r);
        return CAIRN_ECORRUPT;
    }
    eng_add_run(e, r);
    eng_run_rebuild(e, r);
    eng_schedule(e, r);
    return 0;
}

int cairn_engine_start_run(cairn_engine *e, const char *def_hash, jv inputs, jv trigger,
                           char run_id[CAIRN_RUN_ID_MAX], cairn_err *err) {
    eng_plan *plan = eng_plan_for(e, def_hash, NULL, err);
    if (plan == NULL) {
        jv_free(inputs);
        jv_free(trigger);
        return CAIRN_ENOTFOUND;
    }
    return eng_start_run(e, plan, inputs, trigger, NULL, run_id, err);
}

/* Every unfinished run in the journal; *count those taken. */
static int resume_all(cairn_engine *e, int *count, cairn_err *err) {
    cairn_run_row *rows = NULL;
    int n = 0;
    int rc = cairn_journal_list_runs(e->journal, "running,waiting,compensating,paused", &rows, &n, err);
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

/* ---- commands from other processes ---------------------------------------- */

/* A command's row leaves the table in the transaction that writes the
 * event answering it, which may come a while after the event is durable
 * (the commit log applies in bulk).  Until then the engine remembers it as
 * taken.  The row's time goes with its id: SQLite may give a deleted row's
 * id to the next command. */
static int find_taken(const cairn_engine *e, const cairn_command *c) {
    for (int i = 0; i < e->n_taken; i++)
        if (e->taken[i].id == c->id && e->taken[i].created_at == c->created_at) return i;
    return -1;
}

static void add_taken(cairn_engine *e, const cairn_command *c) {
    if (e->n_taken == e->cap_taken) {
        e->cap_taken = e->cap_taken ? e->cap_taken * 2 : 8;
        e->taken = cairn_realloc(e->taken, (size_t)e->cap_taken * sizeof *e->taken);
    }
    e->taken[e->n_taken].id = c->id;
    e->taken[e->n_taken++].created_at = c->created_at;
}

/* Whether an event queued since out[from] answers command id. */
static bool answered(const cairn_engine *e, int from, int64_t id) {
    for (int j = from; j < e->out.n; j++)
        if (e->out.events[j]->command_id == id) return true;
    return false;
}

/* Forget taken commands whose rows are gone (cmds is every row there is). */
static void prune_taken(cairn_engine *e, const cairn_command *cmds, int n) {
    int kept = 0;
    for (int i = 0; i < e->n_taken; i++) {
        bool listed = false;
        for (int k = 0; k < n && !listed; k++)
            listed = cmds[k].id == e->taken[i].id && cmds[k].created_at == e->taken[i].created_at;
        if (listed) e->taken[kept++] = e->taken[i];
    }
    e->n_taken = kept;
}

/* Carry out the commands waiting for runs this engine holds (only for run
 * `only` when it is not NULL). */
void eng_apply_commands(cairn_engine *e, const eng_run *only) {
    cairn_command *cmds = NULL;
    int n = 0;
    if (cairn_journal_take_commands(e->journal, &cmds, &n, NULL) != 0) return;
    prune_taken(e, cmds, n);
    for (int i = 0; i < n; i++) {
        eng_run *r = eng_find_run(e, cmds[i].run_id);
        if (r == NULL || (only && r != only) || r->ended || find_taken(e, &cmds[i]) >= 0) continue;
        int from = e->out.n;
        if (strcmp(cmds[i].type, "cancel") == 0) eng_cancel_run(e, r, cmds[i].id);
        else if (strcmp(cmds[i].type, "pause") == 0) eng_pause_run(e, r, true, cmds[i].id);
        else if (strcmp(cmds[i].type, "unpause") == 0) eng_pause_run(e, r, false, cmds[i].id);
        else if (strcmp(cmds[i].type, "decide") == 0) eng_apply_decision(e, r, cmds[i].data, cmds[i].id);
        if (answered(e, from, cmds[i].id)) add_taken(e, &cmds[i]);
    }
    cairn_commands_free(cmds, n);
}

static void poll_commands(cairn_engine *e) {
    int64_t v = cairn_journal_changes(e->journal);
    if (v == e->data_version) return;
    e->data_version = v;
    eng_apply_commands(e, NULL);
}

void cairn_engine_wake(cairn_engine *e) {
    e->poll_now = 1;
    uint64_t one = 1;
    if (write(e->wake_fd, &one, sizeof one) < 0) { /* already awake */ }
}

/* ---- the loop ---------------------------------------------------------------- */

static void on_durable(cairn_engine *e, eng_msg *m) {
    if (m->batch.ticket > e->durable) e->durable = m->batch.ticket;
    for (int i = 0; i < m->batch.n; i++) {
        cairn_event *ev = m->batch.events[i];
        eng_run *r = eng_event_run(ev);
        if (e->cfg.on_event) e->cfg.on_event(ev, r->st, e->cfg.ud);
    }
    eng_batch_free_events(&m->batch);
    eng_dispatch_durable(e);
}

static void handle(cairn_engine *e, eng_msg *m) {
    switch (m->kind) {
    case MSG_DURABLE: on_durable(e, m); break;
    case MSG_RESULT: eng_finish_attempt(e, m->attempt); break;
    case MSG_SPAWNED: eng_spawned(e, m); break;
    case MSG_WRITE_FAILED:
        sticky(e, &m->err);
        eng_batch_free_events(&m->batch);
        break;
    }
}

/* Whether the loop has more to do.  After a journal failure nothing more can
 * become durable: wait only for attempts to come back. */
static bool active(const cairn_engine *e) {
    if (e->total_in_flight > 0) return true;
    if (e->sticky) return false;
    if (e->durable < e->next_ticket) return true;
    if (e->stopping) return false;
    return e->n_runs > 0;
}

/* Hand the loop's events to the writer.  A small batch, when nothing else
 * waits (no mail, the writer and syncer idle: one run going step by step),
 * is committed on this thread instead, see CAIRN_COMMIT_HERE_MAX. */
static void submit_out(cairn_engine *e) {
    if (e->out.n <= CAIRN_COMMIT_HERE_MAX && !atomic_load(&e->mail) &&
        eng_writer_commit_if_idle(e->writer, &e->out))
        return;
    eng_writer_submit(e->writer, &e->out);
}

static int poll_timeout(const cairn_engine *e, int64_t now) {
    int64_t t = e->next_command_poll - now;
    int64_t timer = eng_timer_next(e);
    if (timer != INT64_MAX && timer - cairn_wall_ms() < t) t = timer - cairn_wall_ms();
    if (e->stopping && e->stop_deadline - now < t) t = e->stop_deadline - now;
    return t < 0 ? 0 : (int)t;
}

static void begin_stop(cairn_engine *e, int64_t now) {
    e->stopping = true;
    e->stop_deadline = now + e->cfg.grace_ms;
}

int cairn_engine_run(cairn_engine *e, cairn_err *err) {
    e->next_command_poll = cairn_now_ms();
    for (;;) {
        int64_t now = cairn_now_ms();
        if (e->stop_requested && !e->stopping) begin_stop(e, now);
        if (e->sticky && !e->stopping) {
            begin_stop(e, now);
            e->stop_deadline = now;
        }
        if (e->stopping && now >= e->stop_deadline) eng_stop_attempts(e, NULL);
        submit_out(e);
        drop_ended_runs(e);
        if (!active(e)) break;
        /* a commit is in flight: its result is due within microseconds */
        if (e->durable < e->next_ticket) eng_spin_for(&e->mail);
        wait_for_mail(e, poll_timeout(e, now));
        int handled = 0;
        for (eng_msg *m = take_inbox(e), *next; m; m = next) {
            next = m->next;
            handle(e, m);
            free(m);
            if (++handled % CAIRN_SUBMIT_EVERY == 0) eng_writer_submit(e->writer, &e->out);
        }
        eng_timers_fire(e);
        now = cairn_now_ms();
        if (e->poll_now) {
            e->poll_now = 0;
            e->next_command_poll = now;
        }
        if (now >= e->next_command_poll && !e->stopping) {
            poll_commands(e);
            e->next_command_poll = now + CAIRN_COMMAND_POLL_MS;
        }
    }
    /* what is durable is also where other connections read it */
    if (!e->sticky && e->logged && eng_writer_catch_up(e->writer, &e->sticky_err) != 0)
        e->sticky = true;
    if (e->sticky) {
        if (err) *err = e->sticky_err;
        return e->sticky_err.code ? e->sticky_err.code : CAIRN_EIO;
    }
    return 0;
}
