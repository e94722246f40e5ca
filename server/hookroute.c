/*
 * hookroute.c - webhooks carried out against the journal (hookroute.h):
 * the copies of the workflows served and their triggers, the credentials,
 * the dedupe claims, and the route.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "actions/action.h"
#include "common/json.h"
#include "common/mem.h"
#include "engine/owner.h"
#include "engine/secrets.h"
#include "server/hook.h"
#include "server/hookauth.h"
#include "server/hookroute.h"
#include "server/trigger.h"

/* A dedupe key being worked on by a delivery of this process. */
typedef struct busy {
    const char *key;             /* "SPACE\nKEY", the delivery's */
    struct busy *next;
} busy;

struct srv_hooks {
    srv_hooks_config cfg;
    char owner[256];             /* this process, as claims name it */
    pthread_mutex_t mu;          /* the workflows and their triggers */
    cairn_workflow **wfs;        /* matched against (ts borrows them) */
    int n_wfs;
    cairn_workflow **learnt;     /* loaded since the last rebuild */
    int n_learnt;
    cairn_triggers *ts;
    pthread_mutex_t key_mu;      /* busy keys */
    pthread_cond_t key_cond;
    busy *busy;
    pthread_mutex_t sec_mu;      /* the secrets, as last read */
    char *sec_file, *sec_key_file;
    cairn_secrets *secrets;
    struct timespec sec_mtime;
    off_t sec_size;
    bool sec_read;
};

srv_hooks *srv_hooks_new(const srv_hooks_config *cfg) {
    srv_hooks *h = cairn_calloc(1, sizeof *h);
    h->cfg = *cfg;
    cairn_owner_self(h->owner, sizeof h->owner);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->key_mu, NULL);
    pthread_cond_init(&h->key_cond, NULL);
    pthread_mutex_init(&h->sec_mu, NULL);
    if (cfg->db_path) cairn_secrets_paths(cfg->db_path, &h->sec_file, &h->sec_key_file);
    cairn_triggers_new(NULL, 0, &h->ts, NULL);   /* none yet: every event unmatched */
    return h;
}

static void free_list(cairn_workflow **wfs, int n) {
    for (int i = 0; i < n; i++) cairn_workflow_free(wfs[i]);
    free(wfs);
}

void srv_hooks_free(srv_hooks *h) {
    if (h == NULL) return;
    cairn_triggers_free(h->ts);
    free_list(h->wfs, h->n_wfs);
    free_list(h->learnt, h->n_learnt);
    cairn_secrets_free(h->secrets);
    free(h->sec_file);
    free(h->sec_key_file);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->key_mu);
    pthread_cond_destroy(&h->key_cond);
    pthread_mutex_destroy(&h->sec_mu);
    free(h);
}

/* ---- the workflows matched against ------------------------------------------ */

void srv_hooks_learn(srv_hooks *h, const cairn_workflow *wf) {
    if (jv_get_kind(wf->triggers) != JV_KIND_ARRAY) return;   /* nothing to match */
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_workflow *copy = NULL;
    if (cairn_workflow_load(wf->file, wf->source, wf->source_len, cairn_action_lookup_sig, &copy,
                            &d) == 0) {
        pthread_mutex_lock(&h->mu);
        h->learnt = cairn_realloc(h->learnt, (size_t)(h->n_learnt + 1) * sizeof *h->learnt);
        h->learnt[h->n_learnt++] = copy;
        pthread_mutex_unlock(&h->mu);
    }
    cairn_diags_free(&d);
}

static bool listed(cairn_workflow **wfs, int n, const cairn_workflow *wf) {
    for (int i = 0; i < n; i++)
        if (strcmp(wfs[i]->name, wf->name) == 0 && strcmp(wfs[i]->sha256, wf->sha256) == 0)
            return true;
    return false;
}

int srv_hooks_rebuild(srv_hooks *h, srv_hooks_offered_fn offered, void *ud, cairn_err *err) {
    pthread_mutex_lock(&h->mu);
    int n_all = h->n_learnt + h->n_wfs, n_keep = 0, n_drop = 0;
    cairn_workflow **all = cairn_malloc((size_t)(n_all + 1) * sizeof *all);
    cairn_workflow **keep = cairn_malloc((size_t)(n_all + 1) * sizeof *keep);
    cairn_workflow **drop = cairn_malloc((size_t)(n_all + 1) * sizeof *drop);
    for (int i = 0; i < h->n_learnt; i++) all[i] = h->learnt[i];   /* the newest first */
    for (int i = 0; i < h->n_wfs; i++) all[h->n_learnt + i] = h->wfs[i];
    for (int i = 0; i < n_all; i++) {
        bool ok = (offered == NULL || offered(ud, all[i]->name, all[i]->sha256)) &&
                  !listed(keep, n_keep, all[i]);
        if (ok) keep[n_keep++] = all[i];
        else drop[n_drop++] = all[i];
    }
    cairn_triggers *ts = NULL;
    int rc = cairn_triggers_new(keep, n_keep, &ts, err);
    if (rc == 0) {   /* else the set before stays, and what was learnt waits for the next */
        cairn_triggers_free(h->ts);
        h->ts = ts;
        free(h->wfs);
        h->wfs = keep;
        h->n_wfs = n_keep;
        keep = NULL;
        for (int i = 0; i < n_drop; i++) cairn_workflow_free(drop[i]);
        free(h->learnt);
        h->learnt = NULL;
        h->n_learnt = 0;
    }
    free(keep);
    free(drop);
    free(all);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* ---- the credentials ---------------------------------------------------------- */

/* Read the secrets again when their file changed (h->sec_mu held). */
static int secrets_fresh(srv_hooks *h, cairn_err *err) {
    struct stat sb;
    bool exists = h->sec_file && stat(h->sec_file, &sb) == 0;
    bool same = h->sec_read && (exists ? sb.st_size == h->sec_size &&
                                             sb.st_mtim.tv_sec == h->sec_mtime.tv_sec &&
                                             sb.st_mtim.tv_nsec == h->sec_mtime.tv_nsec
                                       : h->sec_size < 0);
    if (same) return 0;
    cairn_secrets *s = NULL;
    int rc = exists ? cairn_secrets_load(h->sec_file, h->sec_key_file, &s, err) : 0;
    if (rc) return rc;
    cairn_secrets_free(h->secrets);
    h->secrets = s;
    h->sec_read = true;
    h->sec_size = exists ? sb.st_size : -1;
    if (exists) h->sec_mtime = sb.st_mtim;
    return 0;
}

/* The text of HOOK_<SOURCE> (the caller's), or NULL when there is none:
 * the environment's CAIRN_SECRET_HOOK_<SOURCE> first, as everywhere. */
static int credentials(srv_hooks *h, const char *source, char **out, cairn_err *err) {
    char name[CAIRN_HOOK_SECRET_NAME_LEN], env[CAIRN_HOOK_SECRET_NAME_LEN + 16];
    cairn_hookauth_secret_name(source, name);
    snprintf(env, sizeof env, "CAIRN_SECRET_%s", name);
    const char *v = getenv(env);
    *out = v ? cairn_strdup(v) : NULL;
    if (v) return 0;
    pthread_mutex_lock(&h->sec_mu);
    int rc = secrets_fresh(h, err);
    for (int i = 0; rc == 0 && h->secrets && i < h->secrets->count; i++)
        if (strcmp(h->secrets->names[i], name) == 0) *out = cairn_strdup(h->secrets->values[i]);
    pthread_mutex_unlock(&h->sec_mu);
    return rc;
}

/* ---- one dedupe key at a time ----------------------------------------------------- */

static bool key_busy(const srv_hooks *h, const char *key) {
    for (const busy *b = h->busy; b; b = b->next)
        if (strcmp(b->key, key) == 0) return true;
    return false;
}

static void key_lock(srv_hooks *h, busy *mine) {
    pthread_mutex_lock(&h->key_mu);
    while (key_busy(h, mine->key)) pthread_cond_wait(&h->key_cond, &h->key_mu);
    mine->next = h->busy;
    h->busy = mine;
    pthread_mutex_unlock(&h->key_mu);
}

static void key_unlock(srv_hooks *h, busy *mine) {
    pthread_mutex_lock(&h->key_mu);
    for (busy **p = &h->busy; *p; p = &(*p)->next)
        if (*p == mine) {
            *p = mine->next;
            break;
        }
    pthread_cond_broadcast(&h->key_cond);
    pthread_mutex_unlock(&h->key_mu);
}

/* ---- carrying out the matches ----------------------------------------------------- */

static jv get(jv o, const char *key) {
    if (jv_get_kind(o) != JV_KIND_OBJECT) return jv_null();
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    return jv_is_valid(v) ? v : (jv_free(v), jv_null());
}

static const char *str(jv s) { return jv_get_kind(s) == JV_KIND_STRING ? jv_string_value(s) : ""; }

/* What an outcome lists of a match (borrowed): workflow, event,
 * fingerprint, dedupe, and the run when there is one. */
static jv outcome(jv item, const char *run_id) {
    static const char *const keys[] = {"workflow", "event", "fingerprint", "dedupe"};
    jv o = jv_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        o = jv_object_set(o, jv_string(keys[i]), get(item, keys[i]));
    if (run_id) o = jv_object_set(o, jv_string("run"), jv_string(run_id));
    return o;
}

/* The run's trigger: the event, its key and trigger, and origin's fields. */
static jv run_trigger(jv event, jv item, jv origin) {
    jv t = jv_get_kind(event) == JV_KIND_OBJECT ? jv_copy(event) : jv_object();
    t = jv_object_set(t, jv_string("dedupe"), get(item, "dedupe"));
    t = jv_object_set(t, jv_string("trigger"), get(item, "trigger"));
    jv_object_foreach(origin, k, v) t = jv_object_set(t, k, v);   /* origin borrowed */
    return t;
}

typedef enum { STARTED, EXISTED } start_state;

/* The claim value "RUN_ID OWNER" split; false when it is not one. */
static bool split_claim(const char *held, char run_id[CAIRN_RUN_ID_MAX], const char **owner) {
    const char *sp = strchr(held, ' ');
    size_t n = sp ? (size_t)(sp - held) : 0;
    if (n == 0 || n >= CAIRN_RUN_ID_MAX) return false;
    memcpy(run_id, held, n);
    run_id[n] = '\0';
    *owner = sp + 1;
    return true;
}

/* Take the dedupe claim for a new run (hookroute.h's table of cases), the
 * key busy for this process: 0 with *state and run_id, or an error. */
static int claim_run(srv_hooks *h, const char *space, const char *key,
                     char run_id[CAIRN_RUN_ID_MAX], start_state *state, cairn_err *err) {
    char *replace = NULL, *held = NULL, value[CAIRN_RUN_ID_MAX + sizeof h->owner + 1];
    int rc = CAIRN_EBUSY;
    for (int round = 0; round < CAIRN_HOOK_CLAIM_TRIES; round++) {
        char mine[CAIRN_RUN_ID_MAX], theirs[CAIRN_RUN_ID_MAX];
        const char *owner = NULL;
        bool ended = false;
        cairn_new_run_id(mine);
        snprintf(value, sizeof value, "%s %s", mine, h->owner);
        free(held);
        held = NULL;
        rc = srv_backend_claim(h->cfg.backend, space, key, value, replace, &held, err);
        free(replace);
        replace = NULL;
        if (rc == 0) {
            memcpy(run_id, mine, CAIRN_RUN_ID_MAX);
            *state = STARTED;
            break;
        }
        if (rc != CAIRN_EEXISTS) break;
        if (!split_claim(held, theirs, &owner)) {   /* not ours to read: replace it */
            replace = held;
            held = NULL;
            continue;
        }
        rc = srv_backend_run_ended(h->cfg.backend, theirs, &ended, err);
        if (rc == 0 && !ended) {                    /* one live run per key */
            memcpy(run_id, theirs, CAIRN_RUN_ID_MAX);
            *state = EXISTED;
            break;
        }
        if (rc == 0) {                              /* ended: a new run takes the key */
            replace = held;
            held = NULL;
            continue;
        }
        if (rc != CAIRN_ENOTFOUND) break;
        if (strcmp(owner, h->owner) != 0 && srv_backend_owner_alive(h->cfg.backend, owner)) {
            memcpy(run_id, theirs, CAIRN_RUN_ID_MAX);   /* that process starts it now */
            *state = EXISTED;
            rc = 0;
            break;
        }
        /* claimed, never started: take it over, and start that same id */
        snprintf(value, sizeof value, "%s %s", theirs, h->owner);
        char *again = NULL;
        rc = srv_backend_claim(h->cfg.backend, space, key, value, held, &again, err);
        free(again);
        if (rc == 0) {
            memcpy(run_id, theirs, CAIRN_RUN_ID_MAX);
            *state = STARTED;
            break;
        }
        if (rc != CAIRN_EEXISTS) break;
    }
    if (rc == CAIRN_EEXISTS || rc == CAIRN_EBUSY)
        rc = cairn_err_set(err, CAIRN_EBUSY, "dedupe key '%.200s' of %s: changed hands %d times"
                           " while starting", key, space, CAIRN_HOOK_CLAIM_TRIES);
    free(held);
    free(replace);
    return rc;
}

/* Start the run of one `start` match (item borrowed), or find the live one
 * holding its key: the outcome goes to *started or *existed. */
static int start_one(srv_hooks *h, jv item, jv event, jv origin, jv *started, jv *existed,
                     cairn_err *err) {
    jv workflow = get(item, "workflow"), key = get(item, "dedupe"), hash = get(item, "sha256");
    char run_id[CAIRN_RUN_ID_MAX];
    start_state state = STARTED;
    int rc = 0;
    char *space = cairn_sprintf("dedupe/%s", str(workflow));
    char *both = cairn_sprintf("%s\n%s", space, str(key));
    busy mine = {.key = both};
    bool keyed = jv_get_kind(key) == JV_KIND_STRING;
    if (keyed) {
        key_lock(h, &mine);
        rc = claim_run(h, space, jv_string_value(key), run_id, &state, err);
    } else {
        cairn_new_run_id(run_id);
    }
    if (rc == 0 && state == STARTED)
        rc = srv_backend_start_as(h->cfg.backend, str(hash), get(item, "inputs"),
                                  run_trigger(event, item, origin), run_id, err);
    if (keyed) key_unlock(h, &mine);
    if (rc == 0 && state == STARTED) *started = jv_array_append(*started, outcome(item, run_id));
    if (rc == 0 && state == EXISTED) *existed = jv_array_append(*existed, outcome(item, run_id));
    free(space);
    free(both);
    jv_free(workflow);
    jv_free(key);
    jv_free(hash);
    return rc;
}

/* The live run holding (space, key) into run_id; false when none does. */
static bool live_holder(srv_hooks *h, const char *space, const char *key,
                        char run_id[CAIRN_RUN_ID_MAX]) {
    char *held = NULL;
    const char *owner;
    bool ended = true;
    bool ok = srv_backend_get_claim(h->cfg.backend, space, key, &held, NULL) == 0 &&
              split_claim(held, run_id, &owner) &&
              srv_backend_run_ended(h->cfg.backend, run_id, &ended, NULL) == 0 && !ended;
    free(held);
    return ok;
}

/* Deliver one `resolve` match (item borrowed) to the live run holding its
 * key: the outcome goes to *resolved, or *ignored when none does. */
static int resolve_one(srv_hooks *h, jv item, jv event, jv *resolved, jv *ignored,
                       cairn_err *err) {
    jv workflow = get(item, "workflow"), key = get(item, "dedupe");
    char run_id[CAIRN_RUN_ID_MAX];
    char *space = cairn_sprintf("dedupe/%s", str(workflow));
    char *both = cairn_sprintf("%s\n%s", space, str(key));
    busy mine = {.key = both};
    int rc = 0;
    bool found = false;
    if (jv_get_kind(key) == JV_KIND_STRING) {
        key_lock(h, &mine);   /* after a start of the same key under way */
        found = live_holder(h, space, jv_string_value(key), run_id);
        key_unlock(h, &mine);
    }
    if (found) {
        jv d = jv_object_set(jv_object(), jv_string("event"), jv_copy(event));
        char *data = cairn_json_text(d);
        bool recorded;
        jv_free(d);
        rc = srv_backend_command(h->cfg.backend, run_id, "resolve", data, &recorded, err);
        free(data);
        if (rc == CAIRN_ESTATE && !srv_backend_stopping(h->cfg.backend)) rc = 0, found = false;
    }
    if (rc == 0 && found) *resolved = jv_array_append(*resolved, outcome(item, run_id));
    if (rc == 0 && !found) *ignored = jv_array_append(*ignored, outcome(item, NULL));
    free(space);
    free(both);
    jv_free(workflow);
    jv_free(key);
    return rc;
}

static void count(srv_hooks *h, const char *source, const char *result, int n) {
    for (int i = 0; h->cfg.metrics && i < n; i++) srv_metrics_webhook(h->cfg.metrics, source, result);
}

static int length(jv answer, const char *list) {
    return jv_array_length(get(answer, list));
}

int srv_hooks_deliver(srv_hooks *h, const char *source, const char *body, size_t len, jv origin,
                      jv *answer, cairn_err *err) {
    jv events, started = jv_array(), existed = jv_array(), resolved = jv_array(),
       ignored = jv_array(), matched = jv_invalid();
    *answer = jv_invalid();
    int rc = cairn_hook_normalize(source, body, len, &events, err);
    if (rc == 0) {
        pthread_mutex_lock(&h->mu);
        matched = cairn_triggers_match(h->ts, events);
        pthread_mutex_unlock(&h->mu);
    }
    jv starts = get(matched, "start"), resolves = get(matched, "resolve");
    for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(starts)); i++) {
        jv item = jv_array_get(jv_copy(starts), i), e = get(item, "event");
        jv event = jv_array_get(jv_copy(events), (int)jv_number_value(e));
        rc = start_one(h, item, event, origin, &started, &existed, err);
        jv_free(item);
        jv_free(e);
        jv_free(event);
    }
    for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(resolves)); i++) {
        jv item = jv_array_get(jv_copy(resolves), i), e = get(item, "event");
        jv event = jv_array_get(jv_copy(events), (int)jv_number_value(e));
        rc = resolve_one(h, item, event, &resolved, &ignored, err);
        jv_free(item);
        jv_free(e);
        jv_free(event);
    }
    if (rc == 0) {
        jv a = jv_object_set(jv_object(), jv_string("source"), jv_string(source));
        a = jv_object_set(a, jv_string("events"), jv_number(jv_array_length(jv_copy(events))));
        a = jv_object_set(a, jv_string("started"), jv_copy(started));
        a = jv_object_set(a, jv_string("existed"), jv_copy(existed));
        a = jv_object_set(a, jv_string("resolved"), jv_copy(resolved));
        a = jv_object_set(a, jv_string("ignored"), jv_copy(ignored));
        a = jv_object_set(a, jv_string("refused"), get(matched, "refused"));
        *answer = jv_object_set(a, jv_string("unmatched"), get(matched, "unmatched"));
        static const char *const lists[] = {"started", "existed", "resolved", "ignored", "refused",
                                            "unmatched"};
        for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++)
            count(h, source, lists[k], length(*answer, lists[k]));
    }
    jv_free(starts);
    jv_free(resolves);
    jv_free(matched);
    jv_free(events);
    jv_free(started);
    jv_free(existed);
    jv_free(resolved);
    jv_free(ignored);
    jv_free(origin);
    return rc;
}

/* ---- the route ------------------------------------------------------------------------- */

/* The headers the credential schemes read (hookauth.h). */
static const char *const auth_headers[] = {
    "Authorization", "X-PagerDuty-Signature", "X-Grafana-Alerting-Signature",
    "X-Grafana-Alerting-Signature-Timestamp", "X-Cairn-Signature"};
#define N_AUTH_HEADERS (int)(sizeof auth_headers / sizeof auth_headers[0])

/* Whether the request may deliver: else answered. */
static bool allowed(srv_hooks *h, const srv_req *q, const char *source, bool open, srv_resp *r) {
    char *creds = NULL;
    cairn_err err;
    if (credentials(h, source, &creds, &err) != 0) {
        srv_resp_error(r, 500, "credentials_unreadable", "HOOK_%s: the secrets cannot be read: %s",
                       source, err.msg);
        return false;
    }
    cairn_header hs[N_AUTH_HEADERS];
    int n = 0;
    for (int i = 0; i < N_AUTH_HEADERS; i++) {
        const char *v = srv_req_header(q, auth_headers[i]);
        if (v) hs[n++] = (cairn_header){auth_headers[i], v};
    }
    size_t len;
    const char *body = srv_req_body(q, &len);
    cairn_hook_request req = {.source = source, .headers = hs, .n_headers = n, .body = body,
                              .body_len = len, .now_s = (int64_t)time(NULL)};
    cairn_hookauth_result res = cairn_hookauth_verify(&req, creds);
    free(creds);
    char name[CAIRN_HOOK_SECRET_NAME_LEN];
    cairn_hookauth_secret_name(source, name);
    if (res == CAIRN_HOOKAUTH_OK || (res == CAIRN_HOOKAUTH_NONE && open)) return true;
    if (res == CAIRN_HOOKAUTH_CONFIG)
        srv_resp_error(r, 500, "credentials_invalid", "%s: %s", name, cairn_hookauth_text(res));
    else if (res == CAIRN_HOOKAUTH_NONE)
        srv_resp_error(r, 401, "unauthorized", "%s: %s; with a tokens file every source needs"
                       " one (cairn secret set %s)", name, cairn_hookauth_text(res), name);
    else
        srv_resp_error(r, 401, "unauthorized", "%s: %s", name, cairn_hookauth_text(res));
    return false;
}

/* A delivery's error as its status and code. */
static void failed(srv_resp *r, const cairn_err *e) {
    static const struct { int code, status; const char *name; } map[] = {
        {CAIRN_ENOTFOUND, 404, "unknown_source"}, {CAIRN_ESYNTAX, 400, "invalid_json"},
        {CAIRN_EINVAL, 422, "invalid_payload"},   {CAIRN_ELIMIT, 413, "too_large"},
        {CAIRN_ESTATE, 503, "stopping"},          {CAIRN_EBUSY, 503, "busy"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].code == e->code) {
            srv_resp_error(r, map[i].status, map[i].name, "%s", e->msg);
            return;
        }
    srv_resp_error(r, 500, "journal", "%s", e->msg);
}

static bool json_type(const char *type) {
    return type && strncasecmp(type, "application/json", 16) == 0 &&
           (type[16] == '\0' || type[16] == ';' || type[16] == ' ');
}

void srv_hooks_handle(srv_hooks *h, const srv_req *q, const char *source, bool open,
                      srv_resp *r) {
    const char *known = cairn_hook_source_known(source) ? source : "unknown";
    size_t len;
    const char *body = srv_req_body(q, &len);
    const char *type = srv_req_header(q, "Content-Type");
    const char *result = "invalid";
    if (!cairn_hook_source_known(source)) {
        srv_resp_error(r, 404, "unknown_source", "no webhook source '%.64s'; the sources are "
                       "alertmanager, pagerduty, datadog, grafana, servicenow, generic", source);
    } else if (!json_type(type)) {
        srv_resp_error(r, 415, "unsupported_media_type", "a webhook body is application/json, "
                       "not %.100s", type ? type : "unnamed");
    } else if (!allowed(h, q, source, open, r)) {
        result = r->status == 401 ? "unauthorized" : "error";
    } else if (srv_backend_stopping(h->cfg.backend)) {
        srv_resp_error(r, 503, "stopping", "the server is stopping");
        result = "error";
    } else {
        jv origin = jv_object_set(jv_object(), jv_string("client"), jv_string(srv_req_client(q)));
        jv answer;
        cairn_err err;
        if (srv_hooks_deliver(h, source, body, len, origin, &answer, &err) != 0) {
            failed(r, &err);
            result = r->status >= 500 ? "error" : "invalid";
        } else {
            bool some = length(answer, "started") + length(answer, "existed") +
                        length(answer, "resolved") + length(answer, "ignored") +
                        length(answer, "unmatched") > 0;
            int status = length(answer, "started") > 0 ? 201
                         : !some && length(answer, "refused") > 0 ? 422 : 200;
            srv_resp_json(r, status, answer);
            return;
        }
    }
    count(h, known, result, 1);
}
