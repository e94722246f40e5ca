/*
 * with.h - reading a step's rendered `with` object in an action's prepare.
 *
 * Every action checks its fields the same way: a field that is absent or
 * null counts as absent; a value of the wrong kind is a failure of kind
 * "schema" whose message names the field.  `who` prefixes messages ("ssh: ";
 * "" for none).  Each reader returns 0, or -1 with f set.
 *
 * Memory: `with` is borrowed; a jv named v is consumed; strings written to
 * *out are the caller's to free.  Orchestrator thread only (jv).
 */
#ifndef CAIRN_WITH_H
#define CAIRN_WITH_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actions/action.h"

/* Whether name is one of list (comma-separated: "GET,POST"). */
bool cairn_with_listed(const char *list, const char *name);

/* with[name], or jv_invalid() when absent or null. */
jv cairn_with_get(jv with, const char *name);

/* v as a C string: a string with no NUL byte (C would cut it there) and at
 * most max bytes (0: any length), copied to *out. */
int cairn_with_text(jv v, const char *who, const char *what, size_t max, char **out,
                    cairn_fail *f);

/* As cairn_with_text, also taking a number or boolean, written as JSON
 * writes it (env values, header values). */
int cairn_with_scalar_text(jv v, const char *who, const char *what, char **out, cairn_fail *f);

/* A string field copied to *out; *out stays NULL when the field is absent
 * and not required. */
int cairn_with_string(jv with, const char *name, bool required, char **out, cairn_fail *f);

/* A boolean field; *out keeps its value (the default) when absent. */
int cairn_with_bool(jv with, const char *name, bool *out, cairn_fail *f);

/* A positive duration string ("30s"); *out_ms keeps its value when absent. */
int cairn_with_duration(jv with, const char *name, int64_t *out_ms, cairn_fail *f);

#endif
