/*
 * api.c - the routes (api.h): a table of method, path pattern and handler;
 * `{name}` in a pattern takes one path segment, checked against the
 * characters its kind allows before any handler sees it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "server/api.h"

#define MAX_PARAMS 2

struct srv_api {
    srv_api_config cfg;
    atomic_bool ready;
    pthread_mutex_t mu;          /* tokens */
    cairn_tokens *tokens;        /* NULL: loopback mode, no tokens checked */
};

typedef struct params {
    const char *v[MAX_PARAMS];
    char buf[2][CAIRN_SERVE_ID_MAX + 1];
    const char *who;             /* the token's name, or NULL with no tokens */
    cairn_role role;             /* the token's role, when who is set */
    char who_buf[CAIRN_TOKEN_NAME_MAX + 1];
    char groups[CAIRN_TOKEN_GROUPS_MAX][CAIRN_TOKEN_NAME_MAX + 1];   /* the token's */
    int n_groups;
} params;

typedef void (*handler_fn)(srv_api *a, const srv_req *q, const params *p, srv_resp *r);

enum { OPEN = -1 };   /* a route anyone may ask (health probes) */

typedef struct route {
    const char *method, *pattern;
    handler_fn fn;
    int need;                    /* the role it needs (cairn_role), or OPEN */
} route;

srv_api *srv_api_new(const srv_api_config *cfg) {
    srv_api *a = cairn_calloc(1, sizeof *a);
    a->cfg = *cfg;
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

void srv_api_free(srv_api *a) {
    if (a == NULL) return;
    cairn_tokens_free(a->tokens);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

void srv_api_set_tokens(srv_api *a, cairn_tokens *tokens) {
    pthread_mutex_lock(&a->mu);
    cairn_tokens *old = a->tokens;
    a->tokens = tokens;
    pthread_mutex_unlock(&a->mu);
    cairn_tokens_free(old);
}

/* With tokens: the bearer's name into p->who, or answered (false). */
static bool authorised(srv_api *a, const srv_req *q, const route *rt, params *p, srv_resp *r) {
    pthread_mutex_lock(&a->mu);
    bool checked = a->tokens != NULL && rt->need != OPEN;
    const cairn_token *t = NULL;
    if (checked) {
        const char *h = srv_req_header(q, "Authorization");
        if (h && strncasecmp(h, "Bearer ", 7) == 0) t = cairn_tokens_lookup(a->tokens, h + 7);
        if (t) snprintf(p->who_buf, sizeof p->who_buf, "%s", t->name);
        for (int g = 0; t && g < t->n_groups && g < CAIRN_TOKEN_GROUPS_MAX; g++)
            snprintf(p->groups[p->n_groups++], sizeof p->groups[0], "%s", t->groups[g]);
    }
    bool allowed = t && cairn_role_allows(t->role, (cairn_role)rt->need);
    const char *role = t ? cairn_role_name(t->role) : "";
    pthread_mutex_unlock(&a->mu);
    if (!checked) return true;
    if (t) p->role = t->role;
    if (t == NULL) {
        srv_resp_error(r, 401, "unauthorized", "this needs Authorization: Bearer TOKEN, a token"
                       " of the server's tokens file");
        r->challenge = "Bearer";
    } else if (!allowed) {
        srv_resp_error(r, 403, "forbidden", "%s is a %s; %s %s needs a %s", p->who_buf, role,
                       rt->method, rt->pattern, cairn_role_name((cairn_role)rt->need));
    } else {
        p->who = p->who_buf;
    }
    return p->who != NULL;
}

void srv_api_set_ready(srv_api *a, bool ready) { atomic_store(&a->ready, ready); }

/* ---- shared ------------------------------------------------------------------- */

/* An engine or journal error as its status and code. */
static void fail(srv_resp *r, const cairn_err *e) {
    static const struct { int code, status; const char *name; } map[] = {
        {CAIRN_ENOTFOUND, 404, "not_found"},   {CAIRN_EINVAL, 422, "invalid"},
        {CAIRN_ETYPE, 422, "invalid"},         {CAIRN_ESYNTAX, 422, "invalid"},
        {CAIRN_ELIMIT, 422, "invalid"},        {CAIRN_EEXPR, 422, "invalid"},
        {CAIRN_ESTATE, 409, "conflict"},       {CAIRN_EEXISTS, 409, "conflict"},
        {CAIRN_EBUSY, 409, "conflict"},        {CAIRN_EAUTH, 403, "forbidden"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].code == e->code) {
            srv_resp_error(r, map[i].status, map[i].name, "%s", e->msg);
            return;
        }
    srv_resp_error(r, 500, "journal", "%s", e->msg);
}

/* The body as a JSON object, or answered (false).  An empty body is {}. */
static bool body_object(const srv_req *q, srv_resp *r, jv *out) {
    size_t len;
    const char *body = srv_req_body(q, &len);
    const char *type = srv_req_header(q, "Content-Type");
    if (len == 0) {
        *out = jv_object();
        return true;
    }
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
        srv_resp_error(r, 415, "unsupported_media_type", "the body must be application/json, not %s",
                       type ? type : "unnamed");
        return false;
    }
    jv v = cairn_json_parse(body, len);
    if (!jv_is_valid(v)) {
        jv msg = jv_invalid_get_msg(v);
        srv_resp_error(r, 400, "invalid_json", "the body is not JSON: %s",
                       jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "?");
        jv_free(msg);
        return false;
    }
    if (jv_get_kind(v) != JV_KIND_OBJECT) {
        jv_free(v);
        srv_resp_error(r, 400, "invalid_json", "the body must be a JSON object");
        return false;
    }
    *out = v;
    return true;
}

/* A query parameter as a number in [lo, hi]; dflt when absent; false when
 * answered. */
static bool query_int(const srv_req *q, srv_resp *r, const char *name, long long lo, long long hi,
                      long long dflt, long long *out) {
    const char *v = srv_req_query(q, name);
    *out = dflt;
    if (v == NULL) return true;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
        srv_resp_error(r, 400, "invalid_parameter", "%s must be a whole number from %lld to %lld",
                       name, lo, hi);
        return false;
    }
    *out = n;
    return true;
}

/* ---- health, metrics, the route list ------------------------------------------- */

static void h_healthz(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)q;
    (void)p;
    cairn_err err;
    if (!srv_backend_healthy(a->cfg.backend, 1000, &err)) {
        srv_resp_error(r, 503, "unhealthy", "%s", err.msg);
        return;
    }
    srv_resp_json(r, 200, jv_object_set(jv_object(), jv_string("status"), jv_string("ok")));
}

static void h_readyz(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)q;
    (void)p;
    if (!atomic_load(&a->ready)) {
        srv_resp_error(r, 503, "not_ready", "the server is starting or stopping");
        return;
    }
    srv_resp_json(r, 200, jv_object_set(jv_object(), jv_string("status"), jv_string("ready")));
}

static void h_metrics(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)q;
    (void)p;
    cairn_buf out = {0};
    srv_metrics_write(a->cfg.metrics, &out);
    r->status = 200;
    r->len = out.len;
    r->body = cairn_buf_detach(&out);
    r->type = "text/plain; version=0.0.4";
}

static void h_index(srv_api *a, const srv_req *q, const params *p, srv_resp *r);

/* ---- workflows and runs ------------------------------------------------------------ */

static void h_workflows(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)q;
    (void)p;
    srv_resp_json(r, 200, jv_object_set(jv_object(), jv_string("workflows"),
                                        srv_registry_list(a->cfg.registry)));
}

/* What an Idempotency-Key is compared with: the workflow and the body. */
static void request_hash(const char *name, const srv_req *q, char out[65]) {
    size_t len;
    const char *body = srv_req_body(q, &len);
    cairn_buf b = {0};
    cairn_buf_puts(&b, name);
    cairn_buf_putc(&b, '\n');
    cairn_buf_append(&b, body, len);
    cairn_workflow_hash(b.data, b.len, out);
    cairn_buf_free(&b);
}

static bool idem_key_ok(const char *key) {
    size_t n = strlen(key);
    if (n == 0 || n > CAIRN_IDEMPOTENCY_KEY_MAX) return false;
    for (const char *c = key; *c; c++)
        if (*c < 0x21 || *c > 0x7e) return false;   /* visible ASCII */
    return true;
}

static void h_start(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    char hash[65], run_id[CAIRN_RUN_ID_MAX], req[65];
    const char *key = srv_req_header(q, "Idempotency-Key");
    jv body;
    if (key && !idem_key_ok(key)) {
        srv_resp_error(r, 400, "invalid_idempotency_key", "an Idempotency-Key is 1 to %d visible"
                       " ASCII characters", CAIRN_IDEMPOTENCY_KEY_MAX);
        return;
    }
    if (!body_object(q, r, &body)) return;
    if (!srv_registry_find(a->cfg.registry, p->v[0], hash)) {
        jv_free(body);
        srv_resp_error(r, 404, "unknown_workflow", "no workflow '%s' is served", p->v[0]);
        return;
    }
    jv inputs = jv_object_get(jv_copy(body), jv_string("inputs"));
    jv_free(body);
    if (jv_get_kind(inputs) == JV_KIND_NULL || !jv_is_valid(inputs)) {
        jv_free(inputs);
        inputs = jv_object();
    }
    if (jv_get_kind(inputs) != JV_KIND_OBJECT) {
        jv_free(inputs);
        srv_resp_error(r, 422, "invalid", "inputs must be an object");
        return;
    }
    jv trigger = jv_object_set(jv_object(), jv_string("source"), jv_string("api"));
    trigger = jv_object_set(trigger, jv_string("client"), jv_string(srv_req_client(q)));
    if (p->who) trigger = jv_object_set(trigger, jv_string("user"), jv_string(p->who));
    if (key) trigger = jv_object_set(trigger, jv_string("idempotency_key"), jv_string(key));
    request_hash(p->v[0], q, req);
    bool existed;
    cairn_err err;
    if (srv_backend_start(a->cfg.backend, hash, inputs, trigger, key, req, run_id, &existed,
                          &err) != 0) {
        if (err.code == CAIRN_EEXISTS) srv_resp_error(r, 422, "idempotency_key_reused", "%s", err.msg);
        else fail(r, &err);
        return;
    }
    jv o = jv_object_set(jv_object(), jv_string("id"), jv_string(run_id));
    o = jv_object_set(o, jv_string("workflow"), jv_string(p->v[0]));
    o = jv_object_set(o, jv_string("existed"), jv_bool(existed));
    snprintf(r->location, sizeof r->location, "/v1/runs/%s", run_id);
    srv_resp_json(r, existed ? 200 : 201, o);
}

static const char *const run_statuses[] = {"running", "waiting", "succeeded", "failed",
                                           "compensating", "cancelled"};

static bool statuses_ok(const char *list) {
    const char *s = list;
    while (*s) {
        size_t n = strcspn(s, ",");
        bool known = false;
        for (size_t i = 0; i < sizeof run_statuses / sizeof run_statuses[0]; i++)
            known |= strlen(run_statuses[i]) == n && strncmp(run_statuses[i], s, n) == 0;
        if (!known) return false;
        s += n + (s[n] == ',');
    }
    return true;
}

static void h_runs(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)p;
    long long limit;
    const char *status = srv_req_query(q, "status"), *workflow = srv_req_query(q, "workflow");
    const char *cursor = srv_req_query(q, "cursor");
    if (!query_int(q, r, "limit", 1, CAIRN_SERVE_PAGE_MAX, CAIRN_SERVE_PAGE_DEFAULT, &limit)) return;
    if (status && !statuses_ok(status)) {
        srv_resp_error(r, 400, "invalid_parameter", "status is a comma list of: running, waiting,"
                       " succeeded, failed, compensating, cancelled");
        return;
    }
    jv runs;
    char next[CAIRN_SERVE_CURSOR_LEN];
    cairn_err err;
    if (srv_backend_list_runs(a->cfg.backend, status, workflow, cursor, (int)limit, &runs, next,
                              &err) != 0) {
        if (err.code == CAIRN_EINVAL) srv_resp_error(r, 400, "invalid_parameter", "%s", err.msg);
        else fail(r, &err);
        return;
    }
    jv o = jv_object_set(jv_object(), jv_string("runs"), runs);
    srv_resp_json(r, 200, jv_object_set(o, jv_string("next_cursor"),
                                        next[0] ? jv_string(next) : jv_null()));
}

static void h_run(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)q;
    jv run;
    cairn_err err;
    if (srv_backend_get_run(a->cfg.backend, p->v[0], &run, &err) != 0) fail(r, &err);
    else srv_resp_json(r, 200, run);
}

static void h_graph(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)q;
    jv graph;
    cairn_err err;
    if (srv_backend_graph(a->cfg.backend, p->v[0], &graph, &err) != 0) fail(r, &err);
    else srv_resp_json(r, 200, graph);
}

/* Who the caller is: the token's name and role, or, with no tokens file,
 * null for both (anyone here may act, naming who decides). */
static void h_me(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)a;
    (void)q;
    jv o = jv_object_set(jv_object(), jv_string("tokens"), jv_bool(p->who != NULL));
    o = jv_object_set(o, jv_string("name"), p->who ? jv_string(p->who) : jv_null());
    srv_resp_json(r, 200, jv_object_set(o, jv_string("role"), p->who ? jv_string(cairn_role_name(p->role))
                                                                      : jv_null()));
}

/* ---- events, and their stream ------------------------------------------------------- */

typedef struct stream {
    srv_api *api;
    srv_follow *follow;
    int64_t after;
    cairn_buf out;
    size_t sent;
    bool ended;
} stream;

/* Format events as Server-Sent Events into s->out; their seq is the id. */
static void sse_events(stream *s, jv events) {
    jv_array_foreach(events, i, ev) {
        jv seq = jv_object_get(jv_copy(ev), jv_string("seq"));
        jv type = jv_object_get(jv_copy(ev), jv_string("type"));
        s->after = (int64_t)jv_number_value(seq);
        char *text = cairn_json_text(ev);
        cairn_buf_printf(&s->out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)s->after,
                         jv_string_value(type), text);
        free(text);
        jv_free(seq);
        jv_free(type);
        jv_free(ev);
    }
    jv_free(events);
}

/* The stream's next bytes: events as the backend pushes them, or a
 * keepalive comment after CAIRN_SERVE_KEEPALIVE_MS of quiet. */
static ssize_t stream_next(void *cls, char *buf, size_t max) {
    stream *s = cls;
    if (s->sent == s->out.len) {
        cairn_buf_reset(&s->out);
        s->sent = 0;
        if (s->ended) return -1;
        srv_followed got[64];
        int k = srv_backend_follow_next(s->api->cfg.backend, s->follow, s->after, got, 64,
                                        CAIRN_SERVE_KEEPALIVE_MS);
        if (k < 0) return -1;
        if (k == 0) cairn_buf_puts(&s->out, ": keepalive\n\n");
        for (int i = 0; i < k; i++) {
            cairn_buf_printf(&s->out, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)got[i].seq,
                             got[i].type, got[i].text);
            s->after = got[i].seq;
            s->ended |= got[i].ends;
            free(got[i].text);
        }
    }
    size_t n = s->out.len - s->sent < max ? s->out.len - s->sent : max;
    memcpy(buf, s->out.data + s->sent, n);
    s->sent += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream *s = cls;
    srv_metrics_streams(s->api->cfg.metrics, -1);
    srv_backend_unfollow(s->api->cfg.backend, s->follow);
    cairn_buf_free(&s->out);
    free(s);
}

static void h_events(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    long long after, limit, follow;
    if (!query_int(q, r, "after", 0, INT64_MAX, 0, &after) ||
        !query_int(q, r, "limit", 1, CAIRN_SERVE_PAGE_MAX, CAIRN_SERVE_PAGE_MAX, &limit) ||
        !query_int(q, r, "follow", 0, 1, 0, &follow))
        return;
    const char *last = srv_req_header(q, "Last-Event-ID");
    if (last) {
        char *end;
        after = strtoll(last, &end, 10);
        if (*last == '\0' || *end != '\0' || after < 0) {
            srv_resp_error(r, 400, "invalid_parameter", "Last-Event-ID must be an event's seq");
            return;
        }
    }
    jv events;
    bool ended;
    cairn_err err;
    if (srv_backend_events(a->cfg.backend, p->v[0], after, (int)limit, &events, &ended, &err) != 0) {
        fail(r, &err);
        return;
    }
    if (!follow) {
        jv o = jv_object_set(jv_object(), jv_string("events"), events);
        srv_resp_json(r, 200, jv_object_set(o, jv_string("ended"), jv_bool(ended)));
        return;
    }
    stream *s = cairn_calloc(1, sizeof *s);
    s->api = a;
    s->follow = srv_backend_follow(a->cfg.backend, p->v[0]);
    s->after = after;
    s->ended = ended;
    sse_events(s, events);
    srv_metrics_streams(a->cfg.metrics, 1);
    r->status = 200;
    r->stream = stream_next;
    r->stream_cls = s;
    r->stream_free = stream_free;
}

/* ---- commands ------------------------------------------------------------------------ */

static void command(srv_api *a, const char *run_id, const char *type, const char *data,
                    srv_resp *r) {
    bool recorded;
    cairn_err err;
    if (srv_backend_stopping(a->cfg.backend)) {
        srv_resp_error(r, 503, "stopping", "the server is stopping");
        return;
    }
    if (srv_backend_command(a->cfg.backend, run_id, type, data, &recorded, &err) != 0) {
        fail(r, &err);
        return;
    }
    jv o = jv_object_set(jv_object(), jv_string("id"), jv_string(run_id));
    o = jv_object_set(o, jv_string("command"), jv_string(type));
    o = jv_object_set(o, jv_string("state"), jv_string(recorded ? "recorded" : "done"));
    srv_resp_json(r, recorded ? 202 : 200, o);
}

/* cancel, pause, unpause: no body needed; one given must still be JSON. */
static void simple_command(srv_api *a, const srv_req *q, const params *p, srv_resp *r,
                           const char *type) {
    jv body;
    if (!body_object(q, r, &body)) return;
    jv_free(body);
    command(a, p->v[0], type, "{}", r);
}

static void h_cancel(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    simple_command(a, q, p, r, "cancel");
}
static void h_pause(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    simple_command(a, q, p, r, "pause");
}
static void h_unpause(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    simple_command(a, q, p, r, "unpause");
}

static void h_approvals(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)q;
    (void)p;
    jv list;
    cairn_err err;
    if (srv_backend_approvals(a->cfg.backend, &list, &err) != 0) fail(r, &err);
    else srv_resp_json(r, 200, jv_object_set(jv_object(), jv_string("approvals"), list));
}

/* {"decision": "approve"|"reject", "comment"?, "by"}: with no tokens file
 * the caller names who decides, as `cairn approve --as` does; with tokens
 * it is the token's name ("by", if given, must be it), and the token's
 * groups go with the decision for `group:NAME` approvers. */
static void h_decide(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    jv body;
    if (!body_object(q, r, &body)) return;
    jv decision = jv_object_get(jv_copy(body), jv_string("decision"));
    jv by = jv_object_get(jv_copy(body), jv_string("by"));
    if (p->who && jv_get_kind(by) == JV_KIND_STRING && strcmp(jv_string_value(by), p->who) != 0) {
        jv_free(decision);
        jv_free(by);
        jv_free(body);
        srv_resp_error(r, 403, "forbidden", "a token decides as its own name (%s)", p->who);
        return;
    }
    if (p->who) {
        jv_free(by);
        by = jv_string(p->who);
    }
    jv comment = jv_object_get(jv_copy(body), jv_string("comment"));
    jv_free(body);
    bool ok_decision = jv_get_kind(decision) == JV_KIND_STRING &&
                       (strcmp(jv_string_value(decision), "approve") == 0 ||
                        strcmp(jv_string_value(decision), "reject") == 0);
    if (!ok_decision) {
        srv_resp_error(r, 422, "invalid", "decision must be \"approve\" or \"reject\"");
    } else if (jv_get_kind(by) != JV_KIND_STRING || jv_string_length_bytes(jv_copy(by)) == 0) {
        srv_resp_error(r, 422, "invalid", "by must name who decides");
    } else if (jv_get_kind(comment) != JV_KIND_STRING && jv_get_kind(comment) != JV_KIND_NULL &&
               jv_is_valid(comment)) {
        srv_resp_error(r, 422, "invalid", "comment must be a string");
    } else {
        jv d = jv_object_set(jv_object(), jv_string("step"), jv_string(p->v[1]));
        d = jv_object_set(d, jv_string("by"), jv_copy(by));
        d = jv_object_set(d, jv_string("decision"), jv_copy(decision));
        if (jv_get_kind(comment) == JV_KIND_STRING) d = jv_object_set(d, jv_string("comment"), jv_copy(comment));
        jv groups = jv_array();
        for (int g = 0; g < p->n_groups; g++) groups = jv_array_append(groups, jv_string(p->groups[g]));
        d = jv_object_set(d, jv_string("groups"), groups);
        d = jv_object_set(d, jv_string("via"), jv_string("api"));
        char *data = cairn_json_text(d);
        jv_free(d);
        command(a, p->v[0], "decide", data, r);
        free(data);
    }
    jv_free(decision);
    jv_free(by);
    jv_free(comment);
}

/* ---- webhooks ---------------------------------------------------------------------------- */

/* A webhook: the source's own credentials, not a token (hookroute.h). */
static void h_hook(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    pthread_mutex_lock(&a->mu);
    bool open = a->tokens == NULL;
    pthread_mutex_unlock(&a->mu);
    if (a->cfg.hooks) srv_hooks_handle(a->cfg.hooks, q, p->v[0], open, r);
    else srv_resp_error(r, 404, "unknown_source", "this server takes no webhooks");
}

/* ---- routing ---------------------------------------------------------------------------- */

#define VIEWER CAIRN_ROLE_VIEWER
#define OPERATOR CAIRN_ROLE_OPERATOR
static const route routes[] = {
    {"GET", "/healthz", h_healthz, OPEN},
    {"GET", "/readyz", h_readyz, OPEN},
    {"GET", "/metrics", h_metrics, VIEWER},
    {"GET", "/v1", h_index, VIEWER},
    {"GET", "/v1/workflows", h_workflows, VIEWER},
    {"POST", "/v1/workflows/{name}/runs", h_start, OPERATOR},
    {"GET", "/v1/runs", h_runs, VIEWER},
    {"GET", "/v1/runs/{id}", h_run, VIEWER},
    {"GET", "/v1/runs/{id}/events", h_events, VIEWER},
    {"POST", "/v1/runs/{id}/cancel", h_cancel, OPERATOR},
    {"POST", "/v1/runs/{id}/pause", h_pause, OPERATOR},
    {"POST", "/v1/runs/{id}/unpause", h_unpause, OPERATOR},
    {"GET", "/v1/approvals", h_approvals, VIEWER},
    {"GET", "/v1/me", h_me, VIEWER},
    {"GET", "/v1/runs/{id}/graph", h_graph, VIEWER},
    {"POST", "/v1/runs/{id}/steps/{step}/approval", h_decide, OPERATOR},
    {"POST", "/v1/hooks/{source}", h_hook, OPEN},   /* checked by its source's credentials */
};

static void h_index(srv_api *a, const srv_req *q, const params *p, srv_resp *r) {
    (void)a;
    (void)q;
    (void)p;
    jv list = jv_array();
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        jv o = jv_object_set(jv_object(), jv_string("method"), jv_string(routes[i].method));
        list = jv_array_append(list, jv_object_set(o, jv_string("path"), jv_string(routes[i].pattern)));
    }
    srv_resp_json(r, 200, jv_object_set(jv_object(), jv_string("routes"), list));
}

/* The characters a path parameter may hold: a run id is [0-9a-z]; a
 * workflow name or step id adds capitals, '_', '-' and '.' (but is not
 * "." or ".."). */
static bool param_ok(const char *kind, const char *v, size_t n) {
    bool id = strcmp(kind, "{id}") == 0;
    if (n == 0 || n > (id ? CAIRN_RUN_ID_MAX - 1 : CAIRN_SERVE_ID_MAX)) return false;
    if (!id && (strncmp(v, ".", n) == 0 || strncmp(v, "..", n) == 0)) return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                  (!id && ((c >= 'A' && c <= 'Z') || c == '_' || c == '-' || c == '.'));
        if (!ok) return false;
    }
    return true;
}

/* 1: path matches pattern (parameters in p); 0: no; -1: it does, but a
 * parameter holds what no name or id may (*bad: that parameter). */
static int match(const char *pattern, const char *path, params *p, const char **bad) {
    int k = 0;
    while (*pattern && *path) {
        if (*pattern != '{') {
            if (*pattern++ != *path++) return 0;
            continue;
        }
        const char *pend = strchr(pattern, '}') + 1;
        size_t n = strcspn(path, "/");
        char kind[16];
        snprintf(kind, sizeof kind, "%.*s", (int)(pend - pattern), pattern);
        if (param_ok(kind, path, n)) {
            memcpy(p->buf[k], path, n);
            p->buf[k][n] = '\0';
            p->v[k] = p->buf[k];
        } else if (*bad == NULL) {
            *bad = pattern;
        }
        k++;
        pattern = pend;
        path += n;
    }
    if (*pattern || *path) return 0;
    return *bad ? -1 : 1;
}

void srv_api_handle(void *ud, const srv_req *q, srv_resp *r) {
    srv_api *a = ud;
    const char *method = srv_req_method(q), *path = srv_req_path(q);
    if (a->cfg.links && srv_links_route(path)) {   /* the link is the credential (linkpage.h) */
        srv_links_handle(a->cfg.links, q, r);
        return;
    }
    bool other_method = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        params p = {0};
        const char *bad = NULL;
        int m = match(routes[i].pattern, path, &p, &bad);
        if (m == 0) continue;
        if (strcmp(routes[i].method, method) != 0) {
            other_method = m > 0 || other_method;
            continue;
        }
        if (!authorised(a, q, &routes[i], &p, r)) return;
        if (m < 0) {
            srv_resp_error(r, 400, "invalid_path", "%s: a path parameter holds characters no"
                           " name or id may (%.*s)", path, (int)(strchr(bad, '}') - bad + 1), bad);
            return;
        }
        routes[i].fn(a, q, &p, r);
        return;
    }
    if (other_method) srv_resp_error(r, 405, "method_not_allowed", "%s does not take %s", path, method);
    else srv_resp_error(r, 404, "route_not_found", "no route %s %s", method, path);
}
