/*
 * expr_nateval.c - evaluating a tree of expr_native.c with jq 1.6's
 * meaning (its operators and builtins are expr_natfn.c's).
 *
 * Every node is a filter yielding values in jq's order, as libjq's
 * backtracking does: a binary operator runs its right operand first and,
 * for each of its values, every value of the left (`(1,2) + (10,20)` is
 * 11, 12, 21, 22); `a | b` runs b over each value of a; an object takes its
 * pairs in order, each key before its value, the later ones varying
 * fastest; `//` yields a's values that are neither false nor null, else
 * b's, and an error in a is raised (libjq 1.6 does not swallow it).  An
 * error stops everything after the values already yielded, as jq's does:
 * a node runs its operand to the end, keeps the error it raised, handles
 * the values that came before it, then raises it.
 *
 * Indexing goes through jv_get, as jq's INDEX instruction does; map,
 * select, empty and values are filters here, as builtin.jq defines them.
 * Whatever expr_natfn.c defers, and an array indexed by an array, makes
 * evaluation return jv_invalid() without a message: the caller has jq
 * evaluate the whole text (expr.c compiles it then, once).
 *
 * Bounds: evaluation yields at most CAIRN_EXPR_NATIVE_WORK values in all
 * (past it, jq evaluates the text under the set's time and memory bounds).
 * A text that builds arrays
 * or objects can make values whose parts are shared many times over
 * (`[., .]` nested), small in memory but huge to walk: before a builtin
 * that walks a value (tostring, tojson, comparisons, contains, sort,
 * unique) such a text counts the value's parts, and past
 * CAIRN_EXPR_NATIVE_WALK defers to jq and its time bound.
 */
#include "dsl/expr_native_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"


#define CAIRN_EXPR_NATIVE_WORK 100000
#define CAIRN_EXPR_NATIVE_WALK 100000

/* Deferred to jq: invalid without a message. */
static jv defer(jv a, jv b) {
    jv_free(a);
    jv_free(b);
    return jv_invalid();
}

/* ---- values yielded -------------------------------------------------------- */

/* The values a node yielded, in order; the first few without a malloc.
 * Never copied by value (v may point into it). */
typedef struct outs {
    jv *v;
    int n, cap;
    jv inl[4];
} outs;

static void outs_init(outs *o) {
    o->v = o->inl;
    o->n = 0;
    o->cap = 4;
}

static void outs_push(outs *o, jv x) {
    if (o->n == o->cap) {
        jv *v = cairn_malloc((size_t)o->cap * 2 * sizeof *v);
        memcpy(v, o->v, (size_t)o->n * sizeof *v);
        if (o->v != o->inl) free(o->v);
        o->v = v;
        o->cap *= 2;
    }
    o->v[o->n++] = x;
}

static void outs_free(outs *o) {
    for (int i = 0; i < o->n; i++) jv_free(o->v[i]);
    if (o->v != o->inl) free(o->v);
    o->n = 0;
}

/* One evaluation: the error being raised (jv_null() while none), whether it
 * was deferred to jq, and the values it may still yield. */
typedef struct ev {
    const cairn_exprnative *e;
    jv err;
    bool deferred;
    long work;
    cairn_doc *doc;           /* the document, when evaluation started from one */
    jv whole;                 /* doc->whole(doc) once asked (borrowed), else invalid */
} ev;

/* The input in (borrowed): itself, or for jv_invalid(), which stands for a
 * document not yet made whole (see cairn__exprnative_run_doc), the whole
 * document, made the first time it is needed. */
static jv input(ev *st, jv in) {
    if (jv_is_valid(in)) return in;
    if (!jv_is_valid(st->whole)) st->whole = st->doc->whole(st->doc);
    return st->whole;
}

/* Raise err: an error with a message, or without one a deferral to jq. */
static bool fail(ev *st, jv err) {
    if (jv_invalid_has_msg(jv_copy(err))) {
        jv_free(st->err);
        st->err = err;
    } else {
        jv_free(err);
        st->deferred = true;
    }
    return false;
}

static bool defer_all(ev *st) {
    st->deferred = true;
    return false;
}

/* Yield v (consumed), or raise it when it is invalid. */
static bool emit(ev *st, outs *o, jv v) {
    if (!jv_is_valid(v)) return fail(st, v);
    if (--st->work < 0) {
        jv_free(v);
        return defer_all(st);
    }
    outs_push(o, v);
    return true;
}

static bool gen(ev *st, int k, jv in, outs *o);

/* Run node k over in into t (initialised here), keeping the error it
 * raises in *held rather than raising it: jq raises it only after what is
 * done with t's values.  False only when deferred. */
static bool run_held(ev *st, int k, jv in, outs *t, jv *held) {
    outs_init(t);
    *held = jv_null();
    if (gen(st, k, in, t)) return true;
    if (st->deferred) return false;
    *held = st->err;
    st->err = jv_null();
    return true;
}

/* Done with t: raise the held error unless ok is already false. */
static bool end_held(ev *st, outs *t, jv held, bool ok) {
    outs_free(t);
    if (!ok || jv_is_valid(held)) {
        jv_free(held);
        return ok;
    }
    return fail(st, held);
}

/* f over each value v of node k run over in, in order; then the error k
 * raised, if any. */
typedef bool (*each_fn)(ev *st, const nat_node *x, jv v, jv in, outs *o);

static bool for_each(ev *st, int k, const nat_node *x, jv in, outs *o, each_fn f) {
    outs t;
    jv held;
    if (!run_held(st, k, in, &t, &held)) return end_held(st, &t, held, false);
    bool ok = true;
    for (int i = 0; i < t.n && ok; i++) ok = f(st, x, t.v[i], in, o);
    return end_held(st, &t, held, ok);
}

/* Whether v has fewer than CAIRN_EXPR_NATIVE_WALK parts, counting down
 * *left; only texts that build values need ask (see Bounds). */
static bool small_walk(jv v, long *left) {
    if (--*left < 0) return false;
    jv_kind k = jv_get_kind(v);
    if (k == JV_KIND_ARRAY) {
        int n = jv_array_length(jv_copy(v));
        for (int i = 0; i < n && *left >= 0; i++) {
            jv x = jv_array_get(jv_copy(v), i);
            small_walk(x, left);
            jv_free(x);
        }
    } else if (k == JV_KIND_OBJECT) {
        jv_object_foreach(v, key, x) {
            jv_free(key);
            if (*left >= 0) small_walk(x, left);
            jv_free(x);
        }
    }
    return *left >= 0;
}

static bool walkable(const ev *st, jv v) {
    jv_kind k = jv_get_kind(v);
    if (!st->e->builds || (k != JV_KIND_ARRAY && k != JV_KIND_OBJECT)) return true;
    long left = CAIRN_EXPR_NATIVE_WALK;
    return small_walk(v, &left);
}

/* ---- builtins that are filters ------------------------------------------------ */

/* Builtins that are filters of their own: empty, select(f), map(f), values. */
static bool g_empty(ev *st, const nat_node *x, jv in, outs *o) {
    (void)st, (void)x, (void)in, (void)o;
    return true;
}

static bool g_values(ev *st, const nat_node *x, jv in, outs *o) {
    (void)x;
    return jv_get_kind(in) == JV_KIND_NULL || emit(st, o, jv_copy(in));
}

/* if f then . else empty end */
static bool select_one(ev *st, const nat_node *x, jv v, jv in, outs *o) {
    (void)x;
    return !cairn__nat_truthy(v) || emit(st, o, jv_copy(in));
}

static bool g_select(ev *st, const nat_node *x, jv in, outs *o) {
    return for_each(st, x->a, x, in, o, select_one);
}

/* [.[] | f] */
static bool g_map(ev *st, const nat_node *x, jv in, outs *o) {
    jv vals = cairn__nat_values(in);
    if (!jv_is_valid(vals)) return fail(st, vals);
    outs t;
    outs_init(&t);
    bool ok = true;
    int n = jv_array_length(jv_copy(vals));
    for (int i = 0; i < n && ok; i++) {
        jv v = jv_array_get(jv_copy(vals), i);
        ok = gen(st, x->a, v, &t);
        jv_free(v);
    }
    jv_free(vals);
    jv arr = jv_array_sized(t.n);
    for (int i = 0; ok && i < t.n; i++) arr = jv_array_append(arr, jv_copy(t.v[i]));
    outs_free(&t);
    if (!ok) {
        jv_free(arr);
        return false;
    }
    return emit(st, o, arr);
}

/* The filters among the builtins, by nat_fn's g. */
typedef bool (*nat_gen)(ev *st, const nat_node *x, jv in, outs *o);
static const nat_gen GENS[] = {
    [NG_EMPTY] = g_empty, [NG_VALUES] = g_values, [NG_SELECT] = g_select, [NG_MAP] = g_map,
};

/* f2 of the input and one value of the argument. */
static bool call_with(ev *st, const nat_node *x, jv v, jv in, outs *o) {
    const nat_fn *f = cairn__natfn(x->fn);
    if (f->walks && !walkable(st, v)) return defer_all(st);
    return emit(st, o, f->f2(jv_copy(in), jv_copy(v)));
}

/* A builtin over in; for one of two arguments, over each value of the
 * argument (run over the input first, as jq's calls do). */
static bool gen_call(ev *st, const nat_node *x, jv in, outs *o) {
    const nat_fn *f = cairn__natfn(x->fn);
    if (f->walks && !walkable(st, in)) return defer_all(st);
    if (f->g != NG_NONE) return GENS[f->g](st, x, in, o);
    if (f->f1) return emit(st, o, f->f1(jv_copy(in)));
    return for_each(st, x->a, x, in, o, call_with);
}

/* ---- nodes ----------------------------------------------------------------- */

/* v indexed by each key of path in turn, as jq's INDEX does, through jv_get. */
static jv walk_path_from(const nat_node *x, jv v, int from) {
    for (int i = from; i < x->nkeys && jv_is_valid(v); i++) v = jv_get(v, jv_copy(x->keyv[i]));
    return v;
}

static jv walk_path(const nat_node *x, jv v) { return walk_path_from(x, v, 0); }

/* path over in; over a document not yet made whole, the prefix the
 * document resolves itself (cairn_doc.path) is taken as it gives it. */
static jv root_path(ev *st, const nat_node *x, jv in) {
    int used = 0;
    jv cur = !jv_is_valid(in) && st->doc->path
                 ? st->doc->path(st->doc, x->keys, x->nkeys, &used) : jv_invalid();
    if (!jv_is_valid(cur)) {
        jv_free(cur);
        cur = jv_copy(input(st, in));
        used = 0;
    }
    return walk_path_from(x, cur, used);
}

/* For N_PATH, N_EACH: f over the input, or over each value of a. */
static bool each_base(ev *st, const nat_node *x, jv in, outs *o, each_fn f) {
    return x->a < 0 ? f(st, x, in, in, o) : for_each(st, x->a, x, in, o, f);
}

static bool path_of(ev *st, const nat_node *x, jv v, jv in, outs *o) {
    (void)in;
    return emit(st, o, walk_path(x, jv_copy(v)));
}

static bool values_out(ev *st, const nat_node *x, jv v, jv in, outs *o) {
    (void)x, (void)in;
    jv vals = cairn__nat_values(v);
    if (!jv_is_valid(vals)) return fail(st, vals);
    bool ok = true;
    int n = jv_array_length(jv_copy(vals));
    for (int i = 0; i < n && ok; i++) ok = emit(st, o, jv_array_get(jv_copy(vals), i));
    jv_free(vals);
    return ok;
}

/* l op r for a binary node; l[r] for N_INDEX.  Both consumed.  An array
 * indexed by an array (the indices of a sub-array) is jq's: libjq 1.6's
 * jv_array_indexes leaks the key's values. */
static jv combine(ev *st, nat_op op, jv l, jv r) {
    if (op == N_INDEX && jv_get_kind(l) == JV_KIND_ARRAY && jv_get_kind(r) == JV_KIND_ARRAY)
        return defer(l, r);
    if (op == N_INDEX) return jv_get(l, r);
    bool cmp = op >= N_EQ && op <= N_GE;
    if (cmp && (!walkable(st, l) || !walkable(st, r))) return defer(l, r);
    return cairn__nat_apply(op, l, r);
}

/* For each value r of node rk (outside) and each value l of node lk (inside;
 * the input itself when lk < 0): combine(l, r).  lk's values are the same
 * for every r; an error lk raises comes after its values for the first r. */
static bool cross(ev *st, nat_op op, int lk, int rk, jv in, outs *o) {
    outs rs, ls;
    jv rheld, lheld = jv_null();
    if (!run_held(st, rk, in, &rs, &rheld)) return end_held(st, &rs, rheld, false);
    bool ok = true;
    outs_init(&ls);
    if (rs.n > 0 && lk < 0) outs_push(&ls, jv_copy(in));
    else if (rs.n > 0) ok = run_held(st, lk, in, &ls, &lheld);
    for (int i = 0; i < rs.n && ok; i++) {
        for (int j = 0; j < ls.n && ok; j++)
            ok = emit(st, o, combine(st, op, jv_copy(ls.v[j]), jv_copy(rs.v[i])));
        if (ok && !jv_is_valid(lheld)) ok = fail(st, jv_copy(lheld));
    }
    outs_free(&ls);
    jv_free(lheld);
    return end_held(st, &rs, rheld, ok);
}

/* a | b */
static bool pipe_one(ev *st, const nat_node *x, jv v, jv in, outs *o) {
    (void)in;
    return gen(st, x->b, v, o);
}

/* and, or (booleans; the right operand only where the left does not
 * decide), // (a's truthy values, else b's), if (each value of the
 * condition picks a branch). */
static bool gen_branch(ev *st, const nat_node *x, jv in, outs *o) {
    outs t;
    jv held;
    if (!run_held(st, x->a, in, &t, &held)) return end_held(st, &t, held, false);
    bool ok = true, found = false;
    for (int i = 0; i < t.n && ok; i++) {
        bool c = cairn__nat_truthy(t.v[i]);
        if (x->op == N_IF) {
            ok = gen(st, c ? x->b : x->c, in, o);
        } else if (x->op == N_ALT) {
            if (c) ok = emit(st, o, jv_copy(t.v[i]));
            found |= c;
        } else if (c == (x->op == N_OR)) {
            ok = emit(st, o, jv_bool(c));
        } else {
            outs r;
            jv rheld;
            ok = run_held(st, x->b, in, &r, &rheld);
            for (int j = 0; j < r.n && ok; j++) ok = emit(st, o, jv_bool(cairn__nat_truthy(r.v[j])));
            ok = end_held(st, &r, rheld, ok);
        }
    }
    if (ok && x->op == N_ALT && !found && jv_is_valid(held)) ok = gen(st, x->b, in, o);
    return end_held(st, &t, held, ok);
}

/* [a] */
static bool gen_array(ev *st, const nat_node *x, jv in, outs *o) {
    if (x->a < 0) return emit(st, o, jv_array());
    outs t;
    outs_init(&t);
    bool ok = gen(st, x->a, in, &t);
    jv arr = jv_array_sized(t.n);
    for (int i = 0; ok && i < t.n; i++) arr = jv_array_append(arr, jv_copy(t.v[i]));
    outs_free(&t);
    if (ok) return emit(st, o, arr);
    jv_free(arr);
    return false;
}

/* The pairs from node pair on, into obj (consumed): each key, then each
 * value, then the pairs after it, so that the later ones vary fastest. */
static bool gen_pairs(ev *st, int pair, jv obj, jv in, outs *o) {
    if (pair < 0) return emit(st, o, obj);
    const nat_node *x = &st->e->nodes[pair];
    outs ks;
    jv kheld;
    bool ok = run_held(st, x->a, in, &ks, &kheld);
    for (int i = 0; i < ks.n && ok; i++) {
        outs vs;
        jv vheld;
        ok = run_held(st, x->b, in, &vs, &vheld);
        for (int j = 0; j < vs.n && ok; j++) {
            jv k = ks.v[i];
            if (jv_get_kind(k) != JV_KIND_STRING) {
                char buf[15];
                ok = fail(st, jv_invalid_with_msg(jv_string_fmt(
                                  "Cannot use %s (%s) as object key", jv_kind_name(jv_get_kind(k)),
                                  jv_dump_string_trunc(jv_copy(k), buf, sizeof buf))));
                break;
            }
            ok = gen_pairs(st, x->c, jv_object_set(jv_copy(obj), jv_copy(k), jv_copy(vs.v[j])), in, o);
        }
        ok = end_held(st, &vs, vheld, ok);
    }
    jv_free(obj);
    return end_held(st, &ks, kheld, ok);
}

/* -a */
static bool negate_one(ev *st, const nat_node *x, jv v, jv in, outs *o) {
    (void)x, (void)in;
    if (jv_get_kind(v) != JV_KIND_NUMBER) return fail(st, cairn__nat_type_error(jv_copy(v), "cannot be negated"));
    return emit(st, o, jv_number(-jv_number_value(v)));
}

/* Node k, any number of values. */
static bool gen_many(ev *st, int k, jv in, outs *o) {
    const nat_node *x = &st->e->nodes[k];
    switch (x->op) {
    case N_CONST: return emit(st, o, jv_copy(x->v));
    case N_PATH: return each_base(st, x, in, o, path_of);
    case N_EACH: return each_base(st, x, in, o, values_out);
    case N_INDEX: return cross(st, N_INDEX, x->a, x->b, in, o);
    case N_PIPE: return for_each(st, x->a, x, in, o, pipe_one);
    case N_COMMA: return gen(st, x->a, in, o) && gen(st, x->b, in, o);
    case N_NEG: return for_each(st, x->a, x, in, o, negate_one);
    case N_IF: case N_ALT: case N_OR: case N_AND: return gen_branch(st, x, in, o);
    case N_ARRAY: return gen_array(st, x, in, o);
    case N_OBJECT: return gen_pairs(st, x->a, jv_object(), in, o);
    case N_PAIR: return defer_all(st);               /* only reached through N_OBJECT */
    case N_CALL: return gen_call(st, x, in, o);
    default: return cross(st, x->op, x->a, x->b, in, o);
    }
}

/* ---- nodes that yield exactly one value or an error ----------------------- */

/* Most texts are such nodes all through (`.a.b`, `.n + 1`, `.x | length`):
 * they are evaluated by plain recursion, a value or an error each, in the
 * order gen_many takes (the right operand first), without lists. */

static jv eval1(ev *st, int k, jv in);

/* A node's one value through gen_many (arrays, objects, map). */
static jv eval1_many(ev *st, int k, jv in) {
    outs o;
    outs_init(&o);
    jv v = jv_invalid();
    if (gen_many(st, k, in, &o) && o.n > 0) {
        v = jv_copy(o.v[0]);
    } else if (!st->deferred) {
        v = st->err;
        st->err = jv_null();
    }
    outs_free(&o);
    return v;
}

/* and, or, //, if over single operands. */
static jv eval1_branch(ev *st, const nat_node *x, jv in) {
    jv l = eval1(st, x->a, in);
    if (!jv_is_valid(l)) return l;
    bool t = cairn__nat_truthy(l);
    if (x->op == N_ALT && t) return l;
    jv_free(l);
    if (x->op == N_IF) return eval1(st, t ? x->b : x->c, in);
    if (x->op == N_ALT) return eval1(st, x->b, in);
    if (t == (x->op == N_OR)) return jv_bool(t);
    jv r = eval1(st, x->b, in);
    if (!jv_is_valid(r)) return r;
    t = cairn__nat_truthy(r);
    jv_free(r);
    return jv_bool(t);
}

/* l op r, l[r], or l | r over single operands (l is the input when a < 0). */
static jv eval1_pair(ev *st, const nat_node *x, jv in) {
    if (x->op == N_PIPE) {
        jv v = eval1(st, x->a, in);
        if (!jv_is_valid(v)) return v;
        jv r = eval1(st, x->b, v);
        jv_free(v);
        return r;
    }
    jv r = eval1(st, x->b, in);
    if (!jv_is_valid(r)) return r;
    jv l = x->a < 0 ? jv_copy(input(st, in)) : eval1(st, x->a, in);
    if (!jv_is_valid(l)) {
        jv_free(r);
        return l;
    }
    return combine(st, x->op, l, r);
}

static jv eval1(ev *st, int k, jv in) {
    const nat_node *x = &st->e->nodes[k];
    switch (x->op) {
    case N_CONST: return jv_copy(x->v);
    case N_PATH: {
        if (x->a < 0) return root_path(st, x, in);
        jv base = eval1(st, x->a, in);
        return jv_is_valid(base) ? walk_path(x, base) : base;
    }
    case N_NEG: {
        jv v = eval1(st, x->a, in);
        if (!jv_is_valid(v) || jv_get_kind(v) != JV_KIND_NUMBER)
            return jv_is_valid(v) ? cairn__nat_type_error(v, "cannot be negated") : v;
        double d = jv_number_value(v);
        jv_free(v);
        return jv_number(-d);
    }
    case N_IF: case N_ALT: case N_OR: case N_AND: return eval1_branch(st, x, in);
    case N_CALL: {
        const nat_fn *f = cairn__natfn(x->fn);
        in = input(st, in);
        if (!f->f1 && !f->f2) return eval1_many(st, k, in);
        if (f->walks && !walkable(st, in)) return jv_invalid();
        if (f->f1) return f->f1(jv_copy(in));
        jv arg = eval1(st, x->a, in);
        if (!jv_is_valid(arg)) return arg;
        if (f->walks && !walkable(st, arg)) return defer(arg, jv_null());
        return f->f2(jv_copy(in), arg);
    }
    case N_ARRAY: case N_OBJECT: return eval1_many(st, k, input(st, in));
    default: return eval1_pair(st, x, in);
    }
}

static bool gen(ev *st, int k, jv in, outs *o) {
    if (st->e->nodes[k].single) return emit(st, o, eval1(st, k, in));
    return gen_many(st, k, in, o);
}

/* Mark the nodes from k down that yield exactly one value or an error
 * whatever their input; returns k's mark. */
static bool mark_single(cairn_exprnative *e, int k) {
    if (k < 0) return true;
    nat_node *x = &e->nodes[k];
    bool a = mark_single(e, x->a), b = mark_single(e, x->b), c = mark_single(e, x->c);
    switch (x->op) {
    case N_EACH: case N_COMMA: case N_PAIR: x->single = false; break;
    case N_ARRAY: x->single = true; break;
    case N_OBJECT: {
        bool all = true;
        for (int p = x->a; p >= 0; p = e->nodes[p].c)
            all = all && e->nodes[e->nodes[p].a].single && e->nodes[e->nodes[p].b].single;
        x->single = all;
        break;
    }
    case N_CALL:
        x->single = cairn__natfn(x->fn)->f1 || (cairn__natfn(x->fn)->f2 && a) ||
                    cairn__natfn(x->fn)->g == NG_MAP;
        break;
    default: x->single = a && b && c;
    }
    return x->single;
}

/* Each path's keys as C strings, for a document that resolves a path's
 * prefix itself (cairn_doc.path) without taking the array apart. */
static void path_keys(cairn_exprnative *e) {
    for (int k = 0; k < e->n; k++) {
        nat_node *x = &e->nodes[k];
        if (x->op != N_PATH || x->keys) continue;
        x->nkeys = jv_array_length(jv_copy(x->v));
        x->keys = cairn_calloc((size_t)(x->nkeys > 0 ? x->nkeys : 1), sizeof *x->keys);
        x->keyv = cairn_calloc((size_t)(x->nkeys > 0 ? x->nkeys : 1), sizeof *x->keyv);
        for (int i = 0; i < x->nkeys; i++) {
            jv key = x->keyv[i] = jv_array_get(jv_copy(x->v), i);
            x->keys[i] = jv_get_kind(key) == JV_KIND_STRING ? jv_string_value(key) : NULL;
        }
    }
}

void cairn__natfn_prepare(cairn_exprnative *e) {
    mark_single(e, e->root);
    path_keys(e);
}

/* ---- the whole text --------------------------------------------------------- */

/* Texts that yield one value start from the document as it is, the
 * document made whole only if a node needs more than a path it resolves;
 * the others from the whole document. */
bool cairn__exprnative_run_doc(const cairn_exprnative *e, cairn_doc *doc, jv *first,
                               jv *second) {
    if (!e->nodes[e->root].single) return cairn__exprnative_run(e, doc->whole(doc), first, second);
    ev st = {.e = e, .err = jv_null(), .work = CAIRN_EXPR_NATIVE_WORK, .doc = doc,
             .whole = jv_invalid()};
    jv v = eval1(&st, e->root, jv_invalid());
    jv_free(st.err);
    *first = v;
    *second = jv_invalid();
    return jv_is_valid(v) || jv_invalid_has_msg(jv_copy(v));   /* else deferred */
}

bool cairn__exprnative_run(const cairn_exprnative *e, jv doc, jv *first, jv *second) {
    ev st = {.e = e, .err = jv_null(), .work = CAIRN_EXPR_NATIVE_WORK, .whole = jv_invalid()};
    if (e->nodes[e->root].single) {              /* one value or an error */
        jv v = eval1(&st, e->root, doc);
        jv_free(st.err);
        *first = v;
        *second = jv_invalid();
        return jv_is_valid(v) || jv_invalid_has_msg(jv_copy(v));   /* else deferred */
    }
    outs o;
    outs_init(&o);
    bool ok = gen(&st, e->root, doc, &o);
    *first = *second = jv_invalid();
    if (!ok && st.deferred) {
        jv_free(st.err);
        outs_free(&o);
        return false;
    }
    jv err = ok ? jv_invalid() : st.err;
    if (ok) jv_free(st.err);
    if (o.n > 0) *first = jv_copy(o.v[0]);
    if (o.n > 1) *second = jv_copy(o.v[1]);
    if (o.n == 0) *first = err;
    else if (o.n == 1) *second = err;
    else jv_free(err);
    outs_free(&o);
    return true;
}

jv cairn__exprnative_eval(const cairn_exprnative *e, jv doc) {
    jv first, second;
    if (!cairn__exprnative_run(e, doc, &first, &second)) return jv_invalid();
    jv_free(second);
    if (jv_is_valid(first) || jv_invalid_has_msg(jv_copy(first))) return first;
    jv_free(first);
    return jv_null();
}

/* ---- what a text may read ---------------------------------------------------- */

/* Whether node k's values may be, or hold, its input whole. */
static bool whole(const cairn_exprnative *e, int k) {
    if (k < 0) return true;
    const nat_node *x = &e->nodes[k];
    switch (x->op) {
    case N_CONST: case N_INDEX: case N_EACH: case N_NEG:
    case N_EQ: case N_NE: case N_LT: case N_LE: case N_GT: case N_GE: case N_AND: case N_OR:
        return false;
    case N_PATH: return jv_array_length(jv_copy(x->v)) == 0 && whole(e, x->a);
    case N_PIPE: return whole(e, x->a) && whole(e, x->b);
    case N_IF: return whole(e, x->b) || whole(e, x->c);
    case N_ARRAY: case N_OBJECT: return x->a >= 0 && whole(e, x->a);
    case N_PAIR: return whole(e, x->b) || (x->c >= 0 && whole(e, x->c));
    case N_CALL: return true;
    default: return whole(e, x->a) || whole(e, x->b);
    }
}

/* Whether node k may read the field key of the document, root telling
 * whether its input may be the document itself.  An index whose key is
 * computed, `.[]`, a builtin or `.` over the document may read anything. */
static bool reads(const cairn_exprnative *e, int k, const char *key, bool root) {
    if (k < 0) return false;
    const nat_node *x = &e->nodes[k];
    bool base = root && (x->a < 0 || whole(e, x->a));
    switch (x->op) {
    case N_CONST: return false;
    case N_PATH: {
        if (reads(e, x->a, key, root)) return true;
        if (!base) return false;
        jv first = jv_array_get(jv_copy(x->v), 0);      /* `.` alone: invalid */
        bool r = jv_get_kind(first) != JV_KIND_STRING || strcmp(jv_string_value(first), key) == 0;
        jv_free(first);
        return r;
    }
    case N_INDEX: return base || reads(e, x->a, key, root) || reads(e, x->b, key, root);
    case N_EACH: return base || reads(e, x->a, key, root);
    case N_CALL: return root;
    case N_PIPE: return reads(e, x->a, key, root) || reads(e, x->b, key, root && whole(e, x->a));
    default:
        return reads(e, x->a, key, root) || reads(e, x->b, key, root) || reads(e, x->c, key, root);
    }
}

bool cairn__exprnative_reads(const cairn_exprnative *e, const char *key) {
    return reads(e, e->root, key, true);
}

bool cairn__exprnative_builds(const cairn_exprnative *e) { return e->builds; }

bool cairn__exprnative_one(const cairn_exprnative *e) { return e->nodes[e->root].single; }
