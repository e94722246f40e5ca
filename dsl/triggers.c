/*
 * triggers.c - the light shape check of `triggers`; the list itself is kept
 * as JSON (wf->triggers) for the server, which owns their meaning.
 *
 * Checked here: each entry is a map with exactly one of `webhook` (a known
 * source) or `schedule` (a cron expression: cron.h, that matches some
 * date); a schedule's `timezone` names a zone that loads (tz.h) and its
 * `catch_up` is a boolean; `match` values compile
 * as PCRE2; `inputs` names declared inputs; expressions in `dedupe` and
 * `inputs` compile (they are added to the workflow's expression set, so a
 * syntax error is a load-time error).
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "dsl/cron.h"
#include "dsl/workflow_int.h"

static const char *const trigger_keys[] = {"webhook", "schedule", "match", "dedupe", "inputs",
                                           "timezone", "catch_up", NULL};
static const char *const sources[] = {
    "alertmanager", "pagerduty", "datadog", "grafana", "servicenow", "generic", NULL};

static void check_source(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_text(c, n, "webhook")) return;
    for (int i = 0; sources[i]; i++)
        if (strcmp(sources[i], n->text) == 0) return;
    const char *hint = cairn__suggest(n->text, sources, -1);
    if (hint)
        cairn__wf_error(c, n, "webhook: unknown source '%s' (did you mean '%s'?)", n->text, hint);
    else
        cairn__wf_error(c, n, "webhook: unknown source '%.60s'; expected one of: alertmanager, "
                        "pagerduty, datadog, grafana, servicenow, generic", n->text);
}

/* A cron expression (cron.h); the error points at the bad field when the
 * text stands in the source as it is. */
static void check_schedule(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_text(c, n, "schedule")) return;
    cairn_cron cron;
    char err[256];
    size_t at;
    int64_t next;
    if (cairn_cron_parse(n->text, &cron, err, sizeof err, &at) != 0) {
        cairn_node where = *n;
        if (n->text_col) where.col = n->text_col + (int)at;
        cairn__wf_error(c, &where, "schedule: not a cron expression: %s", err);
    } else if (cairn_cron_next(&cron, NULL, 0, &next) != 0) {
        cairn__wf_error(c, n, "schedule: '%s' matches no date (day and month never meet)",
                        n->text);
    }
}

/* The zone in name's folder of the zone database closest to name (a
 * typo's likely meaning), into out; false when none is close. */
static bool zone_hint(const char *name, char *out, size_t len) {
    const char *slash = strrchr(name, '/');
    int folder = slash ? (int)(slash - name) : 0;
    if (strstr(name, "..") || name[0] == '/') return false;   /* stay inside the database */
    char *path = cairn_sprintf("%s/%.*s", cairn_tz_dir(), folder, name);
    DIR *d = opendir(path);
    const char **cands = NULL;
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL && n < 1000;) {
        if (de->d_name[0] == '.') continue;
        cands = cairn_realloc(cands, (size_t)(n + 1) * sizeof *cands);
        cands[n++] = cairn_strdup(de->d_name);
    }
    const char *hint = n ? cairn__suggest(slash ? slash + 1 : name, cands, n) : NULL;
    if (hint) snprintf(out, len, "%.*s%s%s", folder, name, slash ? "/" : "", hint);
    for (int i = 0; i < n; i++) free((char *)cands[i]);
    free(cands);
    free(path);
    if (d) closedir(d);
    return hint != NULL;
}

/* An IANA zone name that loads from the zone database (tz.h). */
static void check_timezone(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_text(c, n, "timezone")) return;
    cairn_tz *tz = NULL;
    cairn_err err;
    char hint[CAIRN_TZ_NAME_MAX + 1];
    int rc = cairn_tz_load(n->text, &tz, &err);
    if (rc == CAIRN_ENOTFOUND && zone_hint(n->text, hint, sizeof hint))
        cairn__wf_error(c, n, "timezone: unknown time zone '%s' (did you mean '%s'?)", n->text,
                        hint);
    else if (rc == CAIRN_ENOTFOUND)
        cairn__wf_error(c, n, "timezone: unknown time zone '%.*s'; expected an IANA name such as "
                        "Europe/Berlin, from %s", CAIRN_TZ_NAME_MAX, n->text, cairn_tz_dir());
    else if (rc)
        cairn__wf_error(c, n, "timezone: %s", err.msg);
    cairn_tz_free(tz);
}

/* Each name a trigger's inputs give is a declared input (inputs.c has read
 * them by now). */
static void check_input_names(wf_ctx *c, const cairn_node *m) {
    const cairn_workflow *wf = c->wf;
    const char **names = cairn_calloc((size_t)wf->n_inputs + 1, sizeof *names);
    for (int i = 0; i < wf->n_inputs; i++) names[i] = wf->inputs[i].name;
    for (int i = 0; i < m->count; i++) {
        const char *k = m->keys[i]->text, *hint = cairn__suggest(k, names, wf->n_inputs);
        bool known = false;
        for (int j = 0; j < wf->n_inputs && !known; j++) known = strcmp(names[j], k) == 0;
        if (known) continue;
        if (hint)
            cairn__wf_error(c, m->keys[i], "inputs: unknown input '%s' (did you mean '%s'?)", k, hint);
        else
            cairn__wf_error(c, m->keys[i], "inputs: unknown input '%.60s' (%s)", k,
                            wf->n_inputs ? "not among the workflow's inputs"
                                         : "the workflow declares no inputs");
    }
    free(names);
}

static void check_match(wf_ctx *c, const cairn_node *m) {
    if (!cairn__want_map(c, m, "match")) return;
    for (int i = 0; i < m->count; i++) {
        char what[CAIRN_ID_MAX + 16];
        snprintf(what, sizeof what, "match.%.*s", CAIRN_ID_MAX, m->keys[i]->text);
        pcre2_code_free(cairn__compile_pattern(c, m->values[i], what));
    }
}

/* Build and drop a template: its expressions stay in the set, compiled with
 * the rest, so their syntax is checked at load time. */
static void compile_check(wf_ctx *c, const cairn_node *n) {
    cairn_tmpl_free(cairn_tmpl_new(n, c->wf->exprs, c->file, c->diags));
}

static void check_trigger(wf_ctx *c, const cairn_node *t) {
    if (!cairn__want_map(c, t, "a trigger")) return;
    cairn__check_keys(c, t, trigger_keys, "a trigger", NULL, NULL);
    const cairn_node *hook = cairn_node_get(t, "webhook"), *cron = cairn_node_get(t, "schedule");
    const cairn_node *v;
    if (hook && cron)
        cairn__wf_error(c, cairn_node_key(t, "schedule"), "a trigger is either a webhook or a "
                        "schedule, not both");
    else if (!hook && !cron)
        cairn__wf_error(c, t, "a trigger needs 'webhook' (a source) or 'schedule' (cron)");
    if (hook) check_source(c, hook);
    if (cron) check_schedule(c, cron);
    if ((v = cairn_node_get(t, "match"))) check_match(c, v);
    if ((v = cairn_node_get(t, "dedupe")) && cairn__want_text(c, v, "dedupe")) compile_check(c, v);
    if ((v = cairn_node_get(t, "inputs")) && cairn__want_map(c, v, "inputs")) {
        check_input_names(c, v);
        compile_check(c, v);
    }
    if (!hook && (v = cairn_node_key(t, "match")))
        cairn__wf_error(c, v, "match applies only to webhook triggers");
    if (!hook && (v = cairn_node_key(t, "dedupe")))
        cairn__wf_error(c, v, "dedupe applies only to webhook triggers");
    bool catch_up;
    if ((v = cairn_node_get(t, "timezone"))) check_timezone(c, v);
    if ((v = cairn_node_get(t, "catch_up"))) cairn__want_bool(c, v, "catch_up", &catch_up);
    if (!cron && (v = cairn_node_key(t, "timezone")))
        cairn__wf_error(c, v, "timezone applies only to schedule triggers");
    if (!cron && (v = cairn_node_key(t, "catch_up")))
        cairn__wf_error(c, v, "catch_up applies only to schedule triggers");
}

void cairn__check_triggers(wf_ctx *c, const cairn_node *triggers) {
    if (!cairn__want_seq(c, triggers, "triggers")) return;
    for (int i = 0; i < triggers->count; i++) check_trigger(c, triggers->values[i]);
    c->wf->triggers = cairn_node_to_jv(triggers);
}
