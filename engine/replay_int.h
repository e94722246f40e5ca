/*
 * replay_int.h - what replay.c (the walk, the run's decisions) and
 * replay_step.c (the steps' decisions) share: one replay in progress, and
 * how a check reads the event and tells a difference.  Private to them.
 */
#ifndef CAIRN_REPLAY_INT_H
#define CAIRN_REPLAY_INT_H

#include "engine/engine_int.h"
#include "engine/replay.h"

struct cairn_replayer {
    eng_plan *plan;
    const cairn_secrets *secrets;
    bool secrets_missing;        /* the workflow reads a secret by name not given */
    cairn_replay_child_fn child;
    void *ud;
};

/* One replay: the run as the engine would hold it, and the event at hand. */
typedef struct {
    cairn_replayer *rp;
    eng_run *r;
    const cairn_event *ev;
    jv data;                     /* the event's data (borrowed) */
    int step, index;             /* the event's step (-1: none) and item (-1) */
    int64_t started_ms;          /* time of the event before the last step_started */
    int *holding;                /* per step: items in flight or waiting */
    cairn_replay_result *out;
    cairn_err *err;
    int lookup_rc;               /* the child lookup failed: the replay's error */
    bool renders;                /* the divergence found renders an expression */
} replay;

/* The decisions re-taken (replay.h); their words are replay.c's. */
typedef enum {
    D_READY, D_IF, D_INPUT, D_FOREACH, D_RETRY, D_BACKOFF, D_UNTIL, D_APPROVAL, D_WAIT,
    D_CHILD, D_CRASH, D_ROLLBACK, D_END, D_INPUTS, D_JOURNAL
} decision;

/* Fill the result with a divergence of decision d: what the journal says
 * (NULL: the event, as rp_told tells it), and (formatted) what the replay
 * decides.  Returns false, for checks to return. */
bool rp_differ(replay *x, decision d, const char *journal, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Whether the value replay made (consumed; masked here) is the journal's
 * (borrowed); else the difference is told at its first path under what. */
bool rp_same_value(replay *x, decision d, const char *what, jv made, jv journal);
/* v (borrowed) as compact JSON, cut to fit buf. */
const char *rp_text_of(jv v, char *buf, size_t len);

/* o[key] (the caller's) when o (borrowed) is an object, else null; whether
 * v (borrowed) is the string text. */
jv rp_member(jv o, const char *key);
bool rp_is(jv v, const char *text);
/* The event's data: member key (the caller's), or a number as ms (0). */
jv rp_field(const replay *x, const char *key);
int64_t rp_field_ms(const replay *x, const char *key);
/* Whether error (borrowed) is an object of that kind; the event's error. */
bool rp_error_kind_is(jv error, const char *kind);
bool rp_event_error_is(const replay *x, const char *kind);
/* "<kind>: <message>" of the event's error, as retry.on reads it. */
const char *rp_error_text(const replay *x, char *buf, size_t len);
/* Step i's id; what the journal says happened ("b: step_started (attempt 1)"). */
const char *rp_id_of(const replay *x, int i);
const char *rp_told(const replay *x, char *buf, size_t len);
/* Why a run starts nothing new: cancelled, paused or failing. */
const char *rp_why_no_start(const eng_run *r);

/* replay_step.c: the decision a step event records, over the state
 * before it: true when it comes out the same (or the event decides
 * nothing). */
bool rp_check_step(replay *x);

#endif
