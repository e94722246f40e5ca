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

/* Whether q came from another site's page, which a browser on this host
 * can be made to send (a form posted to http://127.0.0.1:8080/v1/..., or a
 * name of the attacker's rebound to 127.0.0.1): then 403 forbidden is
 * answered into r (true).
 *   - Origin, when sent, must name the host the request was sent to (its
 *     Host header): browsers send it with every POST, from a script or a
 *     form alike, and with every request a script makes across sites.
 *   - With no tokens file (loopback_only), Host, when sent, must name a
 *     loopback address or localhost: a page whose name was rebound to
 *     127.0.0.1 sends its own name, and would read and act as anyone here.
 * Clients that are not browsers send no Origin and are not affected. */
bool srv_console_foreign(const srv_req *q, bool loopback_only, srv_resp *r);

#endif
