/*
 * serve.h - `cairn serve`: the engine, the workflows of one directory and
 * the HTTP API in one process.
 *
 * Start: load every workflow in the directory (a bad file is reported and
 * skipped), take over every unfinished run, then listen.  SIGHUP loads the
 * directory again (registry.h).  SIGTERM or SIGINT: stop accepting
 * connections, drain as `cairn run` does (running attempts get the grace
 * period, CAIRN_GRACE_MS), and exit 0.
 *
 * Requests: the web console's files at `/` (console.h), the API (api.h)
 * for every other path; what another site's page sends through a browser
 * is refused first (srv_console_foreign).
 *
 * With no tokens file the server listens on loopback addresses only, and
 * says so on start; with one (server/tokens.h) requests need a token of it
 * (api.h), and SIGHUP reads it again.
 */
#ifndef CAIRN_SERVER_SERVE_H
#define CAIRN_SERVER_SERVE_H

#include <stdint.h>

#include "common/err.h"
#include "engine/store.h"
#include "server/place.h"

typedef struct srv_serve_opts {
    const char *listen;          /* "HOST:PORT" or "[V6]:PORT" */
    const char *workflows;       /* directory */
    const char *db_path;
    const char *tokens;          /* the tokens file, or NULL: loopback only */
    cairn_sync_mode sync;
    int64_t grace_ms;            /* 0: the engine's default */
    int64_t lease_ms;            /* 0: the journal's default (--lease-ms, journal.h) */
    srv_place_mode placement;    /* where new runs start (--placement, place.h) */
    const char *port_file;       /* NULL, or where to write the port bound (for --listen :0) */
    const char *public_url;      /* where clients reach the server, for approval links; NULL: none */
} srv_serve_opts;

/* Serve until SIGTERM or SIGINT.  0 after a clean drain; else an error in
 * err: CAIRN_EINVAL for bad options (the caller exits 2), others for the
 * journal or the network (exit 3). */
int srv_serve(const srv_serve_opts *o, cairn_err *err);

#endif
