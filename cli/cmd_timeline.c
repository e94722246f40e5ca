/*
 * cmd_timeline.c - `cairn timeline RUN`: what happened in a run, in order.
 *
 * One line per step that did anything, in the order steps began: when it
 * began (from the run's start), how long it took to end (waits and retries
 * included), its outcome; under it its attempts, waits, retries, crashes,
 * child run and approvals (who, when, their comment).  On a terminal a bar
 * per step shows where in the run it lay, coloured by outcome unless
 * NO_COLOR; through a pipe the same lines without bar or colour.  The run is
 * folded with its chain checked first: a run that fails `verify` is refused
 * rather than told.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/audit_io.h"
#include "cli/cli.h"
#include "cli/live.h"
#include "common/clock.h"
#include "common/mem.h"

#define CAIRN_TIMELINE_BAR_WIDTH 30   /* characters of a step's bar on a terminal */

typedef struct {
    int64_t began, ended, attempt_began;   /* Unix ms; 0: not yet */
    int64_t first_seq;                     /* for the order steps began in */
    int items, items_failed;
    cairn_buf notes;                       /* lines under the step */
} step_line;

typedef struct {
    const cairn_run_state *st;
    step_line *steps;
    int64_t start;          /* run_created */
    cairn_buf run_notes;    /* run events that are no step's */
} timeline;

static void rel(const timeline *t, int64_t ms, char *out, size_t len) {
    char d[32];
    cli_duration_text(ms - t->start, d, sizeof d);
    snprintf(out, len, "+%s", d);
}

/* data[key] as text: a string as is, anything else as JSON; "" when absent. */
static char *field_text(jv data, const char *key) {
    jv v = jv_object_get(jv_copy(data), jv_string(key));
    char *s;
    if (jv_get_kind(v) == JV_KIND_STRING) {
        s = cairn_strdup(jv_string_value(v));
    } else if (jv_get_kind(v) == JV_KIND_ARRAY) {   /* names: "a, b" */
        cairn_buf b = CAIRN_BUF_INIT;
        jv_array_foreach(v, i, x) {
            if (i) cairn_buf_puts(&b, ", ");
            if (jv_get_kind(x) == JV_KIND_STRING) cairn_buf_puts(&b, jv_string_value(x));
            jv_free(x);
        }
        cairn_buf_putc(&b, '\0');
        s = cairn_buf_detach(&b);
    } else if (jv_is_valid(v) && jv_get_kind(v) != JV_KIND_NULL) {
        jv d = jv_dump_string(jv_copy(v), 0);
        s = cairn_strdup(jv_string_value(d));
        jv_free(d);
    } else {
        s = cairn_strdup("");
    }
    jv_free(v);
    return s;
}

static char *error_text(jv data) {
    jv e = jv_object_get(jv_copy(data), jv_string("error"));
    char *kind = field_text(e, "kind"), *msg = field_text(e, "message");
    char *s = cairn_sprintf("%s%s%s", kind, *kind && *msg ? ": " : "", msg);
    free(kind);
    free(msg);
    jv_free(e);
    return s;
}

static int64_t field_ms(jv data, const char *key) {
    jv v = jv_object_get(jv_copy(data), jv_string(key));
    int64_t ms = jv_get_kind(v) == JV_KIND_NUMBER ? (int64_t)jv_number_value(v) : 0;
    jv_free(v);
    return ms;
}

static void note(cairn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(cairn_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    cairn_buf_printf(b, "      %s\n", line);
}

/* The end of an attempt: "attempt N OUTCOME after D". */
static void attempt_end(const timeline *t, step_line *s, const cairn_event *ev, const char *what,
                        const char *detail) {
    char d[32], at[48];
    cli_duration_text(ev->time_ms - (s->attempt_began ? s->attempt_began : ev->time_ms), d, sizeof d);
    rel(t, ev->time_ms, at, sizeof at);
    note(&s->notes, "attempt %d %s after %s (%s)%s%s", ev->attempt, what, d, at,
         *detail ? ": " : "", detail);
}

static void approval_note(const timeline *t, step_line *s, const cairn_event *ev, jv data) {
    char when[40], at[48];
    rel(t, ev->time_ms, at, sizeof at);
    if (ev->type == CAIRN_EV_APPROVAL_REQUESTED) {
        char *prompt = field_text(data, "prompt"), *who = field_text(data, "approvers");
        note(&s->notes, "approval requested %s (approvers %s): %s", at, *who ? who : "anyone",
             prompt);
        free(prompt);
        free(who);
    } else if (ev->type == CAIRN_EV_APPROVAL_DECIDED) {
        char *dec = field_text(data, "decision"), *by = field_text(data, "by");
        char *comment = field_text(data, "comment");
        int64_t ms = field_ms(data, "at");
        cairn_rfc3339(ms ? ms : ev->time_ms, when, sizeof when);
        note(&s->notes, "%s by %s at %s (%s)%s%s%s", strcmp(dec, "approve") == 0 ? "approved" :
             strcmp(dec, "reject") == 0 ? "rejected" : dec, by, when, at,
             *comment ? ": \"" : "", comment, *comment ? "\"" : "");
        free(dec);
        free(by);
        free(comment);
    } else {
        char *who = field_text(data, "approvers");
        note(&s->notes, "unanswered: escalated to %s %s", who, at);
        free(who);
    }
}

/* A fork's carried result (engine/fork.h): where it comes from, and the
 * decisions of a carried approval, each marked as made in that run. */
static void carried_note(step_line *s, const cairn_event *ev, jv data) {
    char *run = field_text(data, "from_run"), *status = field_text(data, "status"), when[40];
    s->ended = ev->time_ms;
    note(&s->notes, "carried from run %s event %lld: %s there", run,
         (long long)field_ms(data, "from_seq"), status);
    jv approval = jv_object_get(jv_copy(data), jv_string("approval"));
    jv decisions = jv_get_kind(approval) == JV_KIND_OBJECT
                       ? jv_object_get(jv_copy(approval), jv_string("decisions")) : jv_null();
    if (jv_get_kind(decisions) == JV_KIND_ARRAY) {
        jv_array_foreach(decisions, i, d) {
            char *dec = field_text(d, "decision"), *by = field_text(d, "by");
            cairn_rfc3339(field_ms(d, "at"), when, sizeof when);
            note(&s->notes, "%s by %s at %s (carried: decided in run %s)",
                 strcmp(dec, "approve") == 0 ? "approved" : strcmp(dec, "reject") == 0 ? "rejected" : dec,
                 by, when, run);
            free(dec);
            free(by);
            jv_free(d);
        }
    }
    jv_free(decisions);
    jv_free(approval);
    free(run);
    free(status);
}

/* A step event: its step's line and notes. */
static void step_event(timeline *t, step_line *s, const cairn_event *ev, jv data) {
    jv index = jv_object_get(jv_copy(data), jv_string("index"));
    bool item = jv_get_kind(index) == JV_KIND_NUMBER;
    int k = item ? (int)jv_number_value(index) : -1;
    jv_free(index);
    char *err = NULL, at[48], label[40];
    snprintf(label, sizeof label, item ? "item %d " : "", k);
    if (s->began == 0) s->began = ev->time_ms;
    switch (ev->type) {
    case CAIRN_EV_STEP_STARTED:
        if (!item) s->attempt_began = ev->time_ms;
        break;
    case CAIRN_EV_STEP_SUCCEEDED:
        if (item) break;
        s->ended = ev->time_ms;
        if (s->attempt_began) attempt_end(t, s, ev, "succeeded", "");
        break;
    case CAIRN_EV_STEP_FAILED:
        err = error_text(data);
        if (item) {
            s->items_failed++;
            note(&s->notes, "%sfailed: %s", label, err);
        } else {
            s->ended = ev->time_ms;
            attempt_end(t, s, ev, "failed", err);
        }
        break;
    case CAIRN_EV_STEP_SKIPPED:
        s->ended = ev->time_ms;
        break;
    case CAIRN_EV_STEP_EXPANDED:
        s->items = (int)field_ms(data, "count");
        break;
    case CAIRN_EV_STEP_CARRIED:
        carried_note(s, ev, data);
        break;
    case CAIRN_EV_STEP_RETRYING:
        err = error_text(data);
        rel(t, field_ms(data, "retry_at"), at, sizeof at);
        if (!item) attempt_end(t, s, ev, "failed", err);
        note(&s->notes, "%sretry at %s", label, at);
        break;
    case CAIRN_EV_STEP_WAITING:
        rel(t, field_ms(data, "until"), at, sizeof at);
        note(&s->notes, "waits until %s", at);
        break;
    case CAIRN_EV_STEP_CRASHED:
        err = field_text(data, "action");
        rel(t, ev->time_ms, at, sizeof at);
        note(&s->notes, "%sattempt %d was in flight when its engine stopped; found %s, on_crash: %s",
             label, ev->attempt, at, err);
        break;
    case CAIRN_EV_STEP_INTERRUPTED:
        rel(t, ev->time_ms, at, sizeof at);
        note(&s->notes, "%sattempt %d interrupted at shutdown %s", label, ev->attempt, at);
        break;
    case CAIRN_EV_CHILD_STARTED:
        err = field_text(data, "child");
        note(&s->notes, "child run %s", err);
        break;
    case CAIRN_EV_APPROVAL_REQUESTED:
    case CAIRN_EV_APPROVAL_DECIDED:
    case CAIRN_EV_APPROVAL_ESCALATED:
        approval_note(t, s, ev, data);
        break;
    default:
        break;
    }
    free(err);
}

static void run_event(timeline *t, const cairn_event *ev, jv data) {
    char at[48], *why = NULL;
    rel(t, ev->time_ms, at, sizeof at);
    switch (ev->type) {
    case CAIRN_EV_RUN_PAUSED: note(&t->run_notes, "paused %s", at); break;
    case CAIRN_EV_RUN_UNPAUSED: note(&t->run_notes, "unpaused %s", at); break;
    case CAIRN_EV_RUN_CANCEL_REQUESTED:
        why = field_text(data, "by");
        note(&t->run_notes, "cancel requested %s%s%s", at, *why ? " by " : "", why);
        break;
    case CAIRN_EV_RUN_COMPENSATING:
        why = error_text(data);
        note(&t->run_notes, "rolling back %s: %s", at, why);
        break;
    case CAIRN_EV_TRIGGER_RESOLVED: {   /* the webhook's resolved event reached the run */
        jv event = jv_object_get(jv_copy(data), jv_string("event"));
        char *source = field_text(event, "source"), *name = field_text(event, "alertname");
        note(&t->run_notes, "%s%s%s resolved %s", source, *source ? ": " : "", name, at);
        free(source);
        free(name);
        jv_free(event);
        break;
    }
    default: break;
    }
    free(why);
}

/* The bar of a step: where in the run it lay, CAIRN_TIMELINE_BAR_WIDTH wide. */
static void print_bar(const step_line *s, int64_t start, int64_t total, int64_t end,
                      const char *colour) {
    int from = total > 0 ? (int)((s->began - start) * CAIRN_TIMELINE_BAR_WIDTH / total) : 0;
    int to = total > 0 ? (int)((end - start) * CAIRN_TIMELINE_BAR_WIDTH / total) : CAIRN_TIMELINE_BAR_WIDTH;
    if (to <= from) to = from + 1;
    if (to > CAIRN_TIMELINE_BAR_WIDTH) to = CAIRN_TIMELINE_BAR_WIDTH;
    if (from >= to) from = to - 1;
    printf("  %s", colour);
    for (int i = 0; i < CAIRN_TIMELINE_BAR_WIDTH; i++) fputs(i >= from && i < to ? "\u2588" : " ", stdout);
    printf("%s", *colour ? "\033[0m" : "");
}

static const char *status_colour(cairn_step_status s) {
    switch (s) {
    case CAIRN_STEP_SUCCEEDED: return "\033[32m";
    case CAIRN_STEP_FAILED: return "\033[31m";
    case CAIRN_STEP_SKIPPED: case CAIRN_STEP_CANCELLED: return "\033[33m";
    default: return "\033[36m";
    }
}

/* The step that began earliest among those not printed yet, or -1. */
static int next_step(const timeline *t, const bool *done) {
    int best = -1;
    for (int i = 0; i < t->st->n_steps; i++)
        if (!done[i] && t->steps[i].first_seq &&
            (best < 0 || t->steps[i].first_seq < t->steps[best].first_seq))
            best = i;
    return best;
}

static void print_timeline(timeline *t, int64_t last_ms) {
    const cairn_run_state *st = t->st;
    bool bar = cli_tty(), colour = cli_colour();
    char when[40], took[32];
    int64_t end = cairn_run_status_terminal(st->status) ? st->status_ms : last_ms;
    cli_duration_text(end - t->start, took, sizeof took);
    printf("run %s: %s, %s, started %s, %s%s\n", st->id, st->workflow ? st->workflow : "?",
           cairn_run_status_name(st->status), cairn_rfc3339(t->start, when, sizeof when),
           cairn_run_status_terminal(st->status) ? "took " : "so far ", took);
    if (st->fork_run)
        printf("forked from run %s at step %s\n", st->fork_run, st->fork_step ? st->fork_step : "?");
    bool *done = cairn_calloc((size_t)st->n_steps + 1, sizeof *done);
    for (int i; (i = next_step(t, done)) >= 0;) {
        done[i] = true;
        const step_line *s = &t->steps[i];
        const cairn_step_state *ss = &st->steps[i];
        char at[48], dur[32];
        rel(t, s->began, at, sizeof at);
        int64_t stop = s->ended ? s->ended : end;
        cli_duration_text(stop - s->began, dur, sizeof dur);
        const char *c = colour ? status_colour(ss->status) : "";
        printf("  %-24s %s%-10s%s %-9s %s", st->step_ids[i], c, cairn_step_status_name(ss->status),
               *c ? "\033[0m" : "", at, dur);
        int pad = 8 - (int)strlen(dur);
        if (ss->n_items || s->items)
            printf("%*s %d items, %d failed", pad, "", ss->n_items ? ss->n_items : s->items,
                   s->items_failed);
        else if (ss->attempts > 1)
            printf("%*s %d attempts", pad, "", ss->attempts);
        if (bar) printf("%*s", ss->n_items || s->items || ss->attempts > 1 ? 0 : pad, "");
        if (bar) print_bar(s, t->start, end - t->start, stop, c);
        printf("\n%s", s->notes.data ? s->notes.data : "");
    }
    free(done);
    if (t->run_notes.len) printf("  run\n%s", t->run_notes.data);
    if (jv_get_kind(st->error) == JV_KIND_OBJECT) {
        jv wrap = jv_object_set(jv_object(), jv_string("error"), jv_copy(st->error));
        char *e = error_text(wrap);
        printf("error: %s\n", e);
        free(e);
        jv_free(wrap);
    }
}

static void build(timeline *t, cairn_event *evs, int n) {
    for (int i = 0; i < n; i++) {
        cairn_event *ev = &evs[i];
        jv data = jv_parse(ev->data ? ev->data : "{}");
        if (ev->type == CAIRN_EV_RUN_CREATED) t->start = ev->time_ms;
        int k = ev->step ? cairn_run_state_step(t->st, ev->step) : -1;
        if (k >= 0) {
            if (t->steps[k].first_seq == 0) t->steps[k].first_seq = ev->seq;
            step_event(t, &t->steps[k], ev, data);
        } else if (!ev->step) {
            run_event(t, ev, data);
        }
        jv_free(data);
    }
}

int cmd_timeline(cli_opts *o, int argc, char **argv) {
    const char *run_id = NULL;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if (argv[i][0] == '-' || run_id) return cli_usage("usage: cairn timeline RUN [--db PATH]");
        run_id = argv[i];
    }
    if (run_id == NULL) return cli_usage("usage: cairn timeline RUN [--db PATH]");
    audit_journal *j = NULL;
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    cairn_event *evs = NULL;
    int n = 0, rc = EXIT_OK;
    cairn_err err;
    if (audit_open(o->db, false, &j, &err) != 0) {
        rc = EXIT_JOURNAL;
    } else if ((rc = audit_load_run(j, run_id, &st, &wf, &err)) != 0 ||
               (rc = audit_events(j, run_id, &evs, &n, &err)) != 0) {
        rc = cli_lookup_exit(rc);
    } else {
        timeline t = {.st = st, .steps = cairn_calloc((size_t)st->n_steps + 1, sizeof(step_line))};
        build(&t, evs, n);
        print_timeline(&t, n ? evs[n - 1].time_ms : t.start);
        for (int i = 0; i < st->n_steps; i++) cairn_buf_free(&t.steps[i].notes);
        cairn_buf_free(&t.run_notes);
        free(t.steps);
    }
    if (rc) cli_error(&err);
    cairn_events_free(evs, n);
    cairn_run_state_free(st);
    cairn_workflow_free(wf);
    audit_close(j);
    return rc;
}
