/*
 * hook.h - monitoring webhooks normalized to the language's trigger event.
 *
 * A webhook body from one source (alertmanager, pagerduty, datadog, grafana,
 * servicenow, generic) becomes a list of events, each a JSON object with at
 * least these fields, every one a string but labels and raw:
 *
 *   source       the source's name
 *   status       "firing" or "resolved"
 *   alertname    what fired (an alert rule, a monitor, an incident's title)
 *   severity     as the source names it ("" when it names none)
 *   summary      one line for people ("" when there is none)
 *   labels       an object of strings: what `match` may test beside the above
 *   fingerprint  the same alert's same key in every delivery, firing and
 *                resolved: what `dedupe` usually names
 *   raw          the payload as received; for a group, with `alerts` cut
 *                to this event's alert, and for a generic list, its own
 *                entry (so a run started from one alert of a thousand does
 *                not carry the other 999)
 *
 * plus fields of its source (docs/api.md lists each source's mapping).  One
 * request may hold several alerts (an Alertmanager or Grafana group): each
 * is one event, the group's labels merged under its own.  A payload that
 * holds no alert (PagerDuty's ping, an empty group) gives no event.
 *
 * The body is checked before anything else: at most CAIRN_HOOK_BODY_MAX
 * bytes, valid UTF-8, then strict JSON (common/json.h, nested at most
 * CAIRN_JSON_DEPTH_MAX deep).  Each event holds at most CAIRN_HOOK_LABELS_MAX
 * labels; a request gives at most CAIRN_HOOK_EVENTS_MAX events.
 *
 * Pure: nothing here reads a clock, a file or the network, so a payload
 * always gives the same events.  Safe on any thread for different inputs
 * (jv values are not shared between calls).
 *
 * Memory: body is borrowed; *events (a JSON array) belongs to the caller.
 */
#ifndef CAIRN_HOOK_H
#define CAIRN_HOOK_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define CAIRN_HOOK_BODY_MAX (1 << 20)   /* bytes of one webhook body */
#define CAIRN_HOOK_EVENTS_MAX 1000      /* events (alerts) in one body */
#define CAIRN_HOOK_LABELS_MAX 256       /* labels of one event */
#define CAIRN_HOOK_FINGERPRINT_HEX 16   /* hex digits of a fingerprint Cairn computes */

/* The i-th source (from 0, in the order docs/api.md gives), or NULL past the last. */
const char *cairn_hook_source(int i);

/* Whether source names one of them. */
bool cairn_hook_source_known(const char *source);

/* Normalize len bytes of body from source into *events (an array, maybe
 * empty).  Errors, with *events left jv_invalid() and the reason in err:
 *   CAIRN_ENOTFOUND  no such source
 *   CAIRN_ELIMIT     the body is too large, or holds too many alerts or labels
 *   CAIRN_ESYNTAX    invalid UTF-8 or JSON ("... at byte N")
 *   CAIRN_EINVAL     valid JSON that is not this source's payload: the
 *                    message names the field ("alerts[2].status: expected
 *                    firing or resolved, got 'pending'") */
int cairn_hook_normalize(const char *source, const char *body, size_t len, jv *events,
                         cairn_err *err);

#endif
