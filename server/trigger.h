/*
 * trigger.h - trigger events (hook.h) matched against every loaded
 * workflow's webhook triggers: which runs would start, with which inputs,
 * under which dedupe key.
 *
 * A trigger `{webhook: SOURCE, match: {FIELD: PATTERN...}, dedupe: EXPR,
 * inputs: {NAME: VALUE...}}` matches an event of SOURCE when every PATTERN
 * (PCRE2, UTF-8, searched unanchored as the language's patterns are: write
 * ^...$ to anchor) finds a match in the event's FIELD: the event's own field
 * when it has one that is a string, number or boolean (numbers and booleans
 * as JSON text), else its label of that name; a field it has neither way
 * matches nothing.  No `match` matches every event of the source.
 *
 * Expressions in `dedupe` and `inputs` read the event as their document
 * (`${{ .fingerprint }}`, `${{ .labels.instance }}`, `${{ . }}`).  The
 * dedupe key is the result as text (a string as it is, a number or boolean
 * as JSON): null, "" or an object is refused, since an empty key would fold
 * every alert into one run; longer than CAIRN_TRIGGER_DEDUPE_MAX bytes too.
 * A trigger without `dedupe` has no key: every firing event starts a run.
 * The inputs are checked against the workflow's `inputs:` (types, required,
 * enum, pattern) with defaults filled in, as `cairn run` checks them.
 *
 * The answer, a JSON object of four lists:
 *   start      firing events that would start a run:
 *              {workflow, file, sha256, trigger, event, fingerprint, dedupe, inputs}
 *   resolve    resolved events that matched: delivered to the live run that
 *              holds their dedupe key, if any; they never start a run
 *              {workflow, file, sha256, trigger, event, fingerprint, dedupe}
 *   refused    matches whose dedupe or inputs failed: {workflow, file, trigger,
 *              event, fingerprint, error}; nothing starts for them
 *   unmatched  events no trigger matched: {event, source, alertname, status,
 *              fingerprint}
 * `trigger` is the index of the trigger in its workflow's list, `event` the
 * index of the event in the list given.  Keeping one live run per dedupe
 * key is the caller's part (it needs the journal): this module only names
 * the key.
 *
 * Bounds: a pattern's search stops after CAIRN_TRIGGER_MATCH_LIMIT
 * backtracking steps (a pattern that needs more is refused for that event,
 * in `refused`); expressions have the language's bounds (expr.h).
 *
 * Threads: a cairn_triggers holds one expression set (jq is not
 * thread-safe): use it on one thread at a time.
 *
 * Memory: the workflows are borrowed and must outlive the set; events are
 * borrowed; the answer belongs to the caller.
 */
#ifndef CAIRN_TRIGGER_H
#define CAIRN_TRIGGER_H

#include <jv.h>

#include "common/err.h"
#include "dsl/workflow.h"

#define CAIRN_TRIGGER_MATCH_LIMIT 100000   /* PCRE2 backtracking steps per search */
#define CAIRN_TRIGGER_DEDUPE_MAX 1024      /* bytes of a dedupe key */

typedef struct cairn_triggers cairn_triggers;

/* The webhook triggers of n workflows (schedules are not this module's).
 * Fails only when a trigger that loaded no longer compiles (CAIRN_ESYNTAX,
 * err naming the workflow's file). */
int cairn_triggers_new(cairn_workflow *const *wfs, int n, cairn_triggers **out, cairn_err *err);

/* How many webhook triggers the set holds. */
int cairn_triggers_count(const cairn_triggers *t);

/* Match events (an array of trigger events, borrowed) and return the
 * answer described above. */
jv cairn_triggers_match(cairn_triggers *t, jv events);

void cairn_triggers_free(cairn_triggers *t);

#endif
