/*
 * Fuzz target: the shell-quoting lexer (dsl/shlex.c).  The input is a
 * script in which each byte 0x01 marks a splice (at most 32).  Whatever the
 * script, placing must end, stay in bounds, and give each splice a context
 * or one error with an offset inside the script.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsl/shlex.h"

#define MARKS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    size_t marks[MARKS], len = 0;
    int n = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == 0x01 && n < MARKS) marks[n++] = len;
        else if (data[i] != 0x01) text[len++] = (char)data[i];
    }
    text[len] = '\0';
    cairn_shctx ctx[MARKS];
    cairn_shlex_err err;
    memset(ctx, 0xff, sizeof ctx);
    if (cairn_shlex_place(text, len, marks, n, ctx, &err) == 0) {
        for (int i = 0; i < n; i++)
            if ((unsigned)ctx[i] > CAIRN_SHCTX_COMMENT) abort();   /* every splice placed */
    } else if (err.offset > len || err.why[0] == '\0') {
        abort();
    }
    free(text);
    return 0;
}
