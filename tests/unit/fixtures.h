/*
 * fixtures.h - journal events and definitions made by hand, for the tests
 * of the store and the commit log.
 */
#ifndef CAIRN_TEST_FIXTURES_H
#define CAIRN_TEST_FIXTURES_H

#include <stdint.h>

#include "common/tz.h"
#include "engine/event.h"
#include "engine/store.h"

/* A new event of run `run` (free with cairn_event_clear and free): step "a"
 * unless t is run_created, whose data names workflow "wf" of definition
 * "h1" unless data names others. */
cairn_event *fx_event(const char *run, int64_t seq, cairn_event_type t, const char *data);

/* run_created's data as fx_event stores it: data (an object) with
 * workflow "wf" and def_hash "h1" added where it names none, canonical.
 * Other bytes are kept as they are.  The caller frees it. */
char *fx_run_created_data(const char *data);

/* Store definition "h1" (workflow "wf") in s. */
void fx_put_def(cairn_store *s);

/* Free n events made by fx_event. */
void fx_free_events(cairn_event **evs, int n);

/* A PostgreSQL server of the test's own (tests/servers/pg.sh, whose
 * watchdog stops it when the test's process ends), with databases cairn0,
 * cairn1, ... up to databases - 1.  Its port and folder (data/, sock/). */
void fx_pg_start(int databases);
int fx_pg_port(void);
const char *fx_pg_dir(void);
/* Database i's URL for user (the caller's). */
char *fx_pg_url(int i, const char *user);
/* Run sql in database i (psql; the test fails if it does). */
void fx_psql(int i, const char *sql);
/* A store on database i, creating the journal (the caller's). */
cairn_store *fx_pg_open(int i);
/* The first line sql's answer prints in database i, the caller's. */
char *fx_pg_value(int i, const char *sql);
/* That line read as an integer. */
int64_t fx_pg_int(int i, const char *sql);

/* Seconds since the epoch of an RFC 3339 time (the test fails on a bad one). */
int64_t fx_at(const char *rfc3339);

/* The zone named name (the test fails when it does not load); the caller
 * frees it. */
cairn_tz *fx_zone(const char *name);

#endif
