/*
 * hook_int.h - what hook.c shares with the normalizers of each source
 * (hook_sources.c): the building of events and their checked fields.
 */
#ifndef CAIRN_HOOK_INT_H
#define CAIRN_HOOK_INT_H

#include "server/hook.h"

/* One normalization under way.  The normalizer reads body (borrowed) and
 * adds events with hook__push; the first error stops it. */
typedef struct hook_in {
    const char *source;
    jv body;           /* the parsed payload, borrowed */
    jv events;         /* the array being built, owned */
    cairn_err *err;
} hook_in;

typedef int (*hook_normalize_fn)(hook_in *in);

int cairn__hook_alertmanager(hook_in *in);
int cairn__hook_grafana(hook_in *in);
int cairn__hook_pagerduty(hook_in *in);
int cairn__hook_datadog(hook_in *in);
int cairn__hook_servicenow(hook_in *in);
int cairn__hook_generic(hook_in *in);

/* Record "<source>: <message>" as CAIRN_EINVAL (or code) in in->err; returns it. */
int cairn__hook_fail(hook_in *in, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* obj[key] (obj borrowed): a copy, or null when obj is not an object or
 * has no such key. */
jv cairn__hook_get(jv obj, const char *key);

/* obj[key] as text, into *out (a new jv string): strings as they are,
 * numbers and booleans as JSON; null or absent gives "" unless required
 * (then an error "PATH: missing").  An object or array is an error. */
int cairn__hook_text(hook_in *in, jv obj, const char *key, const char *path, bool required,
                     jv *out);

/* Add each field of src (consumed; an object of scalars, or null: nothing) to
 * *labels as text; a value that is an object or array is an error naming
 * path.KEY; past CAIRN_HOOK_LABELS_MAX labels, CAIRN_ELIMIT. */
int cairn__hook_labels(hook_in *in, jv src, const char *path, jv *labels);

/* The fingerprint Cairn computes when a source sends none: the first
 * CAIRN_HOOK_FINGERPRINT_HEX hex digits of the SHA-256 of the canonical
 * JSON of [alertname, labels] (both borrowed), so the same alert gives the
 * same key in every delivery. */
jv cairn__hook_fingerprint(jv alertname, jv labels);

/* Check ev (consumed) and append it: status is firing or resolved,
 * alertname and fingerprint are non-empty strings; severity and summary
 * default to ""; labels to {}; raw to the whole body; source is set here. */
int cairn__hook_push(hook_in *in, jv ev);

#endif
