/*
 * cmd_approve.c - approval gates from the command line:
 *   cairn approvals [--json]                        pending approvals
 *   cairn approve RUN STEP [--as NAME] [--comment T]  one approval
 *   cairn reject  RUN STEP [--as NAME] [--comment T]  a rejection
 *   cairn approval-link RUN STEP --url URL [--as NAME] [--expires-at TIME]
 *                                                  a signed link (server/linkpage.h)
 * NAME defaults to the real Unix user.  A decision from here brings no
 * groups: it counts for an approver named in `approvers`, never through a
 * `group:NAME` entry (groups belong to the server's tokens, api.h).
 * A decision is checked here first (the approval exists and is open, NAME
 * may decide it), so a refused one records nothing; the engine holding the
 * run checks again when it journals the decision.  With no engine holding
 * the run, the decision waits in the journal for the next resume: `approvals`
 * counts it (as awaiting resume), and a second decision by the same name is
 * refused then too.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "engine/engine.h"
#include "engine/owner.h"
#include "server/linkpage.h"

#define CAIRN_DECIDE_WAIT_MS 60000   /* how long a decision waits to see it taken */

/* Load run_id; else the exit code, the error printed: 3 when the journal
 * cannot be opened or the run not read, 2 when there is no such run. */
static int load(const cli_opts *o, const char *run_id, cairn_run_state **st, cairn_workflow **wf) {
    cairn_journal *j = NULL;
    cairn_err err;
    *wf = NULL;   /* the steps as stored: no compile */
    int out = 0, rc = cli_open_journal(o->db, &j, &err);
    if (rc) out = EXIT_JOURNAL;
    else if ((rc = cairn_journal_load_run(j, run_id, st, NULL, &err)) != 0) out = cli_lookup_exit(rc);
    cairn_journal_close(j);
    if (out) cli_error(&err);
    return out;
}

/* The decisions on run_id's approvals not carried out yet, oldest first:
 * [{step, decision, by, comment}] as `approve` recorded them.  An empty
 * array when there are none or they cannot be read. */
static jv awaiting_of(const cli_opts *o, const char *run_id) {
    cairn_journal *j = NULL;
    cairn_command *cmds = NULL;
    cairn_err err;
    int n = 0;
    jv out = jv_array();
    if (cli_open_journal(o->db, &j, &err) == 0 && cairn_journal_run_commands(j, run_id, &cmds, &n, &err) == 0)
        for (int i = 0; i < n; i++) {
            jv d = strcmp(cmds[i].type, "decide") == 0 ? jv_parse(cmds[i].data) : jv_invalid();
            if (jv_get_kind(d) == JV_KIND_OBJECT) out = jv_array_append(out, d);
            else jv_free(d);
        }
    cairn_commands_free(cmds, n);
    cairn_journal_close(j);
    return out;
}

static bool str_is(jv o, const char *key, const char *want) {
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    bool same = jv_get_kind(v) == JV_KIND_STRING && strcmp(jv_string_value(v), want) == 0;
    jv_free(v);
    return same;
}

/* The decisions of awaiting (consumed) on step: a new array. */
static jv awaiting_on(jv awaiting, const char *step) {
    jv out = jv_array();
    jv_array_foreach(awaiting, k, d) {
        if (str_is(d, "step", step)) out = jv_array_append(out, d);
        else jv_free(d);
    }
    jv_free(awaiting);
    return out;
}

static jv pending_of(const cairn_run_state *st, jv awaiting) {
    jv out = jv_array();
    for (int i = 0; i < st->n_steps; i++) {
        const cairn_step_state *s = &st->steps[i];
        if (s->status != CAIRN_STEP_WAITING || jv_get_kind(s->approval) != JV_KIND_OBJECT) continue;
        jv a = jv_object_set(cairn_approval_to_json(s->approval), jv_string("awaiting_resume"),
                             awaiting_on(jv_copy(awaiting), st->step_ids[i]));
        a = jv_object_set(a, jv_string("run"), jv_string(st->id));
        a = jv_object_set(a, jv_string("workflow"), jv_string(st->workflow ? st->workflow : ""));
        out = jv_array_append(out, jv_object_set(a, jv_string("step"), jv_string(st->step_ids[i])));
    }
    return out;
}

/* "1/2": approvals of the quorum, counting those awaiting resume, which
 * are then named: "1/2, 1 awaiting resume"; a rejection awaiting resume
 * reads ", rejected by NAME (awaiting resume)". */
static void print_tally(jv a) {
    jv got = jv_object_get(jv_copy(a), jv_string("approvals")), q = jv_object_get(jv_copy(a), jv_string("quorum"));
    jv waiting = jv_object_get(jv_copy(a), jv_string("awaiting_resume"));
    int approvals = jv_array_length(got), later = 0;
    char rejected[256] = "";
    jv_array_foreach(waiting, k, d) {
        jv by = jv_object_get(jv_copy(d), jv_string("by"));
        if (str_is(d, "decision", "approve")) later++;
        else if (jv_get_kind(by) == JV_KIND_STRING)
            snprintf(rejected, sizeof rejected, ", rejected by %s (awaiting resume)", jv_string_value(by));
        jv_free(by);
        jv_free(d);
    }
    jv_free(waiting);
    printf("%d/%d", approvals + later, jv_get_kind(q) == JV_KIND_NUMBER ? (int)jv_number_value(q) : 1);
    if (later) printf(", %d awaiting resume", later);
    printf("%s", rejected);
    jv_free(q);
}

static void print_pending(jv a) {
    jv run = jv_object_get(jv_copy(a), jv_string("run")), step = jv_object_get(jv_copy(a), jv_string("step"));
    jv prompt = jv_object_get(jv_copy(a), jv_string("prompt"));
    jv who = jv_dump_string(jv_object_get(jv_copy(a), jv_string("approvers")), 0);
    printf("%-18s %-20s ", jv_string_value(run), jv_string_value(step));
    print_tally(a);
    printf("  approvers %s  %s\n", jv_string_value(who),
           jv_get_kind(prompt) == JV_KIND_STRING ? jv_string_value(prompt) : "");
    jv_free(run); jv_free(step); jv_free(prompt); jv_free(who);
}

int cmd_approvals(cli_opts *o, int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!cli_common_opt(o, argc, argv, &i)) return cli_usage("usage: cairn approvals [--json]");
    cairn_journal *j = NULL;
    cairn_err err;
    cairn_run_row *rows = NULL;
    int n = 0;
    if (cli_open_journal(o->db, &j, &err) != 0 ||
        cairn_journal_list_runs(j, CAIRN_RUNS_UNFINISHED, &rows, &n, &err) != 0) {
        cli_error(&err);
        cairn_journal_close(j);
        return EXIT_JOURNAL;
    }
    cairn_journal_close(j);
    jv all = jv_array();
    for (int i = 0; i < n; i++) {
        cairn_run_state *st = NULL;
        cairn_workflow *wf = NULL;
        if (load(o, rows[i].id, &st, &wf) != 0) continue;
        jv awaiting = awaiting_of(o, rows[i].id);
        jv p = pending_of(st, awaiting);
        jv_free(awaiting);
        jv_array_foreach(p, k, a) all = jv_array_append(all, a);
        jv_free(p);
        cairn_run_state_free(st);
        cairn_workflow_free(wf);
    }
    cairn_run_rows_free(rows, n);
    if (o->json) {
        cli_print_json(stdout, all, false);
        return EXIT_OK;
    }
    jv_array_foreach(all, k, a) {
        print_pending(a);
        jv_free(a);
    }
    if (jv_array_length(jv_copy(all)) == 0) printf("no pending approvals\n");
    jv_free(all);
    return EXIT_OK;
}

/* The decision is taken once the step no longer waits, or NAME's approval is in. */
static bool taken(const cli_opts *o, const char *run_id, const char *step, const char *by) {
    int64_t deadline = cairn_now_ms() + CAIRN_DECIDE_WAIT_MS;
    while (cairn_now_ms() < deadline) {
        cairn_run_state *st = NULL;
        cairn_workflow *wf = NULL;
        if (load(o, run_id, &st, &wf) != 0) return false;
        cairn_err err;
        int i = cairn_run_state_step(st, step);
        bool done = i < 0 || st->steps[i].status != CAIRN_STEP_WAITING ||
                    cairn_approval_check(st, step, by, jv_null(), true, &err) == CAIRN_EEXISTS;
        cairn_run_state_free(st);
        cairn_workflow_free(wf);
        if (done) return true;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Whether by's decision on step of run_id is recorded and not carried out
 * yet (no engine has taken it): one decision each, as the engine allows. */
static bool decided_already(const cli_opts *o, const char *run_id, const char *step,
                            const char *by, cairn_err *err) {
    jv mine = awaiting_on(awaiting_of(o, run_id), step);
    bool found = false;
    jv_array_foreach(mine, k, d) {
        found |= str_is(d, "by", by);
        jv_free(d);
    }
    jv_free(mine);
    if (found)
        cairn_err_set(err, CAIRN_EEXISTS, "%s has already decided step '%s' of run %s; the"
                      " decision awaits `cairn resume`", by, step, run_id);
    return found;
}

/* A decide command's data, as text the caller frees. */
static char *decision_data(const char *step, const char *cmd, const char *by, const char *comment) {
    jv d = jv_object_set(jv_object(), jv_string("step"), jv_string(step));
    d = jv_object_set(d, jv_string("decision"), jv_string(cmd));
    d = jv_object_set(d, jv_string("by"), jv_string(by));
    d = jv_object_set(d, jv_string("comment"), comment ? jv_string(comment) : jv_null());
    d = jv_object_set(d, jv_string("via"), jv_string("cli"));
    char *text = cairn_json_text(d);
    jv_free(d);
    return text;
}

/* The decision through the `cairn serve` holding the run, which checks it
 * against the approval as it stands: -1 when no server holds the run. */
static int decide_through_server(const cli_opts *o, const char *run, const char *step,
                                 const char *by, const char *comment, bool approve) {
    const char *cmd = approve ? "approve" : "reject";
    char *text = decision_data(step, cmd, by, comment), status[32];
    int rc = cli_command_handoff(o, run, "decide", text, false, status, sizeof status);
    free(text);
    if (rc == 0) printf("%s of %s/%s by %s taken\n", cmd, run, step, by);
    return rc;
}

static int decide_as(cli_opts *o, const char *const words[2], const char *by, const char *comment,
                     bool approve) {
    const char *cmd = approve ? "approve" : "reject";
    int rc = decide_through_server(o, words[0], words[1], by, comment, approve);
    if (rc >= 0) return rc;
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    cairn_err err;
    rc = load(o, words[0], &st, &wf);
    if (rc) return rc;
    if (cairn_approval_check(st, words[1], by, jv_null(), approve, &err) != 0 ||
        decided_already(o, words[0], words[1], by, &err)) {
        cli_error(&err);
        rc = EXIT_USAGE;
    }
    cairn_run_state_free(st);
    cairn_workflow_free(wf);
    if (rc) return rc;
    char *text = decision_data(words[1], cmd, by, comment);
    cairn_journal *j = NULL;
    cairn_run_row row = {0};
    rc = cli_open_journal(o->db, &j, &err);
    if (rc == 0) rc = cairn_journal_put_command(j, words[0], "decide", text, &err);
    free(text);
    bool held = rc == 0 && cairn_journal_get_run(j, words[0], &row, &err) == 0 && row.owner &&
                cairn_owner_alive(row.owner);
    cairn_run_row_clear(&row);
    cairn_journal_close(j);
    if (rc) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    if (!held) printf("%s of %s/%s by %s recorded; `cairn resume` carries it out\n", cmd, words[0], words[1], by);
    else if (taken(o, words[0], words[1], by)) printf("%s of %s/%s by %s taken\n", cmd, words[0], words[1], by);
    else fprintf(stderr, "cairn: %s recorded; the engine holding %s has not taken it yet\n", cmd, words[0]);
    return EXIT_OK;
}

static int decide(cli_opts *o, int argc, char **argv, bool approve) {
    const char *words[2] = {0}, *by = NULL, *comment = NULL, *v, *cmd = approve ? "approve" : "reject";
    int nwords = 0;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--as")) != NULL) by = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--comment")) != NULL) comment = v;
        else if (argv[i][0] == '-' || nwords == 2) return cli_usage("%s: unexpected '%s'", cmd, argv[i]);
        else words[nwords++] = argv[i];
    }
    if (nwords != 2 || (by && !*by))
        return cli_usage("usage: cairn %s RUN STEP [--as NAME] [--comment TEXT]", cmd);
    jv me = cli_real_user();
    int rc = decide_as(o, words, by ? by : jv_string_value(me), comment, approve);
    jv_free(me);
    return rc;
}

int cmd_approve(cli_opts *o, int argc, char **argv) { return decide(o, argc, argv, true); }
int cmd_reject(cli_opts *o, int argc, char **argv) { return decide(o, argc, argv, false); }

/* ---- approval links ------------------------------------------------------------ */

/* When the link lapses: --expires-at (RFC 3339; a past time gives a link
 * refused as expired when opened), else the approval's deadline; never
 * later than CAIRN_APPROVAL_LINK_TTL_MAX_MS from now.  -1 when refused. */
static int64_t link_expiry(const cairn_run_state *st, const char *step, const char *at) {
    int64_t now = cairn_wall_ms(), most = now + CAIRN_APPROVAL_LINK_TTL_MAX_MS, ms = 0;
    if (at && cairn_rfc3339_parse(at, &ms) != 0) {
        cli_usage("--expires-at %s: expected an RFC 3339 time", at);
        return -1;
    }
    if (at && ms > most) {
        cli_usage("--expires-at %s: at most %lld days ahead", at,
                  (long long)(CAIRN_APPROVAL_LINK_TTL_MAX_MS / 86400000));
        return -1;
    }
    if (at) return ms;
    jv d = jv_object_get(jv_copy(st->steps[cairn_run_state_step(st, step)].approval),
                         jv_string("deadline"));
    ms = jv_get_kind(d) == JV_KIND_NUMBER ? (int64_t)jv_number_value(d) : 0;
    jv_free(d);
    return ms > 0 && ms < most ? ms : most;
}

/* Sign a link for NAME to decide the open approval STEP of RUN. */
int cmd_approval_link(cli_opts *o, int argc, char **argv) {
    const char *words[2] = {0}, *by = NULL, *url = NULL, *at = NULL, *v;
    int nwords = 0;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--as")) != NULL) by = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--url")) != NULL) url = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--expires-at")) != NULL) at = v;
        else if (argv[i][0] == '-' || nwords == 2) return cli_usage("approval-link: unexpected '%s'", argv[i]);
        else words[nwords++] = argv[i];
    }
    if (nwords != 2 || url == NULL || (by && !*by))
        return cli_usage("usage: cairn approval-link RUN STEP --url URL [--as NAME] [--expires-at TIME]");
    jv me = cli_real_user();
    const char *name = by ? by : jv_string_value(me);
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    cairn_journal *j = NULL;
    unsigned char key[CAIRN_HASH_LEN];
    char *link = NULL;
    cairn_err err;
    int64_t expires = -1;
    int rc = load(o, words[0], &st, &wf);
    if (rc == 0 && cairn_approval_check(st, words[1], name, jv_null(), false, &err) != 0) {
        cli_error(&err);
        rc = EXIT_USAGE;
    }
    if (rc == 0 && (expires = link_expiry(st, words[1], at)) < 0) rc = EXIT_USAGE;
    if (rc == 0 && (cli_open_journal(o->db, &j, &err) != 0 ||
                    cairn_journal_derive_key(j, CAIRN_LINKPAGE_KEY_PURPOSE, key, &err) != 0)) {
        cli_error(&err);
        rc = EXIT_JOURNAL;
    }
    if (rc == 0 && srv_links_url(key, url, words[0], words[1], name, expires, &link, &err) != 0) {
        cli_error(&err);
        rc = EXIT_USAGE;
    }
    if (rc == 0) printf("%s\n", link);
    free(link);
    cairn_journal_close(j);
    cairn_run_state_free(st);
    cairn_workflow_free(wf);
    jv_free(me);
    return rc;
}
