/*
 * workflow_int.h - shared by the files of the workflow checker (dsl/), not
 * part of any public contract.
 *
 * The checker walks the YAML tree once, filling a cairn_workflow and
 * reporting every problem to the diagnostics list; it never stops at the
 * first error.  The files split it by idea:
 *
 *   workflow.c     load, free, the document's own keys, the orchestration
 *   inputs.c       input specs at load time, and run inputs at start
 *   check_steps.c  one step (or compensate body) and its keys
 *   check_with.c   a step's `with` against its action's signature
 *   wcheck.c       an action's own static rules on constant `with` values
 *   needs.c        step ids, `needs` resolution, cycles
 *   refs.c         the steps and inputs that expressions read
 *   triggers.c     the light shape check of `triggers`
 *   duration.c     "1h30m" -> milliseconds
 *   suggest.c      did-you-mean and node reading helpers
 *   graph.c        dot and mermaid output
 */
#ifndef CAIRN_WORKFLOW_INT_H
#define CAIRN_WORKFLOW_INT_H

#include <stdbool.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/mem.h"
#include "dsl/workflow.h"
#include "dsl/yaml.h"

/* PCRE2 options for every pattern of a workflow (inputs, retry.on,
 * triggers): UTF-8 subjects, matched anywhere (add ^...$ to anchor). */
#define CAIRN_PCRE2_OPTIONS PCRE2_UTF

typedef enum { BLOCK_STEPS, BLOCK_ON_FAILURE, BLOCK_COMPENSATE } wf_block_kind;

/* One list of steps whose `needs` refer to each other. */
typedef struct wf_block {
    const char *name;                  /* "steps" or "on_failure" */
    cairn_step *steps;
    int n;
    const cairn_node **needs;          /* each step's `needs` node, or NULL */
    const cairn_node **nodes;          /* each step's map */
} wf_block;

typedef struct wf_ctx {
    const char *file;
    cairn_diags *diags;
    cairn_action_lookup lookup;        /* may be NULL: actions are not checked */
    cairn_workflow *wf;
    bool limit;                        /* a limit was exceeded: CAIRN_ELIMIT */
    int64_t default_timeout_ms;        /* defaults.timeout, 0: none */
    const cairn_node *default_retry;   /* defaults.retry when it checked clean */
    int n_bodies;                      /* compensate bodies, for CAIRN_MAX_STEPS */
    wf_block blocks[2];                /* steps, on_failure */
} wf_ctx;

/* ---- reporting and reading nodes (suggest.c) ---------------------------- */

void cairn__wf_error(wf_ctx *c, const cairn_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The closest of cands (NULL-terminated, or n entries when n >= 0) to word,
 * when it is close enough to be a likely typo; else NULL. */
const char *cairn__suggest(const char *word, const char *const *cands, int n);

/* Report every key of map not in allowed (NULL-terminated) as unknown, with a
 * did-you-mean; `what` names the map ("a step", "retry").  A key listed in
 * refused (NULL-terminated, may be NULL) is known elsewhere but not allowed
 * here: it is reported as "'key' is not allowed in <what>: <why>". */
void cairn__check_keys(wf_ctx *c, const cairn_node *map, const char *const *allowed,
                       const char *what, const char *const *refused, const char *why);

bool cairn__is_plain(const cairn_node *n);                 /* unquoted scalar */
bool cairn__is_null(const cairn_node *n);
bool cairn__has_expr(const cairn_node *n);                 /* a scalar holding ${{ */

/* Report "what: expected <want>, got <n>"; returns false. */
bool cairn__expected(wf_ctx *c, const cairn_node *n, const char *what, const char *want);

/* [A-Za-z_][A-Za-z0-9_-]* of at most CAIRN_ID_MAX characters: input and
 * output names. */
bool cairn__name_ok(const char *s);

/* Each returns false after reporting `what: expected ..., got ...`. */
bool cairn__want_map(wf_ctx *c, const cairn_node *n, const char *what);
bool cairn__want_seq(wf_ctx *c, const cairn_node *n, const char *what);
bool cairn__want_text(wf_ctx *c, const cairn_node *n, const char *what);   /* non-null scalar */
bool cairn__want_bool(wf_ctx *c, const cairn_node *n, const char *what, bool *out);
bool cairn__want_count(wf_ctx *c, const cairn_node *n, const char *what, int max, int *out);
bool cairn__want_duration(wf_ctx *c, const cairn_node *n, const char *what, bool zero_ok,
                          int64_t *out);

/* Compile a pattern held by n; NULL after reporting the PCRE2 error. */
pcre2_code *cairn__compile_pattern(wf_ctx *c, const cairn_node *n, const char *what);

/* A template for `if`, `foreach`, `until`: a string must hold ${{ }} (a
 * constant string there is almost always a forgotten ${{ }}); allow adds
 * what else may stand there.  NULL after reporting. */
enum { EXPR_ONLY = 0, EXPR_OR_BOOL = 1, EXPR_OR_LIST = 2 };
cairn_tmpl *cairn__expr_field(wf_ctx *c, const cairn_node *n, const char *what, int allow);

/* ---- the pieces --------------------------------------------------------- */

void cairn__check_inputs_spec(wf_ctx *c, const cairn_node *inputs);
void cairn__check_triggers(wf_ctx *c, const cairn_node *triggers);

/* Check one step map into s (zeroed by the caller). */
void cairn__check_step(wf_ctx *c, const cairn_node *n, cairn_step *s, wf_block_kind kind,
                       const cairn_node **needs);

/* Check a retry map into r (zeroed by the caller).  Returns true when it
 * checked clean. */
bool cairn__check_retry(wf_ctx *c, const cairn_node *n, cairn_retry *r);

/* Check `with` (NULL: absent) against the action and build s->with, the
 * step's `run:` and `shell:` shorthands merged into it as fields. */
void cairn__check_with(wf_ctx *c, const cairn_node *step, const cairn_node *with,
                       const cairn_action_sig *sig, cairn_step *s);

/* Call sig->check, if any, on map (the step's fields; errors without a
 * field go at `at`). */
void cairn__wcheck_run(wf_ctx *c, const cairn_node *at, const cairn_node *map,
                       const cairn_action_sig *sig);

/* Step ids unique across blocks; needs resolved per block; cycles. */
void cairn__resolve_needs(wf_ctx *c);

/* The steps and inputs every expression reads (refs.c); after the blocks
 * are adopted into c->wf. */
void cairn__check_refs(wf_ctx *c);

void cairn__step_free(cairn_step *s);
void cairn__name_refs_free(cairn_name_ref *a, int n);

/* Read the file at path into b (at most CAIRN_YAML_MAX_BYTES + 1 bytes: a
 * bigger file is refused by its size before it is read).  0, or CAIRN_EIO /
 * CAIRN_ELIMIT with one diagnostic naming the file. */
int cairn__read_source(const char *path, cairn_buf *b, cairn_diags *diags);

#endif
