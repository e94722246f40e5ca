/*
 * api.h - the routes of `cairn serve`: the JSON API under /v1 (docs/api.md,
 * schema/openapi.yaml), /metrics, /healthz and /readyz.
 *
 * With tokens, every route but /healthz and /readyz needs `Authorization:
 * Bearer TOKEN` (401 unauthorized without a known one): GET routes a
 * viewer's, POST routes an operator's (403 forbidden below it).  The
 * token's name is who starts a run and who decides an approval.
 * `POST /v1/hooks/{source}` takes no token: a webhook carries its
 * source's own credentials (hookroute.h).
 *
 * Every error is {"error": {"code", "message"}} with its status; a path
 * that names no route is 404 route_not_found, a route asked with another
 * method 405 method_not_allowed.  `GET /v1` lists the routes, which a test
 * holds to the OpenAPI file.
 *
 * Memory: the api borrows what its config names; they outlive it.
 */
#ifndef CAIRN_SERVER_API_H
#define CAIRN_SERVER_API_H

#include <stdbool.h>

#include "server/backend.h"
#include "server/hookroute.h"
#include "server/http.h"
#include "server/linkpage.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/tokens.h"

#define CAIRN_SERVE_PAGE_DEFAULT 50     /* runs or events a page */
#define CAIRN_SERVE_PAGE_MAX 1000
#define CAIRN_SERVE_KEEPALIVE_MS 15000  /* an event stream's comment line when nothing happens */
#define CAIRN_SERVE_STREAM_READ_MS 1000 /* an event stream reads the journal at least this often */
#define CAIRN_SERVE_ID_MAX 128          /* bytes of a workflow name or step id in a path */

typedef struct srv_api srv_api;

typedef struct srv_api_config {
    srv_backend *backend;
    srv_registry *registry;
    srv_metrics *metrics;
    srv_hooks *hooks;            /* POST /v1/hooks/{source}; NULL: 404 for every source */
    srv_links *links;            /* the approval link page (linkpage.h), or NULL */
} srv_api_config;

srv_api *srv_api_new(const srv_api_config *cfg);
void srv_api_free(srv_api *a);

/* Whether the server is ready: workflows loaded and unfinished runs
 * resumed (readyz answers 503 until then, and while it stops). */
void srv_api_set_ready(srv_api *a, bool ready);

/* Check requests against tokens (taken; the previous set is freed), or
 * none when NULL: then anyone who reaches the server may act (it listens
 * on loopback only).  Any thread, while requests are served (a reload). */
void srv_api_set_tokens(srv_api *a, cairn_tokens *tokens);

/* The http.h handler: ud is the srv_api. */
void srv_api_handle(void *ud, const srv_req *req, srv_resp *resp);

#endif
