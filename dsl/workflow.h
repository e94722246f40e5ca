/*
 * workflow.h - a checked, compiled workflow: the step graph the engine runs.
 *
 * Pipeline: source text -> YAML tree with positions (yaml.h) -> every rule of
 * DSL.md checked, all errors collected (diag.h) -> this compiled form, with
 * every expression compiled once (expr.h) and `needs` resolved to indices.
 *
 * Actions are not known to this module: the caller passes a catalogue of
 * action signatures (name and `with` fields) so that a static `with` is
 * checked at load time.  Script fields (shell's `run`, ssh's `command`) are
 * marked: a value spliced into one reaches the script as an environment
 * variable the rewritten script refers to (expr.h, shlex.h), never as shell
 * text.  The step keys `run:` and `shell:` are shorthand for `uses: shell`
 * with those `with` fields.
 *
 * Where DSL.md is silent, the checker decides: `needs` may be one id or a
 * list; on_failure steps take no `needs` (they run in order) and no
 * `compensate`; `if` and `retry.until` must hold ${{ }} (`if` may also be a
 * boolean, `foreach` a list), since a constant string there is almost always
 * a forgotten ${{ }}; input and output names are [A-Za-z_][A-Za-z0-9_-]*, env
 * names [A-Za-z_][A-Za-z0-9_]*; durations are positive except retry.delay;
 * `defaults.retry` is copied whole into each step (and compensate body) that
 * has no `retry`.  Every pattern is compiled with PCRE2_UTF and searched
 * unanchored.
 *
 * Memory: cairn_workflow_load returns a workflow the caller owns; free it with
 * cairn_workflow_free (NULL allowed).  Everything reachable from it is owned
 * by it.  A workflow is used on one thread (its exprset holds a jq_state).
 */
#ifndef CAIRN_WORKFLOW_H
#define CAIRN_WORKFLOW_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "dsl/diag.h"
#include "dsl/expr.h"

#define CAIRN_MAX_STEPS 10000          /* steps in one workflow, all blocks counted */
#define CAIRN_ID_MAX 64                /* length of a step id, workflow, input or output name */
#define CAIRN_MAX_ATTEMPTS 1000000     /* retry.max_attempts */
#define CAIRN_MAX_CONCURRENCY 100000   /* foreach concurrency */

/* ---- the catalogue of actions, given by the caller ---------------------- */

typedef enum {
    CAIRN_FIELD_ANY, CAIRN_FIELD_STRING, CAIRN_FIELD_NUMBER, CAIRN_FIELD_INTEGER,
    CAIRN_FIELD_BOOL, CAIRN_FIELD_OBJECT, CAIRN_FIELD_ARRAY,
    CAIRN_FIELD_STRING_OR_ARRAY,       /* e.g. notify's `to` */
    CAIRN_FIELD_DURATION,              /* a duration string: "30s" */
    /* A PCRE2 pattern (a string); a constant one is compiled at load time and
     * its error reported at its position.  Since an action may turn on
     * PCRE2_EXTENDED (match's `flags: x`), where `#` starts a comment and
     * white space is ignored, only a pattern that compiles neither way is
     * refused; one holding ${{ }} is compiled by the action at run time. */
    CAIRN_FIELD_PATTERN
} cairn_field_type;

enum {
    CAIRN_FIELD_REQUIRED = 1 << 0,
    CAIRN_FIELD_SHELL    = 1 << 1,     /* a script: splices become variables */
    /* Names a workflow (a child run): a constant one is kept in
     * wf->children, for cairn_wfset_check to find among the loaded ones. */
    CAIRN_FIELD_WORKFLOW = 1 << 2
};

/* The prefix of an approval's `approvers` entry that names a group (of a
 * server's tokens, server/tokens.h) rather than a person. */
#define CAIRN_APPROVER_GROUP "group:"

typedef struct cairn_field_sig {
    const char *name;
    cairn_field_type type;
    int flags;
} cairn_field_sig;

/* What an action's static check sees of one step's `with` (wcheck.c):
 * opaque, valid only during the call. */
typedef struct cairn_wcheck cairn_wcheck;

typedef struct cairn_action_sig {
    const char *name;
    const cairn_field_sig *fields;     /* terminated by {NULL} */
    bool open;                         /* any keys allowed (set) */
    const char *one_of;                /* "run|argv": exactly one of these is required */
    /* The action's own rules on values given as constants (an enumeration,
     * a field another one needs), called at load time once the fields have
     * their types; it reports through cairn_wcheck_error.  A field holding
     * ${{ }} is left to the action when the step runs.  NULL: none. */
    void (*check)(cairn_wcheck *w);
    /* A field of the expressions' document that this action's `with`
     * alone reads (approval: "approval", its links), and the names it
     * holds, comma-separated: a read of another name is a load error with
     * a did-you-mean.  NULL: none. */
    const char *scope, *scope_fields;
} cairn_action_sig;

/* Whether field name is given (a constant or an expression; null is
 * absent). */
bool cairn_wcheck_given(const cairn_wcheck *w, const char *name);

/* The field as JSON when it is a constant (no ${{ }} anywhere in it); else
 * jv_invalid() (absent, null, or known only at run time).  Caller frees. */
jv cairn_wcheck_const(const cairn_wcheck *w, const char *name);

/* The field's text when it is a constant string; else NULL.  Borrowed,
 * valid during the check. */
const char *cairn_wcheck_string(const cairn_wcheck *w, const char *name);

/* The number of items of a field written as a list (its items may hold
 * expressions, its length is known); else -1. */
int cairn_wcheck_length(const cairn_wcheck *w, const char *name);

/* Report a load error "with.<name> (action '<action>'): <message>" at the
 * field's value, or at the step's `with` when the field is absent. */
void cairn_wcheck_error(cairn_wcheck *w, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

enum { CAIRN_WCHECK_ANY_CASE = 1 << 0 };  /* for cairn_wcheck_enum: "post" is POST */

/* A constant string field must be one of values (comma-separated); else it
 * is reported with the list and a did-you-mean, and false is returned.
 * Absent or known only at run time: true. */
bool cairn_wcheck_enum(cairn_wcheck *w, const char *name, const char *values, int flags);

/* Returns the signature of action `name`, or NULL when there is no such action. */
typedef const cairn_action_sig *(*cairn_action_lookup)(const char *name);

/* ---- the compiled workflow ---------------------------------------------- */

typedef enum { CAIRN_BACKOFF_CONSTANT, CAIRN_BACKOFF_LINEAR, CAIRN_BACKOFF_EXPONENTIAL } cairn_backoff;
typedef enum { CAIRN_ON_CRASH_RETRY, CAIRN_ON_CRASH_FAIL, CAIRN_ON_CRASH_ASK } cairn_on_crash;

typedef struct cairn_retry {
    int max_attempts;                  /* total attempts, >= 1 (default 1) */
    cairn_backoff backoff;
    int64_t delay_ms, max_delay_ms;    /* max_delay_ms 0: none */
    bool jitter;
    char *on;                          /* PCRE2 source (compile with PCRE2_UTF), or NULL:
                                          every error retries */
    cairn_tmpl *until;                 /* or NULL */
} cairn_retry;

typedef struct cairn_step cairn_step;
struct cairn_step {
    char *id;                          /* "" for compensate bodies */
    char *name;                        /* or NULL */
    char *uses;                        /* action name (`run:` becomes "shell") */
    int line, col;                     /* position of the step's map */
    cairn_tmpl *with;                  /* an object template; never NULL ({} when absent) */
    int *needs;                        /* indices into the same block's steps */
    int n_needs;
    cairn_tmpl *if_;                   /* or NULL */
    int64_t timeout_ms;                /* 0: none */
    cairn_retry retry;
    bool continue_on_error;
    cairn_on_crash on_crash;
    cairn_step *compensate;            /* or NULL */
    cairn_tmpl *foreach;               /* or NULL */
    int concurrency;                   /* foreach: 0 means all at once */
    int index;                         /* position in its block */
};

typedef enum {
    CAIRN_INPUT_STRING, CAIRN_INPUT_NUMBER, CAIRN_INPUT_INTEGER,
    CAIRN_INPUT_BOOLEAN, CAIRN_INPUT_OBJECT, CAIRN_INPUT_ARRAY
} cairn_input_type;

typedef struct cairn_input_spec {
    char *name;
    cairn_input_type type;
    bool required;
    jv default_;                       /* jv_invalid() when none */
    jv enum_;                          /* array, or jv_invalid() */
    char *pattern;                     /* PCRE2 (PCRE2_UTF, unanchored), strings only; or NULL */
    void *pattern_code;                /* compiled pcre2_code *, owned */
    char *description;
} cairn_input_spec;

typedef struct cairn_named_tmpl {
    char *name;
    cairn_tmpl *value;
} cairn_named_tmpl;

/* A name read somewhere in the file, and where. */
typedef struct cairn_name_ref {
    char *name;
    int line, col;
} cairn_name_ref;

typedef struct cairn_workflow {
    char *file;                        /* as given to load */
    char *source;                      /* the exact bytes loaded (NUL-terminated) */
    size_t source_len;
    char sha256[65];                   /* hex SHA-256 of source: runs are pinned to it */
    char *name, *version, *description;
    cairn_input_spec *inputs;  int n_inputs;
    cairn_named_tmpl *outputs; int n_outputs;
    cairn_named_tmpl *env;     int n_env;        /* strings; may hold expressions */
    cairn_step *steps;         int n_steps;
    cairn_step *on_failure;    int n_on_failure;  /* run in order; needs unused */
    jv triggers;                       /* the `triggers` list as JSON, or jv_invalid() */
    int name_line, name_col;           /* where `name:` is given */
    /* Read by a constant name: `.secrets.NAME` in an expression (each name
     * once, at its first expression), and the workflows that steps start
     * (fields marked CAIRN_FIELD_WORKFLOW, each step). */
    cairn_name_ref *secrets;   int n_secrets;
    cairn_name_ref *children;  int n_children;
    cairn_exprset *exprs;              /* every expression of the workflow */
} cairn_workflow;

/* Load and check a workflow from src (len bytes; file names it in messages).
 * lookup resolves `uses` (NULL: actions and `with` are not checked, for
 * tools that only read the graph).  On success returns 0 and *out.  Otherwise
 * every error found is in diags, and CAIRN_ESYNTAX (or CAIRN_ELIMIT) is
 * returned. */
int cairn_workflow_load(const char *file, const char *src, size_t len,
                        cairn_action_lookup lookup, cairn_workflow **out,
                        cairn_diags *diags);

/* Read the file and load it.  A missing or unreadable file is one diagnostic
 * and CAIRN_EIO; a file over CAIRN_YAML_MAX_BYTES is refused by its size,
 * before it is read (CAIRN_ELIMIT). */
int cairn_workflow_load_file(const char *path, cairn_action_lookup lookup,
                             cairn_workflow **out, cairn_diags *diags);

void cairn_workflow_free(cairn_workflow *wf);

/* The hex SHA-256 of a source, as runs are pinned to it (wf->sha256). */
void cairn_workflow_hash(const char *src, size_t len, char out[65]);

/* Check run inputs (borrowed, an object) against the specs: types, required,
 * enum, pattern, unknown names.  On success *out is the inputs with defaults
 * filled in.  Errors name the input: "input 'host': expected a string". */
int cairn_workflow_check_inputs(const cairn_workflow *wf, jv inputs, jv *out,
                                cairn_err *err);

/* Parse the text of `--input name=text` as the declared type of input name:
 * strings as they are, numbers/integers/booleans by their literal, objects and
 * arrays as JSON.  An unknown name is an error. */
int cairn_workflow_parse_input(const cairn_workflow *wf, const char *name,
                               const char *text, jv *out, cairn_err *err);

/* Print the step graph: format "dot" or "mermaid".  Nodes are s_<id> (steps),
 * c_<id> (the compensate body of step id, dashed) and f_<id> (on_failure, in
 * a dashed group, chained in order); an edge runs from a needed step to the
 * step that needs it.  Returns CAIRN_EINVAL for another format. */
int cairn_workflow_graph(const cairn_workflow *wf, const char *format, FILE *out);

/* The id of one of wf's steps (of `steps`, not on_failure) a typo away from
 * id, for a did-you-mean; or NULL.  Borrowed from wf. */
const char *cairn_workflow_suggest_step(const cairn_workflow *wf, const char *id);

/* Parse a duration ("250ms", "1h30m"); returns 0 and *ms, or CAIRN_EINVAL. */
int cairn_duration_parse(const char *s, int64_t *ms);

#endif
