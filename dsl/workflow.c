/*
 * workflow.c - load a workflow: parse, check the document's keys, hand steps,
 * inputs and triggers to their checkers, resolve the graph, check what
 * expressions read, compile every expression once, and pin the source by its
 * SHA-256.
 *
 * `limits:` bounds each expression evaluation (expr.h):
 *   expression_time    a duration, at most CAIRN_EXPR_TIME_MS_MAX (default 1s)
 *   expression_memory  <integer><unit>, unit B, KB, MB or GB (powers of 1024;
 *                      KiB, MiB, GiB also read), from CAIRN_EXPR_MEMORY_MIN to
 *                      CAIRN_EXPR_MEMORY_MAX (default 256MB)
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"
#include "dsl/workflow_int.h"

static const char *const doc_keys[] = {
    "cairn", "name", "version", "description", "inputs", "outputs", "env", "defaults",
    "triggers", "steps", "on_failure", "limits", NULL};
static const char *const defaults_keys[] = {"timeout", "retry", NULL};
static const char *const limits_keys[] = {"expression_time", "expression_memory", NULL};

/* ---- small document keys -------------------------------------------------- */

static void check_version(wf_ctx *c, const cairn_node *root) {
    const cairn_node *v = cairn_node_get(root, "cairn");
    if (v == NULL)
        cairn__wf_error(c, root, "missing required key 'cairn' (the language version: cairn: 1)");
    else if (!cairn__is_plain(v) || strcmp(cairn_node_kind_name(v), "a number") != 0)
        cairn__expected(c, v, "cairn", "the language version 1");
    else if (strcmp(v->text, "1") != 0)
        cairn__wf_error(c, v, "cairn: unsupported language version %.20s; this engine reads "
                        "version 1", v->text);
}

static void check_name(wf_ctx *c, const cairn_node *root) {
    const cairn_node *v = cairn_node_get(root, "name");
    if (v == NULL) {
        cairn__wf_error(c, root, "missing required key 'name' (the workflow's name)");
        return;
    }
    if (!cairn__want_text(c, v, "name")) return;
    c->wf->name = cairn_strdup(v->text);
    c->wf->name_line = v->line;
    c->wf->name_col = v->col;
    if (v->len > CAIRN_ID_MAX)
        cairn__wf_error(c, v, "name: longer than %d characters", CAIRN_ID_MAX);
    else if (!((v->text[0] >= 'a' && v->text[0] <= 'z') || (v->text[0] >= '0' && v->text[0] <= '9')) ||
             strspn(v->text, "abcdefghijklmnopqrstuvwxyz0123456789_-") != v->len)
        cairn__wf_error(c, v, "name: '%.60s' is not a valid workflow name: use a-z, 0-9, '_' "
                        "and '-', starting with a letter or digit", v->text);
}

static char *text_key(wf_ctx *c, const cairn_node *root, const char *key) {
    const cairn_node *v = cairn_node_get(root, key);
    return v && cairn__want_text(c, v, key) ? cairn_strdup(v->text) : NULL;
}

static void check_outputs(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_map(c, n, "outputs")) return;
    cairn_workflow *wf = c->wf;
    wf->outputs = cairn_calloc((size_t)n->count + 1, sizeof *wf->outputs);
    for (int i = 0; i < n->count; i++) {
        const cairn_node *k = n->keys[i];
        if (!cairn__name_ok(k->text))
            cairn__wf_error(c, k, "outputs: '%.60s' is not a valid output name: use letters, "
                            "digits, '_' and '-', starting with a letter or '_'", k->text);
        cairn_named_tmpl *o = &wf->outputs[wf->n_outputs++];
        o->name = cairn_strdup(k->text);
        o->value = cairn_tmpl_new(n->values[i], wf->exprs, c->file, c->diags);
    }
}

static bool env_name_ok(const char *s) {
    size_t n = strlen(s);
    return n > 0 && !(s[0] >= '0' && s[0] <= '9') &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* Values are text (a plain 8080 is "8080"); they may hold expressions. */
static void check_env(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_map(c, n, "env")) return;
    cairn_workflow *wf = c->wf;
    wf->env = cairn_calloc((size_t)n->count + 1, sizeof *wf->env);
    for (int i = 0; i < n->count; i++) {
        const cairn_node *k = n->keys[i], *v = n->values[i];
        char what[CAIRN_ID_MAX + 8];
        snprintf(what, sizeof what, "env.%.*s", CAIRN_ID_MAX, k->text);
        if (!env_name_ok(k->text))
            cairn__wf_error(c, k, "env: '%.60s' is not a valid variable name: use letters, "
                            "digits and '_', not starting with a digit", k->text);
        if (!cairn__want_text(c, v, what)) continue;
        cairn_named_tmpl *e = &wf->env[wf->n_env++];
        e->name = cairn_strdup(k->text);
        e->value = cairn_tmpl_from_string(v->text, v->line, v->col, wf->exprs,
                                          c->file, c->diags);
    }
}

/* Checked once here; each step without its own copies them (check_steps.c). */
static void check_defaults(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_map(c, n, "defaults")) return;
    cairn__check_keys(c, n, defaults_keys, "defaults", NULL, NULL);
    const cairn_node *v;
    if ((v = cairn_node_get(n, "timeout")))
        cairn__want_duration(c, v, "defaults.timeout", false, &c->default_timeout_ms);
    if ((v = cairn_node_get(n, "retry"))) {
        cairn_retry r = {0};
        if (cairn__check_retry(c, v, &r)) c->default_retry = v;
        free(r.on);
        cairn_tmpl_free(r.until);
    }
}

/* "256MB" to bytes; -1 when it is not <integer><unit> or overflows. */
static int64_t parse_size(const char *s) {
    static const struct { const char *unit; int shift; } units[] = {
        {"B", 0}, {"KB", 10}, {"KiB", 10}, {"MB", 20}, {"MiB", 20}, {"GB", 30}, {"GiB", 30}};
    int64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX >> 30) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    if (p == s) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(p, units[i].unit) == 0) return v << units[i].shift;
    return -1;
}

static void check_limits(wf_ctx *c, const cairn_node *n) {
    if (!cairn__want_map(c, n, "limits")) return;
    cairn__check_keys(c, n, limits_keys, "limits", NULL, NULL);
    int64_t time_ms = CAIRN_EXPR_TIME_MS_DEFAULT, memory = CAIRN_EXPR_MEMORY_DEFAULT;
    const cairn_node *v;
    if ((v = cairn_node_get(n, "expression_time")) &&
        cairn__want_duration(c, v, "limits.expression_time", false, &time_ms) &&
        time_ms > CAIRN_EXPR_TIME_MS_MAX)
        cairn__wf_error(c, v, "limits.expression_time: %.30s is longer than the most allowed, "
                        "%ds", v->text, CAIRN_EXPR_TIME_MS_MAX / 1000);
    if ((v = cairn_node_get(n, "expression_memory")) &&
        cairn__want_text(c, v, "limits.expression_memory")) {
        memory = parse_size(v->text);
        if (memory < CAIRN_EXPR_MEMORY_MIN || memory > CAIRN_EXPR_MEMORY_MAX)
            cairn__wf_error(c, v, "limits.expression_memory: expected a size from %lldMB to "
                            "%lldGB such as 256MB (units B, KB, MB, GB), got '%.30s'",
                            CAIRN_EXPR_MEMORY_MIN >> 20, CAIRN_EXPR_MEMORY_MAX >> 30, v->text);
    }
    cairn_exprset_set_limits(c->wf->exprs, time_ms, memory);
}

/* ---- step lists ----------------------------------------------------------- */

static void check_block(wf_ctx *c, const cairn_node *n, wf_block_kind kind) {
    wf_block *blk = &c->blocks[kind];
    const char *what = blk->name;
    if (!cairn__want_seq(c, n, what)) return;
    if (n->count == 0 && kind == BLOCK_STEPS)
        cairn__wf_error(c, n, "steps: expected at least one step");
    blk->steps = cairn_calloc((size_t)n->count + 1, sizeof *blk->steps);
    blk->needs = cairn_calloc((size_t)n->count + 1, sizeof *blk->needs);
    blk->nodes = cairn_calloc((size_t)n->count + 1, sizeof *blk->nodes);
    for (int i = 0; i < n->count; i++) {
        blk->nodes[i] = n->values[i];
        blk->steps[i].index = i;
        cairn__check_step(c, n->values[i], &blk->steps[i], kind, &blk->needs[i]);
        blk->n = i + 1;
    }
}

static bool too_many(wf_ctx *c, const cairn_node *root, int count, const char *counted) {
    if (count <= CAIRN_MAX_STEPS) return false;
    cairn__wf_error(c, root, "too many steps: %d %s (the limit is %d)", count, counted,
                    CAIRN_MAX_STEPS);
    c->limit = true;
    return true;
}

static void check_steps(wf_ctx *c, const cairn_node *root) {
    const cairn_node *steps = cairn_node_get(root, "steps");
    const cairn_node *fail = cairn_node_get(root, "on_failure");
    int count = (steps && steps->kind == CAIRN_NODE_SEQ ? steps->count : 0) +
                (fail && fail->kind == CAIRN_NODE_SEQ ? fail->count : 0);
    if (too_many(c, steps ? steps : root, count, "in steps and on_failure")) return;
    if (steps) check_block(c, steps, BLOCK_STEPS);
    else cairn__wf_error(c, root, "missing required key 'steps' (a list of steps)");
    if (fail) check_block(c, fail, BLOCK_ON_FAILURE);
    if (too_many(c, steps ? steps : root, count + c->n_bodies, "counting compensate bodies"))
        return;
    cairn__resolve_needs(c);
}

static void check_document(wf_ctx *c, const cairn_node *root) {
    if (root->kind != CAIRN_NODE_MAP) {
        cairn__expected(c, root, "workflow", "a map of keys (cairn, name, steps...)");
        return;
    }
    cairn__check_keys(c, root, doc_keys, "the workflow", NULL, NULL);
    check_version(c, root);
    check_name(c, root);
    c->wf->version = text_key(c, root, "version");
    c->wf->description = text_key(c, root, "description");
    const cairn_node *v;
    if ((v = cairn_node_get(root, "inputs"))) cairn__check_inputs_spec(c, v);
    if ((v = cairn_node_get(root, "outputs"))) check_outputs(c, v);
    if ((v = cairn_node_get(root, "env"))) check_env(c, v);
    if ((v = cairn_node_get(root, "defaults"))) check_defaults(c, v);
    if ((v = cairn_node_get(root, "triggers"))) cairn__check_triggers(c, v);
    if ((v = cairn_node_get(root, "limits"))) check_limits(c, v);
    check_steps(c, root);
}

/* ---- load and free -------------------------------------------------------- */

void cairn_workflow_hash(const char *src, size_t len, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(src, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static cairn_workflow *wf_new(const char *file, const char *src, size_t len) {
    cairn_workflow *wf = cairn_calloc(1, sizeof *wf);
    wf->file = cairn_strdup(file);
    wf->source = cairn_strndup(src, len);
    wf->source_len = len;
    cairn_workflow_hash(src, len, wf->sha256);
    wf->triggers = jv_invalid();
    wf->exprs = cairn_exprset_new();
    return wf;
}

/* The blocks become the workflow's step arrays (owned by it from here). */
static void adopt_blocks(wf_ctx *c) {
    cairn_workflow *wf = c->wf;
    wf->steps = c->blocks[BLOCK_STEPS].steps;
    wf->n_steps = c->blocks[BLOCK_STEPS].n;
    wf->on_failure = c->blocks[BLOCK_ON_FAILURE].steps;
    wf->n_on_failure = c->blocks[BLOCK_ON_FAILURE].n;
    for (int b = 0; b < 2; b++) {
        free(c->blocks[b].needs);
        free(c->blocks[b].nodes);
    }
}

int cairn_workflow_load(const char *file, const char *src, size_t len,
                        cairn_action_lookup lookup, cairn_workflow **out,
                        cairn_diags *diags) {
    cairn_diags local = CAIRN_DIAGS_INIT;
    if (diags == NULL) diags = &local;
    if (file == NULL) file = "<input>";
    *out = NULL;
    int before = cairn_diags_count(diags), first = diags->count;
    cairn_yaml_doc *doc = NULL;
    int rc = cairn_yaml_parse(file, src, len, &doc, diags);   /* stops at its first error */
    if (rc == 0) {
        wf_ctx c = {.file = file, .diags = diags, .lookup = lookup,
                    .wf = wf_new(file, src, len),
                    .blocks = {{.name = "steps"}, {.name = "on_failure"}}};
        check_document(&c, cairn_yaml_root(doc));
        adopt_blocks(&c);
        cairn__check_refs(&c);
        cairn_exprset_compile(c.wf->exprs, diags);
        cairn_diags_sort(diags, first);
        rc = cairn_diags_count(diags) == before ? 0 : c.limit ? CAIRN_ELIMIT : CAIRN_ESYNTAX;
        if (rc == 0) *out = c.wf;
        else cairn_workflow_free(c.wf);
    }
    cairn_yaml_free(doc);
    cairn_diags_free(&local);
    return rc;
}

int cairn__read_source(const char *path, cairn_buf *b, cairn_diags *diags) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        cairn_diags_add(diags, path, 0, 0, "cannot open: %s", strerror(errno));
        rc = CAIRN_EIO;
    } else if (S_ISREG(st.st_mode) && st.st_size > (off_t)CAIRN_YAML_MAX_BYTES) {
        cairn_diags_add(diags, path, 0, 0, "file too large: %lld bytes (the limit is %u)",
                        (long long)st.st_size, CAIRN_YAML_MAX_BYTES);
        rc = CAIRN_ELIMIT;
    }
    char chunk[65536];
    while (rc == 0 && b->len <= CAIRN_YAML_MAX_BYTES) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            cairn_diags_add(diags, path, 0, 0, "cannot read: %s", strerror(errno));
            rc = CAIRN_EIO;
        }
        if (n <= 0) break;
        cairn_buf_append(b, chunk, (size_t)n);
    }
    if (fd >= 0) close(fd);
    return rc;
}

int cairn_workflow_load_file(const char *path, cairn_action_lookup lookup,
                             cairn_workflow **out, cairn_diags *diags) {
    cairn_diags local = CAIRN_DIAGS_INIT;
    if (diags == NULL) diags = &local;
    cairn_buf b = CAIRN_BUF_INIT;
    *out = NULL;
    int rc = cairn__read_source(path, &b, diags);
    if (rc == 0) rc = cairn_workflow_load(path, b.data ? b.data : "", b.len, lookup, out, diags);
    cairn_buf_free(&b);
    cairn_diags_free(&local);
    return rc;
}

void cairn__name_refs_free(cairn_name_ref *a, int n) {
    for (int i = 0; i < n; i++) free(a[i].name);
    free(a);
}

static void free_named(cairn_named_tmpl *a, int n) {
    for (int i = 0; i < n; i++) {
        free(a[i].name);
        cairn_tmpl_free(a[i].value);
    }
    free(a);
}

static void free_steps(cairn_step *s, int n) {
    for (int i = 0; i < n; i++) cairn__step_free(&s[i]);
    free(s);
}

void cairn_workflow_free(cairn_workflow *wf) {
    if (wf == NULL) return;
    for (int i = 0; i < wf->n_inputs; i++) {
        cairn_input_spec *s = &wf->inputs[i];
        free(s->name);
        jv_free(s->default_);
        jv_free(s->enum_);
        free(s->pattern);
        pcre2_code_free(s->pattern_code);
        free(s->description);
    }
    free(wf->inputs);
    free_named(wf->outputs, wf->n_outputs);
    free_named(wf->env, wf->n_env);
    free_steps(wf->steps, wf->n_steps);
    free_steps(wf->on_failure, wf->n_on_failure);
    jv_free(wf->triggers);
    cairn_exprset_free(wf->exprs);
    free(wf->file);
    free(wf->source);
    free(wf->name);
    free(wf->version);
    free(wf->description);
    cairn__name_refs_free(wf->secrets, wf->n_secrets);
    cairn__name_refs_free(wf->children, wf->n_children);
    free(wf);
}
