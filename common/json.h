/*
 * json.h - writing jv values as text, fast and canonically; reading JSON
 * from outside safely.
 *
 * jq 1.6's jv_dump_string is slow (it grows its output one piece at a time
 * and sorts keys through jv arrays), and the journal writes every event's data
 * as canonical text.  Canonical here means: compact, object keys sorted by
 * their bytes, strings escaped minimally (", \, control characters), numbers
 * as integers when integral and below 2^53, else with 17 significant digits
 * (so they read back to the same double).  The same value always gives the
 * same bytes, which is what the journal's hash chain needs.
 *
 * Reading: cairn_json_parse takes JSON from outside through a strict check.
 *
 * Memory: v is borrowed; the text is appended to a caller-owned buffer, or
 * returned as a new string the caller frees.
 */
#ifndef CAIRN_JSON_H
#define CAIRN_JSON_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/mem.h"

#define CAIRN_JSON_DEPTH_MAX 256           /* nesting of arrays and objects, as jq's */
#define CAIRN_JSON_TEXT_MAX 0x7fffffff     /* bytes: jq takes an int */

/* One JSON text from outside (a reply, a body, a file): n bytes of s, which
 * need not be NUL-terminated.  Strict RFC 8259 (no NaN, no comments, no
 * control characters in strings, one value with only white space around
 * it), checked before libjq parses it (json_parse.c says why).  Returns the
 * value, or jv_invalid_with_msg("<what> at byte N"). */
jv cairn_json_parse(const char *s, size_t n);

/* Where the members named keys[0..n_keys) of a JSON object lie in its
 * text (n bytes of s), without making a value: spans[k] receives the byte
 * offset and length of the value of keys[k] (length 0: absent).  The whole
 * text is checked as cairn_json_parse checks it.  false when it is not one
 * object, or when the answer would be ambiguous (a key written with an
 * escape, a key named twice): parse it then. */
typedef struct cairn_json_span {
    size_t at, len;
} cairn_json_span;
bool cairn_json_members(const char *s, size_t n, const char *const *keys, int n_keys,
                        cairn_json_span *spans);

void cairn_json_write(cairn_buf *out, jv v);
void cairn_json_write_string(cairn_buf *out, const char *s, size_t len);   /* quoted, escaped */
char *cairn_json_text(jv v);
/* The order cairn_json_write gives object keys (a, b: alen, blen bytes):
 * negative, zero or positive, by their bytes, a prefix first. */
int cairn_json_key_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
