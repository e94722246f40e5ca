/*
 * cmd_replay.c - `cairn replay [RUN...] [--definition FILE]`: re-take every
 * decision a run's journal records and say whether each comes out the same
 * (engine/replay.h says which and how).  No RUN: every run in the journal.
 * With --definition, against that workflow instead of the one each run is
 * pinned to: where an edited runbook would have decided differently.
 *
 * Each run gets one line, "RUN consistent ...", "RUN consistent so far ..."
 * (it has not ended) or "RUN diverges at event SEQ (...)" with what the
 * journal says and what the replay decides under it; --json gives each as
 * an object on its own line.  Exit 1 when a run diverges.  Nothing is
 * written; the secrets beside the journal are read to mask as the engine
 * did (without them, comparisons that read a secret are not judged).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "engine/replay.h"

typedef struct {
    cairn_replay_journal *rj;
    cairn_journal *j;
    bool json;
} replay_cli;

static const char *verdict_word(cairn_replay_verdict v) {
    static const char *const words[] = {"consistent", "unfinished", "diverged"};
    return words[v];
}

static void print_json(const char *run_id, const cairn_replay_result *r) {
    jv o = jv_object_set(jv_object(), jv_string("run"), jv_string(run_id));
    o = jv_object_set(o, jv_string("verdict"), jv_string(verdict_word(r->verdict)));
    o = jv_object_set(o, jv_string("status"), jv_string(r->status));
    o = jv_object_set(o, jv_string("events"), jv_number((double)r->events));
    o = jv_object_set(o, jv_string("decisions"), jv_number(r->decisions));
    o = jv_object_set(o, jv_string("unjudged"), jv_number(r->unjudged));
    if (r->verdict == CAIRN_REPLAY_DIVERGED) {
        jv d = jv_object_set(jv_object(), jv_string("seq"), jv_number((double)r->seq));
        d = jv_object_set(d, jv_string("type"), jv_string(cairn_event_type_name(r->type)));
        d = jv_object_set(d, jv_string("step"), r->step[0] ? jv_string(r->step) : jv_null());
        d = jv_object_set(d, jv_string("index"), r->index >= 0 ? jv_number(r->index) : jv_null());
        d = jv_object_set(d, jv_string("attempt"), jv_number(r->attempt));
        d = jv_object_set(d, jv_string("decision"), jv_string(r->decision));
        d = jv_object_set(d, jv_string("journal"), jv_string(r->journal));
        d = jv_object_set(d, jv_string("replay"), jv_string(r->replay));
        o = jv_object_set(o, jv_string("divergence"), d);
    }
    cli_print_json(stdout, o, false);
}

static void print_text(const char *run_id, const cairn_replay_result *r) {
    char unjudged[64] = "";
    if (r->unjudged)
        snprintf(unjudged, sizeof unjudged, "; %d not judged (a secret not given)", r->unjudged);
    if (r->verdict == CAIRN_REPLAY_CONSISTENT) {
        printf("%s consistent: %lld events, %d decisions re-taken%s\n", run_id,
               (long long)r->events, r->decisions, unjudged);
    } else if (r->verdict == CAIRN_REPLAY_UNFINISHED) {
        printf("%s consistent so far: the run has not ended (%s); %lld events, %d decisions"
               " re-taken%s\n", run_id, r->status, (long long)r->events, r->decisions, unjudged);
    } else {
        char item[32] = "";
        if (r->index >= 0) snprintf(item, sizeof item, " item %d", r->index);
        printf("%s diverges at event %lld (%s%s%s%s, attempt %d): %s\n", run_id, (long long)r->seq,
               cairn_event_type_name(r->type), r->step[0] ? ", step " : "", r->step, item,
               r->attempt, r->decision);
        printf("  journal: %s\n  replay:  %s\n", r->journal, r->replay);
    }
}

/* One run: EXIT_OK, EXIT_FAILED (it diverges), or the error's exit. */
static int replay_one(replay_cli *c, const char *run_id) {
    cairn_err err;
    cairn_replay_result res;
    int rc = cairn_replay_journal_run(c->rj, run_id, &res, &err);
    if (rc) {
        cli_error(&err);
        return cli_lookup_exit(rc);
    }
    if (c->json) print_json(run_id, &res);
    else print_text(run_id, &res);
    return res.verdict == CAIRN_REPLAY_DIVERGED ? EXIT_FAILED : EXIT_OK;
}

/* The worse of two exits: the journal failing, then usage, then a divergence. */
static int worse(int a, int b) {
    static const int rank[] = {[EXIT_OK] = 0, [EXIT_FAILED] = 1, [EXIT_USAGE] = 2,
                               [EXIT_JOURNAL] = 3};
    return rank[b] > rank[a] ? b : a;
}

static int replay_all(replay_cli *c, char **runs, int n_runs) {
    int rc = EXIT_OK;
    for (int i = 0; i < n_runs; i++) rc = worse(rc, replay_one(c, runs[i]));
    if (n_runs) return rc;
    char **ids = NULL;
    bool *rows = NULL;
    int n = 0;
    cairn_err err;
    if (cairn_journal_run_ids(c->j, &ids, &rows, &n, &err) != 0) {
        cli_error(&err);
        return EXIT_JOURNAL;
    }
    for (int i = 0; i < n; i++) rc = worse(rc, replay_one(c, ids[i]));
    cairn_journal_ids_free(ids, rows, n);
    return rc;
}

int cmd_replay(cli_opts *o, int argc, char **argv) {
    const char *def_file = NULL, *v;
    int n_runs = 0;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--definition")) != NULL) def_file = v;
        else if (argv[i][0] == '-')
            return cli_usage("usage: cairn replay [RUN...] [--definition FILE] [--db PATH]");
        else argv[n_runs++] = argv[i];
    }
    replay_cli c = {.json = o->json};
    cairn_workflow *wf = NULL;
    if (def_file && (wf = cli_load_workflow(def_file)) == NULL) return EXIT_USAGE;
    cairn_err err;
    if (cli_open_journal(o->db, &c.j, &err) != 0) {
        cli_error(&err);
        cairn_workflow_free(wf);
        return EXIT_JOURNAL;
    }
    c.rj = cairn_replay_journal_new(c.j, wf, &err);
    if (err.code)
        fprintf(stderr, "cairn: the secrets cannot be read (%s): comparisons that read one are"
                " not judged\n", err.msg);
    int rc = replay_all(&c, argv, n_runs);
    cairn_replay_journal_free(c.rj);
    cairn_journal_close(c.j);
    return rc;
}
