/*
 * shlex.h - where a value spliced into a shell script stands, and how the
 * script refers to it there.
 *
 * A value spliced into shell's `run` or ssh's `command` never becomes shell
 * text.  At load time the script is lexed for its quoting, and every `${{ }}`
 * in it is replaced by a reference to an environment variable that holds the
 * rendered value, written for the quoting context the splice stands in:
 *
 *   context                     reference to CAIRN_V1
 *   unquoted                    "${CAIRN_V1}"
 *   inside "..."                ${CAIRN_V1}
 *   inside '...'                '"${CAIRN_V1}"'       (close, expand, reopen)
 *   inside $'...' (bash)        '"${CAIRN_V1}"$'
 *   unquoted here-document      ${CAIRN_V1}
 *   comment                     ${CAIRN_V1}           (nothing is expanded)
 *
 * A parameter expansion is never parsed again by the shell, so whatever the
 * value holds (quotes, `$( )`, backquotes, newlines, `; rm -rf /`) it stays
 * data.  Places where that does not hold, or that cannot be placed safely,
 * are refused, with the offset and the reason:
 *
 *   inside backquotes           the shell re-reads their text: use $( )
 *   inside ${ ... }             the word is expanded with its own rules
 *   inside $(( )), (( )), $[ ]  arithmetic evaluates a value's text again
 *                               (`a[$(cmd)]` runs cmd)
 *   a quoted here-document      nothing expands there: the value could not
 *   (<<'EOF', <<"EOF", <<\EOF)  appear
 *   a here-document delimiter   it must be literal
 *   right after `\` or `$`      the backslash or dollar would change it
 *
 * The lexer follows POSIX sh and bash: single and double quotes, $'...',
 * backslashes, comments, $( ) and ( ) nesting, backquotes, ${ }, arithmetic,
 * here-documents (<< and <<-, several on one line, in the order given) and
 * here-strings (<<<).  It is deliberately conservative: a `((` at the start
 * of a word is taken for arithmetic even where bash would read two
 * subshells.  What it cannot see is what a script does with a value later:
 * `eval "$x"`, `bash -c "$x"`, `[[ $x -eq 1 ]]`, `let`, `declare -i` and
 * array subscripts re-read a value as code or arithmetic whatever its
 * origin (docs: the language reference says so).
 *
 * Memory: nothing is allocated except through the caller's buffer.
 */
#ifndef CAIRN_SHLEX_H
#define CAIRN_SHLEX_H

#include <stddef.h>

#include "common/mem.h"

typedef enum {
    CAIRN_SHCTX_PLAIN,                 /* unquoted */
    CAIRN_SHCTX_DQUOTE,                /* inside "..." */
    CAIRN_SHCTX_SQUOTE,                /* inside '...' */
    CAIRN_SHCTX_ANSI,                  /* inside $'...' */
    CAIRN_SHCTX_HEREDOC,               /* in an unquoted here-document's body */
    CAIRN_SHCTX_COMMENT                /* after # */
} cairn_shctx;

#define CAIRN_SHLEX_WHY_MAX 200
#define CAIRN_SHLEX_DEPTH_MAX 64       /* nested quotes and substitutions */
#define CAIRN_SHLEX_HEREDOCS_MAX 16    /* here-documents opened on one line */

typedef struct cairn_shlex_err {
    size_t offset;                     /* byte offset in the script */
    char why[CAIRN_SHLEX_WHY_MAX];
} cairn_shlex_err;

/* Lex script (len bytes, the author's text with every splice cut out) in
 * which splice i stands at byte offset marks[i] (ascending; a splice takes
 * no bytes of script), and set ctx[i] to its context.  Returns 0, or -1
 * with err set for the first splice that cannot be placed safely (or for
 * nesting past CAIRN_SHLEX_DEPTH_MAX / CAIRN_SHLEX_HEREDOCS_MAX). */
int cairn_shlex_place(const char *script, size_t len, const size_t *marks, int n,
                      cairn_shctx *ctx, cairn_shlex_err *err);

/* Append to b the reference to the variable `name` for context ctx. */
void cairn_shlex_reference(cairn_buf *b, cairn_shctx ctx, const char *name);

#endif
