/*
 * test_wcheck.c - the built-in actions' own load-time rules on constant
 * `with` values (cairn_action_sig.check), through the real catalogue: each
 * rule refuses its bad constant at file:line:col, passes a good one, and
 * leaves a value held by ${{ }} to run time.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "common/mem.h"
#include "dsl/workflow.h"

/* The diagnostics of loading a one-step workflow whose step is `step`
 * (YAML flow text after "  - "), as printed without source lines; "" when
 * it loads. */
static char *step_errors(const char *step) {
    char *src = cairn_sprintf("cairn: 1\nname: t\nsteps:\n  - %s\n", step);
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    int rc = cairn_workflow_load("w.yaml", src, strlen(src), cairn_action_lookup_sig, &wf, &d);
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    cairn_diags_print(&d, f, NULL, 0);
    fclose(f);
    CHECK_INT(rc == 0, wf != NULL);
    CHECK_INT(rc == 0, d.count == 0);
    cairn_workflow_free(wf);
    cairn_diags_free(&d);
    free(src);
    return buf;
}

static void bad(const char *step, const char *want) {
    char *got = step_errors(step), *w = cairn_sprintf("%s\n", want);
    CHECK_STR(got, w);
    free(got);
    free(w);
}

static void good(const char *step) {
    char *got = step_errors(step);
    CHECK_STR(got, "");
    free(got);
}

TEST(wcheck_notify_channel_is_one_of_four) {
    bad("{id: n, uses: notify, with: {channel: slak, webhook_url: u, text: t}}",
        "w.yaml:4:43: error: with.channel (action 'notify'): expected one of slack, webhook, "
        "email, pagerduty, got 'slak' (did you mean 'slack'?)");
    bad("{id: n, uses: notify, with: {channel: Slack, webhook_url: u, text: t}}",
        "w.yaml:4:43: error: with.channel (action 'notify'): expected one of slack, webhook, "
        "email, pagerduty, got 'Slack' (did you mean 'slack'?)");
    bad("{id: n, uses: notify, with: {channel: pigeon, text: t}}",
        "w.yaml:4:43: error: with.channel (action 'notify'): expected one of slack, webhook, "
        "email, pagerduty, got 'pigeon'");
    good("{id: n, uses: notify, with: {channel: slack, webhook_url: u, text: t}}");
    good("{id: n, uses: notify, with: {channel: webhook, url: u, json: {a: 1}}}");
    good("{id: n, uses: notify, with: {channel: email, smtp_url: u, from: f, to: [a], "
         "subject: s, body: b}}");
    good("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k, summary: s}}");
    good("{id: n, uses: notify, with: {channel: '${{ \"sl\" + \"ack\" }}', text: t}}");
}

TEST(wcheck_notify_channel_fields_needed_and_foreign) {
    bad("{id: n, uses: notify, with: {channel: slack, text: t}}",
        "w.yaml:4:33: error: with.webhook_url (action 'notify'): channel slack needs this field");
    bad("{id: n, uses: notify, with: {channel: slack, webhook_url: u, text: t, subject: s}}",
        "w.yaml:4:84: error: with.subject (action 'notify'): does not apply to channel slack "
        "(it takes: webhook_url,text,blocks)");
    /* given by an expression: present, its value left to run time */
    good("{id: n, uses: notify, with: {channel: slack, webhook_url: '${{ .secrets.HOOK }}', "
         "text: t}}");
}

TEST(wcheck_notify_pagerduty_enumerations) {
    bad("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k, summary: s, "
        "severity: critcal}}",
        "w.yaml:4:92: error: with.severity (action 'notify'): expected one of critical, error, "
        "warning, info, got 'critcal' (did you mean 'critical'?)");
    bad("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k, summary: s, "
        "event_action: resolv}}",
        "w.yaml:4:96: error: with.event_action (action 'notify'): expected one of trigger, "
        "acknowledge, resolve, got 'resolv' (did you mean 'resolve'?)");
    bad("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k}}",
        "w.yaml:4:33: error: with.summary (action 'notify'): a PagerDuty trigger needs this field");
    bad("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k, event_action: resolve}}",
        "w.yaml:4:33: error: with.dedup_key (action 'notify'): a PagerDuty acknowledge or "
        "resolve needs this field");
    good("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k, summary: s, "
         "severity: warning, event_action: trigger}}");
    good("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k, dedup_key: d, "
         "event_action: acknowledge}}");
    good("{id: n, uses: notify, with: {channel: pagerduty, routing_key: k, summary: s, "
         "severity: '${{ .run.id }}'}}");
}

TEST(wcheck_db_driver_and_llm_provider) {
    bad("{id: d, uses: db, with: {driver: mysql, dsn: x, query: q}}",
        "w.yaml:4:38: error: with.driver (action 'db'): expected one of sqlite, postgres, got 'mysql'");
    bad("{id: d, uses: db, with: {driver: postgre, dsn: x, query: q}}",
        "w.yaml:4:38: error: with.driver (action 'db'): expected one of sqlite, postgres, got "
        "'postgre' (did you mean 'postgres'?)");
    good("{id: d, uses: db, with: {driver: sqlite, dsn: x, query: q}}");
    good("{id: d, uses: db, with: {driver: postgres, dsn: x, query: q}}");
    bad("{id: l, uses: llm, with: {provider: openia, model: m, prompt: p}}",
        "w.yaml:4:41: error: with.provider (action 'llm'): expected one of openai, anthropic, "
        "got 'openia' (did you mean 'openai'?)");
    good("{id: l, uses: llm, with: {provider: anthropic, model: m, prompt: p}}");
    good("{id: l, uses: llm, with: {provider: openai, model: m, prompt: p}}");
}

TEST(wcheck_http_method_and_body) {
    bad("{id: h, uses: http, with: {url: u, method: GTE}}",
        "w.yaml:4:48: error: with.method (action 'http'): expected one of GET, HEAD, POST, PUT, "
        "PATCH, DELETE, OPTIONS, got 'GTE' (did you mean 'GET'?)");
    bad("{id: h, uses: http, with: {url: u, method: FETCH}}",
        "w.yaml:4:48: error: with.method (action 'http'): expected one of GET, HEAD, POST, PUT, "
        "PATCH, DELETE, OPTIONS, got 'FETCH'");
    bad("{id: h, uses: http, with: {url: u, json: {a: 1}, body: x}}",
        "w.yaml:4:60: error: with.body (action 'http'): give json or body, not both");
    bad("{id: h, uses: http, with: {url: u, method: head, body: x}}",
        "w.yaml:4:48: error: with.method (action 'http'): a HEAD request cannot carry json or body");
    good("{id: h, uses: http, with: {url: u, method: post, json: {a: 1}}}");
    good("{id: h, uses: http, with: {url: u, method: PATCH, body: x}}");
    good("{id: h, uses: http, with: {url: u, method: '${{ .run.id }}'}}");
}

TEST(wcheck_approval_on_timeout_escalate_and_quorum) {
    bad("{id: a, uses: approval, with: {prompt: p, on_timeout: aprove}}",
        "w.yaml:4:59: error: with.on_timeout (action 'approval'): expected one of reject, "
        "approve, escalate, got 'aprove' (did you mean 'approve'?)");
    bad("{id: a, uses: approval, with: {prompt: p, on_timeout: escalate}}",
        "w.yaml:4:35: error: with.escalate_to (action 'approval'): on_timeout: escalate needs "
        "this field (who is asked when the time-out fires)");
    bad("{id: a, uses: approval, with: {prompt: p, approvers: [x, y], quorum: 3}}",
        "w.yaml:4:74: error: with.quorum (action 'approval'): expected a whole number from 1 to "
        "2 (the approvers listed), got 3");
    bad("{id: a, uses: approval, with: {prompt: p, quorum: 0}}",
        "w.yaml:4:55: error: with.quorum (action 'approval'): expected a whole number of at "
        "least 1, got 0");
    good("{id: a, uses: approval, with: {prompt: p, approvers: [x, y], quorum: 2, "
         "on_timeout: escalate, escalate_to: [z]}}");
    good("{id: a, uses: approval, with: {prompt: p, quorum: 5, on_timeout: reject}}");
    good("{id: a, uses: approval, with: {prompt: p, approvers: '${{ .run.id }}', quorum: 3}}");
    good("{id: a, uses: approval, with: {prompt: p, approvers: ['${{ .run.id }}', b], quorum: 2}}");
    /* a group counts as many: its members are not known at load */
    good("{id: a, uses: approval, with: {prompt: p, approvers: [x, 'group:ops'], quorum: 3}}");
}

TEST(wcheck_approval_with_reads_its_links_by_their_names) {
    good("{id: a, uses: approval, with: {prompt: p, approvers: [ann], notify: {channel: slack, "
         "webhook_url: u, text: '${{ .approval.links.ann }} until ${{ .approval.expires_at }}'}}}");
    bad("{id: a, uses: approval, with: {prompt: p, notify: {channel: slack, webhook_url: u, "
        "text: '${{ .approval.link.ann }}'}}}",
        "w.yaml:4:95: error: .approval.link: an approval step's `with` reads .approval as "
        "{links,expires_at} (did you mean 'links'?)");
    /* another action's `with` has no such scope: .approval is any name there */
    good("{id: s, uses: set, with: {x: '${{ .approval.link }}'}}");
}

TEST(wcheck_ssh_host_key_policy) {
    bad("{id: s, uses: ssh, with: {host: h, user: u, password: p, command: c}}",
        "w.yaml:4:30: error: with.known_hosts (action 'ssh'): ssh needs known_hosts (a file of "
        "trusted host keys), or insecure_host_key: true");
    bad("{id: s, uses: ssh, with: {host: h, user: u, password: p, command: c, "
        "insecure_host_key: false}}",
        "w.yaml:4:30: error: with.known_hosts (action 'ssh'): ssh needs known_hosts when "
        "insecure_host_key is false");
    bad("{id: s, uses: ssh, with: {host: h, user: u, password: p, command: c, known_hosts: k, "
        "insecure_host_key: true}}",
        "w.yaml:4:109: error: with.insecure_host_key (action 'ssh'): give known_hosts or "
        "insecure_host_key: true, not both");
    good("{id: s, uses: ssh, with: {host: h, user: u, password: p, command: c, known_hosts: k}}");
    good("{id: s, uses: ssh, with: {host: h, user: u, password: p, command: c, "
         "insecure_host_key: true}}");
    good("{id: s, uses: ssh, with: {host: h, user: u, password: p, command: c, "
         "insecure_host_key: '${{ .run.id }}'}}");
}

TEST(wcheck_wait_until_is_rfc3339) {
    bad("{id: w, uses: wait, with: {until: tomorrow}}",
        "w.yaml:4:39: error: with.until (action 'wait'): expected an RFC 3339 time such as "
        "2026-11-23T15:06:50Z, got 'tomorrow'");
    bad("{id: w, uses: wait, with: {until: '2026-13-01T00:00:00Z'}}",
        "w.yaml:4:39: error: with.until (action 'wait'): expected an RFC 3339 time such as "
        "2026-11-23T15:06:50Z, got '2026-13-01T00:00:00Z'");
    bad("{id: w, uses: wait, with: {until: '2026-11-23T15:06:50+1:2'}}",
        "w.yaml:4:39: error: with.until (action 'wait'): expected an RFC 3339 time such as "
        "2026-11-23T15:06:50Z, got '2026-11-23T15:06:50+1:2'");
    good("{id: w, uses: wait, with: {until: '2026-11-23T15:06:50Z'}}");
    good("{id: w, uses: wait, with: {until: '2026-11-23T15:06:50.5+02:00'}}");
    good("{id: w, uses: wait, with: {until: '${{ .run.id }}'}}");
}

/* The rules of one action's check do not hide the type errors before them:
 * a field of the wrong type is reported as such, once. */
TEST(wcheck_runs_after_the_types_hold) {
    bad("{id: d, uses: db, with: {driver: [sqlite], dsn: x, query: q}}",
        "w.yaml:4:38: error: with.driver (action 'db'): expected a string, got a list");
}
