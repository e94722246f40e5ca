/*
 * journal.c - the journal's operations over any backend: opening by where
 * the journal lives, reading and folding runs, definitions, commands.  What
 * depends on the store (connections, the key's file, the commit log) is
 * the backend's (journal_int.h).
 */
#include "engine/journal_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "common/mem.h"
#include "engine/owner.h"

static const cairn_journal_backend *const backends[] = {&cairn_journal_sqlite, &cairn_journal_pg};

/* The backend that serves where: the one whose URL it is, else (no "://")
 * the one of paths; NULL for a URL no backend serves. */
static const cairn_journal_backend *backend_for(const char *where) {
    const cairn_journal_backend *path = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        if (backends[i]->serves == NULL) path = backends[i];
        else if (backends[i]->serves(where)) return backends[i];
    }
    return strstr(where, "://") ? NULL : path;
}

int cairn_journal_backend_of(const char *where, cairn_journal *j, cairn_err *err) {
    const cairn_journal_backend *b = backend_for(where);
    if (b == NULL)
        return cairn_err_set(err, CAIRN_EINVAL, "%.*s: no journal of that kind (a journal is a"
                             " file path or a postgres:// URL)", (int)strcspn(where, ":"), where);
    j->backend = b;
    j->where = cairn_journal_name(where);
    return 0;
}

char *cairn_journal_name(const char *where) {
    const cairn_journal_backend *b = backend_for(where);
    return b && b->name ? b->name(where) : cairn_strdup(where);
}

int cairn_journal_open(const char *where, const cairn_journal_config *cfg, cairn_journal **out,
                       cairn_err *err) {
    *out = NULL;
    cairn_journal *j = cairn_calloc(1, sizeof *j);
    int rc = cairn_journal_backend_of(where, j, err);
    if (rc) {
        free(j);
        return rc;
    }
    j->cfg = *cfg;
    if (cfg->role == CAIRN_JOURNAL_ENGINE) cairn_owner_self(j->owner, sizeof j->owner);
    rc = j->backend->open(j, where, err);
    if (rc == 0 && j->keyed) j->chain = cairn_chain_new(j->key, sizeof j->key);
    if (rc) {
        cairn_journal_close(j);
        return rc;
    }
    *out = j;
    return 0;
}

cairn_journal *cairn_journal_over(cairn_store *writer, cairn_clog *log, const char *owner) {
    cairn_journal *j = cairn_calloc(1, sizeof *j);
    j->backend = &cairn_journal_sqlite;
    j->where = cairn_strdup("");
    j->cfg.role = CAIRN_JOURNAL_READER;   /* holds no runs: releases none */
    j->writer = writer;
    j->log = log;
    snprintf(j->owner, sizeof j->owner, "%s", owner);
    return j;
}

void cairn_journal_close(cairn_journal *j) {
    if (j == NULL) return;
    if (j->reader && j->cfg.role == CAIRN_JOURNAL_ENGINE)
        j->reader->ops->release_runs(j->reader, j->owner, NULL);
    j->backend->close(j);
    cairn_chain_free(j->chain);
    free(j->warning);
    free(j->where);
    free(j);
}

const char *cairn_journal_warning(const cairn_journal *j) { return j->warning; }

/* ---- the key --------------------------------------------------------------- */

int cairn_journal_use_key(cairn_journal *j, cairn_err *err) {
    if (j->keyed) return 0;
    int rc = j->backend->read_key(j, err);
    if (rc == 0) rc = cairn_journal_key_check(j->reader, j->where, j->key, false, err);
    if (rc) return rc;
    j->keyed = true;
    j->chain = cairn_chain_new(j->key, sizeof j->key);
    return 0;
}

cairn_chain *cairn_journal_chain(cairn_journal *j) { return j->chain; }

int cairn_journal_derive_key(cairn_journal *j, const char *purpose,
                             unsigned char out[CAIRN_HASH_LEN], cairn_err *err) {
    int rc = cairn_journal_use_key(j, err);
    unsigned int n = CAIRN_HASH_LEN;
    if (rc == 0 && HMAC(EVP_sha256(), j->key, (int)sizeof j->key, (const unsigned char *)purpose,
                        strlen(purpose), out, &n) == NULL)
        rc = cairn_err_set(err, CAIRN_EIO, "deriving a key for %s failed", purpose);
    return rc;
}

cairn_chain *cairn_journal_new_chain(cairn_journal *j) {
    return j->keyed ? cairn_chain_new(j->key, sizeof j->key) : NULL;
}

/* ---- runs -------------------------------------------------------------------- */

int cairn_journal_list_runs(cairn_journal *j, const char *status_filter, cairn_run_row **out,
                            int *n, cairn_err *err) {
    return j->reader->ops->list_runs(j->reader, status_filter, out, n, err);
}

int cairn_journal_get_run(cairn_journal *j, const char *run_id, cairn_run_row *out,
                          cairn_err *err) {
    return j->reader->ops->get_run(j->reader, run_id, out, err);
}

/* The definition a run is pinned to: the def_hash of its run_created event
 * (covered by the chain), which its runs row must repeat. */
static int run_pin(const cairn_run_row *row, cairn_event *evs, int n, char hash[65],
                   jv *created, cairn_err *err) {
    if (n == 0 || evs[0].type != CAIRN_EV_RUN_CREATED)
        return cairn_err_set(err, CAIRN_ECORRUPT, "run %s: its journal does not begin with"
                             " run_created (event 1 missing or replaced)", row->id);
    jv data = jv_parse(evs[0].data ? evs[0].data : "");
    jv h = jv_get_kind(data) == JV_KIND_OBJECT ? jv_object_get(jv_copy(data), jv_string("def_hash"))
                                               : jv_invalid();
    int rc = 0;
    if (jv_get_kind(h) == JV_KIND_STRING) snprintf(hash, 65, "%s", jv_string_value(h));
    else rc = cairn_err_set(err, CAIRN_ECORRUPT, "run %s: event 1 (run_created) pins no"
                            " definition", row->id);
    jv_free(h);
    if (rc == 0 && strcmp(hash, row->def_hash) != 0)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "run %s: the runs table names definition %s,"
                           " its run_created event (seq 1) pins %s", row->id, row->def_hash, hash);
    if (rc == 0 && created) *created = data;
    else jv_free(data);
    return rc;
}

int cairn_journal_load_events(cairn_journal *j, const char *run_id, cairn_event **evs, int *n,
                              char pin[65], cairn_err *err) {
    return cairn_journal_load_pinned(j, run_id, evs, n, pin, NULL, err);
}

int cairn_journal_load_pinned(cairn_journal *j, const char *run_id, cairn_event **evs, int *n,
                              char pin[65], jv *created, cairn_err *err) {
    cairn_run_row row;
    *evs = NULL;
    *n = 0;
    if (created) *created = jv_invalid();
    int rc = j->reader->ops->get_run(j->reader, run_id, &row, err);
    if (rc) return rc;
    rc = j->reader->ops->load_events(j->reader, row.id, evs, n, err);
    if (rc == 0 && pin) rc = run_pin(&row, *evs, *n, pin, created, err);
    if (rc) {
        cairn_events_free(*evs, *n);
        *evs = NULL;
        *n = 0;
    }
    cairn_run_row_clear(&row);
    return rc;
}

static int verify_link(const cairn_event *ev, const unsigned char *prev, cairn_chain *chain,
                       cairn_err *err) {
    cairn_event copy = *ev;
    cairn_chain_hash(chain, prev, &copy);
    if (memcmp(copy.hash, ev->hash, CAIRN_HASH_LEN) == 0) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT,
                         "run %s: event %lld does not match the journal's hash chain"
                         " (edited, removed or reordered events)",
                         ev->run_id, (long long)ev->seq);
}

int cairn_journal_fold(cairn_journal *j, cairn_run_state *st, cairn_event *evs, int n,
                       cairn_err *err) {
    return cairn_journal_fold_pinned(j, st, evs, n, jv_invalid(), err);
}

int cairn_journal_fold_pinned(cairn_journal *j, cairn_run_state *st, cairn_event *evs, int n,
                              jv created, cairn_err *err) {
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = j->chain ? verify_link(&evs[i], i ? st->head : NULL, j->chain, err) : 0;
        if (rc == 0 && i == 0 && jv_is_valid(created)) rc = cairn_fold_apply(st, &evs[i], -1, created, err);
        else if (rc == 0) rc = cairn_fold_event(st, &evs[i], err);
        cairn_event_clear(&evs[i]);
    }
    jv_free(created);
    return rc;
}

/* The lines of text (each ending in '\n'), copied. */
static char **split_lines(const char *text, int *n) {
    int count = 0;
    for (const char *p = text; *p; p++) count += *p == '\n';
    char **out = cairn_calloc((size_t)count + 1, sizeof *out);
    const char *p = text;
    for (int i = 0; i < count; i++) {
        const char *nl = strchr(p, '\n');
        out[i] = cairn_strndup(p, (size_t)(nl - p));
        p = nl + 1;
    }
    *n = count;
    return out;
}

/* The source of the definition pinned by hash, checked against it: an
 * edited one is CAIRN_ECORRUPT. */
static int pinned_source(cairn_journal *j, const char *hash, const char *run_id, char **src,
                         size_t *len, char **path, cairn_err *err) {
    char actual[65];
    int rc = j->reader->ops->get_definition(j->reader, hash, src, len, path, err);
    if (rc) return rc;
    cairn_workflow_hash(*src, *len, actual);
    if (strcmp(actual, hash) == 0) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT,
                         "%s%s%sthe stored definition does not match the hash it is pinned"
                         " to: pinned %s, stored source hashes to %s (the definitions"
                         " table was edited); refusing to use it",
                         run_id ? "run " : "", run_id ? run_id : "", run_id ? ": " : "",
                         hash, actual);
}

/* The step ids of the definition pinned by hash (its source checked): as
 * stored beside it, or, for a definition stored before they were, from the
 * definition compiled. */
char **cairn_journal_pinned_steps(cairn_journal *j, const char *hash, const char *run_id, int *n,
                                  cairn_err *err) {
    cairn_store *s = j->reader;
    char *src = NULL, *path = NULL, *text = NULL, **ids = NULL;
    size_t len = 0;
    if (pinned_source(j, hash, run_id, &src, &len, &path, err) != 0) {
        /* refused */
    } else if (s->ops->get_steps && s->ops->get_steps(s, hash, &text, NULL) == 0) {
        ids = split_lines(text, n);
    } else {
        cairn_workflow *wf = NULL;
        if (cairn_journal_definition(j, hash, run_id, &wf, err) == 0) ids = cairn_step_ids(wf, n);
        cairn_workflow_free(wf);
    }
    free(text);
    free(src);
    free(path);
    return ids;
}

int cairn_journal_load_run(cairn_journal *j, const char *run_id, cairn_run_state **st_out,
                           cairn_workflow **wf_out, cairn_err *err) {
    cairn_event *evs = NULL;
    cairn_workflow *wf = NULL;
    char **ids = NULL, pin[65];
    int n = 0, n_ids = 0;
    *st_out = NULL;
    if (wf_out) *wf_out = NULL;
    jv created;
    int rc = cairn_journal_load_pinned(j, run_id, &evs, &n, pin, &created, err);
    if (rc == 0 && wf_out) {
        rc = cairn_journal_definition(j, pin, run_id, &wf, err);
        if (rc == 0) ids = cairn_step_ids(wf, &n_ids);
    } else if (rc == 0 && (ids = cairn_journal_pinned_steps(j, pin, run_id, &n_ids, err)) == NULL) {
        rc = err->code;
    }
    if (rc == 0) {
        *st_out = cairn_run_state_new(run_id, ids, n_ids);
        rc = cairn_journal_fold_pinned(j, *st_out, evs, n, jv_copy(created), err);
    }
    if (rc == 0 && wf_out) {
        *wf_out = wf;
        wf = NULL;
    } else if (rc) {
        cairn_run_state_free(*st_out);
        *st_out = NULL;
    }
    cairn_workflow_free(wf);
    cairn_step_ids_free(ids, n_ids);
    cairn_events_free(evs, n);
    jv_free(created);
    return rc;
}

/* A text column of the runs row against what the fold says it should hold
 * (NULL: SQL NULL). */
static int same_text(const cairn_run_row *row, const char *column, const char *got,
                     const char *want, cairn_err *err) {
    if (got == want || (got && want && strcmp(got, want) == 0)) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT, "run %s: the runs table says %s = %s, its events"
                         " say %s (the row was edited)", row->id, column, got ? got : "NULL",
                         want ? want : "NULL");
}

static int same_time(const cairn_run_row *row, const char *column, int64_t got, int64_t want,
                     cairn_err *err) {
    if (got == want) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT, "run %s: the runs table says %s = %lld, its events"
                         " say %lld (the row was edited)", row->id, column, (long long)got,
                         (long long)want);
}

int cairn_run_row_check(const cairn_run_row *row, const cairn_run_state *st, cairn_err *err) {
    int rc = same_text(row, "status", row->status, cairn_run_status_name(st->status), err);
    if (rc == 0) rc = same_text(row, "workflow", row->workflow, st->workflow ? st->workflow : "?", err);
    if (rc == 0) rc = same_text(row, "def_hash", row->def_hash, st->def_hash ? st->def_hash : "", err);
    if (rc == 0) rc = same_text(row, "parent_id", row->parent_id, st->parent, err);
    if (rc == 0) rc = same_time(row, "created_at", row->created_at, st->created_ms, err);
    if (rc == 0) rc = same_time(row, "updated_at", row->updated_at, st->status_ms, err);
    return rc;
}

/* ---- definitions ----------------------------------------------------------- */

char **cairn_step_ids(const cairn_workflow *wf, int *n) {
    int total = wf->n_steps + wf->n_on_failure;
    for (int i = 0; i < wf->n_steps; i++) total += wf->steps[i].compensate != NULL;
    char **ids = cairn_calloc((size_t)total + 1, sizeof *ids);
    int k = 0;
    for (int i = 0; i < wf->n_steps; i++) ids[k++] = cairn_strdup(wf->steps[i].id);
    for (int i = 0; i < wf->n_on_failure; i++) ids[k++] = cairn_strdup(wf->on_failure[i].id);
    for (int i = 0; i < wf->n_steps; i++)
        if (wf->steps[i].compensate) ids[k++] = cairn_sprintf("%s#compensate", wf->steps[i].id);
    *n = k;
    return ids;
}

void cairn_step_ids_free(char **ids, int n) {
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
}

int cairn_journal_put_definition(cairn_journal *j, const cairn_workflow *wf, cairn_err *err) {
    cairn_store *s = j->reader;
    int rc = s->ops->put_definition(s, wf->sha256, wf->name, wf->file, wf->source,
                                    wf->source_len, err);
    if (rc || s->ops->put_steps == NULL) return rc;
    int n = 0;
    char **ids = cairn_step_ids(wf, &n);
    cairn_buf text = {0};
    for (int i = 0; i < n; i++) {
        cairn_buf_puts(&text, ids[i]);
        cairn_buf_putc(&text, '\n');
    }
    cairn_buf_putc(&text, '\0');
    rc = s->ops->put_steps(s, wf->sha256, text.data, err);
    cairn_buf_free(&text);
    cairn_step_ids_free(ids, n);
    return rc;
}

int cairn_journal_definition(cairn_journal *j, const char *hash, const char *run_id,
                             cairn_workflow **wf, cairn_err *err) {
    char *src = NULL, *path = NULL;
    size_t len = 0;
    *wf = NULL;
    int rc = pinned_source(j, hash, run_id, &src, &len, &path, err);
    if (rc == 0) {
        cairn_diags d = CAIRN_DIAGS_INIT;
        rc = cairn_workflow_load(path, src, len, cairn_action_lookup_sig, wf, &d);
        if (rc) cairn_diags_to_err(&d, err);
        cairn_diags_free(&d);
    }
    free(src);
    free(path);
    return rc;
}

int cairn_journal_find_definition(cairn_journal *j, const char *name, char hash[65],
                                  cairn_err *err) {
    return j->reader->ops->find_definition(j->reader, name, hash, err);
}

/* ---- commands ---------------------------------------------------------------- */

int cairn_journal_put_command(cairn_journal *j, const char *run_id, const char *type,
                              const char *data, cairn_err *err) {
    return j->backend->put_command(j, run_id, type, data, err);
}

int cairn_journal_command(const char *where, const char *run_id, const char *type,
                          const char *data, cairn_err *err) {
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_READER};
    cairn_journal *j = NULL;
    int rc = cairn_journal_open(where, &cfg, &j, err);
    if (rc == 0) rc = cairn_journal_put_command(j, run_id, type, data, err);
    cairn_journal_close(j);
    return rc;
}

int cairn_journal_page_runs(cairn_journal *j, const cairn_run_page *q, cairn_run_row **out,
                            int *n, cairn_err *err) {
    return j->reader->ops->page_runs(j->reader, q, out, n, err);
}

int cairn_journal_find_request(cairn_journal *j, const char *key, char run_id[CAIRN_RUN_ID_MAX],
                               char request[65], cairn_err *err) {
    return j->reader->ops->get_request(j->reader, key, run_id, request, err);
}

int cairn_journal_put_request(cairn_journal *j, const char *key, const char *request,
                              const char *run_id, cairn_err *err) {
    return j->backend->put_request(j, key, request, run_id, err);
}

static int claim_text_ok(const char *space, const char *key, const char *value, cairn_err *err) {
    if (!space || !*space || !key || !*key || !value)
        return cairn_err_set(err, CAIRN_EINVAL, "a claim needs a space, a key and a value");
    if (strlen(space) > CAIRN_CLAIM_TEXT_MAX || strlen(key) > CAIRN_CLAIM_TEXT_MAX)
        return cairn_err_set(err, CAIRN_ELIMIT, "a claim's space and key are at most %d bytes"
                             " (CAIRN_CLAIM_TEXT_MAX)", CAIRN_CLAIM_TEXT_MAX);
    if (strlen(value) > CAIRN_CLAIM_VALUE_MAX)
        return cairn_err_set(err, CAIRN_ELIMIT, "a claim's value is at most %d bytes"
                             " (CAIRN_CLAIM_VALUE_MAX)", CAIRN_CLAIM_VALUE_MAX);
    return 0;
}

int cairn_journal_claim(cairn_journal *j, const char *space, const char *key, const char *value,
                        const char *replace, char **held, cairn_err *err) {
    *held = NULL;
    int rc = claim_text_ok(space, key, value, err);
    return rc ? rc : j->backend->claim(j, space, key, value, replace, held, err);
}

int cairn_journal_claim_deferred(cairn_journal *j, const char *space, const char *key,
                                 const char *value, const char *replace, char **held,
                                 cairn_err *err) {
    *held = NULL;
    int rc = claim_text_ok(space, key, value, err);
    if (rc) return rc;
    if (j->backend->claim_deferred == NULL) return j->backend->claim(j, space, key, value, replace, held, err);
    return j->backend->claim_deferred(j, space, key, value, replace, held, err);
}

int cairn_journal_sync_claims(cairn_journal *j, cairn_err *err) {
    return j->backend->sync_claims ? j->backend->sync_claims(j, err) : 0;
}

int cairn_journal_get_claim(cairn_journal *j, const char *space, const char *key, char **value,
                            cairn_err *err) {
    *value = NULL;
    return j->reader->ops->get_claim(j->reader, space, key, value, err);
}

int cairn_journal_takes_writes(cairn_journal *j, cairn_err *err) {
    return j->backend->takes_writes(j, err);
}

int cairn_journal_run_commands(cairn_journal *j, const char *run_id, cairn_command **out, int *n,
                               cairn_err *err) {
    return j->reader->ops->run_commands(j->reader, run_id, out, n, err);
}

int cairn_journal_take_commands(cairn_journal *j, cairn_command **out, int *n, cairn_err *err) {
    return j->reader->ops->list_commands(j->reader, j->owner, out, n, err);
}

void cairn_journal_drop_command(cairn_journal *j, int64_t id) {
    j->reader->ops->delete_command(j->reader, id, NULL);
}

int64_t cairn_journal_changes(cairn_journal *j) {
    return j->reader->ops->data_version(j->reader);
}

/* ---- the engine's hold on runs ------------------------------------------ */

const char *cairn_journal_owner(const cairn_journal *j) { return j->owner; }

int cairn_journal_claim_run(cairn_journal *j, const char *run_id, cairn_err *err) {
    if (j->backend->claim_run) return j->backend->claim_run(j, run_id, err);
    return j->reader->ops->claim_run(j->reader, run_id, j->owner, cairn_owner_alive, err);
}

int cairn_journal_let_go(cairn_journal *j, const char *run_id, bool again, bool *done,
                         cairn_err *err) {
    *done = false;
    return j->backend->let_go ? j->backend->let_go(j, run_id, again, done, err) : 0;
}

bool cairn_journal_owner_alive(cairn_journal *j, const char *owner) {
    return j->backend->owner_alive(j, owner);
}

/* ---- several engines: the lease (journal_lease.h), none on SQLite -------- */

bool cairn_journal_shared(const cairn_journal *j) { return j->lease != NULL; }

bool cairn_journal_lease_held(cairn_journal *j) {
    return j->lease == NULL || cairn_lease_held(j->lease);
}

int cairn_journal_lease_state(cairn_journal *j, cairn_err *err) {
    return j->lease ? cairn_lease_state(j->lease, err) : 0;
}

void cairn_journal_on_news(cairn_journal *j, void (*fn)(void *), void *ud) {
    if (j->lease) cairn_lease_on_news(j->lease, fn, ud);
}

void cairn_journal_take_over(cairn_journal *j, bool on) {
    if (j->lease) cairn_lease_take_over(j->lease, on);
}

int cairn_journal_take_lost(cairn_journal *j, char ***ids) {
    *ids = NULL;
    return j->lease ? cairn_lease_take_lost(j->lease, ids) : 0;
}

int cairn_journal_take_claimed(cairn_journal *j, char ***ids) {
    *ids = NULL;
    return j->lease ? cairn_lease_take_claimed(j->lease, ids) : 0;
}

int cairn_journal_take_placed(cairn_journal *j, char ***ids) {
    *ids = NULL;
    return j->lease ? cairn_lease_take_placed(j->lease, ids) : 0;
}

int cairn_journal_place(cairn_journal *j, const char *run_id, const char *node, cairn_err *err) {
    if (j->lease == NULL)
        return cairn_err_set(err, CAIRN_ESTATE, "%s: one engine writes this journal: no run is"
                             " placed on another", j->where);
    cairn_lease_place(j->lease, run_id, node);
    return 0;
}

int cairn_journal_node_loads(cairn_journal *j, char ***nodes, int64_t **runs, int *n,
                             cairn_err *err) {
    *nodes = NULL;
    *runs = NULL;
    *n = 0;
    if (j->backend->node_loads == NULL)
        return cairn_err_set(err, CAIRN_ESTATE, "%s: one engine writes this journal: no run is"
                             " placed on another", j->where);
    return j->backend->node_loads(j, nodes, runs, n, err);
}

void cairn_journal_forget(cairn_journal *j, const char *run_id) {
    if (j->lease) cairn_lease_forget(j->lease, run_id);
}

bool cairn_journal_refused(cairn_journal *j, const char *run_id) {
    int64_t one;
    return j->refused && cairn_strmap_get(j->refused, run_id, &one);
}

int cairn_journal_claims_begin(cairn_journal *j, cairn_err *err) {
    return j->reader->ops->batch_begin(j->reader, err);
}

int cairn_journal_claims_end(cairn_journal *j, cairn_err *err) {
    return j->reader->ops->batch_end(j->reader, err);
}

int cairn_journal_settle_others(cairn_journal *j, cairn_err *err) {
    return j->backend->settle_others(j, err);
}

void cairn_journal_secrets_paths(const cairn_journal *j, char **file, char **key_file) {
    j->backend->secrets_paths(j, file, key_file);
}

/* ---- the writer ----------------------------------------------------------- */

bool cairn_journal_writes_ahead(const cairn_journal *j) { return j->log != NULL; }

int cairn_journal_append_batch(cairn_journal *j, cairn_event *const *evs, int n, int64_t *mark,
                               cairn_err *err) {
    return j->backend->append_batch(j, evs, n, mark, err);
}

int cairn_journal_sync(cairn_journal *j, cairn_err *err) { return j->backend->sync(j, err); }

int64_t cairn_journal_written_end(const cairn_journal *j) { return j->backend->written_end(j); }

int cairn_journal_apply_written(cairn_journal *j, int64_t from, int64_t to,
                                cairn_event *const *evs, int n, cairn_err *err) {
    return j->backend->apply_written(j, from, to, evs, n, err);
}

int cairn_journal_start_over(cairn_journal *j, size_t need, cairn_err *err) {
    return j->backend->start_over(j, need, err);
}
