/*
 * engine_harness.h - running real workflows through an engine in a unit
 * test, on a journal in the test's temporary directory, and reading back
 * what it journaled.
 *
 * Memory: strings and jv values returned belong to the caller; a harness is
 * zeroed by the test ({0}) and freed with free_h.  Failures end the test.
 */
#ifndef CAIRN_TEST_ENGINE_HARNESS_H
#define CAIRN_TEST_ENGINE_HARNESS_H

#include <jv.h>
#include <pthread.h>
#include <stdbool.h>

#include "common/mem.h"
#include "engine/engine.h"
#include "engine/event.h"

typedef struct {
    cairn_engine *e;
    char *db;
    char hash[65];
    cairn_buf trace;   /* "type:step " for every durable event */
    bool edited;       /* the test edited the journal behind the engine: no replay */
} harness;

/* Open the journal at db as an engine does, then an engine on it (cfg's
 * journal is set here).  0, or the code of whichever failed. */
int engine_open_at(const char *db, cairn_engine_config *cfg, cairn_engine **e, cairn_err *err);
/* Open h->e on h->db (default: j.db in the test's directory), tracing every
 * durable event into h->trace; pool_only runs every action on the pool. */
void open_engine(harness *h, bool pool_only);
/* Load a workflow from YAML text and give it to the engine (h->hash). */
void add(harness *h, const char *src);
/* Start a run of the workflow added last (run_id: CAIRN_RUN_ID_MAX bytes). */
void start(harness *h, const char *inputs_json, char *run_id);
/* Run the engine until it has nothing left to do. */
void drive(harness *h);
/* The run as `show --json` gives it, read back from the journal. */
jv show(harness *h, const char *run_id);
/* The value at a dotted path ("steps.a.status") as text: strings raw, the
 * rest as JSON, null when absent. */
char *get(jv v, const char *jq_path);
/* start, drive, show. */
jv run_to_end(harness *h, const char *inputs_json, char *run_id);
void close_h(harness *h);
/* Close and free; with CAIRN_TEST_REPLAY set, every run of h->db must
 * first replay consistent (engine/replay.h), unless h->edited. */
void free_h(harness *h);

#define CHECK_AT(v, path, want)            \
    do {                                   \
        char *got_ = get((v), (path));     \
        CHECK_STR(got_, (want));           \
        free(got_);                        \
    } while (0)

/* Lines of the file at path that start with prefix (0 when it is absent). */
int count_lines(const char *path, const char *prefix);
/* A run's events as the journal holds them (free with cairn_events_free). */
cairn_event *journal_of(harness *h, const char *run_id, int *n);
/* The run's events as a JSON array of {type, time, attempt, data}. */
jv events_of(harness *h, const char *run_id);
/* How many of events (borrowed) are of type. */
int count_type(jv events, const char *type);
/* Data field `key` (a number; "time": the event's time) of the k-th event
 * of `type` (events borrowed), -1 when absent. */
double event_number(jv events, const char *type, int k, const char *key);

/* Run the engine (cairn_engine_run) on a new thread, so the test can act
 * while it runs (decide, create files) and wait for what it journals. */
void drive_in_thread(harness *h, pthread_t *thread);
/* Join that thread once the engine has nothing left to do (or was asked to
 * stop); fails the test if it returned an error. */
void join_drive(pthread_t thread);
/* Wait until the engine has traced `event` ("type:step", e.g.
 * "step_succeeded:b") count times in all, at most HARNESS_WAIT_S seconds:
 * past that the test fails, printing the trace. */
#define HARNESS_WAIT_S 30
void wait_trace(harness *h, const char *event, int count);

#endif
