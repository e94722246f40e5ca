/*
 * store_pg.h - the journal in PostgreSQL (store.h's method table over libpq).
 *
 * The schema is schema/journal_pg.sql, compiled in, created by Cairn in a
 * database schema that holds no table yet and recognised by its table
 * cairn_journal (app 'cairn', a version).  A database that holds other
 * tables, or another version, is refused and not modified.  Every append is
 * one transaction, durable when it commits (synchronous_commit on;
 * CAIRN_SYNC_NORMAL turns it off for the session).  Errors name the
 * database as cairn_pg_name gives it: never with its password.
 */
#ifndef CAIRN_STORE_PG_H
#define CAIRN_STORE_PG_H

#include <stdbool.h>

#include "engine/store.h"

#define CAIRN_PG_SCHEMA_VERSION 1
/* Seconds to wait for the server when connecting (libpq's connect_timeout). */
#define CAIRN_PG_CONNECT_TIMEOUT_S 10
/* The channel a command's NOTIFY goes to (LISTEN on the engine's reader). */
#define CAIRN_PG_CHANNEL "cairn_journal"

typedef enum {
    CAIRN_PG_READ,        /* a Cairn journal or CAIRN_ENOTFOUND; creates nothing */
    CAIRN_PG_CREATE,      /* the schema is created when the database has no table */
    CAIRN_PG_LISTEN       /* as CREATE, and LISTEN: data_version counts notifications */
} cairn_pg_mode;

/* Whether where names a PostgreSQL database (postgres:// or postgresql://). */
bool cairn_pg_url(const char *where);

/* url as errors name it: a password (user:PASSWORD@ or password=...) is
 * replaced by "***".  The caller's (free()). */
char *cairn_pg_name(const char *url);

/* Open a connection to the journal at url (a libpq URI). */
int cairn_store_open_pg(const char *url, cairn_pg_mode mode, cairn_sync_mode sync,
                        cairn_store **out, cairn_err *err);

#endif
