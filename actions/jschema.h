/*
 * jschema.h - a JSON Schema checker over jq's jv, for the subset that LLM
 * structured output uses.
 *
 * Keywords checked: type (a name or a list of names; "integer" is a number
 * with no fraction), properties, required, additionalProperties (a boolean
 * or a schema), items (one schema for every element), enum, const, minimum,
 * maximum, exclusiveMinimum, exclusiveMaximum (numbers, as in draft 6 and
 * later), minLength, maxLength (in Unicode code points), minItems, maxItems,
 * pattern (PCRE2 with UTF-8, matched anywhere in the string, as JSON Schema
 * says: anchor with ^...$), anyOf, oneOf, allOf, not, and $ref to a place in
 * the same document ("#", "#/$defs/name", "#/definitions/name", any JSON
 * pointer under "#/").  true and false are schemas too (anything, nothing).
 *
 * Annotations are accepted and ignored: title, description, default,
 * examples, $schema, $id, $comment, format, deprecated, readOnly, writeOnly,
 * contentMediaType, contentEncoding; $defs and definitions hold schemas for
 * $ref.  Any other keyword is refused when the schema is compiled, so a
 * schema never silently checks less than its author meant.
 *
 * Compiling checks the schema itself (every keyword's value has the right
 * type, every pattern compiles, every $ref resolves) and compiles each
 * pattern once.  Errors name the JSON path, in the schema for a bad schema
 * ("schema $.properties.n.minimum: expected a number, got string") and in
 * the value for a mismatch ("$.verdict: expected one of
 * [\"real\",\"false_positive\"]").  Checking stops at the first mismatch.
 *
 * Threads: a compiled schema holds jv values; like every jv, use it on one
 * thread only (the orchestrator's).  It may sit in a job that passes through
 * a worker thread as long as that thread never touches it.
 *
 * Memory: cairn_jschema_new takes a borrowed schema and keeps its own copy;
 * the caller owns the result and frees it with cairn_jschema_free (NULL is
 * allowed).  cairn_jschema_check borrows its value.
 */
#ifndef CAIRN_JSCHEMA_H
#define CAIRN_JSCHEMA_H

#include <jv.h>

#include "common/err.h"

#define CAIRN_JSCHEMA_DEPTH_MAX 128    /* nesting of schemas (and $ref hops) followed */
#define CAIRN_JSCHEMA_SHOW_MAX 120     /* bytes of a value or list quoted in a message */

typedef struct cairn_jschema cairn_jschema;

/* Compile schema (borrowed: an object or a boolean).  Returns 0 and *out, or
 * CAIRN_ESYNTAX with the place and the problem in err. */
int cairn_jschema_new(jv schema, cairn_jschema **out, cairn_err *err);

/* Check value (borrowed) against s.  Returns 0 when it matches, else
 * CAIRN_EINVAL with "<path>: <what is wrong>" in err (CAIRN_ELIMIT when the
 * value nests deeper than CAIRN_JSCHEMA_DEPTH_MAX under a recursive $ref). */
int cairn_jschema_check(const cairn_jschema *s, jv value, cairn_err *err);

void cairn_jschema_free(cairn_jschema *s);

#endif
