/*
 * event.h - journal events: the types, the record, and the hash chain.
 *
 * Every transition of a run is one event.  An event is valid when:
 *   1. its seq is exactly one more than the previous event of its run (the
 *      first is 1, and is run_created);
 *   2. its type is one of CAIRN_EVENT_MAP; step events name a step of the
 *      run's workflow;
 *   3. data is a JSON object in canonical form (keys sorted, compact);
 *   4. hash = HMAC-SHA-256(key, prev_hash || canonical bytes), prev_hash being
 *      the previous event's hash (32 zero bytes for seq 1).  The canonical
 *      bytes are run_id, seq, time, type, step, attempt and data, each
 *      followed by a NUL, numbers in decimal.
 * So an edit, a deletion or a reordering of events breaks the chain, and
 * `cairn verify` finds it.  Exported chain heads also catch a cut-off tail.
 *
 * Event types and their data (every field not marked optional is present):
 *   run_created        {workflow, def_hash, inputs, trigger, parent?, fork?}
 *                                                           fork: {run, step}, a run
 *                                                           forked from an ended one
 *                                                           (`cairn fork`, engine/fork.c)
 *   step_started       {input, idempotency_key, index?}     attempt >= 1
 *   step_succeeded     {output, index?}
 *   step_failed        {error: {kind, message}, index?}    final for the step/item
 *   step_skipped       {reason?}                            `if` was falsy; reason
 *                                                           "run_failed": the run failed
 *                                                           before the step started
 *   step_expanded      {count, items}                       foreach: the list the
 *                                                           expression gave, journaled
 *                                                           once (an item's attempts
 *                                                           take their element from it,
 *                                                           also after a crash); older
 *                                                           journals hold count only
 *   step_crashed       {action: "retry"|"fail"|"ask",      found in flight on recovery;
 *                       index?, orphan?}                    orphan: what was left of its
 *                                                           process group (step_spawned):
 *                                                           an outcome of actions/pgroup.h
 *   step_spawned       {pgid, start, host, index?}          the attempt started a local
 *                                                           process group: the leader's pid
 *                                                           (= the group id), its start
 *                                                           time (clock ticks after boot)
 *                                                           and the host where these mean
 *                                                           something (actions/pgroup.h)
 *   step_interrupted   {index?}                             stopped at shutdown
 *   step_retrying      {error, retry_at, index?}            the attempt failed; the
 *                                                           next starts at retry_at
 *                                                           (Unix ms, a durable timer)
 *   step_waiting       {until}                              a `wait` step sleeps until
 *                                                           `until` (Unix ms)
 *   approval_requested {prompt, approvers, quorum, deadline, on_timeout,
 *                       escalate_to, forbidden?, ask?}      the step waits for people;
 *                                                           deadline Unix ms or 0;
 *                                                           forbidden: who may not decide
 *   approval_decided   {decision, by, comment, at}          one person's approve/reject
 *   approval_escalated {approvers, deadline}                unanswered: asked of others
 *   approval_notified  {output | error}                     the approval's notify sent
 *                                                           (at most once: not retried
 *                                                           after a crash)
 *   child_started      {child}                              a `workflow` step waits for
 *                                                           its child run (journaled in
 *                                                           the same commit)
 *   step_carried       {from_run, from_seq, status,         a fork's step takes the
 *                       output, error, attempts,            result the run it was forked
 *                       approval?, child?}                  from recorded: from_seq is the
 *                                                           event there that ended the step;
 *                                                           status succeeded, skipped or
 *                                                           failed (continue_on_error);
 *                                                           approval: its decisions as
 *                                                           made there; child: its child
 *                                                           run.  Only right after
 *                                                           run_created{fork} or another
 *                                                           step_carried, in the commit of
 *                                                           run_created: a fork's carried
 *                                                           results are durable with it
 *   run_cancel_requested {by?}
 *   run_paused         {}                                   start no new step (running
 *   run_unpaused       {}                                   attempts finish); carry on.
 *                                                           A running run reads paused
 *                                                           until unpaused
 *   run_compensating   {error}                              rollback begins: compensate
 *                                                           bodies of succeeded steps in
 *                                                           reverse order of completion,
 *                                                           then on_failure steps
 *   run_succeeded      {outputs}
 *   run_failed         {error: {kind, message, step?}}
 *   run_cancelled      {}
 *   trigger_resolved   {event}                              the webhook event that started
 *                                                           the run was resolved: the
 *                                                           resolved event (hook.h), under
 *                                                           the run's dedupe key; at most
 *                                                           once a run.  The fold sets
 *                                                           trigger.resolved to it, which
 *                                                           the workflow reads as
 *                                                           .run.trigger.resolved
 *
 * One representation: an event is what the journal stores, its data the
 * canonical JSON text.  Whoever needs the data parsed parses it (the fold
 * does, fold.h), and the engine, which made the text from a value it still
 * holds, hands the fold that value beside the event.
 *
 * Memory: a cairn_event owns its step and data; cairn_event_clear frees
 * them.  Events cross threads (the journal writer's), so they hold no jv.
 */
#ifndef CAIRN_EVENT_H
#define CAIRN_EVENT_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define CAIRN_EVENT_MAP(X)                              \
    X(RUN_CREATED,          "run_created")              \
    X(STEP_STARTED,         "step_started")             \
    X(STEP_SUCCEEDED,       "step_succeeded")           \
    X(STEP_FAILED,          "step_failed")              \
    X(STEP_SKIPPED,         "step_skipped")             \
    X(STEP_EXPANDED,        "step_expanded")            \
    X(STEP_CRASHED,         "step_crashed")             \
    X(STEP_INTERRUPTED,     "step_interrupted")         \
    X(STEP_RETRYING,        "step_retrying")            \
    X(STEP_WAITING,         "step_waiting")             \
    X(APPROVAL_REQUESTED,   "approval_requested")       \
    X(APPROVAL_DECIDED,     "approval_decided")         \
    X(APPROVAL_ESCALATED,   "approval_escalated")       \
    X(APPROVAL_NOTIFIED,    "approval_notified")        \
    X(CHILD_STARTED,        "child_started")            \
    X(RUN_CANCEL_REQUESTED, "run_cancel_requested")     \
    X(RUN_COMPENSATING,     "run_compensating")         \
    X(RUN_PAUSED,           "run_paused")               \
    X(RUN_UNPAUSED,         "run_unpaused")             \
    X(RUN_SUCCEEDED,        "run_succeeded")            \
    X(RUN_FAILED,           "run_failed")               \
    X(RUN_CANCELLED,        "run_cancelled")            \
    X(STEP_SPAWNED,         "step_spawned")             \
    X(TRIGGER_RESOLVED,     "trigger_resolved")         \
    X(STEP_CARRIED,         "step_carried")   /* new types go last: the commit log stores the number */

typedef enum {
    CAIRN_EV_NONE = 0,
#define CAIRN_EV_ENUM(name, str) CAIRN_EV_##name,
    CAIRN_EVENT_MAP(CAIRN_EV_ENUM)
#undef CAIRN_EV_ENUM
} cairn_event_type;

#define CAIRN_HASH_LEN 32
#define CAIRN_RUN_ID_MAX 40

typedef struct cairn_event {
    char run_id[CAIRN_RUN_ID_MAX];
    int64_t seq;
    int64_t time_ms;                   /* wall clock, Unix ms */
    cairn_event_type type;
    char *step;                        /* NULL for run events */
    int attempt;
    char *data;                        /* canonical JSON: an object */
    size_t data_len;                   /* strlen(data) */
    unsigned char hash[CAIRN_HASH_LEN];
    int64_t command_id;                /* >0: the command row this event answers, deleted
                                          in the transaction that stores the event */
} cairn_event;

const char *cairn_event_type_name(cairn_event_type t);
cairn_event_type cairn_event_type_parse(const char *s);   /* CAIRN_EV_NONE if unknown */
bool cairn_event_type_known(long t);                     /* one of CAIRN_EVENT_MAP */
/* run_succeeded, run_failed or run_cancelled: the run's last event. */
bool cairn_event_ends_run(cairn_event_type t);

void cairn_event_clear(cairn_event *ev);                  /* frees members; NULL allowed */

/* A keyed hasher for the chain.  The key is the journal's key (32 bytes). */
typedef struct cairn_chain cairn_chain;
cairn_chain *cairn_chain_new(const unsigned char *key, int keylen);
void cairn_chain_free(cairn_chain *c);

/* Compute ev->hash from prev (CAIRN_HASH_LEN bytes, or NULL for seq 1). */
void cairn_chain_hash(cairn_chain *c, const unsigned char *prev, cairn_event *ev);

#endif
