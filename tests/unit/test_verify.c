/*
 * test_verify.c - `cairn verify` of every run in one pass over the events
 * (cairn_journal_verify_runs) says of each run exactly what a check of
 * that run alone says (cairn_journal_verify_run), on a journal whose runs
 * ran side by side, some of them tampered with in each way verify knows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/mem.h"
#include "engine/journal.h"
#include "engine_harness.h"
#include "test.h"

#define RUNS 10

static const char flow[] = "cairn: 1\nname: four\nsteps:\n"
                           "  - id: a\n    uses: set\n    with: { v: genuine }\n"
                           "  - id: b\n    uses: set\n    with: { v: \"${{ .steps.a.output.v }}\" }\n"
                           "  - id: c\n    uses: set\n    with: { v: 3 }\n"
                           "  - id: d\n    needs: [b, c]\n    uses: set\n    with: { v: 4 }\n";

/* sql, its %s the run's id (and, when it has two, another's) */
static void exec_sql(const char *db, const char *sql, const char *run_id, const char *other) {
    sqlite3 *c = NULL;
    char *text = cairn_sprintf(sql, run_id, other);
    char *msg = NULL;
    CHECK_INT(sqlite3_open(db, &c), SQLITE_OK);
    if (sqlite3_exec(c, text, NULL, NULL, &msg) != SQLITE_OK) TEST_FAIL("%s: %s", text, msg);
    sqlite3_close(c);
    free(text);
}

/* Runs side by side (their events interleave), every event then indexed
 * by a connection that writes (it indexes the tail when it opens). */
static void make_runs(harness *h, char ids[RUNS][CAIRN_RUN_ID_MAX]) {
    open_engine(h, false);
    add(h, flow);
    for (int i = 0; i < RUNS; i++) start(h, "{}", ids[i]);
    drive(h);
    close_h(h);
    cairn_store *s = NULL;
    cairn_err err;
    CHECK_INT(cairn_store_open_sqlite(h->db, CAIRN_SYNC_FULL, false, &s, &err), 0);
    cairn_store_close(s);
}

static void same_verdict(const cairn_run_verdict *pass, const cairn_run_verdict *alone) {
    CHECK_STR(pass->run_id, alone->run_id);
    CHECK_INT(pass->has_row, alone->has_row);
    CHECK_INT(pass->rc, alone->rc);
    CHECK_INT(pass->last_seq, alone->last_seq);
    CHECK(memcmp(pass->head, alone->head, CAIRN_HASH_LEN) == 0);
    CHECK_INT(pass->forked, alone->forked);
    CHECK_INT(pass->err != NULL, alone->err != NULL);
    if (pass->err) CHECK_STR(pass->err->msg, alone->err->msg);
}

TEST(verify_in_one_pass_says_of_each_run_what_a_check_of_it_alone_says) {
    harness h = {0};
    char ids[RUNS][CAIRN_RUN_ID_MAX];
    make_runs(&h, ids);
    h.edited = true;   /* what replay would report is what verify must */
    /* 0: an event's data edited (the chain) */
    exec_sql(h.db, "UPDATE events SET data = replace(data, 'genuine', 'forged')"
                   " WHERE run_id = '%s' AND type = 'step_succeeded'", ids[0], "");
    /* 1: its runs row deleted */
    exec_sql(h.db, "DELETE FROM runs WHERE id = '%s'", ids[1], "");
    /* 2: two events swapped, seqs and all */
    exec_sql(h.db, "UPDATE events SET seq = 5 - seq WHERE run_id = '%s' AND seq IN (2, 3)",
             ids[2], "");
    /* 3: the event index points at another run's events */
    exec_sql(h.db, "UPDATE event_index SET ids = (SELECT e.ids FROM event_index e WHERE"
                   " e.run_id = '%2$s') WHERE run_id = '%1$s'", ids[3], ids[RUNS - 1]);
    /* 4: its runs row edited */
    exec_sql(h.db, "UPDATE runs SET status = 'failed' WHERE id = '%s'", ids[4], "");
    /* 5: an event added after its last, at the journal's end */
    exec_sql(h.db, "INSERT INTO events(run_id, seq, time, type, step, attempt, data, hash)"
                   " SELECT run_id, seq + 1, time, type, step, attempt, data, hash FROM events"
                   " WHERE run_id = '%s' ORDER BY seq DESC LIMIT 1", ids[5], "");
    /* 6: every event deleted, its row kept */
    exec_sql(h.db, "DELETE FROM events WHERE run_id = '%s'", ids[6], "");

    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    cairn_journal *j = NULL;
    cairn_err err;
    CHECK_INT(cairn_journal_open(h.db, &jc, &j, &err), 0);
    CHECK_INT(cairn_journal_use_key(j, &err), 0);
    cairn_run_verdict *v = NULL;
    int n = 0;
    CHECK_INT(cairn_journal_verify_runs(j, &v, &n, &err), 0);
    CHECK_INT(n, RUNS);
    int failing = 0;
    for (int i = 0; i < n; i++) {
        cairn_run_verdict alone;
        cairn_journal_verify_run(j, v[i].run_id, v[i].has_row, &alone);
        same_verdict(&v[i], &alone);
        cairn_run_verdict_clear(&alone);
        failing += v[i].rc != 0;
        CHECK(i == 0 || strcmp(v[i - 1].run_id, v[i].run_id) < 0);   /* in id order */
    }
    CHECK_INT(failing, 7);
    for (int k = 7; k < RUNS; k++)   /* the runs left alone check out */
        for (int i = 0; i < n; i++)
            if (strcmp(v[i].run_id, ids[k]) == 0) CHECK_INT(v[i].rc, 0);
    cairn_run_verdicts_free(v, n);
    cairn_journal_close(j);
    free_h(&h);
}
