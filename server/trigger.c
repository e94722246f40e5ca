/*
 * trigger.c - matching trigger events against workflows' webhook triggers
 * (trigger.h).
 *
 * The loader keeps `triggers` as JSON (wf->triggers).  Here each webhook
 * trigger's patterns are compiled once, and each string of its `dedupe`
 * and `inputs` that holds `${{` becomes a template of one expression set,
 * compiled in one go; an `inputs` value is rendered by walking its JSON in
 * the same order it was walked to build the templates.
 */
#include "server/trigger.h"

#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/json.h"
#include "common/mem.h"

typedef struct {
    char *field;
    pcre2_code *re;
} trig_match;

typedef struct {
    const cairn_workflow *wf;
    int index;                 /* in wf->triggers */
    char *source;
    trig_match *match;
    int n_match;
    cairn_tmpl *dedupe;        /* or NULL: no key */
    jv inputs;                 /* the mapping as written, or an empty object */
    cairn_tmpl **tmpls;        /* for each string of inputs holding ${{, in walk order */
    int n_tmpls;
} trig;

struct cairn_triggers {
    trig *t;
    int n;
    cairn_exprset *set;
    pcre2_match_context *mctx;
};

/* ---- building ---------------------------------------------------------------- */

static bool has_expr(jv s) {
    return jv_get_kind(s) == JV_KIND_STRING && strstr(jv_string_value(s), "${{") != NULL;
}

/* Give each string of v that holds an expression a template, in walk order. */
static void build_tmpls(trig *tr, jv v, cairn_exprset *set, cairn_diags *d) {
    if (has_expr(v)) {
        tr->tmpls = cairn_realloc(tr->tmpls, (size_t)(tr->n_tmpls + 1) * sizeof *tr->tmpls);
        tr->tmpls[tr->n_tmpls++] =
            cairn_tmpl_from_string(jv_string_value(v), 0, 0, set, tr->wf->file, d);
    } else if (jv_get_kind(v) == JV_KIND_OBJECT) {
        jv_object_foreach(v, k, val) {
            build_tmpls(tr, val, set, d);
            jv_free(k);
            jv_free(val);
        }
    } else if (jv_get_kind(v) == JV_KIND_ARRAY) {
        jv_array_foreach(v, i, val) {
            build_tmpls(tr, val, set, d);
            jv_free(val);
        }
    }
}

static int build_match(trig *tr, jv match, cairn_err *err) {
    if (jv_get_kind(match) != JV_KIND_OBJECT) return 0;
    int rc = 0;
    jv_object_foreach(match, k, pat) {
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = NULL;
        if (rc == 0 && jv_get_kind(pat) == JV_KIND_STRING)
            re = pcre2_compile((PCRE2_SPTR)jv_string_value(pat), PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                               &code, &off, NULL);
        if (rc == 0 && re == NULL)
            rc = cairn_err_set(err, CAIRN_ESYNTAX, "%s: triggers[%d].match.%s: not a pattern",
                               tr->wf->file, tr->index, jv_string_value(k));
        if (re) {
            tr->match = cairn_realloc(tr->match, (size_t)(tr->n_match + 1) * sizeof *tr->match);
            tr->match[tr->n_match++] = (trig_match){cairn_strdup(jv_string_value(k)), re};
        }
        jv_free(k);
        jv_free(pat);
    }
    return rc;
}

static jv get(jv obj, const char *key) {
    if (jv_get_kind(obj) != JV_KIND_OBJECT) return jv_null();
    jv v = jv_object_get(jv_copy(obj), jv_string(key));
    return jv_is_valid(v) ? v : (jv_free(v), jv_null());
}

/* Add trigger i of wf when it is a webhook trigger. */
static int add_trigger(cairn_triggers *ts, const cairn_workflow *wf, int i, cairn_diags *d,
                       cairn_err *err) {
    jv t = jv_array_get(jv_copy(wf->triggers), i), hook = get(t, "webhook");
    int rc = 0;
    if (jv_get_kind(hook) == JV_KIND_STRING) {
        ts->t = cairn_realloc(ts->t, (size_t)(ts->n + 1) * sizeof *ts->t);
        trig *tr = &ts->t[ts->n++];
        memset(tr, 0, sizeof *tr);
        tr->wf = wf;
        tr->index = i;
        tr->source = cairn_strdup(jv_string_value(hook));
        jv dedupe = get(t, "dedupe"), inputs = get(t, "inputs"), match = get(t, "match");
        if (jv_get_kind(dedupe) == JV_KIND_STRING)
            tr->dedupe = cairn_tmpl_from_string(jv_string_value(dedupe), 0, 0, ts->set, wf->file, d);
        tr->inputs = jv_get_kind(inputs) == JV_KIND_OBJECT ? jv_copy(inputs) : jv_object();
        build_tmpls(tr, tr->inputs, ts->set, d);
        rc = build_match(tr, match, err);
        jv_free(dedupe);
        jv_free(inputs);
        jv_free(match);
    }
    jv_free(hook);
    jv_free(t);
    return rc;
}

int cairn_triggers_new(cairn_workflow *const *wfs, int n, cairn_triggers **out, cairn_err *err) {
    cairn_triggers *ts = cairn_calloc(1, sizeof *ts);
    cairn_diags d = CAIRN_DIAGS_INIT;
    ts->set = cairn_exprset_new();
    ts->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(ts->mctx, CAIRN_TRIGGER_MATCH_LIMIT);
    pcre2_set_depth_limit(ts->mctx, CAIRN_TRIGGER_MATCH_LIMIT);
    int rc = 0;
    for (int w = 0; rc == 0 && w < n; w++) {
        if (jv_get_kind(wfs[w]->triggers) != JV_KIND_ARRAY) continue;
        for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(wfs[w]->triggers)); i++)
            rc = add_trigger(ts, wfs[w], i, &d, err);
    }
    if (rc == 0 && (cairn_diags_count(&d) > 0 || cairn_exprset_compile(ts->set, &d) != 0)) {
        cairn_diags_to_err(&d, err);
        rc = CAIRN_ESYNTAX;
    }
    cairn_diags_free(&d);
    if (rc) {
        cairn_triggers_free(ts);
        ts = NULL;
    }
    *out = ts;
    return rc;
}

int cairn_triggers_count(const cairn_triggers *t) { return t ? t->n : 0; }

void cairn_triggers_free(cairn_triggers *ts) {
    if (ts == NULL) return;
    for (int i = 0; i < ts->n; i++) {
        trig *tr = &ts->t[i];
        for (int k = 0; k < tr->n_match; k++) {
            free(tr->match[k].field);
            pcre2_code_free(tr->match[k].re);
        }
        for (int k = 0; k < tr->n_tmpls; k++) cairn_tmpl_free(tr->tmpls[k]);
        free(tr->match);
        free(tr->tmpls);
        free(tr->source);
        cairn_tmpl_free(tr->dedupe);
        jv_free(tr->inputs);
    }
    free(ts->t);
    cairn_exprset_free(ts->set);
    pcre2_match_context_free(ts->mctx);
    free(ts);
}

/* ---- matching ---------------------------------------------------------------- */

/* v (consumed) as text: strings as they are, numbers and booleans as JSON;
 * jv_invalid() for anything else. */
static jv as_text(jv v) {
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_STRING) return v;
    if (k == JV_KIND_NUMBER || k == JV_KIND_TRUE || k == JV_KIND_FALSE) {
        char *s = cairn_json_text(v);
        jv t = jv_string(s);
        free(s);
        jv_free(v);
        return t;
    }
    jv_free(v);
    return jv_invalid();
}

/* The subject a pattern on field is tested against: the event's own field,
 * else its label; jv_invalid() when there is neither. */
static jv subject(jv ev, const char *field) {
    jv own = as_text(get(ev, field));
    if (jv_is_valid(own)) return own;
    jv labels = get(ev, "labels");
    jv l = as_text(get(labels, field));
    jv_free(labels);
    return l;
}

/* 1 when every pattern of tr finds a match in ev, 0 when one does not, or
 * -1 with *why when a search failed (its limit). */
static int matches(cairn_triggers *ts, const trig *tr, jv ev, jv *why) {
    jv src = get(ev, "source");
    int ok = jv_get_kind(src) == JV_KIND_STRING && strcmp(jv_string_value(src), tr->source) == 0;
    jv_free(src);
    for (int k = 0; ok == 1 && k < tr->n_match; k++) {
        jv s = subject(ev, tr->match[k].field);
        if (!jv_is_valid(s)) {
            jv_free(s);
            return 0;
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(tr->match[k].re, NULL);
        int rc = pcre2_match(tr->match[k].re, (PCRE2_SPTR)jv_string_value(s),
                             (PCRE2_SIZE)jv_string_length_bytes(jv_copy(s)), 0, 0, md, ts->mctx);
        pcre2_match_data_free(md);
        jv_free(s);
        if (rc == PCRE2_ERROR_NOMATCH) ok = 0;
        else if (rc < 0) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(rc, msg, sizeof msg);
            *why = jv_string_fmt("match.%s: %s", tr->match[k].field, (const char *)msg);
            ok = -1;
        }
    }
    return ok;
}

/* Render v by the walk build_tmpls made: each string holding an
 * expression takes the next template. */
static jv render(cairn_triggers *ts, const trig *tr, jv v, int *k, jv ev, jv *why) {
    if (has_expr(v)) {
        jv out = jv_null();
        cairn_err err;
        if (cairn_tmpl_render(tr->tmpls[(*k)++], ts->set, ev, &out, &err) != 0) {
            if (!jv_is_valid(*why)) *why = jv_string(err.msg);   /* the first failure */
            out = jv_null();
        }
        jv_free(v);
        return out;
    }
    if (jv_get_kind(v) == JV_KIND_OBJECT) {
        jv out = jv_object();
        jv_object_foreach(v, key, val) out = jv_object_set(out, key, render(ts, tr, val, k, ev, why));
        jv_free(v);
        return out;
    }
    if (jv_get_kind(v) == JV_KIND_ARRAY) {
        jv out = jv_array();
        jv_array_foreach(v, i, val) out = jv_array_append(out, render(ts, tr, val, k, ev, why));
        jv_free(v);
        return out;
    }
    return v;
}

/* The dedupe key of ev under tr: a string, null when tr has none, or
 * jv_invalid() with *why. */
static jv dedupe_key(cairn_triggers *ts, const trig *tr, jv ev, jv *why) {
    if (tr->dedupe == NULL) return jv_null();
    jv v;
    cairn_err err;
    if (cairn_tmpl_render(tr->dedupe, ts->set, ev, &v, &err) != 0) {
        *why = jv_string_fmt("dedupe: %s", err.msg);
        return jv_invalid();
    }
    jv key = as_text(v);
    int len = jv_is_valid(key) ? jv_string_length_bytes(jv_copy(key)) : 0;
    if (len == 0) *why = jv_string("dedupe: the key is empty (null, \"\", an object or a list)");
    else if (len > CAIRN_TRIGGER_DEDUPE_MAX)
        *why = jv_string_fmt("dedupe: the key is %d bytes, more than %d", len, CAIRN_TRIGGER_DEDUPE_MAX);
    if (len == 0 || len > CAIRN_TRIGGER_DEDUPE_MAX) {
        jv_free(key);
        return jv_invalid();
    }
    return key;
}

/* The inputs of a run of tr for ev, checked against the workflow, or
 * jv_invalid() with *why. */
static jv run_inputs(cairn_triggers *ts, const trig *tr, jv ev, jv *why) {
    int k = 0;
    jv in = render(ts, tr, jv_copy(tr->inputs), &k, ev, why), out = jv_invalid();
    cairn_err err;
    if (jv_is_valid(*why)) {
        jv msg = jv_string_fmt("inputs: %s", jv_string_value(*why));
        jv_free(*why);
        *why = msg;
    } else if (cairn_workflow_check_inputs(tr->wf, in, &out, &err) != 0) {
        *why = jv_string_fmt("inputs: %s", err.msg);
        out = jv_invalid();
    }
    jv_free(in);
    return out;
}

static jv entry(const trig *tr, int e, jv ev) {
    jv o = jv_object();
    o = jv_object_set(o, jv_string("workflow"), jv_string(tr->wf->name));
    o = jv_object_set(o, jv_string("file"), jv_string(tr->wf->file));
    o = jv_object_set(o, jv_string("sha256"), jv_string(tr->wf->sha256));
    o = jv_object_set(o, jv_string("trigger"), jv_number(tr->index));
    o = jv_object_set(o, jv_string("event"), jv_number(e));
    return jv_object_set(o, jv_string("fingerprint"), get(ev, "fingerprint"));
}

static jv add(jv answer, const char *list, jv item) {
    jv l = jv_object_get(jv_copy(answer), jv_string(list));
    return jv_object_set(answer, jv_string(list), jv_array_append(l, item));
}

/* Apply one trigger that matched event e to the answer. */
static jv apply(cairn_triggers *ts, const trig *tr, int e, jv ev, jv answer) {
    jv why = jv_invalid();
    bool resolved = jv_equal(get(ev, "status"), jv_string("resolved"));
    jv key = dedupe_key(ts, tr, ev, &why);
    jv inputs = jv_is_valid(key) && !resolved ? run_inputs(ts, tr, ev, &why) : jv_invalid();
    jv o = entry(tr, e, ev);
    if (jv_is_valid(why)) {
        answer = add(answer, "refused", jv_object_set(jv_object_delete(o, jv_string("sha256")),
                                                     jv_string("error"), why));
        why = jv_invalid();
    } else {
        o = jv_object_set(o, jv_string("dedupe"), jv_copy(key));
        if (!resolved) o = jv_object_set(o, jv_string("inputs"), jv_copy(inputs));
        answer = add(answer, resolved ? "resolve" : "start", o);
    }
    jv_free(why);
    jv_free(key);
    jv_free(inputs);
    return answer;
}

static jv unmatched(int e, jv ev) {
    static const char *const keys[] = {"source", "alertname", "status", "fingerprint"};
    jv o = jv_object_set(jv_object(), jv_string("event"), jv_number(e));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        o = jv_object_set(o, jv_string(keys[i]), get(ev, keys[i]));
    return o;
}

jv cairn_triggers_match(cairn_triggers *ts, jv events) {
    jv answer = jv_object();
    static const char *const lists[] = {"start", "resolve", "refused", "unmatched"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        answer = jv_object_set(answer, jv_string(lists[i]), jv_array());
    for (int e = 0; jv_get_kind(events) == JV_KIND_ARRAY && e < jv_array_length(jv_copy(events)); e++) {
        jv ev = jv_array_get(jv_copy(events), e);
        bool any = false;
        for (int i = 0; i < ts->n; i++) {
            jv why = jv_invalid();
            int m = matches(ts, &ts->t[i], ev, &why);
            if (m < 0) {
                jv o = jv_object_delete(entry(&ts->t[i], e, ev), jv_string("sha256"));
                answer = add(answer, "refused", jv_object_set(o, jv_string("error"), why));
                why = jv_invalid();
            } else if (m > 0) {
                answer = apply(ts, &ts->t[i], e, ev, answer);
            }
            jv_free(why);
            any = any || m != 0;
        }
        if (!any) answer = add(answer, "unmatched", unmatched(e, ev));
        jv_free(ev);
    }
    return answer;
}
