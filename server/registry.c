/*
 * registry.c - the workflows offered, by file and by name (registry.h).
 *
 * An entry keeps what a listing shows as JSON text, made when the file
 * loaded: the workflow itself belongs to the engine from then on.
 */
#include <glob.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "common/json.h"
#include "common/mem.h"
#include "server/registry.h"

typedef struct entry {
    char *file, *name, *summary;   /* summary: JSON text */
    char hash[65];
    bool seen;                     /* found by the load under way */
} entry;

struct srv_registry {
    char *dir;
    srv_add_fn add;
    srv_seen_fn seen;
    void *ud;
    pthread_mutex_t mu;            /* entries */
    pthread_mutex_t load_mu;       /* one load at a time */
    entry *e;
    int n;
};

static const char *const type_names[] = {"string", "number", "integer", "boolean", "object",
                                         "array"};

srv_registry *srv_registry_new(const char *dir, srv_add_fn add, srv_seen_fn seen, void *ud) {
    srv_registry *r = cairn_calloc(1, sizeof *r);
    r->dir = cairn_strdup(dir);
    r->add = add;
    r->seen = seen;
    r->ud = ud;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->load_mu, NULL);
    return r;
}

static void entry_clear(entry *e) {
    free(e->file);
    free(e->name);
    free(e->summary);
}

void srv_registry_free(srv_registry *r) {
    if (r == NULL) return;
    for (int i = 0; i < r->n; i++) entry_clear(&r->e[i]);
    free(r->e);
    free(r->dir);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->load_mu);
    free(r);
}

static char *summary_of(const cairn_workflow *wf, const char *hash) {
    jv inputs = jv_array();
    for (int i = 0; i < wf->n_inputs; i++) {
        const cairn_input_spec *in = &wf->inputs[i];
        jv o = jv_object_set(jv_object(), jv_string("name"), jv_string(in->name));
        o = jv_object_set(o, jv_string("type"), jv_string(type_names[in->type]));
        o = jv_object_set(o, jv_string("required"), jv_bool(in->required));
        o = jv_object_set(o, jv_string("description"),
                          in->description ? jv_string(in->description) : jv_null());
        inputs = jv_array_append(inputs, o);
    }
    jv o = jv_object_set(jv_object(), jv_string("name"), jv_string(wf->name));
    o = jv_object_set(o, jv_string("description"),
                      wf->description ? jv_string(wf->description) : jv_null());
    o = jv_object_set(o, jv_string("version"), wf->version ? jv_string(wf->version) : jv_null());
    o = jv_object_set(o, jv_string("file"), jv_string(wf->file));
    o = jv_object_set(o, jv_string("hash"), jv_string(hash));
    o = jv_object_set(o, jv_string("inputs"), inputs);
    char *text = cairn_json_text(o);
    jv_free(o);
    return text;
}

static entry *by_file(srv_registry *r, const char *file) {
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->e[i].file, file) == 0) return &r->e[i];
    return NULL;
}

static entry *by_name(srv_registry *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->e[i].name, name) == 0) return &r->e[i];
    return NULL;
}

/* Load one file into its entry (r->mu not held: loading takes a while). */
static int load_one(srv_registry *r, const char *file, FILE *report) {
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_workflow *wf = NULL;
    cairn_err err;
    char hash[65];
    int rc = cairn_workflow_load_file(file, cairn_action_lookup_sig, &wf, &d);
    if (rc) {
        cairn_diags_to_err(&d, &err);
        cairn_diags_free(&d);
        char msg[CAIRN_ERR_MSG_MAX + CAIRN_ERR_FILE_MAX + 32];
        fprintf(report, "cairn: %s is not served: %s\n", file, cairn_err_format(&err, msg, sizeof msg));
        return rc;
    }
    cairn_diags_free(&d);
    pthread_mutex_lock(&r->mu);
    entry *other = by_name(r, wf->name);
    bool clash = other && strcmp(other->file, file) != 0;
    pthread_mutex_unlock(&r->mu);
    if (clash) {
        fprintf(report, "cairn: %s is not served: workflow '%s' is served from %s already\n", file,
                wf->name, other->file);
        cairn_workflow_free(wf);
        return CAIRN_EEXISTS;
    }
    char *name = cairn_strdup(wf->name);
    if (r->seen) r->seen(r->ud, wf);
    snprintf(hash, sizeof hash, "%s", wf->sha256);
    char *summary = summary_of(wf, hash);
    if ((rc = r->add(r->ud, wf, hash, &err)) != 0) {
        char msg[CAIRN_ERR_MSG_MAX + CAIRN_ERR_FILE_MAX + 32];
        fprintf(report, "cairn: %s is not served: %s\n", file, cairn_err_format(&err, msg, sizeof msg));
        free(name);
        free(summary);
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    entry *e = by_file(r, file);
    if (e == NULL) {
        r->e = cairn_realloc(r->e, (size_t)(r->n + 1) * sizeof *r->e);
        e = &r->e[r->n++];
        memset(e, 0, sizeof *e);
        e->file = cairn_strdup(file);
    }
    free(e->name);
    free(e->summary);
    e->name = name;
    e->summary = summary;
    memcpy(e->hash, hash, sizeof e->hash);
    e->seen = true;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* Drop the entries whose file is gone from the directory. */
static void drop_unseen(srv_registry *r) {
    pthread_mutex_lock(&r->mu);
    int kept = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->e[i].seen) r->e[kept++] = r->e[i];
        else entry_clear(&r->e[i]);
    }
    r->n = kept;
    pthread_mutex_unlock(&r->mu);
}

int srv_registry_load(srv_registry *r, FILE *report, int *loaded, int *failed, cairn_err *err) {
    *loaded = *failed = 0;
    char *pattern = cairn_sprintf("%s/*.y{a,}ml", r->dir);
    glob_t g;
    int grc = glob(pattern, GLOB_BRACE, NULL, &g);
    free(pattern);
    if (grc != 0 && grc != GLOB_NOMATCH)
        return cairn_err_set(err, CAIRN_EIO, "--workflows %s: cannot be read", r->dir);
    pthread_mutex_lock(&r->load_mu);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++) r->e[i].seen = false;
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; grc == 0 && i < g.gl_pathc; i++) {
        const char *file = g.gl_pathv[i];
        if ((int)i >= CAIRN_SERVE_WORKFLOWS_MAX) {
            fprintf(report, "cairn: %s is not served: more than %d workflow files\n", file,
                    CAIRN_SERVE_WORKFLOWS_MAX);
            ++*failed;
            continue;
        }
        if (load_one(r, file, report) == 0) {
            ++*loaded;
            continue;
        }
        ++*failed;
        pthread_mutex_lock(&r->mu);   /* it keeps the version it had */
        entry *e = by_file(r, file);
        if (e) e->seen = true;
        pthread_mutex_unlock(&r->mu);
    }
    drop_unseen(r);
    pthread_mutex_unlock(&r->load_mu);
    if (grc == 0) globfree(&g);
    return 0;
}

bool srv_registry_find(srv_registry *r, const char *name, char hash[65]) {
    pthread_mutex_lock(&r->mu);
    entry *e = by_name(r, name);
    if (e) memcpy(hash, e->hash, 65);
    pthread_mutex_unlock(&r->mu);
    return e != NULL;
}

static int by_entry_name(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

jv srv_registry_list(srv_registry *r) {
    jv out = jv_array();
    pthread_mutex_lock(&r->mu);
    qsort(r->e, (size_t)r->n, sizeof *r->e, by_entry_name);
    for (int i = 0; i < r->n; i++)
        out = jv_array_append(out, cairn_json_parse(r->e[i].summary, strlen(r->e[i].summary)));
    pthread_mutex_unlock(&r->mu);
    return out;
}
