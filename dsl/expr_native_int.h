/*
 * expr_native_int.h - the tree of a text in the native subset of jq,
 * private to expr_native.c (which parses it), expr_nateval.c (which
 * evaluates it) and expr_natfn.c (its operators and builtins).
 *
 * A tree is an array of nodes; operands are node indices, -1 when absent.
 * Every node is a jq filter: it takes one input and yields any number of
 * values, or raises an error after some of them.
 */
#ifndef CAIRN_EXPR_NATIVE_INT_H
#define CAIRN_EXPR_NATIVE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "dsl/expr_int.h"

typedef enum {
    N_CONST,      /* v */
    N_PATH,       /* each output of a (the input when a < 0) indexed by the keys in v */
    N_INDEX,      /* a[b]: for each key b (over the input), each output of a (or the input) */
    N_EACH,       /* a[]: the values of each output of a (or the input) */
    N_PIPE,       /* a | b */
    N_COMMA,      /* a, b */
    N_NEG,        /* -a */
    N_IF,         /* if a then b else c end (an elif is an N_IF in c) */
    N_ARRAY,      /* [a]; [] when a < 0 */
    N_OBJECT,     /* {pairs}: a is the first N_PAIR, or -1 */
    N_PAIR,       /* key a, value b, next pair c */
    N_CALL,       /* builtin fn over the input, its argument a (or none) */
    N_ALT, N_OR, N_AND,
    N_EQ, N_NE, N_LT, N_LE, N_GT, N_GE,
    N_ADD, N_SUB, N_MUL, N_DIV, N_MOD
} nat_op;

typedef struct nat_node {
    nat_op op;
    jv v;                     /* N_CONST, N_PATH; else invalid */
    jv *keyv;                 /* N_PATH: v's keys, each a reference */
    const char **keys;        /* and as C strings (NULL: not a string);
                                 both made once compiled */
    int nkeys;
    int a, b, c;
    int fn;                   /* N_CALL: index into the builtin table */
    bool single;              /* yields exactly one value or an error */
} nat_node;

struct cairn_exprnative {
    nat_node *nodes;
    int n, cap, root;
    bool builds;              /* makes arrays or objects: its result is size-checked */
};

/* expr_natfn.c: the operators and builtins, jq 1.6's meaning.  Values are
 * consumed unless marked borrowed; a result is a value, an error
 * (jv_invalid_with_msg, jq's message) or jv_invalid() without a message
 * when jq must evaluate the text. */

/* a op b for + - * / % and the comparisons. */
jv cairn__nat_apply(nat_op op, jv a, jv b);

/* Truthiness: anything but false and null.  v borrowed. */
bool cairn__nat_truthy(jv v);

/* jq's "<kind> (<value>) <what>" error for a. */
jv cairn__nat_type_error(jv a, const char *what);

/* The values `.[]` yields from v (borrowed), as an array, or its error. */
jv cairn__nat_values(jv v);

/* Builtins that are filters (the evaluator runs them); NG_NONE for the rest. */
typedef enum { NG_NONE, NG_EMPTY, NG_VALUES, NG_SELECT, NG_MAP } nat_gen_kind;

/* A builtin: f1 of the input, f2 of the input and each value of its
 * argument, or a filter g.  walks: it walks its input (expr_nateval.c,
 * Bounds); builds: it makes an array or an object. */
typedef struct nat_fn {
    const char *name;
    int nargs;
    jv (*f1)(jv in);
    jv (*f2)(jv in, jv arg);
    nat_gen_kind g;
    bool walks, builds;
} nat_fn;

/* The builtin named name (len bytes) taking nargs arguments, as an index
 * for N_CALL; -1 when the subset does not have it. */
int cairn__natfn_find(const char *name, size_t len, int nargs);

/* Builtin fn (an index cairn__natfn_find gave). */
const nat_fn *cairn__natfn(int fn);

/* Mark the nodes of a parsed tree that yield one value whatever their
 * input, which are evaluated without lists of values. */
void cairn__natfn_prepare(cairn_exprnative *e);


#endif
