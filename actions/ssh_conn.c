/*
 * ssh_conn.c - one libssh2 connection, non-blocking from the first byte:
 * resolve (getaddrinfo_a), TCP connect, SSH handshake, host key check,
 * authentication; and the wait every other step retries after.
 *
 * Until the login is complete, CAIRN_SSH_LOGIN_TIMEOUT_MS also bounds the
 * work (kind "connect"), so a black-holed address or a server that accepts
 * but never speaks cannot hold a worker for the whole step.  Afterwards SSH
 * keepalives and TCP_USER_TIMEOUT notice a peer that vanished without a
 * word.
 */
#include "actions/ssh_int.h"
#include "common/clock.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KEY_PEEK_MAX 16384             /* bytes of key_file read to tell an RSA key */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

/* libssh2_init is not thread-safe: once per process. */
static void lib_init(void) { lib_rc = libssh2_init(0); }

/* ---- time and waiting --------------------------------------------------- */

/* 0 and the longest wait allowed now (ms), or -1 with the failure set. */
static int check_time(ssh_conn *c, const char *doing, int *slice) {
    int64_t now = cairn_now_ms(), until = now + CAIRN_SSH_POLL_SLICE_MS;
    if (cairn_stop_requested(c->stop)) {
        c->broken = true;
        return ssh__fail(c->job, "cancelled", "stop requested while %s (%s)", doing, c->where);
    }
    if (c->deadline_ms && now >= c->deadline_ms) {
        c->broken = true;
        return ssh__fail(c->job, "timeout", "deadline reached while %s (%s)", doing, c->where);
    }
    if (c->login_deadline_ms && now >= c->login_deadline_ms) {
        c->broken = true;
        return ssh__fail(c->job, "connect", "%s: no SSH login within %ds (stuck %s)", c->where,
                         CAIRN_SSH_LOGIN_TIMEOUT_MS / 1000, doing);
    }
    if (c->deadline_ms && c->deadline_ms < until) until = c->deadline_ms;
    if (c->login_deadline_ms && c->login_deadline_ms < until) until = c->login_deadline_ms;
    *slice = (int)(until - now);
    return 0;
}

static int wait_fd(ssh_conn *c, short events, const char *doing) {
    int slice;
    if (check_time(c, doing, &slice)) return -1;
    struct pollfd p = {.fd = c->fd, .events = events};
    if (poll(&p, 1, slice) < 0 && errno != EINTR)
        return ssh__fail(c->job, "connect", "poll on %s failed: %s", c->where, strerror(errno));
    return 0;
}

int ssh__wait(ssh_conn *c, const char *doing) {
    short ev = 0;
    int dir = libssh2_session_block_directions(c->s), next = 0;
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND) ev |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND) ev |= POLLOUT;
    if (c->login_deadline_ms == 0) libssh2_keepalive_send(c->s, &next);   /* best effort */
    return wait_fd(c, ev ? ev : POLLIN, doing);
}

static bool is_transport_error(int rc) {
    switch (rc) {
    case LIBSSH2_ERROR_SOCKET_NONE: case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND: case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT: case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_RECV: case LIBSSH2_ERROR_BAD_SOCKET:
        return true;
    default:
        return false;
    }
}

static const char *last_error(ssh_conn *c) {
    char *msg = NULL;
    libssh2_session_last_error(c->s, &msg, NULL, 0);
    return msg && msg[0] ? msg : "unknown error";
}

int ssh__lost(ssh_conn *c, int rc, const char *doing) {
    c->broken = true;
    if (is_transport_error(rc))
        return ssh__fail(c->job, "connect", "connection to %s lost while %s: %s", c->where,
                         doing, last_error(c));
    return ssh__fail(c->job, "protocol", "SSH error from %s while %s: %s (libssh2 error %d)",
                     c->where, doing, last_error(c), rc);
}

/* ---- resolving and connecting ------------------------------------------- */

/* One asynchronous lookup; everything glibc's resolver thread may touch. */
typedef struct lookup {
    struct gaicb cb;
    struct addrinfo hints;
    char name[CAIRN_SSH_HOST_MAX + 1];
    char service[8];
} lookup;

/* Stop waiting for a lookup.  A request glibc can no longer cancel is left
 * to finish on its own: its block is deliberately not freed, so the
 * resolver thread never writes into freed memory. */
static void lookup_abandon(lookup *q) {
    int rc = gai_cancel(&q->cb);
    if (rc == EAI_NOTCANCELED) return;
    if (rc == EAI_ALLDONE && gai_error(&q->cb) == 0) freeaddrinfo(q->cb.ar_result);
    free(q);
}

static int lookup_wait(ssh_conn *c, lookup *q) {
    int rc, slice;
    const struct gaicb *list[1] = {&q->cb};
    while ((rc = gai_error(&q->cb)) == EAI_INPROGRESS) {
        if (check_time(c, "resolving the host name", &slice)) return EAI_INPROGRESS;
        struct timespec ts = {slice / 1000, (long)(slice % 1000) * 1000000L};
        gai_suspend(list, 1, &ts);
    }
    return rc;
}

static int resolve(ssh_conn *c, struct addrinfo **res) {
    const ssh_job *j = c->job;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    char service[8];
    snprintf(service, sizeof service, "%d", j->port);
    if (getaddrinfo(j->host, service, &hints, res) == 0) return 0;   /* an address */
    lookup *q = cairn_calloc(1, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", j->host);
    memcpy(q->service, service, sizeof service);
    q->hints = (struct addrinfo){.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    q->cb = (struct gaicb){.ar_name = q->name, .ar_service = q->service, .ar_request = &q->hints};
    struct gaicb *list[1] = {&q->cb};
    struct sigevent none = {.sigev_notify = SIGEV_NONE};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &none);
    if (rc == 0) rc = lookup_wait(c, q);
    if (rc == EAI_INPROGRESS) {        /* stopped or out of time: failure already set */
        lookup_abandon(q);
        return -1;
    }
    *res = q->cb.ar_result;
    free(q);
    if (rc != 0)
        return ssh__fail(c->job, "connect", "cannot resolve host '%s': %s", j->host,
                         rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return 0;
}

/* 0 connected (c->fd set), 1 this address failed (*err), -1 failure set. */
static int connect_one(ssh_conn *c, const struct addrinfo *ai, int *err) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
        *err = errno;
        return 1;
    }
    c->fd = fd;
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    while (rc == EINPROGRESS) {
        if (wait_fd(c, POLLOUT, "connecting")) return -1;   /* ssh__close closes fd */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        socklen_t len = sizeof rc;
        if (poll(&p, 1, 0) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &len) != 0)
            rc = errno;
    }
    if (rc != 0) {
        close(fd);
        c->fd = -1;
        *err = rc;
        return 1;
    }
    return 0;
}

/* TCP: Nagle off (SSH packets are small and interactive); a peer that
 * stops acknowledging for CAIRN_SSH_DEAD_PEER_MS is dropped. */
static void tune_socket(int fd) {
    int one = 1;
    unsigned int dead = CAIRN_SSH_DEAD_PEER_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &dead, sizeof dead);
}

static int connect_host(ssh_conn *c) {
    struct addrinfo *res = NULL;
    int rc = 1, err = 0;
    if (resolve(c, &res)) return -1;
    for (struct addrinfo *ai = res; ai && rc == 1; ai = ai->ai_next) rc = connect_one(c, ai, &err);
    freeaddrinfo(res);
    if (rc == 1)
        return ssh__fail(c->job, "connect", "cannot connect to %s: %s", c->where,
                         strerror(err ? err : EHOSTUNREACH));
    if (rc == 0) tune_socket(c->fd);
    return rc;
}

/* ---- the SSH layers ----------------------------------------------------- */

static int handshake(ssh_conn *c) {
    int rc;
    while ((rc = libssh2_session_handshake(c->s, c->fd)) == LIBSSH2_ERROR_EAGAIN)
        if (ssh__wait(c, "in the SSH handshake")) return -1;
    if (rc != 0) return ssh__lost(c, rc, "in the SSH handshake (is it an SSH server?)");
    c->handshaken = true;
    return 0;
}

/* Whether the private key file holds an RSA key (for a precise message). */
static bool key_is_rsa(const char *path) {
    char *text = cairn_calloc(1, KEY_PEEK_MAX + 1);
    unsigned char *blob = cairn_malloc(KEY_PEEK_MAX);
    bool rsa = false;
    FILE *fp = fopen(path, "re");
    size_t n = fp ? fread(text, 1, KEY_PEEK_MAX, fp) : 0;
    if (fp) fclose(fp);
    text[n] = '\0';
    const char *body = strstr(text, "-----BEGIN OPENSSH PRIVATE KEY-----");
    if (strstr(text, "BEGIN RSA PRIVATE KEY")) rsa = true;
    else if (body) {                   /* the public half is in clear: find its type */
        cairn_buf b64 = CAIRN_BUF_INIT;
        for (const char *p = strchr(body, '\n'); p && *p && *p != '-'; p++)
            if (*p != '\n' && *p != '\r') cairn_buf_putc(&b64, *p);
        int len = b64.len ? EVP_DecodeBlock(blob, (unsigned char *)b64.data,
                                            (int)(b64.len & ~(size_t)3)) : 0;
        rsa = len > 0 && memmem(blob, (size_t)len, "\0\0\0\7ssh-rsa", 11) != NULL;
        cairn_buf_free(&b64);
    }
    free(text);
    free(blob);
    return rsa;
}

static int auth_key(ssh_conn *c) {
    ssh_job *j = c->job;
    int rc;
    if (access(j->key_file, R_OK) != 0)
        return ssh__fail(j, "auth", "cannot read key_file %s: %s", j->key_file, strerror(errno));
    while ((rc = libssh2_userauth_publickey_fromfile_ex(
                c->s, j->user, (unsigned)strlen(j->user), NULL, j->key_file,
                j->passphrase)) == LIBSSH2_ERROR_EAGAIN)
        if (ssh__wait(c, "authenticating")) return -1;
    if (rc == 0) return 0;
    if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED)
        return ssh__fail(j, "auth", "cannot use key_file %s: %s%s", j->key_file, last_error(c),
                         j->passphrase ? " (wrong passphrase?)" : " (does it need a passphrase?)");
    if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED)
        return ssh__fail(j, "auth", "%s refused key_file %s for user '%s'%s", c->where,
                         j->key_file, j->user,
                         key_is_rsa(j->key_file)
                             ? " (this RSA key signs with ssh-rsa, SHA-1, which OpenSSH 8.8 "
                               "and later refuse unless the host's sshd_config sets "
                               "PubkeyAcceptedAlgorithms +ssh-rsa; an ed25519 key avoids this)"
                             : "");
    return ssh__lost(c, rc, "authenticating");
}

/* keyboard-interactive with the password as the answer to every prompt;
 * libssh2 frees the answers with free(). */
static void kbdint_answer(const char *name, int name_len, const char *instruction,
                          int instruction_len, int num_prompts,
                          const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
                          LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses, void **abstract) {
    (void)name, (void)name_len, (void)instruction, (void)instruction_len, (void)prompts;
    const ssh_conn *c = *abstract;
    for (int i = 0; i < num_prompts; i++) {
        responses[i].text = cairn_strdup(c->job->password);
        responses[i].length = (unsigned)strlen(c->job->password);
    }
}

static int auth_password(ssh_conn *c) {
    ssh_job *j = c->job;
    unsigned ulen = (unsigned)strlen(j->user);
    char *methods;
    int rc = 0;
    while ((methods = libssh2_userauth_list(c->s, j->user, ulen)) == NULL &&
           (rc = libssh2_session_last_errno(c->s)) == LIBSSH2_ERROR_EAGAIN)
        if (ssh__wait(c, "asking for the authentication methods")) return -1;
    if (methods == NULL)
        return libssh2_userauth_authenticated(c->s) ? 0 : ssh__lost(c, rc, "authenticating");
    bool kbdint = strstr(methods, "password") == NULL;
    if (kbdint && strstr(methods, "keyboard-interactive") == NULL)
        return ssh__fail(j, "auth", "%s does not take a password for user '%s' (it accepts: %s)",
                         c->where, j->user, methods);
    do {
        rc = kbdint ? libssh2_userauth_keyboard_interactive_ex(c->s, j->user, ulen, kbdint_answer)
                    : libssh2_userauth_password_ex(c->s, j->user, ulen, j->password,
                                                   (unsigned)strlen(j->password), NULL);
    } while (rc == LIBSSH2_ERROR_EAGAIN && ssh__wait(c, "authenticating") == 0);
    if (rc == 0 || j->failed) return rc ? -1 : 0;
    if (rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED)
        return ssh__fail(j, "auth", "%s refused the password for user '%s'", c->where, j->user);
    if (rc == LIBSSH2_ERROR_PASSWORD_EXPIRED)
        return ssh__fail(j, "auth", "the password of user '%s' on %s has expired", j->user,
                         c->where);
    return ssh__lost(c, rc, "authenticating");
}

/* ---- open and close ----------------------------------------------------- */

static void conn_init(ssh_conn *c, ssh_job *j, const cairn_attempt_info *info) {
    memset(c, 0, sizeof *c);
    c->job = j;
    c->fd = -1;
    c->stop = info->stop;
    int64_t now = cairn_now_ms();
    c->deadline_ms = info->deadline_ms;
    if (j->timeout_ms && (c->deadline_ms == 0 || now + j->timeout_ms < c->deadline_ms))
        c->deadline_ms = now + j->timeout_ms;
    c->login_deadline_ms = now + CAIRN_SSH_LOGIN_TIMEOUT_MS;
    snprintf(c->where, sizeof c->where, strchr(j->host, ':') ? "[%s]:%d" : "%s:%d", j->host,
             j->port);
}

int ssh__open(ssh_conn *c, ssh_job *j, const cairn_attempt_info *info) {
    int slice;
    conn_init(c, j, info);
    if (check_time(c, "starting", &slice)) return -1;
    pthread_once(&lib_once, lib_init);
    if (lib_rc != 0) return ssh__fail(j, "protocol", "libssh2 could not be initialised");
    c->s = libssh2_session_init_ex(NULL, NULL, NULL, c);
    libssh2_session_set_blocking(c->s, 0);
    if ((!j->insecure && ssh__hostkey_load(c)) || connect_host(c) || handshake(c) ||
        ssh__hostkey_check(c))
        return -1;
    if (j->key_file ? auth_key(c) : auth_password(c)) return -1;
    c->login_deadline_ms = 0;
    libssh2_keepalive_config(c->s, 1, CAIRN_SSH_KEEPALIVE_S);
    return 0;
}

/* Say goodbye, for at most CAIRN_SSH_CLOSE_GRACE_MS and never past the
 * deadline or a stop. */
static void goodbye(ssh_conn *c) {
    int64_t until = cairn_now_ms() + CAIRN_SSH_CLOSE_GRACE_MS;
    int rc;
    while ((rc = libssh2_session_disconnect(c->s, "done")) == LIBSSH2_ERROR_EAGAIN) {
        int64_t now = cairn_now_ms();
        if (now >= until || cairn_stop_requested(c->stop) ||
            (c->deadline_ms && now >= c->deadline_ms))
            return;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        poll(&p, 1, (int)(until - now));
    }
}

void ssh__close(ssh_conn *c) {
    if (c->s && c->handshaken && !c->broken) goodbye(c);
    /* With the socket shut down every send fails at once, so freeing the
     * session (and any channel still open) cannot block. */
    if (c->fd >= 0) shutdown(c->fd, SHUT_RDWR);
    if (c->known) libssh2_knownhost_free(c->known);
    cairn_buf_free(&c->revoked);
    for (int i = 0; c->s && i < 100 && libssh2_session_free(c->s) == LIBSSH2_ERROR_EAGAIN; i++) {}
    if (c->fd >= 0) close(c->fd);
    c->s = NULL;
    c->known = NULL;
    c->fd = -1;
}
