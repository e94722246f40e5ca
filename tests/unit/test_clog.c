#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "engine/clog.h"
#include "engine/owner.h"
#include "engine/store.h"
#include "fixtures.h"
#include "test.h"

static char *db_path(void) { return cairn_sprintf("%s/j.db", test_tmpdir()); }

static cairn_store *open_store(const char *db) {
    cairn_store *s = NULL;
    cairn_err err;
    if (cairn_store_open_sqlite(db, CAIRN_SYNC_FULL, false, &s, &err)) TEST_FAIL("%s", err.msg);
    return s;
}

/* The log of the journal at db (made first if absent: a log names its journal). */
static cairn_clog *open_log(const char *db, const char *owner) {
    cairn_clog *l = NULL;
    cairn_err err;
    cairn_store_close(open_store(db));
    if (cairn_clog_open(db, owner, true, &l, &err)) TEST_FAIL("open the log: %s", err.msg);
    return l;
}

/* Append one record of run r1's events [first, first + n) (seq 1 is
 * run_created, the rest step events); returns its end. */
static int64_t append_r1(cairn_clog *l, int first, int n) {
    cairn_event *evs[8];
    for (int i = 0; i < n; i++)
        evs[i] = fx_event("r1", first + i, first + i == 1 ? CAIRN_EV_RUN_CREATED
                                                          : CAIRN_EV_STEP_STARTED, "{}");
    int64_t end = 0;
    cairn_err err;
    int rc = cairn_clog_append(l, evs, n, &end, &err);
    fx_free_events(evs, n);
    if (rc) TEST_FAIL("append: %s", err.msg);
    return end;
}

static int events_of_r1(cairn_store *s) {
    cairn_event *evs = NULL;
    int n = 0;
    cairn_err err;
    CHECK_INT(s->ops->load_events(s, "r1", &evs, &n, &err), 0);
    cairn_events_free(evs, n);
    return n;
}

/* The first n bytes of path into out. */
static void pread_at(const char *path, char *out, size_t n) {
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK_INT(pread(fd, out, n, 0), (long long)n);
    close(fd);
}

static void pwrite_at(const char *path, int64_t off, const char *bytes, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0);
    CHECK_INT(pwrite(fd, bytes, n, off), (long long)n);
    close(fd);
}

/* The checksum is CRC-32C bit for bit, however the CPU computes it: logs
 * written by one machine are read by another. */
static uint32_t crc32c_bitwise(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

TEST(clog_checksum_is_crc32c_at_any_length_and_alignment) {
    CHECK_INT(cairn_clog_crc32c(0, "123456789", 9), 0xe3069283u);   /* the standard check value */
    CHECK_INT(cairn_clog_crc32c(0, "", 0), 0);
    unsigned char buf[200];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n++) {
            uint32_t want = crc32c_bitwise(0, buf + off, n);
            if (cairn_clog_crc32c(0, buf + off, n) != want) TEST_FAIL("offset %zu, %zu bytes", off, n);
            uint32_t half = cairn_clog_crc32c(0, buf + off, n / 2);   /* continued */
            if (cairn_clog_crc32c(half, buf + off + n / 2, n - n / 2) != want)
                TEST_FAIL("continued: offset %zu, %zu bytes", off, n);
        }
}

TEST(clog_records_survive_a_reopen_and_apply_once) {
    char *db = db_path();
    cairn_store *s = open_store(db);
    fx_put_def(s);
    cairn_err err;
    cairn_clog *l = open_log(db, "engine-a");
    CHECK_INT(cairn_clog_reset(l, 0, &err), 0);   /* engine-a writes from here */
    append_r1(l, 1, 2);
    int64_t end = append_r1(l, 3, 3);
    CHECK_INT(cairn_clog_sync(l, &err), 0);
    cairn_clog_close(l);                           /* as a crash would leave it */

    l = open_log(db, "engine-b");
    CHECK_INT(cairn_clog_end(l), end);
    CHECK_STR(cairn_clog_writer(l), "engine-a");
    CHECK_INT(events_of_r1(s), 0);
    s->ops->set_owner(s, cairn_clog_writer(l));
    int n = 0;
    CHECK_INT(cairn_clog_apply(l, s, CAIRN_CLOG_HEADER, end, &n, &err), 0);
    CHECK_INT(n, 5);
    CHECK_INT(events_of_r1(s), 5);
    cairn_run_row row;
    CHECK_INT(s->ops->get_run(s, "r1", &row, &err), 0);
    CHECK_STR(row.owner, "engine-a");              /* claimable once engine-a is gone */
    cairn_run_row_clear(&row);
    /* a crash after the apply and before the reset: applying again adds nothing */
    CHECK_INT(cairn_clog_apply(l, s, CAIRN_CLOG_HEADER, end, &n, &err), 0);
    CHECK_INT(events_of_r1(s), 5);
    cairn_clog_close(l);
    cairn_store_close(s);
    free(db);
}

TEST(clog_stops_at_a_torn_record_and_forgets_what_a_reset_made_stale) {
    char *db = db_path();
    char *path = cairn_sprintf("%s-clog", db);
    cairn_err err;
    cairn_clog *l = open_log(db, "e");
    int64_t first = append_r1(l, 1, 2);
    int64_t second = append_r1(l, 3, 1);
    append_r1(l, 4, 1);
    cairn_clog_close(l);
    pwrite_at(path, second + 30, "X", 1);          /* the third record, torn */
    l = open_log(db, "e");
    CHECK_INT(cairn_clog_end(l), second);
    CHECK_INT(cairn_clog_reset(l, 0, &err), 0);
    CHECK_INT(cairn_clog_end(l), CAIRN_CLOG_HEADER);
    cairn_clog_close(l);
    l = open_log(db, "e");
    CHECK_INT(cairn_clog_end(l), CAIRN_CLOG_HEADER);   /* every old record is stale */
    int64_t again = append_r1(l, 1, 2);            /* same size as the first was */
    CHECK_INT(again, first);
    cairn_clog_close(l);
    l = open_log(db, "e");
    CHECK_INT(cairn_clog_end(l), first);           /* the stale second one is not read */
    cairn_clog_close(l);
    free(path);
    free(db);
}

TEST(clog_is_held_by_one_opener_at_a_time) {
    char *db = db_path();
    cairn_clog *l = open_log(db, "e"), *other = NULL;
    cairn_err err;
    CHECK_INT(cairn_clog_open(db, "f", true, &other, &err), CAIRN_EBUSY);
    CHECK_CONTAINS(err.msg, "another engine holds the log");
    cairn_clog_close(l);
    other = open_log(db, "f");
    cairn_clog_close(other);
    free(db);
}

TEST(clog_refuses_a_file_that_is_not_a_log_and_leaves_it_alone) {
    char *db = db_path();
    char *path = cairn_sprintf("%s-clog", db);
    const char text[] = "not a commit log\n";
    pwrite_at(path, 0, text, sizeof text - 1);
    cairn_clog *l = NULL;
    cairn_err err;
    CHECK_INT(cairn_clog_open(db, "e", true, &l, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "not a Cairn commit log");
    struct stat sb;
    CHECK_INT(stat(path, &sb), 0);
    CHECK_INT(sb.st_size, (long long)(sizeof text - 1));
    char back[sizeof text] = {0};
    pread_at(path, back, sizeof text - 1);
    CHECK_STR(back, text);
    free(path);
    free(db);
}

TEST(clog_says_full_without_writing_and_grows_when_reset) {
    char *db = db_path();
    char *path = cairn_sprintf("%s-clog", db);
    cairn_err err;
    cairn_clog *l = open_log(db, "e");
    size_t big = CAIRN_CLOG_BYTES + 1000;
    char *data = cairn_malloc(big + 1);
    memset(data, 'x', big);
    data[big] = '\0';
    cairn_event *ev = fx_event("r1", 1, CAIRN_EV_RUN_CREATED, data);
    int64_t need = 0, end = 0;
    CHECK_INT(cairn_clog_append(l, &ev, 1, &need, &err), CAIRN_EFULL);
    CHECK_INT(cairn_clog_end(l), CAIRN_CLOG_HEADER);
    CHECK(need > (int64_t)big);                    /* the record's size */
    CHECK_INT(cairn_clog_reset(l, (size_t)need, &err), 0);
    CHECK_INT(cairn_clog_append(l, &ev, 1, &end, &err), 0);
    CHECK_INT(end, CAIRN_CLOG_HEADER + need);
    cairn_clog_close(l);
    struct stat sb;
    CHECK_INT(stat(path, &sb), 0);
    CHECK(sb.st_size >= end);
    l = open_log(db, "e");
    CHECK_INT(cairn_clog_end(l), end);
    cairn_clog_close(l);
    fx_free_events(&ev, 1);
    free(data);
    free(path);
    free(db);
}

/* An owner string naming a process of this host that does not exist. */
static char *dead_owner(void) {
    char self[256];
    cairn_owner_self(self, sizeof self);
    *strchr(self, ':') = '\0';
    return cairn_sprintf("%s:999999999:1", self);
}

TEST(clog_settle_applies_a_gone_writers_records_and_leaves_a_live_ones_alone) {
    char *db = db_path();
    cairn_store *s = open_store(db);
    fx_put_def(s);
    cairn_err err;
    CHECK_INT(cairn_clog_settle(db, &err), 0);     /* no log: nothing to do, nothing made */
    char *path = cairn_sprintf("%s-clog", db);
    CHECK(access(path, F_OK) != 0);
    char self[256];
    cairn_owner_self(self, sizeof self);
    cairn_clog *l = open_log(db, self);
    CHECK_INT(cairn_clog_reset(l, 0, &err), 0);
    append_r1(l, 1, 2);
    CHECK_INT(cairn_clog_settle(db, &err), 0);     /* a live engine holds it: left alone */
    CHECK_INT(events_of_r1(s), 0);
    cairn_clog_close(l);                           /* the engine is gone */
    CHECK_INT(cairn_clog_settle(db, &err), 0);
    CHECK_INT(events_of_r1(s), 2);
    l = open_log(db, "engine-b");
    CHECK_INT(cairn_clog_end(l), CAIRN_CLOG_HEADER);   /* started over */
    cairn_clog_close(l);
    cairn_store_close(s);
    free(path);
    free(db);
}

/* Holds the log with a gone writer's records for a while, then applies
 * them and lets go: what an engine or a reader does when it takes it. */
static void *slow_taker(void *arg) {
    cairn_clog *l = arg;
    usleep(200000);
    cairn_err err;
    char *db = db_path();
    cairn_store *s = open_store(db);
    s->ops->set_owner(s, cairn_clog_writer(l));
    CHECK_INT(cairn_clog_apply(l, s, CAIRN_CLOG_HEADER, cairn_clog_end(l), NULL, &err), 0);
    CHECK_INT(cairn_clog_reset(l, 0, &err), 0);
    cairn_store_close(s);
    cairn_clog_close(l);
    free(db);
    return NULL;
}

TEST(clog_settle_waits_for_another_process_applying_a_gone_writers_records) {
    char *db = db_path();
    cairn_store *s = open_store(db);
    fx_put_def(s);
    cairn_err err;
    char *dead = dead_owner();
    cairn_clog *l = open_log(db, dead);
    CHECK_INT(cairn_clog_reset(l, 0, &err), 0);    /* the dead engine's records */
    append_r1(l, 1, 3);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, slow_taker, l), 0);
    CHECK_INT(cairn_clog_settle(db, &err), 0);
    CHECK_INT(events_of_r1(s), 3);                 /* read only once they were applied */
    pthread_join(t, NULL);
    cairn_store_close(s);
    free(dead);
    free(db);
}

TEST(clog_refuses_to_apply_a_record_whose_events_do_not_decode) {
    char *db = db_path();
    cairn_store *s = open_store(db);
    fx_put_def(s);
    cairn_err err;
    cairn_clog *l = open_log(db, "e");
    append_r1(l, 1, 1);
    cairn_event *ev = fx_event("r1", 2, CAIRN_EV_STEP_STARTED, "{}");
    ev->type = (cairn_event_type)999;              /* whole and checksummed, but no event */
    int64_t end = 0;
    CHECK_INT(cairn_clog_append(l, &ev, 1, &end, &err), 0);
    fx_free_events(&ev, 1);
    cairn_clog_close(l);
    CHECK_INT(cairn_clog_settle(db, &err), CAIRN_ECORRUPT);
    CHECK_CONTAINS(err.msg, "does not hold events; the log was not applied");
    CHECK_INT(events_of_r1(s), 0);                 /* not even the good record before it */
    l = open_log(db, "e");
    CHECK_INT(cairn_clog_end(l), end);             /* kept as it was */
    cairn_clog_close(l);
    cairn_store_close(s);
    free(db);
}

TEST(clog_an_empty_log_is_written_only_to_name_a_new_writer) {
    char *db = db_path();
    char *path = cairn_sprintf("%s-clog", db);
    cairn_store *s = open_store(db);
    cairn_err err;
    cairn_clog *l = NULL;
    CHECK_INT(cairn_clog_take(db, "engine-a", true, &l, &err), 0);
    CHECK_STR(cairn_clog_writer(l), "engine-a");   /* its records will follow */
    cairn_clog_close(l);
    char before[CAIRN_CLOG_HEADER], after[CAIRN_CLOG_HEADER];
    pread_at(path, before, sizeof before);
    CHECK_INT(cairn_clog_settle(db, &err), 0);     /* a reader: nothing to apply, nothing written */
    pread_at(path, after, sizeof after);
    CHECK(memcmp(before, after, sizeof before) == 0);
    CHECK_INT(cairn_clog_take(db, "engine-a", true, &l, &err), 0);
    cairn_clog_close(l);
    pread_at(path, after, sizeof after);
    CHECK(memcmp(before, after, sizeof before) == 0);   /* the same writer again */
    CHECK_INT(cairn_clog_take(db, "engine-b", true, &l, &err), 0);
    CHECK_STR(cairn_clog_writer(l), "engine-b");
    cairn_clog_close(l);
    pread_at(path, after, sizeof after);
    CHECK(memcmp(before, after, sizeof before) != 0);
    cairn_store_close(s);
    free(path);
    free(db);
}

/* Every field of an event comes back from the log as it went in: a run
 * event (no step) and step events with an attempt, data of several lengths,
 * a hash and the command one answers (deleted when the record is applied;
 * another command of the run stays). */
TEST(clog_an_event_comes_back_from_its_record_field_for_field) {
    char *db = db_path();
    cairn_store *s = open_store(db);
    fx_put_def(s);
    cairn_err err;
    CHECK_INT(s->ops->add_command(s, "r1", "pause", "{}", &err), 0);
    CHECK_INT(s->ops->add_command(s, "r1", "cancel", "{}", &err), 0);
    cairn_command *cmds = NULL;
    int n_cmds = 0;
    CHECK_INT(s->ops->run_commands(s, "r1", &cmds, &n_cmds, &err), 0);
    CHECK_INT(n_cmds, 2);
    int64_t command = cmds[1].id;
    cairn_commands_free(cmds, n_cmds);
    cairn_clog *l = open_log(db, "engine-a");
    cairn_event *evs[4] = {
        fx_event("r1", 1, CAIRN_EV_RUN_CREATED, "{\"workflow\":\"wf\"}"),
        fx_event("r1", 2, CAIRN_EV_STEP_STARTED, "{\"input\":{\"n\":1},\"idempotency_key\":\"k\"}"),
        fx_event("r1", 3, CAIRN_EV_STEP_SUCCEEDED, "{}"),
        fx_event("r1", 4, CAIRN_EV_RUN_CANCEL_REQUESTED, "{\"by\":\"someone with a longer name\"}"),
    };
    for (int i = 0; i < 4; i++) {
        evs[i]->attempt = i == 0 || i == 3 ? 0 : 7 - i;
        evs[i]->time_ms = 1796660491516LL + 1000 * i;
        for (int k = 0; k < CAIRN_HASH_LEN; k++) evs[i]->hash[k] = (unsigned char)(31 * i + k);
    }
    free(evs[2]->step);
    evs[2]->step = cairn_strdup("a-step-with-a-longer-id");
    evs[3]->command_id = command;
    int64_t end = 0;
    CHECK_INT(cairn_clog_append(l, evs, 4, &end, &err), 0);
    int n = 0;
    CHECK_INT(cairn_clog_apply(l, s, CAIRN_CLOG_HEADER, end, &n, &err), 0);
    CHECK_INT(n, 4);
    cairn_event *back = NULL;
    int n_back = 0;
    CHECK_INT(s->ops->load_events(s, "r1", &back, &n_back, &err), 0);
    CHECK_INT(n_back, 4);
    for (int i = 0; i < n_back; i++) {
        CHECK_STR(back[i].run_id, "r1");
        CHECK_INT(back[i].seq, evs[i]->seq);
        CHECK_INT(back[i].time_ms, evs[i]->time_ms);
        CHECK_INT(back[i].type, evs[i]->type);
        CHECK(evs[i]->step ? back[i].step && strcmp(back[i].step, evs[i]->step) == 0
                           : back[i].step == NULL);
        CHECK_INT(back[i].attempt, evs[i]->attempt);
        CHECK_STR(back[i].data, evs[i]->data);
        CHECK(memcmp(back[i].hash, evs[i]->hash, CAIRN_HASH_LEN) == 0);
    }
    CHECK_INT(s->ops->run_commands(s, "r1", &cmds, &n_cmds, &err), 0);
    CHECK_INT(n_cmds, 1);   /* the one event 4 answered went in the same transaction */
    CHECK_STR(cmds[0].type, "pause");
    cairn_commands_free(cmds, n_cmds);
    cairn_events_free(back, n_back);
    fx_free_events(evs, 4);
    cairn_clog_close(l);
    cairn_store_close(s);
    free(db);
}
