/*
 * hookroute.h - a monitoring webhook carried out: `POST /v1/hooks/{source}`
 * and `cairn trigger SOURCE --payload FILE`.
 *
 * A delivery goes through, in order:
 *   1. the source's credentials (hookauth.h; the HTTP route only): the
 *      secret HOOK_<SOURCE> from the journal's secrets (engine/secrets.h),
 *      read again when its file changes, so a rotated line takes effect
 *      without a restart.  A source with no credential is accepted only
 *      when the server runs without a tokens file (loopback only);
 *   2. the body normalized to trigger events (hook.h);
 *   3. every event matched against the webhook triggers of every workflow
 *      served (trigger.h);
 *   4. each match carried out against the journal:
 *      - a firing event with a dedupe key takes the claim (journal.h,
 *        cairn_journal_claim) of space "dedupe/WORKFLOW", key the dedupe
 *        key, value "RUN_ID OWNER" (the run's id chosen before its start,
 *        and the process starting it, engine/owner.h), and only then starts
 *        that run.  A claim already held names a run that is
 *          live                    -> that run "existed": nothing starts;
 *          ended                   -> replaced (compare-and-set) by a new run;
 *          not durable, its owner  -> a start under way in that process:
 *            alive                    "existed";
 *          not durable, its owner  -> a crash between claim and start: the
 *            dead (or this process,   claim is taken over (compare-and-set)
 *            no start under way)      and that same id started.
 *        Within one process a key is worked on by one delivery at a time,
 *        so concurrent deliveries of one alert start one run; between
 *        processes (or servers sharing a journal) the claim's
 *        compare-and-set decides.  A firing event whose trigger has no
 *        `dedupe` starts a run each time.
 *      - a resolved event is delivered to the live run holding its key (a
 *        "resolve" command: the run journals trigger_resolved once, and
 *        reads the event as .run.trigger.resolved), or ignored when no live
 *        run holds it.
 * The run's `.run.trigger` is the normalized event (source, status,
 * alertname, severity, summary, labels, fingerprint, raw, ...) plus
 * `dedupe` (the key, or null), `trigger` (the trigger's index in its
 * workflow) and what the caller adds (`client`, `user`).
 *
 * The answer, a JSON object:
 *   {source, events: N,
 *    started:   [{workflow, run, event, fingerprint, dedupe}],
 *    existed:   [{workflow, run, event, fingerprint, dedupe}],
 *    resolved:  [{workflow, run, event, fingerprint, dedupe}],
 *    ignored:   [{workflow, event, fingerprint, dedupe}]   resolved, no live run
 *    refused:   [{workflow, trigger, event, fingerprint, error}],
 *    unmatched: [{event, source, alertname, status, fingerprint}]}
 * over HTTP with status 201 when a run started, 200 when not, 422 when
 * every match was refused and nothing else came of the delivery; errors
 * are {"error": {code, message}} (docs/api.md lists them).
 *
 * Metrics: cairn_webhooks_total{source,result}, one count per event's
 * outcome (started, existed, resolved, ignored, refused, unmatched) and one
 * per refused request (unauthorized, invalid, error).
 *
 * Threads: any; the trigger set is used under a lock (jq is not known to
 * be safe on two threads at once).
 *
 * Memory: the config is borrowed and outlives the object; jv values passed
 * in are consumed, those returned are the caller's.
 */
#ifndef CAIRN_SERVER_HOOKROUTE_H
#define CAIRN_SERVER_HOOKROUTE_H

#include <jv.h>
#include <stdbool.h>

#include "common/err.h"
#include "dsl/workflow.h"
#include "server/backend.h"
#include "server/http.h"
#include "server/metrics.h"

#define CAIRN_HOOK_CLAIM_TRIES 8   /* compare-and-set rounds for one dedupe key */

typedef struct srv_hooks srv_hooks;

typedef struct srv_hooks_config {
    srv_backend *backend;
    srv_metrics *metrics;        /* may be NULL */
    const char *db_path;         /* the HOOK_<SOURCE> secrets are this journal's */
} srv_hooks_config;

srv_hooks *srv_hooks_new(const srv_hooks_config *cfg);
void srv_hooks_free(srv_hooks *h);

/* A workflow loaded (borrowed): a copy is kept for matching, from its
 * source, until a srv_hooks_rebuild finds it no longer offered. */
void srv_hooks_learn(srv_hooks *h, const cairn_workflow *wf);

/* Whether the workflow name is offered now under the definition hash. */
typedef bool (*srv_hooks_offered_fn)(void *ud, const char *name, const char *hash);

/* Keep the copies offered (NULL: every one), dropping the others, and
 * match against their triggers from now on.  On an error the triggers
 * matched before stay. */
int srv_hooks_rebuild(srv_hooks *h, srv_hooks_offered_fn offered, void *ud, cairn_err *err);

/* Carry out len bytes of body from source, with no credential check (the
 * caller's part).  origin (consumed, an object) is added to every run's
 * trigger.  *answer as above.  Errors: those of cairn_hook_normalize,
 * CAIRN_ESTATE when the backend stops, journal errors (runs started before
 * one stay, and a repeat finds them). */
int srv_hooks_deliver(srv_hooks *h, const char *source, const char *body, size_t len, jv origin,
                      jv *answer, cairn_err *err);

/* The HTTP route: credentials, then srv_hooks_deliver.  open: the server
 * has no tokens file, so a source with no credential is accepted. */
void srv_hooks_handle(srv_hooks *h, const srv_req *q, const char *source, bool open,
                      srv_resp *r);

#endif
