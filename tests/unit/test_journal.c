/*
 * test_journal.c - the journal's door (engine/journal.h) over journals
 * built by hand: what a reader loads, and what the fold refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/mem.h"
#include "engine/journal.h"
#include "engine/engine.h"
#include "engine_harness.h"
#include "fixtures.h"
#include "test.h"

/* Source that hashes right but does not compile: a reader that compiles it
 * fails. */
static const char broken_src[] = "cairn: 1\nname: wf\nsteps: [ unclosed\n";

/* Make a journal at path holding run r1 of broken_src (steps a and b
 * stored beside it): run_created, then events[0..n) (step "a"). */
static void hand_built(const char *path, const cairn_event_type *types, const char *const *data,
                       int n) {
    cairn_store *s = NULL;
    cairn_err err;
    char hash[65];
    cairn_workflow_hash(broken_src, strlen(broken_src), hash);
    CHECK_INT(cairn_store_open_sqlite(path, CAIRN_SYNC_FULL, false, &s, &err), 0);
    CHECK_INT(s->ops->put_definition(s, hash, "wf", "wf.yaml", broken_src, strlen(broken_src),
                                     &err), 0);
    CHECK_INT(s->ops->put_steps(s, hash, "a\nb\n", &err), 0);
    cairn_event *evs[8];
    char *created = cairn_sprintf("{\"def_hash\":\"%s\",\"inputs\":{},\"trigger\":null,"
                                  "\"workflow\":\"wf\"}", hash);
    evs[0] = fx_event("r1", 1, CAIRN_EV_RUN_CREATED, created);
    for (int i = 0; i < n; i++) evs[i + 1] = fx_event("r1", i + 2, types[i], data[i]);
    CHECK_INT(s->ops->append(s, evs, n + 1, &err), 0);
    fx_free_events(evs, n + 1);
    free(created);
    cairn_store_close(s);
}

static cairn_journal *open_reader(const char *path) {
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_READER};
    cairn_journal *j = NULL;
    cairn_err err;
    if (cairn_journal_open(path, &cfg, &j, &err)) TEST_FAIL("open %s: %s", path, err.msg);
    return j;
}

TEST(journal_loads_a_run_with_the_steps_stored_not_the_definition_compiled) {
    char *path = cairn_sprintf("%s/j.db", test_tmpdir());
    cairn_event_type types[] = {CAIRN_EV_STEP_STARTED, CAIRN_EV_STEP_SUCCEEDED};
    const char *data[] = {"{\"input\":{}}", "{\"output\":1}"};
    hand_built(path, types, data, 2);
    cairn_journal *j = open_reader(path);
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    cairn_err err;
    CHECK_INT(cairn_journal_load_run(j, "r1", &st, NULL, &err), 0);
    CHECK_INT(st->n_steps, 2);
    CHECK_STR(st->step_ids[1], "b");
    CHECK_INT(st->steps[0].status, CAIRN_STEP_SUCCEEDED);
    cairn_run_state_free(st);
    /* asked for the definition, the load compiles it, and this one fails */
    CHECK(cairn_journal_load_run(j, "r1", &st, &wf, &err) != 0);
    CHECK(st == NULL && wf == NULL);
    cairn_journal_close(j);
    free(path);
}

TEST(journal_refuses_an_edited_definition_without_compiling_it) {
    char *path = cairn_sprintf("%s/j.db", test_tmpdir());
    hand_built(path, NULL, NULL, 0);
    sqlite3 *db = NULL;   /* the definitions table edited: same hash, other bytes */
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "UPDATE definitions SET source = 'edited'", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    cairn_err err;
    cairn_journal *j = open_reader(path);
    cairn_run_state *st = NULL;
    CHECK_INT(cairn_journal_load_run(j, "r1", &st, NULL, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "does not match the hash it is pinned to");
    cairn_journal_close(j);
    free(path);
}

/* A journal whose events skip a transition is refused by the reader, which
 * names the run, the event and what its step was. */
TEST(journal_reader_refuses_a_transition_from_the_wrong_state) {
    char *path = cairn_sprintf("%s/j.db", test_tmpdir());
    cairn_event_type types[] = {CAIRN_EV_STEP_SUCCEEDED};   /* never started */
    const char *data[] = {"{\"output\":1}"};
    hand_built(path, types, data, 1);
    cairn_journal *j = open_reader(path);
    cairn_run_state *st = NULL;
    cairn_err err;
    CHECK_INT(cairn_journal_load_run(j, "r1", &st, NULL, &err), CAIRN_ECORRUPT);
    CHECK(st == NULL);
    CHECK_STR(err.msg, "run r1 event 2 (step_succeeded): step a is pending, not running or"
                       " waiting");
    cairn_journal_close(j);
    free(path);
}

/* Claims: the first caller takes a key; a later one is told what holds it;
 * a replace wins only over the value it names, so of two callers that read
 * the same value and replace it, one wins. */
TEST(journal_claims_are_taken_once_and_replaced_only_by_compare_and_set) {
    char *path = cairn_sprintf("%s/j.db", test_tmpdir());
    hand_built(path, NULL, NULL, 0);
    cairn_journal *a = open_reader(path), *b = open_reader(path);
    cairn_err err;
    char *held = NULL, *value = NULL;
    CHECK_INT(cairn_journal_get_claim(a, "dedupe/wf", "k1", &value, &err), CAIRN_ENOTFOUND);
    CHECK_INT(cairn_journal_claim(a, "dedupe/wf", "k1", "run-1", NULL, &held, &err), 0);
    CHECK(held == NULL);
    CHECK_INT(cairn_journal_claim(b, "dedupe/wf", "k1", "run-2", NULL, &held, &err),
              CAIRN_EEXISTS);
    CHECK_STR(held, "run-1");
    free(held);
    /* the same key in another space is another claim */
    CHECK_INT(cairn_journal_claim(b, "dedupe/other", "k1", "run-3", NULL, &held, &err), 0);
    /* both replace run-1: the first wins, the second sees the winner */
    CHECK_INT(cairn_journal_claim(b, "dedupe/wf", "k1", "run-4", "run-1", &held, &err), 0);
    CHECK_INT(cairn_journal_claim(a, "dedupe/wf", "k1", "run-5", "run-1", &held, &err),
              CAIRN_EEXISTS);
    CHECK_STR(held, "run-4");
    free(held);
    CHECK_INT(cairn_journal_get_claim(a, "dedupe/wf", "k1", &value, &err), 0);
    CHECK_STR(value, "run-4");
    free(value);
    CHECK_INT(cairn_journal_get_claim(a, "dedupe/other", "k1", &value, &err), 0);
    CHECK_STR(value, "run-3");
    free(value);
    cairn_journal_close(a);
    cairn_journal_close(b);
    free(path);
}

TEST(journal_claims_are_bounded_and_a_journal_without_the_table_gets_it) {
    char *path = cairn_sprintf("%s/j.db", test_tmpdir());
    hand_built(path, NULL, NULL, 0);
    sqlite3 *db = NULL;   /* a journal made before claims existed */
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "DROP TABLE claims", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cairn_journal *j = open_reader(path);
    cairn_err err;
    char *held = NULL, *value = NULL;
    CHECK_INT(cairn_journal_get_claim(j, "s", "k", &value, &err), CAIRN_ENOTFOUND);
    char *big = cairn_malloc(CAIRN_CLAIM_VALUE_MAX + 2);
    memset(big, 'v', CAIRN_CLAIM_VALUE_MAX + 1);
    big[CAIRN_CLAIM_VALUE_MAX + 1] = '\0';
    CHECK_INT(cairn_journal_claim(j, "s", "k", big, NULL, &held, &err), CAIRN_ELIMIT);
    CHECK_CONTAINS(err.msg, "CAIRN_CLAIM_VALUE_MAX");
    big[CAIRN_CLAIM_VALUE_MAX] = '\0';   /* exactly the limit */
    CHECK_INT(cairn_journal_claim(j, "s", "k", big, NULL, &held, &err), 0);
    CHECK_INT(cairn_journal_claim(j, big + CAIRN_CLAIM_VALUE_MAX - CAIRN_CLAIM_TEXT_MAX - 1, "k",
                                  "v", NULL, &held, &err), CAIRN_ELIMIT);
    CHECK_INT(cairn_journal_get_claim(j, "s", "k", &value, &err), 0);
    CHECK_INT((int)strlen(value), CAIRN_CLAIM_VALUE_MAX);
    free(value);
    free(big);
    cairn_journal_close(j);
    free(path);
}

/* Set the text of run_created's data in run_id's journal, as someone with
 * write access to the file could. */
static void edit_created(const char *db, const char *run_id, const char *from, const char *to) {
    sqlite3 *raw = NULL;
    CHECK_INT(sqlite3_open(db, &raw), SQLITE_OK);
    char *sql = sqlite3_mprintf("UPDATE events SET data = replace(data, %Q, %Q)"
                                " WHERE run_id = %Q AND type = 'run_created'", from, to, run_id);
    CHECK_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_changes(raw), 1);
    sqlite3_free(sql);
    sqlite3_close(raw);
}

/* A resumed run folds run_created from the data its pin was read from
 * (parsed once): its inputs are the journal's, and the chain still covers
 * the event's text, so an edit of it is refused. */
TEST(journal_resume_folds_run_created_from_its_pin_and_checks_its_chain) {
    harness h = {0};
    char id[CAIRN_RUN_ID_MAX];
    cairn_err err;
    const char *src = "cairn: 1\nname: pinned\ninputs:\n  who: { type: string }\nsteps:\n"
                      "  - id: gate\n    uses: approval\n    with: { prompt: go? }\n"
                      "  - id: after\n    uses: set\n    with: { who: \"${{ .inputs.who }}\" }\n";
    open_engine(&h, true);
    add(&h, src);
    start(&h, "{\"who\":\"ann\"}", id);
    cairn_engine_request_stop(h.e);   /* parked at the gate */
    drive(&h);
    close_h(&h);

    edit_created(h.db, id, "\"ann\"", "\"bob\"");
    open_engine(&h, true);
    add(&h, src);
    CHECK_INT(cairn_engine_resume(h.e, id, NULL, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "hash chain");
    close_h(&h);

    edit_created(h.db, id, "\"bob\"", "\"ann\"");
    open_engine(&h, true);
    add(&h, src);
    CHECK_INT(cairn_engine_resume(h.e, id, NULL, &err), 0);
    CHECK_INT(cairn_journal_command(h.db, id, "decide",
                                    "{\"step\":\"gate\",\"decision\":\"approve\",\"by\":\"t\"}",
                                    &err), 0);
    drive(&h);
    close_h(&h);
    jv run = show(&h, id);
    CHECK_AT(run, "status", "succeeded");
    CHECK_AT(run, "steps.after.output.who", "ann");   /* the resumed engine's .inputs */
    jv_free(run);
    free_h(&h);
}
