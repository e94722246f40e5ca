/*
 * cmd_trigger.c - `cairn trigger SOURCE --payload FILE --dry-run`: what a
 * webhook would start, told before the first real alert arrives.
 *
 * The payload goes through the same normalizer and matcher as the server's
 * webhooks (server/hook.h, server/trigger.h) against every workflow in
 * --workflows DIR (default: the current folder).  Starting the runs needs
 * what only a server has, the one live run per dedupe key over every
 * delivery, so without --dry-run the command refuses.
 */
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/file.h"
#include "common/json.h"
#include "common/mem.h"
#include "server/hook.h"
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
        return cli_usage("usage: cairn trigger SOURCE --payload FILE --dry-run [--workflows DIR] [--json]");
    if (!cairn_hook_source_known(a->source))
        return cli_usage("trigger: no webhook source '%s'; the sources are alertmanager, pagerduty, "
                         "datadog, grafana, servicenow, generic", a->source);
    if (!a->dry_run)
        return cli_usage("trigger: only --dry-run is available without a server: starting runs "
                         "from a webhook needs one live run per dedupe key, which the server keeps");
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

int cmd_trigger(cli_opts *o, int argc, char **argv) {
    trigger_args a = {0};
    cairn_workflow **wfs = NULL;
    cairn_triggers *ts = NULL;
    jv events = jv_invalid();
    cairn_err err;
    size_t len = 0;
    char *body = NULL;
    int n_wf = 0, rc = parse_args(o, argc, argv, &a);
    if (rc == 0 && (body = read_payload(a.payload, &len)) == NULL) rc = EXIT_USAGE;
    if (rc == 0 && cairn_hook_normalize(a.source, body, len, &events, &err) != 0) {
        cli_error(&err);
        rc = EXIT_USAGE;
    }
    struct stat sb;
    if (rc == 0 && (stat(a.dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        rc = cli_usage("trigger: --workflows %s: not a folder", a.dir);
    if (rc == 0) load_dir(a.dir, &wfs, &n_wf);
    if (rc == 0 && cairn_triggers_new(wfs, n_wf, &ts, &err) != 0) {
        cli_error(&err);
        rc = EXIT_USAGE;
    }
    if (rc == 0) {
        jv answer = cairn_triggers_match(ts, events);
        rc = count(answer, "refused") ? EXIT_USAGE : EXIT_OK;
        if (o->json) {
            answer = jv_object_set(answer, jv_string("events"), jv_copy(events));
            cli_print_json(stdout, jv_object_set(answer, jv_string("source"), jv_string(a.source)), true);
        } else {
            print_answer(&a, answer, events, n_wf);
            jv_free(answer);
        }
    }
    cairn_triggers_free(ts);
    for (int i = 0; i < n_wf; i++) cairn_workflow_free(wfs[i]);
    free(wfs);
    free(body);
    jv_free(events);
    return rc;
}
