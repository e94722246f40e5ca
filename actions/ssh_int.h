/*
 * ssh_int.h - private to the `ssh` action (actions/ssh*.c): the job built
 * by prepare, one non-blocking libssh2 connection, and running commands on
 * it.
 *
 *   ssh.c          the action: `with` -> job, execute, job -> output
 *   ssh_conn.c     resolve, connect, handshake, host key, authenticate,
 *                  wait on the socket with the deadline and stop flag
 *   ssh_hostkey.c  known_hosts: loading, checking, algorithm preference
 *   ssh_exec.c     one exec channel: stdin in, capped stdout/stderr out
 *   ssh_detach.c   `detach: true`: a job on the host that outlives us
 *
 * Every blocking step is a libssh2 call in non-blocking mode retried after
 * ssh__wait(), which polls the socket for at most CAIRN_SSH_POLL_SLICE_MS
 * and fails the attempt (kind "timeout" or "cancelled") once the deadline
 * passes or a stop is asked.  Failures are written into the job's
 * cairn_fail; the first one wins.
 *
 * Memory: the job owns every string in it; secrets (password, passphrase)
 * are wiped before they are freed.  An ssh_conn owns its socket and session
 * and is released with ssh__close().
 */
#ifndef CAIRN_SSH_INT_H
#define CAIRN_SSH_INT_H

#include <libssh2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actions/action.h"
#include "actions/proc.h"

/* ---- limits (documented in ssh.c's header comment) ---------------------- */

#define CAIRN_SSH_PORT_DEFAULT 22
#define CAIRN_SSH_HOST_MAX 255                /* bytes in `host` */
#define CAIRN_SSH_USER_MAX 255                /* bytes in `user` */
#define CAIRN_SSH_LOGIN_TIMEOUT_MS 30000      /* resolve + connect + handshake + auth */
#define CAIRN_SSH_POLL_SLICE_MS 50            /* longest wait between stop checks */
#define CAIRN_SSH_KEEPALIVE_S 15              /* SSH keepalive while waiting */
#define CAIRN_SSH_DEAD_PEER_MS 60000          /* TCP_USER_TIMEOUT: unacked data drops it */
#define CAIRN_SSH_CLOSE_GRACE_MS 1000         /* polite goodbye after a normal end */
#define CAIRN_SSH_KNOWN_HOSTS_MAX (4 * 1024 * 1024) /* bytes of a known_hosts file */
#define CAIRN_SSH_SCRIPT_OUTPUT_MAX 4096      /* kept of the detach bookkeeping scripts */
#define CAIRN_SSH_IO_CHUNK 32768              /* bytes per channel read or write */
#define CAIRN_SSH_FINGERPRINT_MAX 64          /* "SHA256:" + 43 base64 chars */
#define CAIRN_SSH_SIGNAL_MAX 32               /* an exit signal's name */
#define CAIRN_SSH_STATE_DIR_DEFAULT "~/.cairn/jobs"

/* ---- the job ------------------------------------------------------------ */

typedef struct ssh_job {
    /* from `with` */
    char *host, *user;
    int port;
    char *key_file, *passphrase, *password;    /* exactly one of key_file, password */
    char *known_hosts;                         /* NULL with insecure_host_key */
    bool insecure;
    char *script;                              /* { env exports; command } (ssh.c) */
    char *stdin_data;                          /* or NULL */
    size_t stdin_len;
    bool ok[CAIRN_EXIT_CODES];
    bool detach;
    char *state_dir;                           /* detach; default CAIRN_SSH_STATE_DIR_DEFAULT */
    int64_t timeout_ms;                        /* 0: only the step deadline */

    /* the result */
    bool failed;
    cairn_fail fail;
    int exit_code;
    char signal[CAIRN_SSH_SIGNAL_MAX];         /* "" unless killed by a signal */
    cairn_capbuf out, err;
    char fingerprint[CAIRN_SSH_FINGERPRINT_MAX];
    char key_type[32];                         /* "ssh-ed25519", ... */
    bool reattached;                           /* detach: an earlier attempt started it */
    char *job_dir;                             /* detach: the run's directory on the host */
} ssh_job;

/* Record a failure in the job unless one is already there; returns -1. */
int ssh__fail(ssh_job *j, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- one connection ----------------------------------------------------- */

typedef struct ssh_conn {
    ssh_job *job;
    int fd;                                    /* -1 when not connected */
    LIBSSH2_SESSION *s;
    LIBSSH2_KNOWNHOSTS *known;                 /* NULL with insecure_host_key */
    int64_t deadline_ms;                       /* step deadline and with.timeout; 0: none */
    int64_t login_deadline_ms;                 /* until logged in; then 0 */
    const cairn_stop *stop;
    char where[CAIRN_SSH_HOST_MAX + 16];       /* "host:port" for messages */
    bool handshaken;                           /* SSH transport established */
    bool broken;                               /* failed or abandoned: no goodbye */
    cairn_buf revoked;                         /* "@revoked" keys, base64, '\n'-ended */
} ssh_conn;

/* Connect, check the host key and authenticate.  Returns 0, or -1 with the
 * job's failure set; call ssh__close() either way. */
int ssh__open(ssh_conn *c, ssh_job *j, const cairn_attempt_info *info);

/* Disconnect (politely when the connection is healthy) and free. */
void ssh__close(ssh_conn *c);

/* Wait until the socket is ready for what libssh2 is blocked on, for at
 * most one slice.  Returns 0 (retry the call), or -1 with a failure set once
 * the deadline passed or a stop was asked; `doing` ends the message
 * ("deadline reached while <doing>"). */
int ssh__wait(ssh_conn *c, const char *doing);

/* Turn libssh2 error rc (not EAGAIN) met while `doing` into a failure:
 * kind "connect" when the connection was lost, else "protocol".  Marks the
 * connection broken.  Returns -1. */
int ssh__lost(ssh_conn *c, int rc, const char *doing);

/* ---- known_hosts (ssh_hostkey.c) ---------------------------------------- */

/* Read j->known_hosts into c->known and prefer the host key algorithms it
 * holds for this host (as OpenSSH does).  Before the handshake. */
int ssh__hostkey_load(ssh_conn *c);

/* After the handshake, before any authentication: the server's key must be
 * in known_hosts (kind "auth" otherwise).  Fills the job's fingerprint. */
int ssh__hostkey_check(ssh_conn *c);

/* ---- running a command (ssh_exec.c) ------------------------------------- */

typedef struct ssh_run {
    cairn_capbuf out, err;
    int exit_code;
    char signal[CAIRN_SSH_SIGNAL_MAX];
} ssh_run;

void ssh__run_init(ssh_run *r, size_t cap);
void ssh__run_free(ssh_run *r);                /* NULL is allowed */

/* Run cmd in a new exec channel, feeding it in (inlen bytes; NULL: none),
 * until the channel closes.  Returns 0 with r filled, or -1 with the job's
 * failure set; `doing` names the step in messages. */
int ssh__exec(ssh_conn *c, const char *cmd, const char *in, size_t inlen, ssh_run *r,
              const char *doing);

/* ---- detach (ssh_detach.c) ---------------------------------------------- */

/* Run or reattach to the job of info->idempotency_key; fills the job's
 * result like a plain run.  Returns 0 or -1 with the failure set. */
int ssh__detach(ssh_conn *c, const cairn_attempt_info *info);

/* s in single quotes for a POSIX shell, appended to b. */
void ssh__quote(cairn_buf *b, const char *s);

#endif
