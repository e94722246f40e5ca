/*
 * durable.c - appending events, and what waits for them to be durable.
 *
 * Every event the engine appends goes through here: stamped (seq, time),
 * masked (no secret reaches the journal), folded into the run's state, and
 * queued for the writer with a ticket (one more than the last).  Its link
 * of the run's hash chain is computed where it is written (writer.c): an
 * HMAC-SHA-256 an event was about a third of the orchestrator's own time a
 * step, and the writer's threads have the other core.  So the state the
 * engine folds has no head (st->head is the journal's only as loaded, and
 * primes the writer's chain: eng_run.chain_head).  The writer hands batches back durable, and the
 * highest ticket seen durable says how far the journal is.  What waits for
 * that lives here too, behind the functions of engine_int.h, so that no
 * other file edits these queues:
 *
 *   out       events appended since the last hand-off to the writer
 *   await     attempts started, waiting for their step_started to be
 *             durable (invariant 1); taken in ticket order
 *   live      every attempt in flight (started and not finished), to stop
 *   ended     runs whose terminal event is appended, in ticket order,
 *             dropped from memory once it is durable
 *   sticky    the journal's (or a fold's) failure: nothing more is
 *             appended (invariant 5)
 *
 * Orchestrator thread only.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_durable {
    eng_batch out;
    cairn_buf event_text;        /* the event being made: its data's canonical text */
    int64_t next_ticket, durable;
    eng_attempt *await_head, *await_tail;
    eng_attempt *live;
    int in_flight;
    eng_run *ended_head, *ended_tail;
    bool sticky;
    cairn_err sticky_err;
    cairn_secrets *secrets;      /* .secrets; every event is masked with them */
    char *secrets_file, *secrets_key_file;
    int64_t secrets_mtime_ns;    /* of the file when loaded; -1: not loaded */
};

eng_durable *eng_durable_new(char *secrets_file, char *secrets_key_file) {
    eng_durable *d = cairn_calloc(1, sizeof *d);
    d->secrets_file = secrets_file;
    d->secrets_key_file = secrets_key_file;
    d->secrets_mtime_ns = -1;
    return d;
}

void eng_durable_free(eng_durable *d) {
    if (d == NULL) return;
    eng_batch_free_events(&d->out);
    cairn_buf_free(&d->event_text);
    cairn_secrets_free(d->secrets);
    free(d->secrets_file);
    free(d->secrets_key_file);
    free(d);
}

jv eng_error(const char *kind, const char *message) {
    jv o = jv_object_set(jv_object(), jv_string("kind"), jv_string(kind));
    return jv_object_set(o, jv_string("message"), jv_string(message));
}

/* ---- the failure ----------------------------------------------------------- */

void eng_sticky(cairn_engine *e, const cairn_err *err) {
    if (e->dq->sticky) return;
    e->dq->sticky = true;
    e->dq->sticky_err = *err;
}

bool eng_is_sticky(const cairn_engine *e) { return e->dq->sticky; }

const cairn_err *eng_sticky_err(const cairn_engine *e) { return &e->dq->sticky_err; }

/* ---- the secrets ------------------------------------------------------------ */

int eng_secrets_refresh(cairn_engine *e, cairn_err *err) {
    eng_durable *d = e->dq;
    struct stat sb;
    int64_t mtime = stat(d->secrets_file, &sb) == 0
                        ? (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec : 0;
    if (d->secrets && mtime == d->secrets_mtime_ns) return 0;
    cairn_secrets *s = NULL;
    int rc = cairn_secrets_load(d->secrets_file, d->secrets_key_file, &s, err);
    if (rc) return rc;
    cairn_secrets_free(d->secrets);
    d->secrets = s;
    d->secrets_mtime_ns = mtime;
    return 0;
}

const cairn_secrets *eng_secrets(const cairn_engine *e) { return e->dq->secrets; }

/* ---- appending ------------------------------------------------------------- */

/* Stamp, hash, fold and queue an event whose data (consumed) and canonical
 * text (d->event_text, copied) are made; or, data invalid, a step event
 * folded from its index and output (consumed) alone. */
static int64_t emit(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int attempt,
                    jv data, int index, jv output, int64_t time_ms) {
    eng_durable *d = e->dq;
    cairn_run_state *st = r->st;
    if (d->sticky || r->lost) {   /* invariant 5; a lost run is another engine's */
        jv_free(data);
        jv_free(output);
        return -1;
    }
    cairn_event *ev = eng_event_new(r, step >= 0 ? r->plan->ids[step] : NULL,
                                    d->event_text.data, d->event_text.len);
    memcpy(ev->run_id, st->id, sizeof ev->run_id);   /* same size; NUL-terminated */
    ev->seq = st->last_seq + 1;
    ev->time_ms = time_ms;
    ev->type = type;
    ev->attempt = attempt;
    if (!r->chain_primed) {   /* the writer hashes from here on */
        memcpy(r->chain_head, st->head, CAIRN_HASH_LEN);
        r->chain_primed = true;
    }
    cairn_err err;
    int rc = jv_is_valid(data) ? cairn_fold_apply(st, ev, step, data, &err)
                               : cairn_fold_apply_step(st, ev, step, index, output, &err);
    jv_free(data);                   /* folded: free it while it is in cache */
    jv_free(output);
    if (rc != 0) {
        eng_sticky(e, &err);
        eng_event_free(ev);
        return -1;
    }
    eng_batch_push(&d->out, ev);
    d->out.ticket = ++d->next_ticket;
    if (cairn_run_status_terminal(st->status) && !r->ended) {
        r->ended = true;
        r->end_ticket = d->out.ticket;
        if (d->ended_tail) d->ended_tail->ended_next = r;
        else d->ended_head = r;
        d->ended_tail = r;
    }
    return d->out.ticket;
}

int64_t eng_emit(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                 int attempt, jv data) {
    return eng_emit_at(e, r, type, step, index, attempt, data, cairn_wall_ms());
}

int64_t eng_emit_at(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                    int attempt, jv data, int64_t time_ms) {
    eng_durable *d = e->dq;
    if (index >= 0) data = jv_object_set(data, eng_key(r->plan, KEY_INDEX), jv_number(index));
    data = cairn_secrets_mask(data, d->secrets);   /* no secret reaches the journal */
    cairn_buf_reset(&d->event_text);
    cairn_json_write(&d->event_text, data);
    return emit(e, r, type, step, attempt, data, -1, jv_invalid(), time_ms);
}

void eng_text_memo_clear(eng_text_memo *m) {
    if (m->text) jv_free(m->value);
    free(m->text);
    memset(m, 0, sizeof *m);
}

void eng_text_memo_set(eng_text_memo *m, jv value, cairn_buf *text) {
    eng_text_memo_clear(m);
    m->value = jv_copy(value);
    m->len = text->len;
    m->text = text->data ? cairn_buf_detach(text) : cairn_strdup("");
}

/* Whether a and b (borrowed) are one value: their handles are the same
 * bytes (one object, or one number).  Cheaper than jv_identical, which
 * wants references to consume; handles that differ are simply "not known
 * to be one value". */
static bool same_value(jv a, jv b) { return memcmp(&a, &b, sizeof a) == 0; }

/* value's canonical text onto b.  A jv value never changes, and two that
 * are identical (the same object) have the same text: an input's text is
 * kept in memo (written as it was rendered, or here when started), and an
 * event whose value is that very value takes it from there rather than
 * walking it again.  A value masking changed is another value: written. */
static void write_value(cairn_buf *b, bool started, eng_text_memo *memo, jv value) {
    if (memo && memo->text && same_value(memo->value, value)) {
        cairn_buf_append(b, memo->text, memo->len);
        return;
    }
    size_t at = b->len;
    cairn_json_write(b, value);
    if (memo && started) {
        eng_text_memo_clear(memo);
        memo->value = jv_copy(value);
        memo->text = cairn_strndup(b->data + at, b->len - at);
        memo->len = b->len - at;
    }
}

/* Two events a step: their data's text is written key by key, in canonical
 * order ("idempotency_key" < "index" < "input" < "output"), rather than
 * built as an object and then taken apart and sorted again.  The fold is
 * given only what it reads of these two events, the index and the output,
 * with no object made to hold them (cairn_fold_apply_step). */
int64_t eng_emit_step(cairn_engine *e, eng_run *r, cairn_event_type type, int step, int index,
                      int attempt, const char *idempotency_key, eng_text_memo *memo, jv value) {
    eng_durable *d = e->dq;
    value = cairn_secrets_mask(value, d->secrets);   /* no secret reaches the journal */
    cairn_buf *b = &e->dq->event_text;
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
    write_value(b, started, memo, value);
    cairn_buf_putc(b, '}');
    /* the fold reads the index, and of step_succeeded the output */
    if (started) {
        jv_free(value);
        value = jv_invalid();
    }
    return emit(e, r, type, step, attempt, jv_invalid(), index, value, cairn_wall_ms());
}

void eng_mark_answer(cairn_engine *e, int64_t command_id) {
    eng_batch *out = &e->dq->out;
    if (command_id > 0 && out->n > 0) out->events[out->n - 1]->command_id = command_id;
}

int eng_appended(const cairn_engine *e) { return e->dq->out.n; }

bool eng_answered_since(const cairn_engine *e, int mark, int64_t command_id) {
    const eng_batch *out = &e->dq->out;
    for (int j = mark; j < out->n; j++)
        if (out->events[j]->command_id == command_id) return true;
    return false;
}

int64_t eng_next_ticket(const cairn_engine *e) { return e->dq->next_ticket; }

/* ---- durability ------------------------------------------------------------ */

void eng_submit(cairn_engine *e, bool here) {
    eng_durable *d = e->dq;
    if (here && d->out.n <= CAIRN_COMMIT_HERE_MAX && !eng_inbox_has_mail(e->inbox) &&
        eng_writer_commit_if_idle(e->writer, &d->out))
        return;
    eng_writer_submit(e->writer, &d->out);
}

void eng_durable_reached(cairn_engine *e, eng_batch *batch) {
    eng_durable *d = e->dq;
    if (batch->ticket > d->durable) d->durable = batch->ticket;
    for (int i = 0; i < batch->n && e->cfg.on_event; i++) {
        cairn_event *ev = batch->events[i];
        e->cfg.on_event(ev, eng_event_run(ev)->st, e->cfg.ud);
    }
    if (e->cfg.on_batch && batch->n > 0) e->cfg.on_batch(batch->n, e->cfg.ud);
    eng_batch_free_events(batch);
}

bool eng_all_durable(const cairn_engine *e) { return e->dq->durable >= e->dq->next_ticket; }

bool eng_ticket_durable(const cairn_engine *e, int64_t ticket) { return e->dq->durable >= ticket; }

/* ---- attempts in flight ---------------------------------------------------- */

void eng_attempt_started(cairn_engine *e, eng_attempt *a) {
    eng_durable *d = e->dq;
    a->run->in_flight++;
    d->in_flight++;
    a->live_prev = NULL;
    a->live_next = d->live;
    if (d->live) d->live->live_prev = a;
    d->live = a;
    a->next = NULL;
    if (d->await_tail) d->await_tail->next = a; else d->await_head = a;
    d->await_tail = a;
}

void eng_attempt_ended(cairn_engine *e, eng_attempt *a) {
    eng_durable *d = e->dq;
    if (a->live_prev) a->live_prev->live_next = a->live_next; else d->live = a->live_next;
    if (a->live_next) a->live_next->live_prev = a->live_prev;
    a->run->in_flight--;
    d->in_flight--;
}

eng_attempt *eng_take_ready(cairn_engine *e, bool all) {
    eng_durable *d = e->dq;
    eng_attempt *a = d->await_head;
    if (a == NULL || (!all && a->ticket > d->durable)) return NULL;
    /* no attempt starts while the lease does not hold (journal.h) */
    if (!all && !cairn_journal_lease_held(e->journal)) return NULL;
    d->await_head = a->next;
    if (d->await_head == NULL) d->await_tail = NULL;
    a->next = NULL;
    return a;
}

eng_attempt *eng_live_first(const cairn_engine *e) { return e->dq->live; }

int eng_in_flight(const cairn_engine *e) { return e->dq->in_flight; }

eng_run *eng_take_ended(cairn_engine *e) {
    eng_durable *d = e->dq;
    eng_run *r = d->ended_head;
    if (r == NULL || r->end_ticket > d->durable) return NULL;
    d->ended_head = r->ended_next;
    if (d->ended_head == NULL) d->ended_tail = NULL;
    return r;
}
