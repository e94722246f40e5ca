/*
 * Fuzz target: the commit-log reader (engine/clog.c).  The input is a whole
 * log file beside a journal that stays the same: opening it must refuse
 * damage or a foreign header cleanly, and whatever it accepts must apply to
 * the journal without error past the checks.  At start the target writes a
 * real log of that journal (four records) into its corpus folder, so the
 * fuzzer starts from valid records with the right journal id.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "engine/clog.h"
#include "engine/store.h"

static char dir[64], db[128], log_path[160];
static void *pristine;                   /* the journal's bytes, after a checkpoint */
static size_t pristine_len;

static void *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) abort();
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    void *p = cairn_malloc(*len + 1);
    if (fread(p, 1, *len, f) != *len) abort();
    fclose(f);
    return p;
}

static void put(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

static cairn_event *event(int64_t seq, cairn_event_type t) {
    cairn_event *ev = cairn_calloc(1, sizeof *ev);
    snprintf(ev->run_id, sizeof ev->run_id, "r1");
    ev->seq = seq;
    ev->time_ms = 1000 + seq;
    ev->type = t;
    ev->data = cairn_strdup(t == CAIRN_EV_RUN_CREATED ? "{\"def_hash\":\"h1\",\"workflow\":\"wf\"}"
                                                      : "{\"v\":1}");
    ev->data_len = strlen(ev->data);
    if (t != CAIRN_EV_RUN_CREATED) ev->step = cairn_strdup("a");
    return ev;
}

/* A journal with one definition, and a log of four records of run r1. */
static void make_journal(const char *seed_dir) {
    cairn_err err;
    cairn_store *s = NULL;
    if (cairn_store_open_sqlite(db, CAIRN_SYNC_FULL, false, &s, &err) ||
        s->ops->put_definition(s, "h1", "wf", "wf.yaml", "src", 3, &err))
        abort();
    cairn_store_close(s);
    pristine = slurp(db, &pristine_len);
    cairn_clog *l = NULL;
    int64_t end;
    if (cairn_clog_open(db, "fuzz", true, &l, &err) || cairn_clog_reset(l, 0, &err)) abort();
    for (int r = 0; r < 4; r++) {
        cairn_event *evs[2] = {event(2 * r + 1, r ? CAIRN_EV_STEP_STARTED : CAIRN_EV_RUN_CREATED),
                               event(2 * r + 2, CAIRN_EV_STEP_SUCCEEDED)};
        if (cairn_clog_append(l, evs, 2, &end, &err) || cairn_clog_sync(l, &err)) abort();
        for (int k = 0; k < 2; k++) {
            cairn_event_clear(evs[k]);
            free(evs[k]);
        }
    }
    cairn_clog_close(l);
    size_t n;
    void *bytes = slurp(log_path, &n);
    if (seed_dir) {
        char *seed = cairn_sprintf("%s/seed-log", seed_dir);
        put(seed, bytes, (size_t)end);          /* the records; the zeros after are implied */
        free(seed);
    }
    free(bytes);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    snprintf(dir, sizeof dir, "/tmp/cairn-fuzz-clog-XXXXXX");
    if (mkdtemp(dir) == NULL) abort();
    snprintf(db, sizeof db, "%s/j.db", dir);
    snprintf(log_path, sizeof log_path, "%s-clog", db);
    const char *corpus = *argc > 1 && (*argv)[*argc - 1][0] != '-' ? (*argv)[*argc - 1] : NULL;
    make_journal(corpus);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[200];
    snprintf(path, sizeof path, "%s-wal", db);
    unlink(path);
    put(db, pristine, pristine_len);
    put(log_path, data, size);
    cairn_err err;
    cairn_clog *l = NULL;
    if (cairn_clog_open(db, "fuzz", false, &l, &err) == 0) {
        cairn_store *s = NULL;
        if (cairn_store_open_sqlite(db, CAIRN_SYNC_NORMAL, false, &s, &err) != 0) abort();
        cairn_clog_apply(l, s, CAIRN_CLOG_HEADER, cairn_clog_end(l), NULL, &err);
        cairn_store_close(s);
        cairn_clog_close(l);
    } else if (err.msg[0] == '\0') {
        abort();                              /* a refusal always says why */
    }
    return 0;
}
