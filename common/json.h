/*
 * json.h - writing jv values as text, fast and canonically.
 *
 * jq 1.6's jv_dump_string is slow (it grows its output one piece at a time
 * and sorts keys through jv arrays), and the journal writes every event's data
 * as canonical text.  Canonical here means: compact, object keys sorted by
 * their bytes, strings escaped minimally (", \, control characters), numbers
 * as integers when integral and below 2^53, else with 17 significant digits
 * (so they read back to the same double).  The same value always gives the
 * same bytes, which is what the journal's hash chain needs.
 *
 * Memory: v is borrowed; the text is appended to a caller-owned buffer, or
 * returned as a new string the caller frees.
 */
#ifndef CAIRN_JSON_H
#define CAIRN_JSON_H

#include <jv.h>

#include "common/mem.h"

void cairn_json_write(cairn_buf *out, jv v);
void cairn_json_write_string(cairn_buf *out, const char *s, size_t len);   /* quoted, escaped */
char *cairn_json_text(jv v);

#endif
