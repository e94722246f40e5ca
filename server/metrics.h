/*
 * metrics.h - what `GET /metrics` reports, in Prometheus' text format
 * (version 0.0.4), fed from the engine's durable events.
 *
 * Families:
 *   cairn_runs_started_total{workflow}
 *   cairn_runs_finished_total{workflow,status}
 *   cairn_runs_active                     runs the engine holds now
 *   cairn_steps_total{action,status}      steps' attempts as they end
 *   cairn_step_duration_seconds{action}   histogram: an attempt's start to its end
 *   cairn_journal_commit_seconds          histogram: an event's append to durable
 *   cairn_journal_batch_events            histogram: events per group commit
 *   cairn_event_streams                   Server-Sent Events streams open
 *   cairn_http_requests_total{code}
 *   cairn_webhooks_total{source,result}   fed by the webhook routes
 *   cairn_schedule_fires_total{workflow,result}  fed by the scheduler (schedule.h)
 *
 * Threads: feeding is from the orchestrator (events) and the HTTP threads
 * (requests); a lock guards it all, held for microseconds.
 *
 * Memory: strings passed in are copied.
 */
#ifndef CAIRN_SERVER_METRICS_H
#define CAIRN_SERVER_METRICS_H

#include "common/mem.h"
#include "dsl/workflow.h"
#include "engine/event.h"
#include "engine/fold.h"

/* Distinct label sets one family keeps; past it new ones count as "other". */
#define CAIRN_METRICS_SERIES_MAX 1024

typedef struct srv_metrics srv_metrics;

srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);

/* Learn wf's steps' actions (before the workflow goes to the engine). */
void srv_metrics_learn(srv_metrics *m, const cairn_workflow *wf);
/* Where cairn_runs_active is read when the text is written: fn(ud), from
 * the HTTP thread (the engine's count of the runs it holds, which knows of
 * runs placed elsewhere, taken over or lost as no event here says). */
void srv_metrics_active_from(srv_metrics *m, int (*fn)(void *), void *ud);

void srv_metrics_event(srv_metrics *m, const cairn_event *ev, const cairn_run_state *st);
void srv_metrics_batch(srv_metrics *m, int n);
void srv_metrics_request(srv_metrics *m, int status);
void srv_metrics_streams(srv_metrics *m, int delta);
/* A webhook delivery from source and what came of it ("started",
 * "existed", "unmatched", "refused", ...). */
void srv_metrics_webhook(srv_metrics *m, const char *source, const char *result);

/* A schedule's slot of workflow and what came of it ("started",
 * "caught_up", "recovered", "skipped", "refused", "failed"). */
void srv_metrics_schedule(srv_metrics *m, const char *workflow, const char *result);

/* The exposition text, appended to out. */
void srv_metrics_write(srv_metrics *m, cairn_buf *out);

#endif
