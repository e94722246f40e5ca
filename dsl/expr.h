/*
 * expr.h - Cairn expressions: `${{ <jq program> }}` inside workflow strings.
 *
 * A workflow's expressions are gathered into one cairn_exprset.  Those in a
 * common subset of jq (paths, literals, operators, pipes, arrays, objects,
 * string interpolation, if, and common builtins: see expr_native.c and
 * expr_nateval.c) are parsed and evaluated without jq, with jq 1.6's
 * meaning.  The rest are compiled together in a few jq programs,
 * because jq_compile re-binds jq's builtins on every call (about 20 ms) while
 * one program of hundreds of expressions compiles in about the same time.
 *
 * Builtins that read the clock, the time zone, the environment, input or the
 * host's files, or write to stderr or stop the program (now, localtime,
 * env, $ENV, input, inputs, input_filename, $__loc__, debug, stderr, halt,
 * halt_error, import, ...: the list is in expr_lex.c) are refused when the
 * set is compiled, by name, wherever the name is a call or a variable rather
 * than a field (.now), a string or an object key ({now: 1}); a program's own
 * def of such a name is refused too.  Decisions must replay the same.
 *
 * A cairn_tmpl is a value template built from a YAML node: constant subtrees
 * stay as jv constants; strings holding `${{ }}` become parts to splice.
 * Rendering evaluates the expressions over a context document (see DSL.md,
 * Expressions) and yields a fresh jv.
 *
 * Bounds: every evaluation is bounded in time and memory (DSL.md), per set,
 * so per workflow (its `limits:` key).  A jq evaluation past its time, or
 * growing the process's memory past its budget, is halted by a watchdog
 * (expr_guard.h) and fails with CAIRN_EEXPR; a result whose JSON would be
 * larger than the memory budget, or nested deeper than
 * CAIRN_EXPR_RESULT_DEPTH, fails the same way (so nothing downstream walks
 * an unbounded value).  What expr_nateval.c evaluates is bounded by its size
 * (CAIRN_EXPR_NATIVE_NODES), the values it yields (CAIRN_EXPR_NATIVE_WORK)
 * and the document's size, and hands jq any concatenation larger than
 * CAIRN_EXPR_NATIVE_CONCAT_MAX or walk of a value it built larger than
 * CAIRN_EXPR_NATIVE_WALK; a result it built is checked like jq's.
 *   CAIRN_EXPR_TIME_MS_DEFAULT, CAIRN_EXPR_TIME_MS_MAX    time, default and most
 *   CAIRN_EXPR_MEMORY_DEFAULT, _MIN, _MAX                 memory budget in bytes
 *
 * Threads: jq and jv are not thread-safe; an exprset and everything rendered
 * from it are used on one thread only (the orchestrator's).  So are its
 * templates: a small map keeps its last render, to give it again when its
 * values come back the same (tmpl.c).
 *
 * Memory: cairn_exprset_free and cairn_tmpl_free free what they are given
 * (NULL is allowed).  jv arguments follow jq's convention and are consumed
 * unless the parameter is marked "borrowed".
 */
#ifndef CAIRN_EXPR_H
#define CAIRN_EXPR_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/mem.h"
#include "dsl/diag.h"
#include "dsl/yaml.h"

typedef struct cairn_exprset cairn_exprset;
typedef struct cairn_tmpl cairn_tmpl;

#define CAIRN_EXPR_TIME_MS_DEFAULT 1000
#define CAIRN_EXPR_TIME_MS_MAX 60000
#define CAIRN_EXPR_MEMORY_DEFAULT (256LL << 20)
#define CAIRN_EXPR_MEMORY_MIN (1LL << 20)
#define CAIRN_EXPR_MEMORY_MAX (16LL << 30)
#define CAIRN_EXPR_RESULT_DEPTH 512

/* A new set, bounded by the defaults. */
cairn_exprset *cairn_exprset_new(void);
void cairn_exprset_free(cairn_exprset *set);

/* Bound every evaluation of set to time_ms and memory_bytes (the caller
 * keeps them within the _MAX and _MIN above). */
void cairn_exprset_set_limits(cairn_exprset *set, int64_t time_ms, int64_t memory_bytes);

/* Add one jq program found at file:line:col; returns its index (>= 0).
 * Nothing is compiled until cairn_exprset_compile. */
int cairn_exprset_add(cairn_exprset *set, const char *program,
                      const char *file, int line, int col);

/* Number of programs added. */
int cairn_exprset_count(const cairn_exprset *set);

/* Compile every program added.  Each syntax or compile error is reported to
 * diags at the position of the string that holds it.  Returns 0 or
 * CAIRN_ESYNTAX. */
int cairn_exprset_compile(cairn_exprset *set, cairn_diags *diags);

/* Evaluate program idx over doc (borrowed).  *out receives the single result;
 * a program that yields nothing gives null; more than one result, a jq
 * runtime error, or an evaluation past the set's bounds is CAIRN_EEXPR with
 * the message in err. */
int cairn_exprset_eval(cairn_exprset *set, int idx, jv doc, jv *out, cairn_err *err);

/* A document an expression may be evaluated over without its being made
 * whole first (a run's, whose `.steps` is brought up to date only when an
 * expression needs it).  whole gives the document (borrowed: the
 * cairn_doc's, valid until the evaluation returns); path, when not NULL,
 * may give the value at a prefix of a path (keys[0..n): its keys, NULL
 * where a key is not a string; borrowed), the very value indexing the whole
 * document along that prefix gives, with *used set to the prefix's length;
 * or decline with jv_invalid() (no message), and the path is followed in
 * the whole document. */
typedef struct cairn_doc cairn_doc;
struct cairn_doc {
    jv (*whole)(cairn_doc *d);
    jv (*path)(cairn_doc *d, const char *const *keys, int n, int *used);
};

/* As cairn_exprset_eval, over doc. */
int cairn_exprset_eval_doc(cairn_exprset *set, int idx, cairn_doc *doc, jv *out,
                           cairn_err *err);

/* Whether program idx may read the top-level field key of the document it is
 * evaluated over.  Known only for the native subset: any other program (or a
 * set not compiled) may read anything, and the answer is true.  Lets a
 * caller leave out of the document what no expression reads. */
bool cairn_exprset_reads(const cairn_exprset *set, int idx, const char *key);

/* The position program idx was added with. */
void cairn_exprset_pos(const cairn_exprset *set, int idx, const char **file, int *line,
                       int *col);

/* Called with each name found by cairn_exprset_refs (len bytes, not
 * NUL-terminated). */
typedef void (*cairn_expr_ref_cb)(void *ctx, const char *name, size_t len);

/* Call cb for each NAME that program idx reads as `.<root>.NAME`,
 * `.<root>."NAME"` or `.<root>["NAME"]` (blanks allowed between tokens),
 * where `.` is provably the document the program is evaluated over: the
 * path starts the program, or follows only tokens that hand their operands
 * the same input (literals, paths, $variables, comparisons, arithmetic, `,`,
 * `//`, and, or, if/then/elif/else/end, object keys and `:`) at its own
 * level of brackets, and every bracket around it (( [ { and string
 * interpolations; an index `.a[.inputs.k]` too) opens at such a place.
 * After `|`, a call of any function or keyword (map(...), reduce, def, try,
 * as...), an assignment, `;`, `..` or a format, nothing more at that level
 * or inside it is read: such a path is not reported, even when it is read
 * from the root.  Nothing is reported for a program that does not lex. */
void cairn_exprset_refs(const cairn_exprset *set, int idx, const char *root,
                        cairn_expr_ref_cb cb, void *ctx);

/* Call cb with the index of each expression of t, in order. */
void cairn_tmpl_each_expr(const cairn_tmpl *t, void (*cb)(void *ctx, int idx), void *ctx);

/* Build a template from node (borrowed; the template keeps no pointer to it).
 * Every `${{ }}` found is added to set; an unterminated `${{` is reported to
 * diags.  A string that is not exactly one expression splices each value as
 * text: strings raw, other values as compact JSON.  Never returns NULL. */
cairn_tmpl *cairn_tmpl_new(const cairn_node *node, cairn_exprset *set, const char *file,
                           cairn_diags *diags);

/* As cairn_tmpl_new for a map node (a step's `with`) whose fields named in
 * shell_keys (NULL-terminated) are shell scripts.  A script that splices
 * values (and is not exactly one expression, which is the whole script) is
 * rewritten at load time so that each value is referenced as the
 * environment variable CAIRN_V<n>, n counting from 1 over the map, in the
 * form its quoting context needs (shlex.h); a splice that cannot be placed
 * safely is reported to diags with its position.  Rendering the map puts
 * the rewritten script in the field and each value, as text, into the
 * map's `env` field (made when absent; over an entry of the same name):
 * values never become shell text. */
cairn_tmpl *cairn_tmpl_new_fields(const cairn_node *map, const char *const *shell_keys,
                                  cairn_exprset *set, const char *file, cairn_diags *diags);

/* A template of one string (used for `if`, `foreach`, `until`, outputs). */
cairn_tmpl *cairn_tmpl_from_string(const char *s, int line, int col, cairn_exprset *set,
                                   const char *file, cairn_diags *diags);

/* True when the template holds no expression (rendering returns a copy of a constant). */
bool cairn_tmpl_is_const(const cairn_tmpl *t);

/* The constant value of a template with no expressions (jv_invalid otherwise). */
jv cairn_tmpl_const_value(const cairn_tmpl *t);

/* Whether rendering t may read the document's top-level field key (see
 * cairn_exprset_reads); false for a constant template. */
bool cairn_tmpl_reads(const cairn_tmpl *t, const cairn_exprset *set, const char *key);

/* Render t over doc (borrowed) into *out.  A failed expression is
 * CAIRN_EEXPR, err->msg naming the expression's position and jq's message. */
int cairn_tmpl_render(const cairn_tmpl *t, cairn_exprset *set, jv doc, jv *out,
                      cairn_err *err);

/* As cairn_tmpl_render, over doc. */
int cairn_tmpl_render_doc(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *out,
                          cairn_err *err);

/* As cairn_tmpl_render_doc, and *out's canonical text (cairn_json_write's,
 * json.h) appended to text: a small map writes it from texts made at load
 * and its dynamic values alone, rather than walking the value again. */
int cairn_tmpl_render_text(const cairn_tmpl *t, cairn_exprset *set, cairn_doc *doc, jv *out,
                           cairn_buf *text, cairn_err *err);

void cairn_tmpl_free(cairn_tmpl *t);

/* Truthiness as DSL.md defines it: anything but false and null. v borrowed. */
bool cairn_truthy(jv v);

#endif
