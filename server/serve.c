/*
 * serve.c - `cairn serve` put together (serve.h): the backend's
 * orchestrator on the main thread, libmicrohttpd's threads for requests,
 * and one thread that takes the signals (sigwait), so that what a signal
 * starts (a reload, a drain) runs as ordinary code rather than in a handler.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/store_pg.h"
#include "server/api.h"
#include "server/backend.h"
#include "server/console.h"
#include "server/hookroute.h"
#include "server/http.h"
#include "server/local.h"
#include "server/metrics.h"
#include "server/registry.h"
#include "server/schedule.h"
#include "server/serve.h"

typedef struct server {
    const srv_serve_opts *o;
    srv_metrics *metrics;
    srv_backend *backend;
    srv_registry *registry;
    srv_hooks *hooks;
    srv_api *api;
    srv_links *links;
    srv_http *http;
    srv_local *local;
    srv_schedule *schedule;
    sigset_t signals;
    volatile int done;           /* the main thread is past the loop */
} server;

/* ---- glue between the parts ------------------------------------------------------- */

static void on_event(const cairn_event *ev, const cairn_run_state *st, void *ud) {
    srv_metrics_event(((server *)ud)->metrics, ev, st);
}

static void on_batch(int n, void *ud) { srv_metrics_batch(((server *)ud)->metrics, n); }

static int runs_held(void *ud) { return srv_backend_runs_held(((server *)ud)->backend); }

static void on_answered(void *ud, int status) {
    srv_metrics_request(((server *)ud)->metrics, status);
}

/* The console's assets at `/`, the API for every other path; what another
 * site's page sends through a browser, neither.  An approval link's page is
 * authorised by the link in its URL alone (linkpage.h), and its form is
 * posted with "Origin: null" (the page sends no referrer), or through a
 * proxy under another host: no Origin or Host rule applies to it. */
static void handle(void *ud, const srv_req *req, srv_resp *resp) {
    server *s = ud;
    if (!srv_links_route(srv_req_path(req)) && srv_console_foreign(req, s->o->tokens == NULL, resp))
        return;
    if (!srv_console_serve(req, resp)) srv_api_handle(s->api, req, resp);
}

static int add_workflow(void *ud, cairn_workflow *wf, char hash[65], cairn_err *err) {
    return srv_backend_add_workflow(((server *)ud)->backend, wf, hash, err);
}

static jv approval_links(const char *run_id, const char *step, jv approvers, int64_t expires_ms,
                         void *ud) {
    return srv_links_issue(((server *)ud)->links, run_id, step, approvers, expires_ms);
}

static void learn(void *ud, const cairn_workflow *wf) {
    srv_metrics_learn(((server *)ud)->metrics, wf);
    srv_hooks_learn(((server *)ud)->hooks, wf);
    srv_schedule_stage(((server *)ud)->schedule, wf);
}

static bool offered(void *ud, const char *name, const char *hash) {
    char now[65];
    return srv_registry_find(((server *)ud)->registry, name, now) && strcmp(now, hash) == 0;
}

/* The webhook triggers follow the workflows served. */
static void hooks_follow(server *s) {
    cairn_err err;
    if (srv_hooks_rebuild(s->hooks, offered, s, &err) != 0)
        fprintf(stderr, "cairn: webhook triggers: %s; the triggers before stay\n", err.msg);
}

static int sched_start(void *ud, const char *hash, jv inputs, jv trigger, const char *run_id,
                       cairn_err *err) {
    return srv_backend_start_as(((server *)ud)->backend, hash, inputs, trigger, run_id, err);
}

static bool sched_exists(void *ud, const char *run_id) {
    return srv_backend_run_exists(((server *)ud)->backend, run_id);
}

static bool sched_ready(void *ud) {
    cairn_err err;
    return srv_backend_healthy(((server *)ud)->backend, 1000, &err);
}

static void sched_count(void *ud, const char *workflow, const char *result) {
    srv_metrics_schedule(((server *)ud)->metrics, workflow, result);
}

/* Serve the schedules of the workflows the registry serves now. */
static void serve_schedules(server *s) {
    jv served = srv_registry_list(s->registry);
    int n = 0;
    srv_schedule_commit(s->schedule, served, &n);
    jv_free(served);
    fprintf(stderr, "cairn: %d schedule%s served\n", n, n == 1 ? "" : "s");
}

/* ---- options --------------------------------------------------------------------------- */

/* "HOST:PORT" or "[V6]:PORT" into host (at most len) and port. */
static int parse_listen(const char *listen, char *host, size_t len, int *port, cairn_err *err) {
    const char *colon = listen[0] == '[' ? strstr(listen, "]:") : strrchr(listen, ':');
    const char *start = listen[0] == '[' ? listen + 1 : listen;
    char *end = NULL;
    long p = colon ? strtol(colon + (listen[0] == '[' ? 2 : 1), &end, 10) : -1;
    if (colon == NULL || colon == start || end == NULL || *end != '\0' || p < 0 || p > 65535 ||
        (size_t)(colon - start) >= len)
        return cairn_err_set(err, CAIRN_EINVAL, "--listen %s: expected HOST:PORT", listen);
    snprintf(host, len, "%.*s", (int)(colon - start), start);
    *port = (int)p;
    return 0;
}

/* Without tokens checked, only this host may reach the server. */
static int check_identity(const srv_serve_opts *o, const char *host, cairn_err *err) {
    if (!o->tokens && !srv_http_loopback(host))
        return cairn_err_set(err, CAIRN_EINVAL, "--listen %s: not a loopback address; serving"
                             " beyond this host needs a tokens file (--tokens)", o->listen);
    return 0;
}

/* Load the tokens file into the api: at start (a failure stops the start)
 * and on SIGHUP (a failure keeps the tokens loaded before). */
static int load_tokens(server *s, cairn_err *err) {
    cairn_tokens *t = NULL;
    int rc = cairn_tokens_load(s->o->tokens, &t, err);
    if (rc == 0) {
        fprintf(stderr, "cairn: %d token%s from %s; requests need Authorization: Bearer\n",
                cairn_tokens_count(t), cairn_tokens_count(t) == 1 ? "" : "s", s->o->tokens);
        srv_api_set_tokens(s->api, t);
    }
    return rc;
}

/* ---- signals ------------------------------------------------------------------------------ */

static void reload(server *s) {
    int loaded, failed;
    cairn_err err;
    if (srv_registry_load(s->registry, stderr, &loaded, &failed, &err) != 0) {
        fprintf(stderr, "cairn: reload: %s; the workflows served are unchanged\n", err.msg);
        return;
    }
    hooks_follow(s);
    fprintf(stderr, "cairn: reloaded %s: %d workflow%s loaded, %d not\n", s->o->workflows, loaded,
            loaded == 1 ? "" : "s", failed);
    serve_schedules(s);
    if (s->o->tokens && load_tokens(s, &err) != 0)
        fprintf(stderr, "cairn: reload: %s; the tokens loaded before stay\n", err.msg);
}

static void *signal_thread(void *arg) {
    server *s = arg;
    for (;;) {
        int sig;
        if (sigwait(&s->signals, &sig) != 0 || s->done) break;
        if (sig == SIGHUP) {
            reload(s);
        } else if (sig == SIGUSR1) {
            srv_backend_wake(s->backend);
        } else {
            fprintf(stderr, "cairn: stopping: no new requests; running steps get the grace"
                            " period\n");
            srv_api_set_ready(s->api, false);
            srv_http_quiesce(s->http);
            srv_backend_stop(s->backend);
            break;
        }
    }
    return NULL;
}

/* ---- starting, serving, stopping ----------------------------------------------------------- */

static int start(server *s, const char *host, int port, cairn_err *err) {
    const srv_serve_opts *o = s->o;
    srv_backend_config bc = {.db_path = o->db_path, .sync = o->sync, .grace_ms = o->grace_ms,
                            .lease_ms = o->lease_ms, .placement = o->placement,
                             .on_event = on_event, .on_batch = on_batch,
                             .approval_links = approval_links, .ud = s};
    int rc = srv_backend_open(&bc, &s->backend, err), loaded = 0, failed = 0, taken = 0;
    if (rc == 0) rc = srv_links_new(s->backend, o->public_url, &s->links, err);
    if (rc) return rc;
    srv_metrics_active_from(s->metrics, runs_held, s);
    if (cairn_pg_url(o->db_path))
        fprintf(stderr, o->placement == SRV_PLACE_SPREAD
                            ? "cairn: new runs are spread over the live nodes (--placement spread)\n"
                            : "cairn: new runs start on this node (--placement local)\n");
    srv_hooks_config hk = {.backend = s->backend, .metrics = s->metrics, .db_path = o->db_path};
    s->hooks = srv_hooks_new(&hk);
    fprintf(stderr, o->public_url ? "cairn: approval links point to %s\n"
                                  : "cairn: no --public-url: approvals get no links%s\n",
            o->public_url ? o->public_url : "");
    srv_schedule_config sc = {.db_path = o->db_path, .start = sched_start, .exists = sched_exists,
                              .ready = sched_ready, .count = sched_count, .log = stderr, .ud = s};
    if ((rc = srv_schedule_new(&sc, &s->schedule, err)) != 0) return rc;
    s->registry = srv_registry_new(o->workflows, add_workflow, learn, s);
    if ((rc = srv_registry_load(s->registry, stderr, &loaded, &failed, err)) != 0) return rc;
    hooks_follow(s);
    fprintf(stderr, "cairn: serving %d workflow%s from %s (%d not loaded)\n", loaded,
            loaded == 1 ? "" : "s", o->workflows, failed);
    serve_schedules(s);
    if ((rc = srv_backend_resume(s->backend, &taken, err)) != 0) return rc;
    fprintf(stderr, "cairn: resumed %d unfinished run%s\n", taken, taken == 1 ? "" : "s");
    srv_api_config ac = {.backend = s->backend, .registry = s->registry, .metrics = s->metrics,
                         .hooks = s->hooks, .links = s->links};
    s->api = srv_api_new(&ac);
    if (o->tokens && (rc = load_tokens(s, err)) != 0) return rc;
    srv_http_config hc = {.host = host, .port = port, .handler = handle, .ud = s,
                          .answered = on_answered, .answered_ud = s};
    int bound = 0;
    if ((rc = srv_http_start(&hc, &s->http, &bound, err)) != 0) return rc;
    fprintf(stderr, "cairn: listening on http://%s%s%s:%d/%s\n", strchr(host, ':') ? "[" : "",
            host, strchr(host, ':') ? "]" : "", bound,
            o->tokens ? "" : " (no tokens file: loopback only)");
    cairn_err lerr;
    if (srv_local_start(o->db_path, s->backend, s->hooks, &s->local, &lerr) == 0) {
        fprintf(stderr, "cairn: `cairn run` on this journal hands its runs to this server\n");
    }
    else
        fprintf(stderr, "cairn: `cairn run` on this journal runs its own engine: %s\n", lerr.msg);
    if ((rc = srv_schedule_start(s->schedule, err)) != 0) return rc;
    if (o->port_file) {
        FILE *f = fopen(o->port_file, "w");
        if (f == NULL) return cairn_err_set(err, CAIRN_EIO, "--port-file %s: cannot write", o->port_file);
        fprintf(f, "%d\n", bound);
        fclose(f);
    }
    return 0;
}

int srv_serve(const srv_serve_opts *o, cairn_err *err) {
    char host[256];
    int port = 0;
    int rc = parse_listen(o->listen, host, sizeof host, &port, err);
    if (rc == 0) rc = check_identity(o, host, err);
    if (rc == 0 && o->public_url) rc = srv_links_check_url(o->public_url, err);
    if (rc) return rc;
    server s = {.o = o};
    /* every thread made from here on inherits the mask: signals reach
     * only sigwait */
    sigemptyset(&s.signals);
    sigaddset(&s.signals, SIGTERM);
    sigaddset(&s.signals, SIGINT);
    sigaddset(&s.signals, SIGHUP);
    sigaddset(&s.signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s.signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    s.metrics = srv_metrics_new();
    pthread_t sig_thread;
    bool sig_started = false;
    rc = start(&s, host, port, err);
    if (rc == 0) {
        sig_started = pthread_create(&sig_thread, NULL, signal_thread, &s) == 0;
        srv_api_set_ready(s.api, true);
        rc = srv_backend_run(s.backend, err);
        srv_api_set_ready(s.api, false);
    }
    s.done = 1;
    if (sig_started) {
        pthread_kill(sig_thread, SIGTERM);   /* gone already after a SIGTERM; else ends it */
        pthread_join(sig_thread, NULL);
    }
    srv_schedule_free(s.schedule);
    srv_local_stop(s.local);
    srv_http_stop(s.http);
    srv_api_free(s.api);
    srv_registry_free(s.registry);
    srv_hooks_free(s.hooks);
    srv_backend_close(s.backend);
    srv_links_free(s.links);
    srv_metrics_free(s.metrics);
    if (rc == 0) fprintf(stderr, "cairn: stopped\n");
    return rc;
}
