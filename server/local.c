/*
 * local.c - runs handed over by `cairn run` on the journal's socket
 * (local.h).
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "actions/action.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "engine/store.h"
#include "server/local.h"

/* A client must send its request, and take each line, within this. */
#define IO_TIMEOUT_S 30

struct srv_local {
    srv_backend *b;
    char path[sizeof ((struct sockaddr_un *)0)->sun_path];
    int fd;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int active;                  /* connections being served */
    bool stopping;
    srv_hooks *hooks;            /* webhooks handed over; NULL: none taken; set before the
                                  * acceptor starts, read-only after */
};

typedef struct conn {
    srv_local *l;
    int fd;
} conn;

int srv_local_path(const char *db_path, char *out, size_t len, cairn_err *err) {
    const char *base = cairn_journal_files(db_path);   /* a database's: CAIRN_FILES */
    if (base == NULL)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "no local socket: the journal is in a database"
                             " and CAIRN_FILES is unset");
    int n = snprintf(out, len, "%s.sock", base);
    if (n < 0 || (size_t)n >= len)
        return cairn_err_set(err, CAIRN_ELIMIT, "%s.sock: longer than a socket address allows",
                             base);
    return 0;
}

/* ---- one connection ---------------------------------------------------------- */

static bool send_all(int fd, const char *p, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) return false;
        off += (size_t)w;
    }
    return true;
}

static bool send_line(int fd, jv v) {
    char *text = cairn_json_text(v);
    jv_free(v);
    size_t len = strlen(text);
    text[len] = '\n';   /* the text ends in its NUL: overwrite it, send len + 1 */
    bool ok = send_all(fd, text, len + 1);
    free(text);
    return ok;
}

static void send_error(int fd, const char *code, const char *msg) {
    jv e = jv_object_set(jv_object(), jv_string("code"), jv_string(code));
    e = jv_object_set(e, jv_string("message"), jv_string(msg));
    send_line(fd, jv_object_set(jv_object(), jv_string("error"), e));
}

/* The request line, or NULL (bad, too large or too slow). */
static char *read_request(int fd, size_t *len) {
    cairn_buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0 || b.len + (size_t)n > CAIRN_LOCAL_REQUEST_MAX) break;
        char *nl = memchr(chunk, '\n', (size_t)n);
        cairn_buf_append(&b, chunk, nl ? (size_t)(nl - chunk) : (size_t)n);
        if (nl) {
            *len = b.len;
            return cairn_buf_detach(&b);
        }
    }
    cairn_buf_free(&b);
    return NULL;
}

static jv peer_user(int fd) {
    struct ucred cred;
    socklen_t n = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &n) != 0) return jv_string("?");
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(cred.uid, &pw, buf, sizeof buf, &found) == 0 && found && *pw.pw_name)
        return jv_string(pw.pw_name);
    return jv_string_fmt("%lu", (unsigned long)cred.uid);
}

static jv field(jv o, const char *key) { return jv_object_get(jv_copy(o), jv_string(key)); }

/* Load a workflow from its source and give it to the engine. */
static int load_into(srv_backend *b, jv file, jv source, char hash[65], cairn_err *err) {
    if (jv_get_kind(file) != JV_KIND_STRING || jv_get_kind(source) != JV_KIND_STRING)
        return cairn_err_set(err, CAIRN_EINVAL, "a workflow needs its file and source");
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_workflow *wf = NULL;
    int rc = cairn_workflow_load(jv_string_value(file), jv_string_value(source),
                                 (size_t)jv_string_length_bytes(jv_copy(source)),
                                 cairn_action_lookup_sig, &wf, &d);
    if (rc) cairn_diags_to_err(&d, err);
    cairn_diags_free(&d);
    return rc ? rc : srv_backend_add_workflow(b, wf, hash, err);
}

/* Start the request's run (req borrowed): 0 and its id, or an error answered. */
static int start(srv_local *l, int fd, jv req, char run_id[CAIRN_RUN_ID_MAX]) {
    char hash[65];
    cairn_err err;
    jv siblings = field(req, "siblings");
    if (jv_get_kind(siblings) == JV_KIND_ARRAY) {
        jv_array_foreach(siblings, i, sib) {
            char h[65];
            cairn_err one;
            load_into(l->b, field(sib, "file"), field(sib, "source"), h, &one);   /* as `run`: skipped */
            jv_free(sib);
        }
    }
    jv_free(siblings);
    jv file = field(req, "file"), source = field(req, "source");
    int rc = load_into(l->b, file, source, hash, &err);
    jv_free(file);
    jv_free(source);
    jv inputs = field(req, "inputs");
    if (jv_get_kind(inputs) != JV_KIND_OBJECT) {
        jv_free(inputs);
        inputs = jv_object();
    }
    bool existed;
    jv trigger = jv_object_set(jv_object(), jv_string("source"), jv_string("cli"));
    trigger = jv_object_set(trigger, jv_string("user"), peer_user(fd));
    if (rc == 0) {
        rc = srv_backend_start(l->b, hash, inputs, trigger, NULL, NULL, run_id, &existed, &err);
    } else {
        jv_free(inputs);
        jv_free(trigger);
    }
    const char *code = srv_backend_stopping(l->b) ? "stopping"
                       : err.code == CAIRN_EIO || err.code == CAIRN_ECORRUPT ? "journal" : "invalid";
    if (rc) send_error(fd, code, err.msg);
    return rc;
}

/* One line per event until the run ends, the client goes, or the server stops. */
static void stream(srv_local *l, int fd, const char *run_id) {
    srv_follow *f = srv_backend_follow(l->b, run_id);
    int64_t after = 0;
    bool ended = false, ok = true;
    while (ok && !ended) {
        srv_followed got[64];
        int k = srv_backend_follow_next(l->b, f, after, got, 64, 1000);
        if (k < 0) {
            if (srv_backend_stopping(l->b))
                send_line(fd, jv_object_set(jv_object(), jv_string("stopped"), jv_true()));
            break;
        }
        for (int i = 0; i < k; i++) {
            size_t len = strlen(got[i].text);
            got[i].text = cairn_realloc(got[i].text, len + 2);
            memcpy(got[i].text + len, "\n", 2);
            ok = ok && send_all(fd, got[i].text, len + 1);
            after = got[i].seq;
            ended |= got[i].ends;
            free(got[i].text);
        }
    }
    srv_backend_unfollow(l->b, f);
    if (ok && ended) {
        jv run;
        cairn_err err;
        jv status = jv_string("unknown");
        if (srv_backend_get_run(l->b, run_id, &run, &err) == 0) {
            jv_free(status);
            status = field(run, "status");
            jv_free(run);
        }
        send_line(fd, jv_object_set(jv_object(), jv_string("end"), status));
    }
}

/* Wait (bounded) until run_id's last event is durable: its status then. */
static jv wait_end(srv_local *l, const char *run_id) {
    srv_follow *f = srv_backend_follow(l->b, run_id);
    int64_t after = 0, deadline = cairn_now_ms() + CAIRN_LOCAL_END_WAIT_MS;
    bool ended = false;
    while (!ended && cairn_now_ms() < deadline) {
        srv_followed got[64];
        int k = srv_backend_follow_next(l->b, f, after, got, 64, 1000);
        if (k < 0) break;
        for (int i = 0; i < k; i++) {
            after = got[i].seq;
            ended |= got[i].ends;
            free(got[i].text);
        }
    }
    srv_backend_unfollow(l->b, f);
    jv run, status = jv_null();
    cairn_err err;
    if (srv_backend_get_run(l->b, run_id, &run, &err) == 0) {
        status = field(run, "status");
        jv_free(run);
    }
    return status;
}

/* {"command": TYPE, "run": ID, "data": {...}, "wait_end": BOOL}: carried out
 * when this server holds the run; else {"held": false} and nothing done. */
static void command(srv_local *l, int fd, jv req) {
    jv type = field(req, "command"), run = field(req, "run"), data = field(req, "data");
    jv wait = field(req, "wait_end");
    char *text = jv_get_kind(data) == JV_KIND_OBJECT ? cairn_json_text(data) : cairn_strdup("{}");
    bool held = false;
    cairn_err err;
    if (jv_get_kind(type) != JV_KIND_STRING || jv_get_kind(run) != JV_KIND_STRING) {
        send_error(fd, "invalid", "a command names its type and run");
    } else if (srv_backend_command_here(l->b, jv_string_value(run), jv_string_value(type), text,
                                        &held, &err) != 0) {
        static const struct { int code; const char *name; } names[] = {
            {CAIRN_ESTATE, "conflict"}, {CAIRN_EEXISTS, "conflict"}, {CAIRN_EAUTH, "forbidden"},
            {CAIRN_ENOTFOUND, "not_found"}, {CAIRN_EINVAL, "invalid"}};
        const char *name = "journal";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (names[i].code == err.code) name = names[i].name;
        send_error(fd, name, err.msg);
    } else if (!held) {
        send_line(fd, jv_object_set(jv_object(), jv_string("held"), jv_false()));
    } else {
        jv status = jv_get_kind(wait) == JV_KIND_TRUE ? wait_end(l, jv_string_value(run)) : jv_null();
        jv o = jv_object_set(jv_object(), jv_string("done"), jv_true());
        send_line(fd, jv_object_set(o, jv_string("status"), status));
    }
    free(text);
    jv_free(type);
    jv_free(run);
    jv_free(data);
    jv_free(wait);
}

/* {"hook": SOURCE, "payload": TEXT}: carried out as the webhook route does. */
static void hook(srv_local *l, int fd, jv req) {
    static const struct { int code; const char *name; } names[] = {
        {CAIRN_ENOTFOUND, "unknown_source"}, {CAIRN_ESYNTAX, "invalid_json"},
        {CAIRN_EINVAL, "invalid_payload"},   {CAIRN_ELIMIT, "too_large"},
        {CAIRN_ESTATE, "stopping"}};
    jv source = field(req, "hook"), payload = field(req, "payload"), answer;
    cairn_err err;
    if (l->hooks == NULL || jv_get_kind(source) != JV_KIND_STRING ||
        jv_get_kind(payload) != JV_KIND_STRING) {
        send_error(fd, "invalid_payload", "a webhook names its source and payload");
    } else if (srv_hooks_deliver(l->hooks, jv_string_value(source), jv_string_value(payload),
                                 (size_t)jv_string_length_bytes(jv_copy(payload)),
                                 jv_object_set(jv_object(), jv_string("user"), peer_user(fd)),
                                 &answer, &err) != 0) {
        const char *name = "journal";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (names[i].code == err.code) name = names[i].name;
        send_error(fd, name, err.msg);
    } else {
        send_line(fd, jv_object_set(jv_object(), jv_string("answer"), answer));
    }
    jv_free(source);
    jv_free(payload);
}

static void *serve_conn(void *arg) {
    conn *c = arg;
    srv_local *l = c->l;
    size_t len = 0;
    char *line = read_request(c->fd, &len);
    jv req = line ? cairn_json_parse(line, len) : jv_invalid();
    char run_id[CAIRN_RUN_ID_MAX];
    if (jv_get_kind(req) != JV_KIND_OBJECT) {
        send_error(c->fd, "invalid", "the request is not one line of a JSON object");
    } else if (jv_object_has(jv_copy(req), jv_string("command"))) {
        command(l, c->fd, req);
    } else if (jv_object_has(jv_copy(req), jv_string("hook"))) {
        hook(l, c->fd, req);
    } else if (start(l, c->fd, req, run_id) == 0 &&
               send_line(c->fd, jv_object_set(jv_object(), jv_string("run"), jv_string(run_id)))) {
        stream(l, c->fd, run_id);
    }
    jv_free(req);
    free(line);
    close(c->fd);
    free(c);
    pthread_mutex_lock(&l->mu);
    l->active--;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- listening ---------------------------------------------------------------- */

static void *accept_loop(void *arg) {
    srv_local *l = arg;
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        pthread_mutex_lock(&l->mu);
        bool stop = l->stopping;
        if (fd >= 0 && !stop) l->active++;
        pthread_mutex_unlock(&l->mu);
        if (stop) {
            if (fd >= 0) close(fd);
            return NULL;
        }
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return NULL;
        }
        struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        conn *c = cairn_calloc(1, sizeof *c);
        c->l = l;
        c->fd = fd;
        pthread_t t;
        if (pthread_create(&t, NULL, serve_conn, c) == 0) {
            pthread_detach(t);
        } else {
            close(fd);
            free(c);
            pthread_mutex_lock(&l->mu);
            l->active--;
            pthread_mutex_unlock(&l->mu);
        }
    }
}

/* Whether a server answers on path now. */
static bool answering(const struct sockaddr_un *sa) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool yes = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    if (fd >= 0) close(fd);
    return yes;
}

int srv_local_start(const char *db_path, srv_backend *b, srv_hooks *hooks, srv_local **out,
                    cairn_err *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int rc = srv_local_path(db_path, sa.sun_path, sizeof sa.sun_path, err);
    if (rc) return rc;
    if (answering(&sa))
        return cairn_err_set(err, CAIRN_EBUSY, "%s: another server answers there", sa.sun_path);
    unlink(sa.sun_path);   /* stale: its server is gone */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0177);
    rc = fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0;
    umask(old);
    if (rc) {
        rc = cairn_err_set(err, CAIRN_EIO, "%s: %s", sa.sun_path, strerror(errno));
        if (fd >= 0) close(fd);
        return rc;
    }
    srv_local *l = cairn_calloc(1, sizeof *l);
    l->b = b;
    l->hooks = hooks;
    l->fd = fd;
    memcpy(l->path, sa.sun_path, sizeof l->path);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    pthread_create(&l->acceptor, NULL, accept_loop, l);
    *out = l;
    return 0;
}

void srv_local_stop(srv_local *l) {
    if (l == NULL) return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_mutex_unlock(&l->mu);
    unlink(l->path);
    shutdown(l->fd, SHUT_RDWR);   /* wakes accept */
    pthread_join(l->acceptor, NULL);
    close(l->fd);
    pthread_mutex_lock(&l->mu);
    while (l->active > 0) pthread_cond_wait(&l->cond, &l->mu);   /* each sees the stop within 100 ms */
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    free(l);
}
