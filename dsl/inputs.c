/*
 * inputs.c - a workflow's input specs: checked when it is loaded, and
 * enforced on the inputs of each run before anything is journaled.
 *
 * One function decides whether a value fits a spec (type, enum, pattern),
 * so a default is held to exactly the rules a caller's value is.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/json.h"
#include "dsl/workflow_int.h"

static const char *const spec_keys[] = {
    "type", "required", "default", "enum", "pattern", "description", NULL};
static const char *const type_names[] = {
    "string", "number", "integer", "boolean", "object", "array", NULL};

#define SHOWN_MAX 200          /* characters of a value or enum quoted in a message */

static const char *jv_kind_text(jv v) {
    switch (jv_get_kind(v)) {
    case JV_KIND_STRING: return "a string";
    case JV_KIND_NUMBER: return "a number";
    case JV_KIND_TRUE:
    case JV_KIND_FALSE: return "a boolean";
    case JV_KIND_OBJECT: return "an object";
    case JV_KIND_ARRAY: return "an array";
    case JV_KIND_NULL: return "null";
    default: return "nothing";
    }
}

static const char *type_text(cairn_input_type t) {
    static const char *const a[] = {"a string", "a number", "an integer", "a boolean",
                                    "an object", "an array"};
    return a[t];
}

static bool type_fits(cairn_input_type t, jv v) {
    jv_kind k = jv_get_kind(v);
    double x = k == JV_KIND_NUMBER ? jv_number_value(v) : 0;
    switch (t) {
    case CAIRN_INPUT_STRING: return k == JV_KIND_STRING;
    case CAIRN_INPUT_NUMBER: return k == JV_KIND_NUMBER && isfinite(x);
    case CAIRN_INPUT_INTEGER: return k == JV_KIND_NUMBER && isfinite(x) && floor(x) == x;
    case CAIRN_INPUT_BOOLEAN: return k == JV_KIND_TRUE || k == JV_KIND_FALSE;
    case CAIRN_INPUT_OBJECT: return k == JV_KIND_OBJECT;
    case CAIRN_INPUT_ARRAY: return k == JV_KIND_ARRAY;
    }
    return false;
}

static bool pattern_matches(const cairn_input_spec *s, jv v) {
    pcre2_code *re = s->pattern_code;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)jv_string_value(v),
                         (PCRE2_SIZE)jv_string_length_bytes(jv_copy(v)), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static bool in_enum(const cairn_input_spec *s, jv v) {
    int n = jv_array_length(jv_copy(s->enum_));
    for (int i = 0; i < n; i++)
        if (jv_equal(jv_array_get(jv_copy(s->enum_), i), jv_copy(v))) return true;
    return false;
}

static void shown(jv v, char *buf, size_t size) {
    jv_dump_string_trunc(jv_copy(v), buf, size);
}

/* NULL when v (borrowed) fits s; else a message in buf. */
static const char *value_problem(const cairn_input_spec *s, jv v, char *buf, size_t size) {
    char a[SHOWN_MAX], b[SHOWN_MAX];
    if (!type_fits(s->type, v)) {
        snprintf(buf, size, "expected %s, got %s", type_text(s->type), jv_kind_text(v));
    } else if (jv_is_valid(s->enum_) && !in_enum(s, v)) {
        shown(v, a, sizeof a), shown(s->enum_, b, sizeof b);
        snprintf(buf, size, "%s is not one of %s", a, b);
    } else if (s->pattern_code && !pattern_matches(s, v)) {
        shown(v, a, sizeof a);
        snprintf(buf, size, "%s does not match the pattern '%s'", a, s->pattern);
    } else {
        return NULL;
    }
    return buf;
}

/* ---- at load time ----------------------------------------------------- */

/* Returns false when the type is missing or unknown (then values are not
 * checked against it, to spare the author a cascade of errors). */
static bool spec_type(wf_ctx *c, const cairn_node *spec, cairn_input_spec *s, const char *what) {
    const cairn_node *t = cairn_node_get(spec, "type");
    char w[CAIRN_ID_MAX + 40];
    snprintf(w, sizeof w, "%s.type", what);
    if (t == NULL) {
        cairn__wf_error(c, spec, "%s: missing 'type' (string, number, integer, boolean, object "
                        "or array)", what);
        return false;
    }
    if (!cairn__want_text(c, t, w)) return false;
    for (int i = 0; type_names[i]; i++)
        if (strcmp(type_names[i], t->text) == 0) {
            s->type = (cairn_input_type)i;
            return true;
        }
    const char *hint = cairn__suggest(t->text, type_names, -1);
    if (hint)
        cairn__wf_error(c, t, "%s: unknown type '%s' (did you mean '%s'?)", w, t->text, hint);
    else
        cairn__wf_error(c, t, "%s: unknown type '%.60s'; expected string, number, integer, "
                        "boolean, object or array", w, t->text);
    return false;
}

static void spec_pattern(wf_ctx *c, const cairn_node *p, cairn_input_spec *s, const char *what) {
    char w[CAIRN_ID_MAX + 40];
    snprintf(w, sizeof w, "%s.pattern", what);
    if (s->type != CAIRN_INPUT_STRING) {
        cairn__wf_error(c, p, "%s: a pattern applies only to type string", w);
        return;
    }
    s->pattern_code = cairn__compile_pattern(c, p, w);
    if (s->pattern_code) s->pattern = cairn_strdup(p->text);
}

/* Check a value given in the spec (default, enum entries) against the rest. */
static void spec_value(wf_ctx *c, const cairn_node *n, const cairn_input_spec *s, const char *what) {
    char buf[600];
    jv v = cairn_node_to_jv(n);
    const char *why = value_problem(s, v, buf, sizeof buf);
    if (why) cairn__wf_error(c, n, "%s: %s", what, why);
    jv_free(v);
}

static void spec_enum(wf_ctx *c, const cairn_node *e, cairn_input_spec *s, const char *what) {
    char w[CAIRN_ID_MAX + 40];
    snprintf(w, sizeof w, "%s.enum", what);
    if (!cairn__want_seq(c, e, w)) return;
    if (e->count == 0) {
        cairn__wf_error(c, e, "%s: expected at least one value", w);
        return;
    }
    for (int i = 0; i < e->count; i++) spec_value(c, e->values[i], s, w);  /* enum_ unset yet */
    s->enum_ = cairn_node_to_jv(e);
}

static void check_spec(wf_ctx *c, const cairn_node *key, const cairn_node *spec,
                       cairn_input_spec *s) {
    char what[CAIRN_ID_MAX + 16];
    snprintf(what, sizeof what, "inputs.%.*s", CAIRN_ID_MAX + 1, key->text);
    s->name = cairn_strdup(key->text);
    if (!cairn__name_ok(key->text))
        cairn__wf_error(c, key, "inputs: '%.60s' is not a valid input name: use letters, digits, "
                        "'_' and '-', starting with a letter or '_' (at most %d)", key->text,
                        CAIRN_ID_MAX);
    if (!cairn__want_map(c, spec, what)) return;
    cairn__check_keys(c, spec, spec_keys, "an input spec", NULL, NULL);
    bool typed = spec_type(c, spec, s, what);
    const cairn_node *v;
    char w[CAIRN_ID_MAX + 40];
    snprintf(w, sizeof w, "%s.required", what);
    if ((v = cairn_node_get(spec, "required"))) cairn__want_bool(c, v, w, &s->required);
    if ((v = cairn_node_get(spec, "pattern")) && typed) spec_pattern(c, v, s, what);
    if ((v = cairn_node_get(spec, "enum")) && typed) spec_enum(c, v, s, what);
    snprintf(w, sizeof w, "%s.default", what);
    if ((v = cairn_node_get(spec, "default")) && typed) {
        spec_value(c, v, s, w);
        s->default_ = cairn_node_to_jv(v);
    }
    snprintf(w, sizeof w, "%s.description", what);
    if ((v = cairn_node_get(spec, "description")) && cairn__want_text(c, v, w))
        s->description = cairn_strdup(v->text);
}

void cairn__check_inputs_spec(wf_ctx *c, const cairn_node *inputs) {
    if (!cairn__want_map(c, inputs, "inputs")) return;
    cairn_workflow *wf = c->wf;
    wf->inputs = cairn_calloc((size_t)inputs->count + 1, sizeof *wf->inputs);
    for (int i = 0; i < inputs->count; i++) {
        cairn_input_spec *s = &wf->inputs[wf->n_inputs++];
        s->default_ = jv_invalid();
        s->enum_ = jv_invalid();
        check_spec(c, inputs->keys[i], inputs->values[i], s);
    }
}

/* ---- at run time -------------------------------------------------------- */

static const cairn_input_spec *find_spec(const cairn_workflow *wf, const char *name) {
    for (int i = 0; i < wf->n_inputs; i++)
        if (strcmp(wf->inputs[i].name, name) == 0) return &wf->inputs[i];
    return NULL;
}

static int no_such_input(const cairn_workflow *wf, const char *name, cairn_err *err) {
    if (wf->n_inputs == 0)
        return cairn_err_set(err, CAIRN_EINVAL, "input '%s': this workflow takes no inputs", name);
    const char **names = cairn_malloc((size_t)wf->n_inputs * sizeof *names);
    cairn_buf all = CAIRN_BUF_INIT;
    for (int i = 0; i < wf->n_inputs; i++) {
        names[i] = wf->inputs[i].name;
        cairn_buf_printf(&all, "%s%s", i ? ", " : "", names[i]);
    }
    const char *hint = cairn__suggest(name, names, wf->n_inputs);
    if (hint) cairn_err_set(err, CAIRN_EINVAL, "input '%s': no such input (did you mean '%s'?)",
                            name, hint);
    else cairn_err_set(err, CAIRN_EINVAL, "input '%.100s': no such input; this workflow takes: %s",
                       name, all.data);
    cairn_buf_free(&all);
    free(names);
    return CAIRN_EINVAL;
}

static int check_unknown(const cairn_workflow *wf, jv in, cairn_err *err) {
    int rc = 0;
    jv keys = jv_keys(jv_copy(in));     /* sorted: the first error is deterministic */
    for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(keys)); i++) {
        jv k = jv_array_get(jv_copy(keys), i);
        if (find_spec(wf, jv_string_value(k)) == NULL) rc = no_such_input(wf, jv_string_value(k), err);
        jv_free(k);
    }
    jv_free(keys);
    return rc;
}

/* Check or fill input s in *res (owned).  A null value counts as not given. */
static int check_one(const cairn_input_spec *s, jv *res, cairn_err *err) {
    jv v = jv_object_get(jv_copy(*res), jv_string(s->name));
    char buf[600];
    const char *why = NULL;
    int rc = 0;
    if (!jv_is_valid(v) || jv_get_kind(v) == JV_KIND_NULL) {
        if (s->required) rc = cairn_err_set(err, CAIRN_EINVAL, "input '%s' is required", s->name);
        else if (jv_is_valid(s->default_))
            *res = jv_object_set(*res, jv_string(s->name), jv_copy(s->default_));
        else if (jv_is_valid(v))
            *res = jv_object_delete(*res, jv_string(s->name));
    } else if ((why = value_problem(s, v, buf, sizeof buf))) {
        rc = cairn_err_set(err, CAIRN_EINVAL, "input '%s': %s", s->name, why);
    }
    jv_free(v);
    return rc;
}

int cairn_workflow_check_inputs(const cairn_workflow *wf, jv inputs, jv *out, cairn_err *err) {
    jv_kind k = jv_get_kind(inputs);
    *out = jv_invalid();
    if (k != JV_KIND_OBJECT && k != JV_KIND_NULL && k != JV_KIND_INVALID)
        return cairn_err_set(err, CAIRN_EINVAL, "inputs: expected an object, got %s",
                             jv_kind_text(inputs));
    jv res = k == JV_KIND_OBJECT ? jv_copy(inputs) : jv_object();
    int rc = check_unknown(wf, res, err);
    for (int i = 0; rc == 0 && i < wf->n_inputs; i++) rc = check_one(&wf->inputs[i], &res, err);
    if (rc) {
        jv_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* ---- --input name=text ---------------------------------------------------- */

static jv parse_as(cairn_input_type t, const char *text) {
    if (t == CAIRN_INPUT_STRING) return jv_string(text);
    if (t == CAIRN_INPUT_BOOLEAN)
        return strcmp(text, "true") == 0 ? jv_true() : strcmp(text, "false") == 0 ? jv_false()
                                                                                   : jv_invalid();
    return cairn_json_parse(text, strlen(text));
}

int cairn_workflow_parse_input(const cairn_workflow *wf, const char *name, const char *text,
                               jv *out, cairn_err *err) {
    *out = jv_invalid();
    const cairn_input_spec *s = find_spec(wf, name);
    if (s == NULL) return no_such_input(wf, name, err);
    jv v = parse_as(s->type, text);
    if (!jv_is_valid(v) || !type_fits(s->type, v)) {
        jv_free(v);
        return cairn_err_set(err, CAIRN_EINVAL, "input '%s': expected %s, got '%.200s'", name,
                             type_text(s->type), text);
    }
    *out = v;
    return 0;
}
