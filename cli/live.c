/*
 * live.c - the transitions `cairn run` prints: stable lines, or the
 * terminal view (live.h).
 *
 * The view keeps, per run it follows, what the events alone do not say:
 * when each step began (for durations), how many of the run's steps are the
 * workflow's own (for "3/5": on_failure steps and compensate bodies are not
 * counted), and what the run is doing now (for the status line).  Counts are
 * taken from the run state as of the event printed (a step is done at the
 * seq of the event that ended it), since the state handed in may be ahead.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/live.h"
#include "common/clock.h"
#include "common/mem.h"
#include "engine/owner.h"

#define CAIRN_LIVE_COLUMNS_DEFAULT 80   /* when the terminal does not say */
/* A foreach item's event that prints no line redraws the status line at
 * most this often: the status line costs a pass over the run's steps, and
 * items may come by the thousand. */
#define CAIRN_LIVE_ITEM_REDRAW_MS 100

typedef struct live_def {
    char hash[65];
    int n_main;
} live_def;

typedef struct live_run {
    char id[CAIRN_RUN_ID_MAX];
    char *prefix;          /* "" for a top-level run, "WORKFLOW: " for a child */
    int n_main, n_steps;
    int64_t *began_ms;     /* per step: time of its first event, 0 none yet, -1 unknown
                              (it began before this process took the run over) */
    int64_t created_ms;
    char now[CAIRN_LIVE_STATUS_MAX];   /* its part of the status line */
} live_run;

struct cli_live {
    FILE *out;
    char *db;              /* the journal's path, as given */
    char *db_arg;          /* " --db PATH " (absolute, shell-quoted) or " "; at first need */
    bool view, colour;
    int ended_badly;
    live_run runs[CAIRN_LIVE_RUNS_MAX];
    int n_runs;
    live_def defs[CAIRN_LIVE_RUNS_MAX];
    int n_defs;
    cairn_journal *journal;   /* to read definitions, opened at first need */
    char status[CAIRN_LIVE_STATUS_MAX];   /* the status line showing, "" none */
    long lines;            /* finished lines printed */
    int64_t drawn_ms;      /* when the status line was last worked out (monotonic) */
};

/* ---- shared ---------------------------------------------------------------- */

static const char *colour_of(cairn_event_type t) {
    switch (t) {
    case CAIRN_EV_STEP_SUCCEEDED: case CAIRN_EV_RUN_SUCCEEDED: return "\033[32m";
    case CAIRN_EV_STEP_FAILED: case CAIRN_EV_RUN_FAILED: case CAIRN_EV_STEP_CRASHED: return "\033[31m";
    case CAIRN_EV_STEP_SKIPPED: case CAIRN_EV_RUN_CANCELLED: return "\033[33m";
    default: return "";
    }
}

static jv field(jv data, const char *name) { return jv_object_get(jv_copy(data), jv_string(name)); }

/* "kind: message" of data's error (first line only), or "". */
static void error_text(jv data, char *out, size_t len) {
    jv e = field(data, "error");
    out[0] = '\0';
    if (jv_get_kind(e) == JV_KIND_OBJECT) {
        jv k = field(e, "kind");
        jv m = field(e, "message");
        snprintf(out, len, "%s: %s", jv_get_kind(k) == JV_KIND_STRING ? jv_string_value(k) : "?",
                 jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "");
        jv_free(k);
        jv_free(m);
    }
    jv_free(e);
    char *nl = strchr(out, '\n');
    if (nl) strcpy(nl, " ...");
}

static jv event_data(const cairn_event *ev) {
    jv data = jv_parse(ev->data ? ev->data : "{}");   /* the engine keeps text only */
    if (jv_get_kind(data) == JV_KIND_OBJECT) return data;
    jv_free(data);
    return jv_object();
}

/* The foreach item an event names, or -1. */
static int event_index(jv data) {
    jv index = field(data, "index");
    int i = jv_get_kind(index) == JV_KIND_NUMBER ? (int)jv_number_value(index) : -1;
    jv_free(index);
    return i;
}

/* A carried result's "STATUS, from run RUN event SEQ" (engine/fork.h). */
static void carried_text(jv data, char *out, size_t len) {
    jv status = field(data, "status"), run = field(data, "from_run"), seq = field(data, "from_seq");
    snprintf(out, len, "%s, from run %s event %lld",
             jv_get_kind(status) == JV_KIND_STRING ? jv_string_value(status) : "?",
             jv_get_kind(run) == JV_KIND_STRING ? jv_string_value(run) : "?",
             jv_get_kind(seq) == JV_KIND_NUMBER ? (long long)jv_number_value(seq) : 0LL);
    jv_free(status);
    jv_free(run);
    jv_free(seq);
}

/* ---- lines ----------------------------------------------------------------- */

static void print_line(cli_live *l, const cairn_event *ev, const cairn_run_state *st, jv data) {
    char when[40], what[160], detail[400] = "";
    cairn_rfc3339(ev->time_ms, when, sizeof when);
    int index = event_index(data);
    if (ev->step && index >= 0) snprintf(what, sizeof what, "%s[%d]", ev->step, index);
    else snprintf(what, sizeof what, "%s", ev->step ? ev->step : "run");
    if (ev->type == CAIRN_EV_STEP_STARTED) snprintf(detail, sizeof detail, "attempt %d", ev->attempt);
    else if (ev->type == CAIRN_EV_RUN_CREATED) snprintf(detail, sizeof detail, "%s %s", st->workflow, st->id);
    else if (ev->type == CAIRN_EV_STEP_CARRIED) carried_text(data, detail, sizeof detail);
    else error_text(data, detail, sizeof detail);
    const char *c = l->colour ? colour_of(ev->type) : "";
    fprintf(l->out, "%.12s  %-24s %s%-20s%s %s\n", when + 11, what, c,
            cairn_event_type_name(ev->type), *c ? "\033[0m" : "", detail);
}

/* ---- the view: runs followed ----------------------------------------------- */

/* Open the journal to read, once; 0 when it is open. */
static int open_store(cli_live *l) {
    cairn_err err;
    if (l->journal == NULL && cli_open_journal(l->db, &l->journal, &err) != 0) l->journal = NULL;
    return l->journal ? 0 : -1;
}

/* How many of the run's steps are its workflow's own (not on_failure steps
 * nor compensate bodies), read from the journal once per definition; when
 * it cannot be read, every step but compensate bodies. */
static int main_steps(cli_live *l, const cairn_run_state *st) {
    for (int i = 0; st->def_hash && i < l->n_defs; i++)
        if (strcmp(l->defs[i].hash, st->def_hash) == 0) return l->defs[i].n_main;
    cairn_workflow *wf = NULL;
    cairn_err err;
    int n = 0;
    if (open_store(l) == 0 && st->def_hash &&
        cairn_journal_definition(l->journal, st->def_hash, st->id, &wf, &err) == 0)
        n = wf->n_steps;
    else
        for (int i = 0; i < st->n_steps; i++) n += strchr(st->step_ids[i], '#') == NULL;
    cairn_workflow_free(wf);
    if (st->def_hash && l->n_defs < CAIRN_LIVE_RUNS_MAX) {
        live_def *d = &l->defs[l->n_defs++];
        snprintf(d->hash, sizeof d->hash, "%s", st->def_hash);
        d->n_main = n;
    }
    return n;
}

/* The record of st's run, made at its first event; NULL when
 * CAIRN_LIVE_RUNS_MAX runs are followed already. */
static live_run *run_of(cli_live *l, const cairn_run_state *st) {
    for (int i = 0; i < l->n_runs; i++)
        if (strcmp(l->runs[i].id, st->id) == 0) return &l->runs[i];
    if (l->n_runs == CAIRN_LIVE_RUNS_MAX) return NULL;
    live_run *r = &l->runs[l->n_runs++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", st->id);
    r->n_main = main_steps(l, st);
    r->n_steps = st->n_steps;
    r->began_ms = cairn_calloc((size_t)st->n_steps + 1, sizeof *r->began_ms);
    r->created_ms = st->created_ms;
    return r;
}

static void run_drop(cli_live *l, live_run *r) {
    free(r->began_ms);
    *r = l->runs[--l->n_runs];
}

/* Steps of the workflow's own that were done (succeeded, failed or
 * skipped) as of event seq. */
static int done_at(const cairn_run_state *st, int n_main, int64_t seq) {
    int n = 0;
    for (int i = 0; i < n_main && i < st->n_steps; i++)
        n += st->steps[i].done_seq != 0 && st->steps[i].done_seq <= seq;
    return n;
}

/* Steps of the workflow's own that succeeded: at a run's end. */
static int succeeded(const cairn_run_state *st, int n_main) {
    int n = 0;
    for (int i = 0; i < n_main && i < st->n_steps; i++) n += st->steps[i].status == CAIRN_STEP_SUCCEEDED;
    return n;
}

/* "WORKFLOW: " for a child run's lines, "" for a top-level run's. */
static const char *prefix_of(const cairn_run_state *st, char *buf, size_t len) {
    if (st->parent == NULL) snprintf(buf, len, "%s", "");
    else snprintf(buf, len, "%s: ", st->workflow ? st->workflow : "?");
    return buf;
}

void cli_duration_text(int64_t ms, char *out, size_t len) {
    if (ms < 0) ms = 0;
    if (ms < 60000) snprintf(out, len, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000) snprintf(out, len, "%dm%02ds", (int)(ms / 60000), (int)(ms / 1000 % 60));
    else snprintf(out, len, "%dh%02dm", (int)(ms / 3600000), (int)(ms / 60000 % 60));
}

/* s as one shell word: itself when it holds only safe characters, else in
 * single quotes.  The caller frees it. */
static char *shell_word(const char *s) {
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+-") ==
                  strlen(s))
        return cairn_strdup(s);
    size_t n = 3;
    for (const char *p = s; *p; p++) n += *p == '\'' ? 4 : 1;
    char *out = cairn_malloc(n), *o = out;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

/* ---- the view: output -------------------------------------------------------- */

static void erase_status(cli_live *l) {
    if (l->status[0]) fputs("\r\033[K", l->out);
    l->status[0] = '\0';
}

/* A finished line: printed above the status line, which is erased first. */
static void emit(cli_live *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(cli_live *l, const char *fmt, ...) {
    va_list ap;
    l->lines++;
    erase_status(l);
    va_start(ap, fmt);
    vfprintf(l->out, fmt, ap);
    va_end(ap);
    fputc('\n', l->out);
}

static int columns(cli_live *l) {
    struct winsize ws;
    if (ioctl(fileno(l->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1) return ws.ws_col;
    return CAIRN_LIVE_COLUMNS_DEFAULT;
}

/* What a run does now, for the status line: "PREFIX3/5 running a, b;
 * awaiting approval c". */
static void run_now(live_run *r, const cairn_run_state *st, int64_t seq) {
    char pre[CAIRN_ID_MAX + 8];
    size_t len = sizeof r->now;
    int n = snprintf(r->now, len, "%s%d/%d", prefix_of(st, pre, sizeof pre),
                     done_at(st, r->n_main, seq), r->n_main);
    const char *sep = " ";
    for (int i = 0; i < st->n_steps && n > 0 && (size_t)n < len; i++) {
        const cairn_step_state *s = &st->steps[i];
        const char *what = s->status == CAIRN_STEP_RUNNING ? "running"
                           : s->status != CAIRN_STEP_WAITING ? NULL
                           : jv_get_kind(s->approval) == JV_KIND_OBJECT ? "awaiting approval"
                           : s->child[0] ? "awaiting its child run" : "waiting";
        if (what == NULL) continue;
        if (s->expanded)
            n += snprintf(r->now + n, len - (size_t)n, "%s%s %s (%d/%d items)", sep, what,
                          st->step_ids[i], s->items_succeeded + s->items_failed, s->n_items);
        else
            n += snprintf(r->now + n, len - (size_t)n, "%s%s %s", sep, what, st->step_ids[i]);
        sep = ", ";
    }
}

/* Redraw the status line (every followed run's part) when it changed,
 * cut to the terminal's width so that \r returns to its start. */
static void redraw(cli_live *l) {
    char text[CAIRN_LIVE_STATUS_MAX];
    size_t n = 0, max = (size_t)columns(l) - 1;
    if (max >= sizeof text) max = sizeof text - 1;
    text[0] = '\0';
    for (int i = 0; i < l->n_runs && n < max; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", i ? " | " : "", l->runs[i].now);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--;   /* whole UTF-8 characters */
        text[n] = '\0';
    }
    if (strcmp(text, l->status) == 0) return;
    erase_status(l);
    fputs(text, l->out);
    memcpy(l->status, text, n + 1);
}

/* ---- the view: one handler per event type ---------------------------------- */

typedef struct view_ctx {
    cli_live *l;
    live_run *r;                 /* NULL: a run past CAIRN_LIVE_RUNS_MAX */
    const cairn_event *ev;
    const cairn_run_state *st;
    jv data;
    int step, index;             /* the step's index in st (-1: a run event), the item or -1 */
    char pre[CAIRN_ID_MAX + 8];  /* prefix_of the run */
} view_ctx;

typedef void (*view_fn)(view_ctx *c);

static const char *paint(const view_ctx *c, cairn_event_type t) {
    return c->l->colour ? colour_of(t) : "";
}

/* "  3/5   ok      build                1.2s, 2 attempts  detail" */
static void step_line(view_ctx *c, const char *word, const char *detail) {
    char count[32] = "-", took[64] = "";
    const cairn_run_state *st = c->st;
    int n_main = c->r ? c->r->n_main : main_steps(c->l, st);
    if (c->step < n_main) snprintf(count, sizeof count, "%d/%d", done_at(st, n_main, c->ev->seq), n_main);
    if (c->r && c->r->began_ms[c->step] > 0 && c->ev->type != CAIRN_EV_STEP_SKIPPED &&
        c->ev->type != CAIRN_EV_STEP_CARRIED) {
        cli_duration_text(c->ev->time_ms - c->r->began_ms[c->step], took, sizeof took);
        int attempts = st->steps[c->step].attempts;
        if (attempts > 1) snprintf(took + strlen(took), sizeof took - strlen(took), ", %d attempts", attempts);
    }
    const char *col = paint(c, c->ev->type);
    emit(c->l, "  %s%-5s %s%-7s%s %-*s%s%s%s", c->pre, count, col, word, *col ? "\033[0m" : "",
         *took || *detail ? 21 : 0, c->ev->step, took, *took && *detail ? "  " : "", detail);
}

/* A line for an event that changes no count: "  PREFIXwhat: detail". */
static void note_line(view_ctx *c, const char *what, const char *detail) {
    emit(c->l, "  %s%s%s%s", c->pre, what, *detail ? ": " : "", detail);
}

static void on_step_end(view_ctx *c) {
    char detail[400] = "";
    error_text(c->data, detail, sizeof detail);
    if (c->index >= 0) {   /* an item: only failures get a line */
        if (c->ev->type == CAIRN_EV_STEP_FAILED) {
            char what[CAIRN_ID_MAX + 32];
            snprintf(what, sizeof what, "%s[%d] failed", c->ev->step, c->index);
            note_line(c, what, detail);
        }
        return;
    }
    const char *word = c->ev->type == CAIRN_EV_STEP_SUCCEEDED ? "ok"
                       : c->ev->type == CAIRN_EV_STEP_FAILED ? "failed" : "skipped";
    step_line(c, word, detail);
}

static void on_step_carried(view_ctx *c) {
    char detail[400];
    carried_text(c->data, detail, sizeof detail);
    step_line(c, "carried", detail);
}

static void on_step_retrying(view_ctx *c) {
    char detail[400] = "", what[CAIRN_ID_MAX + 64], at[40] = "";
    error_text(c->data, detail, sizeof detail);
    jv when = field(c->data, "retry_at");
    if (jv_get_kind(when) == JV_KIND_NUMBER) cairn_rfc3339((int64_t)jv_number_value(when), at, sizeof at);
    jv_free(when);
    if (c->index >= 0) snprintf(what, sizeof what, "%s[%d] attempt %d failed", c->ev->step, c->index, c->ev->attempt);
    else snprintf(what, sizeof what, "%s attempt %d failed", c->ev->step, c->ev->attempt);
    if (*at) snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "; next at %.8s", at + 11);
    note_line(c, what, detail);
}

/* Who the approve command names: the sole approver who may decide when
 * there is one (the run's starter is forbidden to approve without
 * allow_self_approval), else NAME, to be replaced.  The caller frees it. */
static char *approver_word(jv approvers, jv forbidden) {
    char *sole = NULL;
    int n = 0;
    const char *no = jv_get_kind(forbidden) == JV_KIND_STRING ? jv_string_value(forbidden) : "";
    if (jv_get_kind(approvers) == JV_KIND_ARRAY) {
        jv_array_foreach(approvers, i, a) {
            if (jv_get_kind(a) == JV_KIND_STRING && strcmp(jv_string_value(a), no) != 0 && n++ == 0)
                sole = shell_word(jv_string_value(a));
            jv_free(a);
        }
    }
    if (n == 1) return sole;
    free(sole);
    return cairn_strdup("NAME");
}

/* "alice, bob" of a list of names; "anyone" for none. */
static jv names_text(jv names) {
    jv out = jv_string("");
    if (jv_get_kind(names) == JV_KIND_ARRAY) {
        jv_array_foreach(names, i, a) {
            jv one = jv_get_kind(a) == JV_KIND_STRING ? a : jv_dump_string(a, 0);
            out = jv_string_concat(out, i ? jv_string_fmt(", %s", jv_string_value(one)) : jv_copy(one));
            jv_free(one);
        }
    }
    if (jv_string_length_bytes(jv_copy(out)) > 0) return out;
    jv_free(out);
    return jv_string("anyone");
}

/* " --db PATH " when the journal is not the default one, else " ". */
static const char *db_arg(cli_live *l) {
    if (l->db_arg) return l->db_arg;
    if (strcmp(l->db, CLI_DEFAULT_DB) == 0) return l->db_arg = cairn_strdup(" ");
    char *name = cairn_journal_name(l->db);   /* a URL without its password */
    char *abs = realpath(name, NULL);
    char *q = shell_word(abs ? abs : name);
    free(name);
    l->db_arg = cairn_sprintf(" --db %s ", q);
    free(q);
    free(abs);
    return l->db_arg;
}

/* The approval's ask (an approval_requested event's data, or a step's
 * approval in the run state), and the exact commands that decide it. */
static void approval_lines(cli_live *l, const cairn_run_state *st, const char *pre, const char *step,
                           jv ask, const char *opened) {
    jv prompt = field(ask, "prompt"), approvers = field(ask, "approvers");
    jv forbidden = field(ask, "forbidden"), quorum = field(ask, "quorum");
    jv who = names_text(approvers);
    char *as = approver_word(approvers, forbidden);
    const char *db = db_arg(l);
    emit(l, "  %s%s %s (%d needed; approvers %s)%s%s", pre, step, opened,
         jv_get_kind(quorum) == JV_KIND_NUMBER ? (int)jv_number_value(quorum) : 1, jv_string_value(who),
         jv_get_kind(prompt) == JV_KIND_STRING ? ": " : "",
         jv_get_kind(prompt) == JV_KIND_STRING ? jv_string_value(prompt) : "");
    emit(l, "      approve: cairn%sapprove %s %s --as %s", db, st->id, step, as);
    emit(l, "      reject:  cairn%sreject %s %s --as %s --comment 'why'", db, st->id, step, as);
    free(as);
    jv_free(prompt);
    jv_free(approvers);
    jv_free(forbidden);
    jv_free(quorum);
    jv_free(who);
}

static void on_approval_requested(view_ctx *c) {
    approval_lines(c->l, c->st, c->pre, c->ev->step, c->data, "awaits approval");
}

static void on_approval_escalated(view_ctx *c) {
    approval_lines(c->l, c->st, c->pre, c->ev->step, c->data, "escalated");
}

/* Who decided, and what they said. */
static void on_approval_decided(view_ctx *c) {
    jv decision = field(c->data, "decision"), by = field(c->data, "by"), comment = field(c->data, "comment");
    jv said = jv_get_kind(comment) == JV_KIND_STRING ? jv_dump_string(jv_copy(comment), 0) : jv_string("");
    bool yes = jv_get_kind(decision) == JV_KIND_STRING && strcmp(jv_string_value(decision), "approve") == 0;
    emit(c->l, "  %s%s %s by %s%s%s", c->pre, c->ev->step, yes ? "approved" : "rejected",
         jv_get_kind(by) == JV_KIND_STRING ? jv_string_value(by) : "?",
         jv_string_length_bytes(jv_copy(said)) ? ": " : "", jv_string_value(said));
    jv_free(decision);
    jv_free(by);
    jv_free(comment);
    jv_free(said);
}

static void on_run_created(view_ctx *c) {
    if (c->st->fork_run && !c->st->parent)
        emit(c->l, "run %s: %s, %d steps, forked from run %s at step %s", c->st->id,
             c->st->workflow ? c->st->workflow : "?", c->r ? c->r->n_main : main_steps(c->l, c->st),
             c->st->fork_run, c->st->fork_step ? c->st->fork_step : "?");
    else if (c->st->parent) note_line(c, "run started", c->st->id);
    else emit(c->l, "run %s: %s, %d steps", c->st->id, c->st->workflow ? c->st->workflow : "?",
              c->r ? c->r->n_main : main_steps(c->l, c->st));
}

/* A top-level run's outputs, a line each: "  name: JSON". */
static void outputs_lines(view_ctx *c) {
    if (jv_get_kind(c->st->outputs) != JV_KIND_OBJECT || jv_object_length(jv_copy(c->st->outputs)) == 0) return;
    emit(c->l, "outputs:");
    jv_object_foreach(c->st->outputs, k, v) {
        jv text = jv_dump_string(v, 0);
        emit(c->l, "  %s: %s", jv_string_value(k), jv_string_value(text));
        jv_free(text);
        jv_free(k);
    }
}

static void on_run_end(view_ctx *c) {
    char detail[400] = "", took[32] = "";
    if (c->r) cli_duration_text(c->ev->time_ms - c->r->created_ms, took, sizeof took);
    error_text(c->data, detail, sizeof detail);
    int n_main = c->r ? c->r->n_main : main_steps(c->l, c->st);
    const char *col = paint(c, c->ev->type);
    emit(c->l, "%s%s%srun %s%s in %s (%d/%d steps succeeded)%s%s", c->st->parent ? "  " : "",
         c->pre, col, cairn_run_status_name(c->st->status), *col ? "\033[0m" : "",
         *took ? took : "?", succeeded(c->st, n_main), n_main, *detail ? ": " : "", detail);
    if (c->ev->type == CAIRN_EV_RUN_SUCCEEDED && c->st->parent == NULL) outputs_lines(c);
    if (c->r) run_drop(c->l, c->r);
    c->r = NULL;
}

/* Events with a line of their own and no count: "  step attempt 2 crashed". */
static void on_note(view_ctx *c) {
    char detail[400] = "", what[CAIRN_ID_MAX + 64];
    error_text(c->data, detail, sizeof detail);
    snprintf(what, sizeof what, "%s%s%s", c->ev->step ? c->ev->step : "run", c->ev->step ? " " : " ",
             cairn_event_type_name(c->ev->type));
    note_line(c, what, detail);
}

static const view_fn view_of[] = {
    [CAIRN_EV_RUN_CREATED] = on_run_created,
    [CAIRN_EV_STEP_SUCCEEDED] = on_step_end,
    [CAIRN_EV_STEP_FAILED] = on_step_end,
    [CAIRN_EV_STEP_SKIPPED] = on_step_end,
    [CAIRN_EV_STEP_CARRIED] = on_step_carried,
    [CAIRN_EV_STEP_CRASHED] = on_note,
    [CAIRN_EV_STEP_INTERRUPTED] = on_note,
    [CAIRN_EV_STEP_RETRYING] = on_step_retrying,
    [CAIRN_EV_APPROVAL_REQUESTED] = on_approval_requested,
    [CAIRN_EV_APPROVAL_DECIDED] = on_approval_decided,
    [CAIRN_EV_APPROVAL_ESCALATED] = on_approval_escalated,
    [CAIRN_EV_RUN_CANCEL_REQUESTED] = on_note,
    [CAIRN_EV_RUN_COMPENSATING] = on_note,
    [CAIRN_EV_RUN_PAUSED] = on_note,
    [CAIRN_EV_RUN_UNPAUSED] = on_note,
    [CAIRN_EV_TRIGGER_RESOLVED] = on_note,
    [CAIRN_EV_RUN_SUCCEEDED] = on_run_end,
    [CAIRN_EV_RUN_FAILED] = on_run_end,
    [CAIRN_EV_RUN_CANCELLED] = on_run_end,
};

static void view_event(cli_live *l, const cairn_event *ev, const cairn_run_state *st, jv data) {
    view_ctx c = {.l = l, .r = run_of(l, st), .ev = ev, .st = st, .data = data,
                  .step = ev->step ? cairn_run_state_step(st, ev->step) : -1};
    c.index = event_index(data);
    prefix_of(st, c.pre, sizeof c.pre);
    if (c.r && c.step >= 0 && c.step < c.r->n_steps && c.r->began_ms[c.step] == 0)
        c.r->began_ms[c.step] = ev->time_ms;
    if (ev->step && c.step < 0) return;   /* the fold refuses such an event */
    long lines = l->lines;
    if ((size_t)ev->type < sizeof view_of / sizeof *view_of && view_of[ev->type]) view_of[ev->type](&c);
    int64_t now = cairn_now_ms();
    if (c.index >= 0 && l->lines == lines && now - l->drawn_ms < CAIRN_LIVE_ITEM_REDRAW_MS) return;
    l->drawn_ms = now;
    if (c.r) run_now(c.r, st, ev->seq);
    redraw(l);
}

/* ---- the view: runs taken over ---------------------------------------------- */

/* A run this engine took over, as the journal holds it: where it stands,
 * and the commands for each approval it waits on (whose events came before
 * this process).  Steps under way have no known start: no duration. */
static void view_resumed(cli_live *l, const cairn_run_state *st) {
    char pre[CAIRN_ID_MAX + 8];
    live_run *r = run_of(l, st);
    int n_main = r ? r->n_main : main_steps(l, st);
    prefix_of(st, pre, sizeof pre);
    if (st->parent) emit(l, "  %srun %s resumed", pre, st->id);
    else emit(l, "run %s: %s, resumed at %d/%d steps", st->id, st->workflow ? st->workflow : "?",
              done_at(st, n_main, st->last_seq), n_main);
    for (int i = 0; i < st->n_steps; i++) {
        const cairn_step_state *s = &st->steps[i];
        if (r && s->status != CAIRN_STEP_PENDING) r->began_ms[i] = -1;
        if (s->status == CAIRN_STEP_WAITING && jv_get_kind(s->approval) == JV_KIND_OBJECT)
            approval_lines(l, st, pre, st->step_ids[i], s->approval, "awaits approval");
    }
    if (r) run_now(r, st, st->last_seq);
}

void cli_live_resumed(cli_live *l) {
    cairn_run_row *rows = NULL;
    int n = 0;
    cairn_err err;
    char self[256];
    if (!l->view || open_store(l) != 0) return;
    cairn_owner_self(self, sizeof self);
    if (cairn_journal_list_runs(l->journal, CAIRN_RUNS_UNFINISHED, &rows, &n, &err) != 0)
        n = 0;
    for (int i = 0; i < n; i++) {
        cairn_run_state *st = NULL;
        if (rows[i].owner && strcmp(rows[i].owner, self) == 0 &&
            cairn_journal_load_run(l->journal, rows[i].id, &st, NULL, &err) == 0)
            view_resumed(l, st);
        cairn_run_state_free(st);
        cairn_run_row_clear(&rows[i]);
    }
    free(rows);
    redraw(l);
    fflush(l->out);
}

/* ---- the printer ------------------------------------------------------------- */

cli_live *cli_live_new(FILE *out, const char *db, bool view, bool colour) {
    cli_live *l = cairn_calloc(1, sizeof *l);
    l->out = out;
    l->db = cairn_strdup(db);
    l->view = view;
    l->colour = colour;
    return l;
}

void cli_live_event(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    cli_live *l = ud;
    if ((ev->type == CAIRN_EV_RUN_FAILED || ev->type == CAIRN_EV_RUN_CANCELLED) && !st->parent)
        l->ended_badly++;
    jv data = event_data(ev);
    if (l->view) view_event(l, ev, st, data);
    else print_line(l, ev, st, data);
    jv_free(data);
    fflush(l->out);
}

int cli_live_ended_badly(const cli_live *l) { return l->ended_badly; }

void cli_live_free(cli_live *l) {
    if (l == NULL) return;
    erase_status(l);
    fflush(l->out);
    while (l->n_runs) run_drop(l, &l->runs[l->n_runs - 1]);
    cairn_journal_close(l->journal);
    free(l->db);
    free(l->db_arg);
    free(l);
}
