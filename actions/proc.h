/*
 * proc.h - run a local process with captured, capped output, a deadline and
 * a stop flag; and the capped output buffer other actions (ssh) reuse.
 *
 * cairn_proc_run starts argv (vfork and execve) as the leader of a new process
 * group, feeds it stdin from memory (or /dev/null), and reads stdout and
 * stderr concurrently with poll(), so the child never blocks on a full pipe
 * and we never block on a slow child.  Each stream keeps its first
 * output_max bytes; anything past that is read and counted but dropped.
 *
 * Stopping: when the deadline passes or the stop flag turns true before the
 * leader exits, the WHOLE process group gets SIGTERM, then SIGKILL after
 * kill_grace_ms (sooner if the leader exits first: stragglers still get
 * SIGKILL).  The leader is reaped only after the last signal, so its pid, and
 * with it the group id, cannot be reused by an unrelated process meanwhile.
 * The flag is polled at least every CAIRN_PROC_POLL_SLICE_MS.
 *
 * Background processes: a process the script starts in the background may
 * keep the pipes open after the leader exits.  We then read for at most
 * CAIRN_PROC_DRAIN_MS more (stopping at once when both pipes close, the
 * deadline passes or a stop is asked), close our ends and return: such a
 * process is left running, and its later writes to stdout or stderr fail
 * (EPIPE), so a daemon should redirect its output ("cmd >log 2>&1 &").
 * Processes left in the group after a normal exit are not killed.
 *
 * Dying with the engine: the leader gets SIGKILL when the thread that started
 * it exits (PR_SET_PDEATHSIG), which, for the calling thread of
 * cairn_proc_run, happens only when the whole process dies: it does not
 * return before the leader is reaped.  The leader's own children are not
 * covered (the kernel clears the setting across fork): they are why the
 * group is reported to spec->attempt (action.h, `spawned`), so that the
 * engine journals it and recovery kills it (pgroup.h).  The report comes
 * once the leader has run for CAIRN_PROC_REPORT_MS: a step that ends sooner
 * (most short commands) costs no journal commit for it, and a crash in that
 * time leaves the leader's children unrecorded.
 *
 * Threads: cairn_proc_run and the capbuf functions without jv use no jv and
 * no global state, so they run on a worker thread; cairn_capbuf_jv and
 * cairn_capbuf_add_output build jv, for the orchestrator thread.  SIGPIPE
 * from writing stdin to a child that stopped reading is blocked in the
 * calling thread and consumed, never delivered.  The caller's process must
 * not ignore SIGCHLD (children would be reaped behind our back).
 *
 * Memory: cairn_proc_run fills a caller-owned result; release it with
 * cairn_proc_result_free.  The spec's strings are borrowed.
 */
#ifndef CAIRN_PROC_H
#define CAIRN_PROC_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actions/action.h"
#include "common/err.h"
#include "common/mem.h"

/* ---- limits ------------------------------------------------------------- */

#define CAIRN_SHELL_OUTPUT_MAX (1024 * 1024) /* bytes kept of each of stdout, stderr */
#define CAIRN_SHELL_KILL_GRACE_MS 2000       /* SIGTERM -> SIGKILL of the group */
#define CAIRN_PROC_POLL_SLICE_MS 50          /* longest wait between stop checks */
#define CAIRN_PROC_DRAIN_MS 200              /* reading after the leader exited */
#define CAIRN_PROC_REPORT_MS 20              /* running this long: report the group */
#define CAIRN_OUTPUT_TAIL_MAX 512            /* last bytes of a stream kept for messages */

/* ---- a capped output buffer --------------------------------------------- */

typedef struct cairn_capbuf {
    cairn_buf head;                    /* the first `cap` bytes */
    size_t cap;
    size_t total;                      /* every byte seen, kept or not */
    char tail[CAIRN_OUTPUT_TAIL_MAX];  /* the last bytes seen (for error messages) */
    size_t tail_len;
} cairn_capbuf;

void cairn_capbuf_init(cairn_capbuf *b, size_t cap);
void cairn_capbuf_append(cairn_capbuf *b, const void *p, size_t n);
static inline bool cairn_capbuf_truncated(const cairn_capbuf *b) { return b->total > b->cap; }
void cairn_capbuf_free(cairn_capbuf *b);       /* NULL is allowed */

/* The kept bytes as a JSON string: invalid UTF-8 becomes U+FFFD, and a
 * sequence cut by the cap is dropped. */
jv cairn_capbuf_jv(const cairn_capbuf *b);

/* Add `<name>` (the string), `<name>_truncated` and `<name>_bytes` (every
 * byte the stream produced) to obj; returns obj. */
jv cairn_capbuf_add_output(jv obj, const char *name, const cairn_capbuf *b);

/* The last bytes seen, whitespace-trimmed, as valid UTF-8, in out (outlen
 * > 0; NUL-terminated, "" when nothing was seen); a cut at the front is
 * marked "...", and the end is cut on a character boundary to fit. */
void cairn_capbuf_tail(const cairn_capbuf *b, char *out, size_t outlen);

/* Copy n bytes of s into b replacing each invalid UTF-8 byte with U+FFFD.
 * With drop_cut, an incomplete sequence at the very end is dropped instead. */
void cairn_utf8_repair(cairn_buf *b, const char *s, size_t n, bool drop_cut);

/* ---- running a process -------------------------------------------------- */

typedef struct cairn_proc_spec {
    char *const *argv;                 /* argv[0] without '/' is looked up in envp's PATH */
    char *const *envp;                 /* the whole environment, NULL-terminated */
    const char *cwd;                   /* or NULL: inherit */
    const char *stdin_data;            /* NULL: stdin is /dev/null */
    size_t stdin_len;
    size_t output_max;                 /* per stream */
    int64_t deadline_ms;               /* CLOCK_MONOTONIC ms; 0: none */
    const cairn_stop *stop;            /* or NULL */
    int64_t kill_grace_ms;
    const cairn_attempt_info *attempt; /* or NULL: its `spawned` is told of the group */
} cairn_proc_spec;

typedef enum {
    CAIRN_PROC_EXITED,                 /* exit_code is set */
    CAIRN_PROC_SIGNALED,               /* term_signal is set (not by us) */
    CAIRN_PROC_TIMEOUT,                /* deadline passed; the group was killed */
    CAIRN_PROC_CANCELLED               /* stop requested; the group was killed */
} cairn_proc_outcome;

typedef struct cairn_proc_result {
    cairn_proc_outcome outcome;
    int exit_code;
    int term_signal;
    bool spawned;                      /* false: timed out or cancelled before start */
    int64_t pid;                       /* the leader (and group id); 0 when not spawned */
    cairn_capbuf out, err;
} cairn_proc_result;

/* Run spec to an outcome.  Returns 0 with *res filled (free it with
 * cairn_proc_result_free), or CAIRN_ENOTFOUND (no such program or cwd) /
 * CAIRN_EIO (spawn failed) with a message in err and *res empty but still
 * safe to free. */
int cairn_proc_run(const cairn_proc_spec *spec, cairn_proc_result *res, cairn_err *err);

void cairn_proc_result_free(cairn_proc_result *res);   /* NULL is allowed */

/* Where the program `name` is for a child with environment envp and working
 * folder cwd (NULL: ours): name itself when it holds a '/', else the first
 * executable match in envp's PATH (a default PATH when it has none).
 * Returns 0 and *out (the caller's), or CAIRN_ENOTFOUND. */
int cairn_proc_find(const char *name, char *const *envp, const char *cwd, char **out,
                    cairn_err *err);

/* ---- `with` fields shell and ssh share -------------------------------------- */

#define CAIRN_EXIT_CODES 256   /* exit codes are 0..255 */

/* with.ok_codes (with borrowed; absent means [0]) into ok[].  who prefixes
 * messages ("ssh: ").  0, or -1 with f set (kind schema). */
int cairn_with_ok_codes(jv with, bool ok[CAIRN_EXIT_CODES], const char *who, cairn_fail *f);

/* with.stdin (with borrowed; may be absent) copied by length (it may hold
 * NUL bytes) into *data (caller frees) and *len. */
int cairn_with_stdin(jv with, char **data, size_t *len, const char *who, cairn_fail *f);

#endif
