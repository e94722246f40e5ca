/*
 * ssh_exec.c - one exec channel: open it, start the command, pump stdin in
 * and stdout/stderr out (capped) until the server's EOF, then collect the
 * exit status at close.
 *
 * Reading and writing alternate in one loop, so a command that writes a lot
 * before it reads its stdin cannot deadlock against us.  A command that
 * exits without reading all of its stdin is fine: the rest is dropped.
 *
 * On any failure the channel is left to ssh__close(), which shuts the
 * socket down first: a timeout or a stop never waits for the server.
 */
#include "actions/ssh_int.h"
#include "common/mem.h"

#include <stdio.h>
#include <string.h>

void ssh__run_init(ssh_run *r, size_t cap) {
    memset(r, 0, sizeof *r);
    cairn_capbuf_init(&r->out, cap);
    cairn_capbuf_init(&r->err, cap);
}

void ssh__run_free(ssh_run *r) {
    if (r == NULL) return;
    cairn_capbuf_free(&r->out);
    cairn_capbuf_free(&r->err);
}

static LIBSSH2_CHANNEL *open_channel(ssh_conn *c, const char *doing) {
    LIBSSH2_CHANNEL *ch;
    while ((ch = libssh2_channel_open_session(c->s)) == NULL) {
        int rc = libssh2_session_last_errno(c->s);
        if (rc != LIBSSH2_ERROR_EAGAIN) {
            ssh__lost(c, rc, doing);
            return NULL;
        }
        if (ssh__wait(c, doing)) return NULL;
    }
    return ch;
}

static int start(ssh_conn *c, LIBSSH2_CHANNEL *ch, const char *cmd, const char *doing) {
    int rc;
    while ((rc = libssh2_channel_exec(ch, cmd)) == LIBSSH2_ERROR_EAGAIN)
        if (ssh__wait(c, doing)) return -1;
    if (rc == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED) {
        c->broken = true;
        return ssh__fail(c->job, "protocol", "%s refused to run a command (exec request "
                                             "denied) while %s", c->where, doing);
    }
    return rc ? ssh__lost(c, rc, doing) : 0;
}

typedef struct feed {
    const char *data;
    size_t len, sent;
    bool done;                         /* EOF sent, or the command stopped reading */
} feed;

/* Write what the window allows.  Returns 1 on progress, 0 none, -1 failed. */
static int write_some(ssh_conn *c, LIBSSH2_CHANNEL *ch, feed *in, const char *doing) {
    int rc;
    if (in->done) return 0;
    if (in->sent < in->len) {
        size_t n = in->len - in->sent;
        ssize_t w = libssh2_channel_write(ch, in->data + in->sent,
                                          n < CAIRN_SSH_IO_CHUNK ? n : CAIRN_SSH_IO_CHUNK);
        if (w > 0) in->sent += (size_t)w;
        if (w >= 0 || w == LIBSSH2_ERROR_EAGAIN) return w > 0;
        rc = (int)w;
    } else {
        rc = libssh2_channel_send_eof(ch);
        if (rc == 0) in->done = true;
        if (rc == 0 || rc == LIBSSH2_ERROR_EAGAIN) return rc == 0;
    }
    if (libssh2_channel_eof(ch) || rc == LIBSSH2_ERROR_CHANNEL_CLOSED ||
        rc == LIBSSH2_ERROR_CHANNEL_EOF_SENT) {
        in->done = true;               /* the command is gone: the rest is dropped */
        return 1;
    }
    return ssh__lost(c, rc, doing);
}

/* Read what is there from one stream.  Returns 1 on progress, 0 none, -1. */
static int read_some(ssh_conn *c, LIBSSH2_CHANNEL *ch, int stream, cairn_capbuf *b,
                     const char *doing) {
    char buf[CAIRN_SSH_IO_CHUNK];
    ssize_t n = libssh2_channel_read_ex(ch, stream, buf, sizeof buf);
    if (n > 0) cairn_capbuf_append(b, buf, (size_t)n);
    if (n >= 0 || n == LIBSSH2_ERROR_EAGAIN) return n > 0;
    return ssh__lost(c, (int)n, doing);
}

static int pump(ssh_conn *c, LIBSSH2_CHANNEL *ch, feed *in, ssh_run *r, const char *doing) {
    for (;;) {
        int w = write_some(c, ch, in, doing);
        int o = w < 0 ? -1 : read_some(c, ch, 0, &r->out, doing);
        int e = o < 0 ? -1 : read_some(c, ch, SSH_EXTENDED_DATA_STDERR, &r->err, doing);
        if (w < 0 || o < 0 || e < 0) return -1;
        if (w || o || e) continue;
        if (libssh2_channel_eof(ch)) return 0;
        if (ssh__wait(c, doing)) return -1;
    }
}

/* After the server's EOF: wait for its CLOSE, which follows the exit
 * status (closing first could make the server drop a status not yet sent);
 * libssh2 then answers with ours. */
static int finish(ssh_conn *c, LIBSSH2_CHANNEL *ch, ssh_run *r, const char *doing) {
    int rc;
    while ((rc = libssh2_channel_wait_closed(ch)) == LIBSSH2_ERROR_EAGAIN)
        if (ssh__wait(c, doing)) return -1;
    if (rc) return ssh__lost(c, rc, doing);
    r->exit_code = libssh2_channel_get_exit_status(ch);
    char *sig = NULL;
    size_t siglen = 0;
    libssh2_channel_get_exit_signal(ch, &sig, &siglen, NULL, NULL, NULL, NULL);
    if (sig) {
        snprintf(r->signal, sizeof r->signal, "%.*s", (int)siglen, sig);
        libssh2_free(c->s, sig);
    }
    while ((rc = libssh2_channel_free(ch)) == LIBSSH2_ERROR_EAGAIN)
        if (ssh__wait(c, doing)) return -1;
    return 0;
}

int ssh__exec(ssh_conn *c, const char *cmd, const char *in, size_t inlen, ssh_run *r,
              const char *doing) {
    feed f = {.data = in, .len = in ? inlen : 0};
    LIBSSH2_CHANNEL *ch = open_channel(c, doing);
    if (ch == NULL || start(c, ch, cmd, doing) || pump(c, ch, &f, r, doing) ||
        finish(c, ch, r, doing))
        return -1;
    return 0;
}
