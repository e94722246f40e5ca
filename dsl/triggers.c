/*
 * triggers.c - the light shape check of `triggers`; the list itself is kept
 * as JSON (wf->triggers) for the server, which owns their meaning.
 *
 * Checked here: each entry is a map with exactly one of `webhook` (a known
 * source) or `schedule` (five cron fields); `match` values compile as PCRE2;
 * expressions in `dedupe` and `inputs` compile (they are added to the
 * workflow's expression set, so a syntax error is a load-time error).
 */
#include <string.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

static const char *const trigger_keys[] = {"webhook", "schedule", "match", "dedupe", "inputs", NULL};
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

/* Five fields separated by spaces (minute hour day month weekday). */
static void check_schedule(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_text(c, n, "schedule")) return;
    int fields = 0;
    for (const char *p = n->text; *p;) {
        p += strspn(p, " \t");
        if (*p == '\0') break;
        fields++;
        p += strcspn(p, " \t");
    }
    if (fields != 5)
        cairn__wf_error(c, n, "schedule: expected a cron expression of 5 fields (minute hour "
                        "day month weekday), got '%.60s'", n->text);
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
    if ((v = cairn_node_get(t, "inputs")) && cairn__want_map(c, v, "inputs")) compile_check(c, v);
    if (!hook && (v = cairn_node_key(t, "match")))
        cairn__wf_error(c, v, "match applies only to webhook triggers");
    if (!hook && (v = cairn_node_key(t, "dedupe")))
        cairn__wf_error(c, v, "dedupe applies only to webhook triggers");
}

void cairn__check_triggers(wf_ctx *c, const cairn_node *triggers) {
    if (!cairn__want_seq(c, triggers, "triggers")) return;
    for (int i = 0; i < triggers->count; i++) check_trigger(c, triggers->values[i]);
    c->wf->triggers = cairn_node_to_jv(triggers);
}
