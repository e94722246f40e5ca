/*
 * cmd_trigger.c - `cairn trigger SOURCE --payload FILE [--dry-run]`: a
 * webhook delivered from the shell.
 *
 * With --dry-run the payload goes through the same normalizer and matcher
 * as the server's webhooks (server/hook.h, server/trigger.h) against every
 * workflow in --workflows DIR (default: the current folder), and what would
 * start is printed: nothing is journaled.
 *
 * Without it the webhook is carried out as POST /v1/hooks/SOURCE carries it
 * out (server/hookroute.h), dedupe claims and all:
 *   - when a `cairn serve` holds the journal, by that server (its socket,
 *     server/local.h), against the workflows it serves; the answer is
 *     printed and the runs go on there;
 *   - when none does, by an engine in this process, against the workflows
 *     of --workflows, as `cairn run` runs a workflow: the transitions of
 *     the runs started are printed until each has ended (SIGINT or SIGTERM
 *     stops them for `cairn resume`).  The claims are the journal's, so a
 *     second `cairn trigger` of the same alert, or a server started later,
 *     finds the run the first one started.
 */
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/live.h"
#include "common/file.h"
#include "common/json.h"
#include "common/mem.h"
#include "server/backend.h"
#include "server/hook.h"
#include "server/hookroute.h"
#include "server/trigger.h"

#define CAIRN_TRIGGER_TEXT_INPUTS 100   /* bytes of one input's value shown in text output */

typedef struct {
    const char *source, *payload, *dir;
    bool dry_run;
} trigger_args;

static int parse_args(cli_opts *o, int argc, char **argv, trigger_args *a) {
    const char *v;
    a->dir = ".";
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--payload")) != NULL) a->payload = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--workflows")) != NULL) a->dir = v;
        else if (strcmp(argv[i], "--dry-run") == 0) a->dry_run = true;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') return cli_usage("trigger: unknown option '%s'", argv[i]);
        else if (a->source) return cli_usage("trigger: one source at a time");
        else a->source = argv[i];
    }
    if (a->source == NULL || a->payload == NULL)
        return cli_usage("usage: cairn trigger SOURCE --payload FILE [--dry-run] [--workflows DIR] [--json]");
    if (!cairn_hook_source_known(a->source))
        return cli_usage("trigger: no webhook source '%s'; the sources are alertmanager, pagerduty, "
                         "datadog, grafana, servicenow, generic", a->source);
    return 0;
}

/* The payload (a file, or stdin for "-"), at most CAIRN_HOOK_BODY_MAX bytes. */
static char *read_payload(const char *path, size_t *len) {
    char *buf;
    int rc = cairn_file_read(path, CAIRN_HOOK_BODY_MAX, &buf, len);
    if (rc == CAIRN_FILE_UNREADABLE) cli_usage("trigger: --payload %s: cannot open", path);
    if (rc == CAIRN_FILE_TOO_LARGE)
        cli_usage("trigger: --payload %s: larger than %d bytes", path, CAIRN_HOOK_BODY_MAX);
    return buf;
}

/* Every *.yaml and *.yml in dir; one that does not load is reported (with
 * its diagnostics) and skipped, as the server skips it. */
static void load_dir(const char *dir, cairn_workflow ***wfs, int *n) {
    static const char *const patterns[] = {"%s/*.yaml", "%s/*.yml"};
    *wfs = NULL;
    *n = 0;
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        char *pattern = cairn_sprintf(patterns[p], dir);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) == 0) {
            *wfs = cairn_realloc(*wfs, (size_t)(*n + (int)g.gl_pathc) * sizeof **wfs);
            for (size_t i = 0; i < g.gl_pathc; i++) {
                cairn_workflow *wf = cli_load_workflow(g.gl_pathv[i]);
                if (wf) (*wfs)[(*n)++] = wf;
                else fprintf(stderr, "cairn: %s is skipped\n", g.gl_pathv[i]);
            }
            globfree(&g);
        }
        free(pattern);
    }
}

static const char *text_of(jv o, const char *key, char *buf, size_t len) {
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    if (jv_get_kind(v) == JV_KIND_STRING) snprintf(buf, len, "%s", jv_string_value(v));
    else if (jv_get_kind(v) == JV_KIND_NUMBER) snprintf(buf, len, "%d", (int)jv_number_value(v));
    else snprintf(buf, len, "-");
    jv_free(v);
    return buf;
}

/* One line of the answer: what, the workflow and trigger, the event. */
static void print_item(const char *what, jv item, jv events) {
    char wf[128], trig[16], ev[16], key[128], name[160], status[16];
    int e = atoi(text_of(item, "event", ev, sizeof ev));
    jv event = jv_array_get(jv_copy(events), e);
    printf("%-9s %s[%s]  event %d %s %s", what, text_of(item, "workflow", wf, sizeof wf),
           text_of(item, "trigger", trig, sizeof trig), e, text_of(event, "alertname", name, sizeof name),
           text_of(event, "status", status, sizeof status));
    if (strcmp(what, "refused") != 0) printf("  dedupe %s", text_of(item, "dedupe", key, sizeof key));
    printf("\n");
    jv_free(event);
}

/* Each input as NAME = JSON, a long value cut (--json shows it whole). */
static void print_inputs(jv inputs) {
    jv_object_foreach(inputs, name, value) {
        char *t = cairn_json_text(value);
        bool cut = strlen(t) > CAIRN_TRIGGER_TEXT_INPUTS;
        printf("          %s = %.*s%s\n", jv_string_value(name), CAIRN_TRIGGER_TEXT_INPUTS, t,
               cut ? " ..." : "");
        free(t);
        jv_free(name);
        jv_free(value);
    }
}

static void print_list(jv answer, const char *list, jv events) {
    jv l = jv_object_get(jv_copy(answer), jv_string(list));
    jv_array_foreach(l, i, item) {
        print_item(list, item, events);
        jv inputs = jv_object_get(jv_copy(item), jv_string("inputs"));
        jv error = jv_object_get(jv_copy(item), jv_string("error"));
        if (jv_get_kind(inputs) == JV_KIND_OBJECT) print_inputs(inputs);
        if (jv_get_kind(error) == JV_KIND_STRING) printf("          %s\n", jv_string_value(error));
        jv_free(inputs);
        jv_free(error);
        jv_free(item);
    }
    jv_free(l);
}

static void print_unmatched(jv answer) {
    jv l = jv_object_get(jv_copy(answer), jv_string("unmatched"));
    jv_array_foreach(l, i, item) {
        char ev[16], name[160], status[16], fp[128];
        printf("unmatched event %s %s %s  fingerprint %s\n", text_of(item, "event", ev, sizeof ev),
               text_of(item, "alertname", name, sizeof name), text_of(item, "status", status, sizeof status),
               text_of(item, "fingerprint", fp, sizeof fp));
        jv_free(item);
    }
    jv_free(l);
}

static int count(jv answer, const char *list) {
    return jv_array_length(jv_object_get(jv_copy(answer), jv_string(list)));
}

static void print_answer(const trigger_args *a, jv answer, jv events, int n_wf) {
    printf("%d event%s from %s, %d workflow%s: %d would start, %d resolve, %d refused, %d unmatched\n",
           jv_array_length(jv_copy(events)), jv_array_length(jv_copy(events)) == 1 ? "" : "s",
           a->source, n_wf, n_wf == 1 ? "" : "s", count(answer, "start"), count(answer, "resolve"),
           count(answer, "refused"), count(answer, "unmatched"));
    print_list(answer, "start", events);
    print_list(answer, "resolve", events);
    print_list(answer, "refused", events);
    print_unmatched(answer);
}

/* --dry-run: what the payload would start, from the workflows of a->dir. */
static int dry_run(cli_opts *o, const trigger_args *a, const char *body, size_t len) {
    cairn_workflow **wfs = NULL;
    cairn_triggers *ts = NULL;
    jv events = jv_invalid();
    cairn_err err;
    int n_wf = 0, rc = 0;
    if (cairn_hook_normalize(a->source, body, len, &events, &err) != 0) {
        cli_error(&err);
        rc = EXIT_USAGE;
    }
    if (rc == 0) load_dir(a->dir, &wfs, &n_wf);
    if (rc == 0 && cairn_triggers_new(wfs, n_wf, &ts, &err) != 0) {
        cli_error(&err);
        rc = EXIT_USAGE;
    }
    if (rc == 0) {
        jv answer = cairn_triggers_match(ts, events);
        rc = count(answer, "refused") ? EXIT_USAGE : EXIT_OK;
        if (o->json) {
            answer = jv_object_set(answer, jv_string("events"), jv_copy(events));
            cli_print_json(stdout, jv_object_set(answer, jv_string("source"), jv_string(a->source)), true);
        } else {
            print_answer(a, answer, events, n_wf);
            jv_free(answer);
        }
    }
    cairn_triggers_free(ts);
    for (int i = 0; i < n_wf; i++) cairn_workflow_free(wfs[i]);
    free(wfs);
    jv_free(events);
    return rc;
}

/* ---- delivering ------------------------------------------------------------------- */

/* What came of a delivery, a line an outcome. */
static void print_delivered(jv answer) {
    static const char *const lists[] = {"started", "existed", "resolved", "ignored"};
    char src[32], n[16];
    printf("%s events from %s: %d started, %d existed, %d resolved, %d ignored, %d refused, "
           "%d unmatched\n", text_of(answer, "events", n, sizeof n),
           text_of(answer, "source", src, sizeof src), count(answer, "started"),
           count(answer, "existed"), count(answer, "resolved"), count(answer, "ignored"),
           count(answer, "refused"), count(answer, "unmatched"));
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
        jv l = jv_object_get(jv_copy(answer), jv_string(lists[k]));
        jv_array_foreach(l, i, item) {
            char wf[128], run[CAIRN_RUN_ID_MAX], ev[16], key[160];
            printf("%-9s %s  run %s  event %s  dedupe %s\n", lists[k],
                   text_of(item, "workflow", wf, sizeof wf), text_of(item, "run", run, sizeof run),
                   text_of(item, "event", ev, sizeof ev), text_of(item, "dedupe", key, sizeof key));
            jv_free(item);
        }
        jv_free(l);
    }
    jv l = jv_object_get(jv_copy(answer), jv_string("refused"));
    jv_array_foreach(l, i, item) {
        char wf[128], ev[16], why[400];
        printf("refused   %s  event %s: %s\n", text_of(item, "workflow", wf, sizeof wf),
               text_of(item, "event", ev, sizeof ev), text_of(item, "error", why, sizeof why));
        jv_free(item);
    }
    jv_free(l);
    print_unmatched(answer);
}

/* The webhook carried out by an engine of this process: the orchestrator
 * turns on the calling thread, the delivery and the wait for its runs on
 * another (engine.h: workflows are added on the orchestrator's thread). */
typedef struct local_run {
    cli_opts *o;
    const trigger_args *a;
    const char *body;
    size_t len;
    srv_backend *b;
    srv_hooks *h;
    sigset_t stop;               /* SIGINT, SIGTERM: blocked, taken by sigtimedwait */
    jv answer;
    int rc;
    bool stopped;                /* a signal stopped the runs before they ended */
} local_run;

/* Wait for run_id's last event, or a stop signal: false on the signal. */
static bool wait_end(local_run *l, const char *run_id) {
    srv_follow *f = srv_backend_follow(l->b, run_id);
    int64_t after = 0;
    bool ended = false, stop = false;
    struct timespec none = {0, 0};
    while (!ended && !stop) {
        srv_followed got[64];
        int k = srv_backend_follow_next(l->b, f, after, got, 64, 200);
        for (int i = 0; i < k; i++) {
            after = got[i].seq;
            ended |= got[i].ends;
            free(got[i].text);
        }
        stop = k < 0 || sigtimedwait(&l->stop, NULL, &none) > 0;
    }
    srv_backend_unfollow(l->b, f);
    return ended;
}

static void *deliver_here(void *arg) {
    local_run *l = arg;
    cairn_err err;
    jv origin = jv_object_set(jv_object(), jv_string("user"), cli_real_user());
    if (srv_hooks_deliver(l->h, l->a->source, l->body, l->len, origin, &l->answer, &err) != 0) {
        cli_error(&err);
        l->rc = err.code == CAIRN_EIO || err.code == CAIRN_ECORRUPT ? EXIT_JOURNAL : EXIT_USAGE;
    } else {
        if (!l->o->json) print_delivered(l->answer);
        fflush(stdout);
        jv started = jv_object_get(jv_copy(l->answer), jv_string("started"));
        jv_array_foreach(started, i, item) {
            jv run = jv_object_get(item, jv_string("run"));
            if (!l->stopped && !wait_end(l, jv_string_value(run))) l->stopped = true;
            jv_free(run);
        }
        jv_free(started);
    }
    srv_backend_stop(l->b);
    return NULL;
}

/* Each started run with its status now; EXIT_FAILED when one did not succeed. */
static int statuses(local_run *l) {
    jv started = jv_object_get(jv_copy(l->answer), jv_string("started")), out = jv_array();
    int rc = EXIT_OK;
    jv_array_foreach(started, i, item) {
        jv run = jv_object_get(jv_copy(item), jv_string("run")), st;
        cairn_err err;
        jv status = jv_string("unknown");
        if (srv_backend_get_run(l->b, jv_string_value(run), &st, &err) == 0) {
            jv_free(status);
            status = jv_object_get(st, jv_string("status"));
        }
        if (strcmp(jv_string_value(status), "succeeded") != 0) rc = EXIT_FAILED;
        if (!l->o->json)
            printf("run %s %s\n", jv_string_value(run), jv_string_value(status));
        out = jv_array_append(out, jv_object_set(item, jv_string("status"), status));
        jv_free(run);
    }
    jv_free(started);
    l->answer = jv_object_set(l->answer, jv_string("started"), out);
    if (l->stopped) fprintf(stderr, "cairn: stopped; `cairn resume` carries the runs on\n");
    return rc;
}

static int run_here(cli_opts *o, const trigger_args *a, const char *body, size_t len) {
    local_run l = {.o = o, .a = a, .body = body, .len = len, .answer = jv_invalid()};
    cairn_workflow **wfs = NULL;
    cairn_err err;
    int n_wf = 0;
    sigemptyset(&l.stop);
    sigaddset(&l.stop, SIGINT);
    sigaddset(&l.stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &l.stop, NULL);   /* every thread from here on */
    cli_live *p = o->json ? NULL : cli_live_new(stdout, o->db, false, cli_colour());
    srv_backend_config bc = {.db_path = o->db, .sync = o->sync, .ud = p,
                             .on_event = p ? cli_live_event : NULL};
    if (srv_backend_open(&bc, &l.b, &err) != 0) {
        cli_error(&err);
        cli_live_free(p);
        return EXIT_JOURNAL;
    }
    srv_hooks_config hc = {.backend = l.b, .db_path = o->db};
    l.h = srv_hooks_new(&hc);
    load_dir(a->dir, &wfs, &n_wf);
    for (int i = 0; i < n_wf; i++) {
        char hash[65];
        srv_hooks_learn(l.h, wfs[i]);
        if (srv_backend_add_workflow(l.b, wfs[i], hash, &err) != 0) cli_error(&err);
    }
    free(wfs);
    if (srv_hooks_rebuild(l.h, NULL, NULL, &err) != 0) {
        cli_error(&err);
        l.rc = EXIT_USAGE;
    }
    pthread_t t;
    bool started = l.rc == 0 && pthread_create(&t, NULL, deliver_here, &l) == 0;
    if (started && srv_backend_run(l.b, &err) != 0) {
        cli_error(&err);
        l.rc = EXIT_JOURNAL;
    }
    if (started) pthread_join(t, NULL);
    int rc = l.rc;
    if (rc == 0) rc = statuses(&l);
    if (rc != EXIT_USAGE && jv_is_valid(l.answer) && count(l.answer, "refused")) rc = EXIT_USAGE;
    if (o->json && jv_is_valid(l.answer)) cli_print_json(stdout, jv_copy(l.answer), false);
    jv_free(l.answer);
    srv_hooks_free(l.h);
    srv_backend_close(l.b);
    cli_live_free(p);
    return rc;
}

int cmd_trigger(cli_opts *o, int argc, char **argv) {
    trigger_args a = {0};
    size_t len = 0;
    char *body = NULL;
    struct stat sb;
    int rc = parse_args(o, argc, argv, &a);
    if (rc == 0 && (body = read_payload(a.payload, &len)) == NULL) rc = EXIT_USAGE;
    if (rc == 0 && (stat(a.dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        rc = cli_usage("trigger: --workflows %s: not a folder", a.dir);
    if (rc == 0 && a.dry_run) {
        rc = dry_run(o, &a, body, len);
    } else if (rc == 0) {
        jv answer;
        rc = cli_hook_handoff(o, a.source, body, len, &answer);
        if (rc == 0) {
            if (o->json) cli_print_json(stdout, jv_copy(answer), false);
            else print_delivered(answer);
            rc = count(answer, "refused") ? EXIT_USAGE : EXIT_OK;
            jv_free(answer);
        } else if (rc < 0) {
            rc = run_here(o, &a, body, len);
        }
    }
    free(body);
    return rc;
}
