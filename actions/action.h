/*
 * action.h - the one small interface every built-in action implements.
 *
 * An action runs in three phases, so that JSON (jq's jv, which is not
 * thread-safe) never leaves the orchestrator thread:
 *
 *   prepare  orchestrator thread: read the rendered `with` (a jv object,
 *            borrowed), check it, and build a job of plain C data.
 *   execute  a worker thread: do the blocking work (fork, curl, libssh2...),
 *            store the result in the job.  No jv here.
 *   finish   orchestrator thread: turn the job's result into the step's
 *            output (a jv) or a failure, then free the job.
 *
 * An action with CAIRN_ACTION_INLINE (set, fail: no I/O, bounded CPU) may be
 * executed on the orchestrator thread; its journaled path is the same.
 *
 * Failures carry a kind ("exit", "timeout", "schema", "connect", ...) and a
 * message; `retry.on` matches "<kind>: <message>".  A secret's value must never
 * appear in a message an action writes beyond what its inputs held: the engine
 * masks rendered secrets before anything is stored.
 *
 * Stopping: execute must return soon after cairn_stop_requested() turns true
 * or the deadline passes (kill a child's process group, abort a transfer),
 * failing with kind "cancelled" or "timeout".
 */
#ifndef CAIRN_ACTION_H
#define CAIRN_ACTION_H

#include <jv.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "dsl/workflow.h"

#define CAIRN_FAIL_KIND_MAX 32
#define CAIRN_FAIL_MSG_MAX 2048

typedef struct cairn_fail {
    char kind[CAIRN_FAIL_KIND_MAX];
    char message[CAIRN_FAIL_MSG_MAX];
} cairn_fail;

/* An empty failure: both strings "" (cheaper than zeroing 2 KiB per step). */
static inline void cairn_fail_clear(cairn_fail *f) {
    f->kind[0] = '\0';
    f->message[0] = '\0';
}

/* Set kind and a printf-style message; returns -1 so callers can `return`. */
int cairn_fail_set(cairn_fail *f, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Asked to stop: set by the engine (cancel, shutdown); read by workers. */
typedef struct cairn_stop {
    atomic_int requested;
} cairn_stop;

static inline bool cairn_stop_requested(const cairn_stop *s) {
    return s && atomic_load(&((cairn_stop *)s)->requested) != 0;
}

/* What the engine tells an action about the attempt (borrowed, valid until
 * finish returns). */
typedef struct cairn_attempt_info {
    const char *run_id;
    const char *step_id;
    const char *idempotency_key;       /* <run id>/<step id>[/<index>] */
    int attempt;                       /* 1-based */
    int64_t deadline_ms;               /* CLOCK_MONOTONIC ms; 0: none */
    cairn_stop *stop;                  /* never NULL */
    const char *const *env;            /* workflow env, "NAME=value", NULL-terminated */
    /* Called by execute, on its thread, for a local process group the
     * attempt started and that still runs (pgid, and its leader's start
     * time: pgroup.h; when, proc.h says): the engine journals it
     * (step_spawned) so that recovery after a crash can kill what is left.
     * NULL: nobody is told. */
    void (*spawned)(const struct cairn_attempt_info *info, int64_t pgid, int64_t start);
    void *spawned_ud;                  /* the engine's, for spawned */
} cairn_attempt_info;

enum {
    CAIRN_ACTION_INLINE = 1 << 0,
    /* Carried out by the engine itself (wait): only the signature is used,
     * prepare/execute/finish are NULL. */
    CAIRN_ACTION_ENGINE = 1 << 1
};

typedef struct cairn_action {
    const cairn_action_sig *sig;
    int flags;
    /* Returns 0 and *job, or -1 with f set (kind "schema" for a bad `with`). */
    int (*prepare)(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f);
    /* Worker thread. */
    void (*execute)(void *job, const cairn_attempt_info *info);
    /* Returns 0 and *output, or -1 with f set.  Frees job either way. */
    int (*finish)(void *job, jv *output, cairn_fail *f);
    /* Free a job that will never finish (shutdown).  NULL allowed. */
    void (*discard)(void *job);
} cairn_action;

/* The built-in actions, by name; NULL when unknown. */
const cairn_action *cairn_action_find(const char *name);

/* For prepare: every key of `with` (borrowed) is a field of sig, else -1
 * with f set ("<action>: unknown field 'x'", kind schema). */
int cairn_with_keys(jv with, const cairn_action_sig *sig, cairn_fail *f);

/* The i-th built-in action (0-based), or NULL past the last. */
const cairn_action *cairn_action_at(int i);

/* The catalogue as the DSL wants it (for cairn_workflow_load). */
const cairn_action_sig *cairn_action_lookup_sig(const char *name);

#endif
