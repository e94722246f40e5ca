/*
 * console.h - the web console of `cairn serve`: the HTML, CSS and
 * JavaScript of server/console/, compiled into the binary (the Makefile
 * makes build/gen/console_assets.c from them) and served at `/`.
 *
 * The console is static: every datum it shows it reads from the /v1 API in
 * the browser, with the token the user gives it, so its files need no
 * token and carry nothing of any run.  Each answer carries a strict
 * Content-Security-Policy (scripts, styles, images and connections from
 * this origin only, no framing), X-Content-Type-Options: nosniff, and the
 * asset's ETag (a hash of its bytes, made at build time): a request whose
 * If-None-Match names it is answered 304.  Only GET and HEAD of an
 * asset's own path are the console's; every other path is the API's (an
 * unknown one is its 404, never the index), so `/v1/...` routes always win.
 */
#ifndef CAIRN_SERVER_CONSOLE_H
#define CAIRN_SERVER_CONSOLE_H

#include <stdbool.h>

#include "server/http.h"

/* One compiled asset: its path ("/app.js"; "/index.html" is also "/"),
 * its ETag (quoted) and its bytes (NUL-terminated text).  The table
 * srv_console_assets ends with a NULL path. */
typedef struct srv_console_asset {
    const char *path;
    const char *etag;
    const char *data;
} srv_console_asset;

extern const srv_console_asset srv_console_assets[];

/* Answer q into r when it asks for an asset (true); false leaves r alone
 * for the API. */
bool srv_console_serve(const srv_req *q, srv_resp *r);

#endif
