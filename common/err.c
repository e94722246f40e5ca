#include "err.h"

#include <stdio.h>
#include <string.h>

const char *cairn_strerror(int code) {
    switch (code) {
    case CAIRN_OK: return "ok";
#define CAIRN_ERR_CASE(name, val, msg) case val: return msg;
    CAIRN_ERRNO_MAP(CAIRN_ERR_CASE)
#undef CAIRN_ERR_CASE
    }
    return "unknown error";
}

void cairn_err_clear(cairn_err *e) {
    if (e == NULL) return;
    e->code = 0;
    e->file[0] = '\0';
    e->line = e->col = 0;
    e->msg[0] = '\0';
}

static int err_vset(cairn_err *e, int code, const char *file, int line, int col,
                    const char *fmt, va_list ap) {
    if (e == NULL) return code;
    e->code = code;
    snprintf(e->file, sizeof e->file, "%s", file ? file : "");
    e->line = line;
    e->col = col;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return code;
}

int cairn_err_set(cairn_err *e, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

int cairn_err_at(cairn_err *e, int code, const char *file, int line, int col,
                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, file, line, col, fmt, ap);
    va_end(ap);
    return code;
}

const char *cairn_err_format(const cairn_err *e, char *out, int outlen) {
    if (e->file[0] && e->line > 0)
        snprintf(out, outlen, "%s:%d:%d: %s", e->file, e->line, e->col, e->msg);
    else if (e->file[0])
        snprintf(out, outlen, "%s: %s", e->file, e->msg);
    else
        snprintf(out, outlen, "%s", e->msg);
    return out;
}
