/*
 * The commit log tells a crash's torn tail from damage, refuses a log of
 * another journal, and a refusal changes no file of the journal.
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "engine/clog.h"
#include "engine/engine.h"
#include "engine/store.h"
#include "fixtures.h"
#include "test.h"

#define RECORDS 5

static cairn_store *open_store(const char *db) {
    cairn_store *s = NULL;
    cairn_err err;
    if (cairn_store_open_sqlite(db, CAIRN_SYNC_FULL, false, &s, &err)) TEST_FAIL("%s", err.msg);
    return s;
}

static int events_of(cairn_store *s, const char *run) {
    cairn_event *evs = NULL;
    int n = 0;
    cairn_err err;
    CHECK_INT(s->ops->load_events(s, run, &evs, &n, &err), 0);
    cairn_events_free(evs, n);
    return n;
}

/* A journal at dir/name with definition h1, and a log holding RECORDS
 * records of run r1 (two events each), each synced before the next was
 * written, as a run going step by step leaves it; none applied.  at[i]
 * receives record i's offset, at[RECORDS] the end. */
static char *journal_with_log(const char *name, int64_t at[RECORDS + 1]) {
    char *db = cairn_sprintf("%s/%s", test_tmpdir(), name);
    cairn_store *s = open_store(db);
    fx_put_def(s);
    cairn_store_close(s);
    cairn_clog *l = NULL;
    cairn_err err;
    CHECK_INT(cairn_clog_open(db, "engine-a", true, &l, &err), 0);
    CHECK_INT(cairn_clog_reset(l, 0, &err), 0);
    at[0] = cairn_clog_end(l);
    for (int r = 0; r < RECORDS; r++) {
        cairn_event *evs[2];
        for (int k = 0; k < 2; k++) {
            int seq = 2 * r + k + 1;
            evs[k] = fx_event("r1", seq, seq == 1 ? CAIRN_EV_RUN_CREATED : CAIRN_EV_STEP_STARTED,
                              "{}");
        }
        CHECK_INT(cairn_clog_append(l, evs, 2, &at[r + 1], &err), 0);
        fx_free_events(evs, 2);
        CHECK_INT(cairn_clog_sync(l, &err), 0);
    }
    cairn_clog_close(l);
    return db;
}

/* Where the records of the log beside db end, as an opener finds it. */
static int64_t log_end(const char *db) {
    cairn_clog *l = NULL;
    cairn_err err;
    if (cairn_clog_open(db, "x", false, &l, &err)) TEST_FAIL("open the log: %s", err.msg);
    int64_t end = cairn_clog_end(l);
    cairn_clog_close(l);
    return end;
}

static void flip(const char *path, int64_t off) {
    int fd = open(path, O_RDWR);
    unsigned char c;
    CHECK(fd >= 0);
    CHECK_INT(pread(fd, &c, 1, off), 1);
    c ^= 0x10;
    CHECK_INT(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* The whole file, to compare before and after. */
static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *n = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = cairn_malloc(*n + 1);
    CHECK_INT(fread(p, 1, *n, f), (long long)*n);
    fclose(f);
    return p;
}

/* cairn_clog_settle, with what it prints on stderr in *said (freed by the caller). */
static int settle_telling(const char *db, char **said, cairn_err *err) {
    char *path = cairn_sprintf("%s/stderr", test_tmpdir());
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    int rc = cairn_clog_settle(db, err);
    fflush(stderr);
    dup2(saved, 2);
    close(fd);
    close(saved);
    size_t n;
    *said = slurp(path, &n);
    (*said)[n] = '\0';
    free(path);
    return rc;
}

TEST(clog_damage_followed_by_records_synced_after_it_is_refused) {
    int64_t at[RECORDS + 1];
    char *db = journal_with_log("j.db", at);
    char *path = cairn_sprintf("%s-clog", db);
    /* the payload, then the length field: records cannot be followed past it */
    const int64_t where[2] = {at[1] + 40, at[1] + 4};
    for (int w = 0; w < 2; w++) {
        flip(path, where[w]);
        size_t n0, n1;
        char *before = slurp(path, &n0);
        cairn_err err;
        CHECK_INT(cairn_clog_settle(db, &err), CAIRN_ECORRUPT);
        char want[64];
        snprintf(want, sizeof want, "damaged at offset %lld", (long long)at[1]);
        CHECK_CONTAINS(err.msg, want);
        CHECK_CONTAINS(err.msg, "nothing was applied or changed");
        char *after = slurp(path, &n1);
        CHECK(n0 == n1 && memcmp(before, after, n0) == 0);
        cairn_store *s = open_store(db);
        CHECK_INT(events_of(s, "r1"), 0);   /* not even the record before the damage */
        cairn_store_close(s);
        free(before);
        free(after);
        flip(path, where[w]);
    }
    free(path);
    free(db);
}

TEST(clog_damage_can_be_let_go_at_its_offset_keeping_what_came_before) {
    int64_t at[RECORDS + 1];
    char *db = journal_with_log("j.db", at);
    char *path = cairn_sprintf("%s-clog", db);
    flip(path, at[2] + 40);
    char offset[32];
    snprintf(offset, sizeof offset, "%lld", (long long)at[2] + 1);
    setenv("CAIRN_CLOG_ACCEPT_DAMAGE", offset, 1);   /* another offset: still refused */
    cairn_err err;
    CHECK_INT(cairn_clog_settle(db, &err), CAIRN_ECORRUPT);
    snprintf(offset, sizeof offset, "%lld", (long long)at[2]);
    setenv("CAIRN_CLOG_ACCEPT_DAMAGE", offset, 1);
    char *said = NULL;
    CHECK_INT(settle_telling(db, &said, &err), 0);
    CHECK_CONTAINS(said, "CAIRN_CLOG_ACCEPT_DAMAGE drops every event from there on");
    free(said);
    cairn_store *s = open_store(db);
    CHECK_INT(events_of(s, "r1"), 4);   /* the two records before the damage */
    cairn_store_close(s);
    unsetenv("CAIRN_CLOG_ACCEPT_DAMAGE");
    CHECK_INT(log_end(db), CAIRN_CLOG_HEADER);    /* started over */
    free(path);
    free(db);
}

TEST(clog_damage_whose_events_the_journal_holds_is_told_and_passed) {
    int64_t at[RECORDS + 1];
    char *db = journal_with_log("j.db", at);
    char *path = cairn_sprintf("%s-clog", db);
    cairn_err err;
    cairn_clog *l = NULL;
    CHECK_INT(cairn_clog_open(db, "engine-a", false, &l, &err), 0);
    cairn_store *s = open_store(db);
    s->ops->set_owner(s, "engine-a");
    CHECK_INT(cairn_clog_apply(l, s, at[0], at[RECORDS], NULL, &err), 0);
    cairn_clog_close(l);
    flip(path, at[3] + 40);
    char *warning = NULL;
    CHECK_INT(settle_telling(db, &warning, &err), 0);
    char want[96];
    snprintf(want, sizeof want, "damaged at offset %lld; the journal already holds every event",
             (long long)at[3]);
    CHECK_CONTAINS(warning, want);
    CHECK_INT(events_of(s, "r1"), 2 * RECORDS);
    CHECK_INT(log_end(db), CAIRN_CLOG_HEADER);    /* started over */
    cairn_store_close(s);
    free(warning);
    free(path);
    free(db);
}

/* Records written while an earlier one was unsynced can outlive it torn
 * at a power loss: a crash, not damage. */
TEST(clog_a_torn_record_before_records_written_while_it_was_unsynced_is_a_crash) {
    char *db = cairn_sprintf("%s/j.db", test_tmpdir());
    char *path = cairn_sprintf("%s-clog", db);
    cairn_store *s = open_store(db);
    fx_put_def(s);
    cairn_err err;
    cairn_clog *l = NULL;
    CHECK_INT(cairn_clog_open(db, "engine-a", true, &l, &err), 0);
    CHECK_INT(cairn_clog_reset(l, 0, &err), 0);
    cairn_event *evs[3];
    int64_t end[3];
    for (int i = 0; i < 3; i++) {
        evs[i] = fx_event("r1", i + 1, i == 0 ? CAIRN_EV_RUN_CREATED : CAIRN_EV_STEP_STARTED, "{}");
        CHECK_INT(cairn_clog_append(l, &evs[i], 1, &end[i], &err), 0);
        if (i == 0) CHECK_INT(cairn_clog_sync(l, &err), 0);   /* the others never were */
    }
    fx_free_events(evs, 3);
    cairn_clog_close(l);
    flip(path, end[0] + 40);                       /* the second, torn; the third whole */
    CHECK_INT(cairn_clog_settle(db, &err), 0);
    CHECK_INT(events_of(s, "r1"), 1);              /* what was synced */
    cairn_store_close(s);
    free(path);
    free(db);
}

TEST(clog_of_another_journal_is_refused_and_an_empty_one_taken_over) {
    char *mine = cairn_sprintf("%s/mine.db", test_tmpdir());
    cairn_store *s = open_store(mine);
    fx_put_def(s);
    cairn_err err;
    int64_t at[RECORDS + 1];
    char *other = journal_with_log("other.db", at);   /* its run durable only in its log */
    char *cmd = cairn_sprintf("cp '%s-clog' '%s-clog'", other, mine);
    CHECK_INT(system(cmd), 0);
    char *path = cairn_sprintf("%s-clog", mine);
    size_t n0, n1;
    char *before = slurp(path, &n0);
    CHECK_INT(cairn_clog_settle(mine, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "holds records of another journal");
    char *after = slurp(path, &n1);
    CHECK(n0 == n1 && memcmp(before, after, n0) == 0);
    cairn_run_row *rows = NULL;
    int runs = -1;
    CHECK_INT(s->ops->list_runs(s, NULL, &rows, &runs, &err), 0);
    CHECK_INT(runs, 0);                            /* nothing imported */
    cairn_run_rows_free(rows, runs);
    /* once applied where it belongs, the other journal's empty log is harmless */
    CHECK_INT(cairn_clog_settle(other, &err), 0);
    CHECK_INT(system(cmd), 0);
    cairn_clog *l = NULL;
    CHECK_INT(cairn_clog_take(mine, "engine-b", true, &l, &err), 0);
    cairn_clog_close(l);
    CHECK_INT(cairn_clog_settle(mine, &err), 0);   /* now named after this journal */
    free(before);
    free(after);
    free(path);
    free(cmd);
    free(other);
    cairn_store_close(s);
    free(mine);
}

TEST(clog_journal_without_an_id_gets_one_from_its_first_writer) {
    char *db = cairn_sprintf("%s/j.db", test_tmpdir());
    cairn_store_close(open_store(db));
    char id[CAIRN_JOURNAL_ID_HEX + 1], again[CAIRN_JOURNAL_ID_HEX + 1];
    cairn_err err;
    CHECK_INT(cairn_journal_id(db, id, &err), 0);
    CHECK_INT(strlen(id), CAIRN_JOURNAL_ID_HEX);
    sqlite3 *raw = NULL;                           /* as a journal made before ids were */
    CHECK_INT(sqlite3_open(db, &raw), SQLITE_OK);
    CHECK_INT(sqlite3_exec(raw, "DROP TABLE meta", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    CHECK_INT(cairn_journal_id(db, again, &err), 0);
    CHECK_STR(again, "");
    cairn_store *s = NULL;
    CHECK_INT(cairn_store_open_sqlite(db, CAIRN_SYNC_FULL, true, &s, &err), 0);
    cairn_store_close(s);                          /* a reader does not make it */
    CHECK_INT(cairn_journal_id(db, again, &err), 0);
    CHECK_STR(again, "");
    cairn_store_close(open_store(db));
    CHECK_INT(cairn_journal_id(db, again, &err), 0);
    CHECK_INT(strlen(again), CAIRN_JOURNAL_ID_HEX);
    CHECK(strcmp(again, id) != 0);                 /* made at random */
    free(db);
}

/* Every file of the journal: its bytes and its modification time. */
typedef struct {
    char *bytes;
    size_t n;
    struct timespec mtime;
    bool exists;
} file_state;

static void snapshot(const char *db, file_state out[4]) {
    const char *suffix[4] = {"", "-wal", "-clog", ".key"};
    for (int i = 0; i < 4; i++) {
        char *p = cairn_sprintf("%s%s", db, suffix[i]);
        struct stat sb;
        out[i].exists = stat(p, &sb) == 0;
        out[i].mtime = out[i].exists ? sb.st_mtim : (struct timespec){0, 0};
        out[i].bytes = slurp(p, &out[i].n);
        free(p);
    }
}

static void same_files(file_state a[4], file_state b[4]) {
    for (int i = 0; i < 4; i++) {
        if (a[i].exists != b[i].exists)
            TEST_FAIL("file %d: %d then %d", i, a[i].exists, b[i].exists);
        CHECK_INT(a[i].n, b[i].n);
        CHECK(a[i].n == 0 || memcmp(a[i].bytes, b[i].bytes, a[i].n) == 0);
        CHECK_INT(a[i].mtime.tv_sec, b[i].mtime.tv_sec);
        CHECK_INT(a[i].mtime.tv_nsec, b[i].mtime.tv_nsec);
        free(a[i].bytes);
        free(b[i].bytes);
    }
}

TEST(clog_a_refused_open_changes_no_file_of_the_journal) {
    int64_t at[RECORDS + 1];
    char *db = journal_with_log("j.db", at);
    char *path = cairn_sprintf("%s-clog", db);
    cairn_store *s = open_store(db);              /* events the index has not caught up with */
    cairn_event *ev = fx_event("r0", 1, CAIRN_EV_RUN_CREATED, "{}");
    cairn_err err;
    CHECK_INT(s->ops->append(s, &ev, 1, &err), 0);
    fx_free_events(&ev, 1);
    cairn_store_close(s);
    flip(path, at[1] + 40);
    /* SQLite makes an empty -wal for its first reader, as an engine's writer
     * leaves one (kept at its size): compare from there.  The -shm is
     * SQLite's shared index of the -wal, not journal data. */
    char id[CAIRN_JOURNAL_ID_HEX + 1];
    CHECK_INT(cairn_journal_id(db, id, &err), 0);
    file_state before[4], after[4];
    snapshot(db, before);
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_ENGINE};
    cairn_journal *j = NULL;
    CHECK_INT(cairn_journal_open(db, &jc, &j, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "damaged at offset");
    CHECK_INT(cairn_clog_settle(db, &err), CAIRN_ECORRUPT);   /* a reader's open too */
    snapshot(db, after);
    same_files(before, after);
    free(path);
    free(db);
}

/* A tail packed with record headers of the log's generation, each claiming
 * the rest of the file, would cost a checksum of megabytes per offset: the
 * search stops at its budget and the open refuses, as for any damage that
 * hides records, writing nothing. */
TEST(clog_a_tail_packed_with_record_headers_is_refused_in_bounded_work) {
    int64_t at[RECORDS + 1];
    char *db = journal_with_log("packed.db", at);
    char *log = cairn_sprintf("%s-clog", db);
    int fd = open(log, O_RDWR);
    CHECK(fd >= 0);
    unsigned char head[16];
    CHECK_INT(pread(fd, head, sizeof head, at[0]), (long long)sizeof head);   /* a real record */
    struct stat st;
    CHECK_INT(fstat(fd, &st), 0);
    int64_t from = at[RECORDS] + 64, to = st.st_size - 64;
    size_t n = (size_t)(to - from);
    unsigned char *fill = cairn_malloc(n);
    for (size_t i = 0; i + 16 <= n; i += 16) {
        memcpy(fill + i, head, 16);                    /* magic, length, generation */
        uint32_t len = (uint32_t)(st.st_size - (from + (int64_t)i) - 40);
        memcpy(fill + i + 4, &len, 4);                 /* little-endian, as the format */
    }
    CHECK_INT(pwrite(fd, fill, n, from), (long long)n);
    close(fd);
    cairn_clog *l = NULL;
    cairn_err err;
    CHECK_INT(cairn_clog_open(db, "x", false, &l, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "damaged at offset");
    free(fill);
    free(log);
    free(db);
}
