/*
 * err.h - status codes and the error record every Cairn module returns.
 *
 * Functions return 0 on success or a negative CAIRN_E* code, and fill a
 * caller-owned cairn_err with a message and, where the error has a place in a
 * source file, its file:line:col.  The code enum and its message table come
 * from one X-macro so they cannot drift apart.
 *
 * Out of memory: Cairn does not try to limp on.  cairn_malloc() and friends
 * (mem.h) print a message and abort(), as Redis does; every other function may
 * therefore assume allocation succeeds.
 */
#ifndef CAIRN_ERR_H
#define CAIRN_ERR_H

#include <stdarg.h>

#define CAIRN_ERRNO_MAP(X)                                           \
    X(INVAL,    -1,  "invalid argument")                             \
    X(IO,       -2,  "input/output error")                           \
    X(NOTFOUND, -3,  "not found")                                    \
    X(CORRUPT,  -4,  "corrupt or foreign data")                      \
    X(LIMIT,    -5,  "limit exceeded")                               \
    X(STATE,    -6,  "operation not allowed in this state")          \
    X(BUSY,     -7,  "resource busy")                                \
    X(SYNTAX,   -8,  "syntax error")                                 \
    X(TYPE,     -9,  "type mismatch")                                \
    X(EXPR,     -10, "expression failed")                            \
    X(AUTH,     -11, "not authorised")                               \
    X(EXISTS,   -12, "already exists")                               \
    X(FULL,     -13, "no room left")                                 \
    X(FENCED,   -14, "held by another engine now")

typedef enum {
    CAIRN_OK = 0,
#define CAIRN_ERR_ENUM(name, val, msg) CAIRN_E##name = val,
    CAIRN_ERRNO_MAP(CAIRN_ERR_ENUM)
#undef CAIRN_ERR_ENUM
} cairn_errno;

#define CAIRN_ERR_MSG_MAX 1024
#define CAIRN_ERR_FILE_MAX 256

typedef struct cairn_err {
    int code;                       /* 0 or CAIRN_E* */
    char file[CAIRN_ERR_FILE_MAX];  /* "" when the error has no place */
    int line, col;                  /* 1-based; 0 when unknown */
    char msg[CAIRN_ERR_MSG_MAX];
} cairn_err;

/* The fixed text for a code ("unknown error" for anything else). */
const char *cairn_strerror(int code);

/* Clear e (NULL is allowed). */
void cairn_err_clear(cairn_err *e);

/* Record code and a printf-style message in e (which may be NULL); return code. */
int cairn_err_set(cairn_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As cairn_err_set, with a source position. */
int cairn_err_at(cairn_err *e, int code, const char *file, int line, int col,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Format "file:line:col: msg" (or just msg) into out; returns out. */
const char *cairn_err_format(const cairn_err *e, char *out, int outlen);

#endif
