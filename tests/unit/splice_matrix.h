/*
 * splice_matrix.h - hostile values spliced into a shell script in every
 * quoting context, for the tests of the shell and ssh actions.
 *
 * The script prints each splice between brackets, one context a line; what
 * it must print is the value itself in every line.  Payloads try to run
 * `touch PWNED` (PWNED a path the caller gives) in every way a shell could be
 * tricked into it, and carry quotes, backslashes, `$HOME` and newlines.
 *
 * Memory: strings returned are the caller's (free); jv as jq's convention.
 */
#ifndef CAIRN_TEST_SPLICE_MATRIX_H
#define CAIRN_TEST_SPLICE_MATRIX_H

#include <jv.h>
#include <stdbool.h>

/* How many payloads there are, and payload i with pwned in place. */
int sm_payload_count(void);
char *sm_payload(int i, const char *pwned);

/* The script (with $'...' when bash), and what it prints for value v. */
const char *sm_script(bool bash);
char *sm_expected(const char *v, bool bash);

/* The `with` of the one step of `uses: USES, with: {FIELD: script, EXTRA}`
 * (EXTRA: more flow-map YAML, or ""), loaded with the built-in actions and
 * rendered over {"inputs": {"x": value}}.  Fails the test on a load error. */
jv sm_render(const char *uses, const char *field, const char *script, const char *extra,
             const char *value);

#endif
