/*
 * run_handoff.c - `cairn run` when a `cairn serve` holds the journal: the
 * run goes to the server over the journal's socket (server/local.h) and
 * its transitions come back to be printed here as `run` prints its own.
 * Commands for runs and `cairn trigger`'s webhooks go the same way.
 */
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/file.h"
#include "common/json.h"
#include "common/mem.h"
#include "dsl/yaml.h"
#include "server/local.h"

/* The file's bytes as a JSON string, or jv_invalid() when it cannot be read
 * or is larger than a workflow may be. */
static jv file_text(const char *path) {
    char *buf;
    size_t n;
    if (cairn_file_read(path, CAIRN_YAML_MAX_BYTES, &buf, &n) != CAIRN_FILE_OK) return jv_invalid();
    jv out = jv_string_sized(buf, (int)n);
    free(buf);
    return out;
}

static jv workflow_entry(const char *path, jv source) {
    jv o = jv_object_set(jv_object(), jv_string("file"), jv_string(path));
    return jv_object_set(o, jv_string("source"), source);
}

/* The request line: the file, the others beside it (as `run` loads them
 * for child runs) and the inputs (borrowed). */
static char *request_of(const char *file, jv inputs) {
    char self[PATH_MAX], other[PATH_MAX];
    if (realpath(file, self) == NULL) snprintf(self, sizeof self, "%s", file);
    jv req = workflow_entry(self, file_text(file));
    req = jv_object_set(req, jv_string("inputs"), jv_copy(inputs));
    char *copy = cairn_strdup(self);
    char *pattern = cairn_sprintf("%s/*.yaml", dirname(copy));
    jv siblings = jv_array();
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            if (realpath(g.gl_pathv[i], other) == NULL || strcmp(other, self) == 0) continue;
            jv text = file_text(other);
            if (jv_is_valid(text)) siblings = jv_array_append(siblings, workflow_entry(other, text));
            else jv_free(text);
        }
        globfree(&g);
    }
    free(pattern);
    free(copy);
    char *line = cairn_json_text(jv_object_set(req, jv_string("siblings"), siblings));
    jv_free(req);
    return line;
}

static bool next_line(int fd, cairn_buf *b, size_t *consumed, char **line);

/* The next line from fd (buffered in b), NUL-terminated in *line, or false at the end. */
static bool next_line(int fd, cairn_buf *b, size_t *consumed, char **line) {
    if (*consumed) {
        memmove(b->data, b->data + *consumed, b->len - *consumed);
        b->len -= *consumed;
        b->data[b->len] = '\0';
        *consumed = 0;
    }
    for (;;) {
        char *nl = memchr(b->data ? b->data : "", '\n', b->len);
        if (nl) {
            *nl = '\0';
            *line = b->data;
            *consumed = (size_t)(nl - b->data) + 1;
            return true;
        }
        char chunk[65536];
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        cairn_buf_append(b, chunk, (size_t)n);
    }
}

static int64_t time_ms_of(jv t) {
    struct tm tm = {0};
    int ms = 0;
    if (jv_get_kind(t) != JV_KIND_STRING ||
        sscanf(jv_string_value(t), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Print one streamed event as the engine would report it. */
static void print_line(jv ev, cairn_run_state *st, cairn_event_cb print, void *ud) {
    cairn_event e = {0};
    jv step = jv_object_get(jv_copy(ev), jv_string("step"));
    jv type = jv_object_get(jv_copy(ev), jv_string("type"));
    jv seq = jv_object_get(jv_copy(ev), jv_string("seq"));
    jv attempt = jv_object_get(jv_copy(ev), jv_string("attempt"));
    jv t = jv_object_get(jv_copy(ev), jv_string("time"));
    snprintf(e.run_id, sizeof e.run_id, "%s", st->id);
    e.seq = jv_get_kind(seq) == JV_KIND_NUMBER ? (int64_t)jv_number_value(seq) : 0;
    e.time_ms = time_ms_of(t);
    e.type = cairn_event_type_parse(jv_get_kind(type) == JV_KIND_STRING ? jv_string_value(type) : "");
    e.step = jv_get_kind(step) == JV_KIND_STRING ? (char *)jv_string_value(step) : NULL;
    e.attempt = jv_get_kind(attempt) == JV_KIND_NUMBER ? (int)jv_number_value(attempt) : 0;
    jv data = jv_object_get(jv_copy(ev), jv_string("data"));
    e.data = cairn_json_text(data);
    e.data_len = strlen(e.data);
    jv_free(data);
    if (e.type != CAIRN_EV_NONE) print(&e, st, ud);
    free(e.data);
    jv_free(ev);
    jv_free(step);
    jv_free(type);
    jv_free(seq);
    jv_free(attempt);
    jv_free(t);
}

/* The server's first answer: 0 with the run's id, -1 to run here, or an exit code. */
static int first_answer(jv a, char run_id[CAIRN_RUN_ID_MAX]) {
    jv run = jv_object_get(jv_copy(a), jv_string("run"));
    jv e = jv_object_get(jv_copy(a), jv_string("error"));
    int rc = EXIT_JOURNAL;
    if (jv_get_kind(run) == JV_KIND_STRING) {
        snprintf(run_id, CAIRN_RUN_ID_MAX, "%s", jv_string_value(run));
        rc = 0;
    } else if (jv_get_kind(e) == JV_KIND_OBJECT) {
        jv code = jv_object_get(jv_copy(e), jv_string("code"));
        jv msg = jv_object_get(jv_copy(e), jv_string("message"));
        const char *c = jv_get_kind(code) == JV_KIND_STRING ? jv_string_value(code) : "";
        if (strcmp(c, "stopping") == 0) rc = -1;
        else fprintf(stderr, "cairn: %s\n", jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : c);
        if (strcmp(c, "invalid") == 0) rc = EXIT_USAGE;
        jv_free(code);
        jv_free(msg);
    }
    jv_free(run);
    jv_free(e);
    jv_free(a);
    return rc;
}

/* A connection to the server on the journal's socket with req (freed)
 * sent, or -1 when no server answers there. */
static int ask(const cli_opts *o, char *req) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = -1;
    size_t len = strlen(req);
    req[len] = '\n';   /* over its NUL: len + 1 bytes go */
    if (srv_local_path(o->db, sa.sun_path, sizeof sa.sun_path, NULL) != 0 ||
        access(sa.sun_path, F_OK) != 0 || (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        send(fd, req, len + 1, MSG_NOSIGNAL) != (ssize_t)(len + 1)) {
        if (fd >= 0) close(fd);
        fd = -1;
    }
    free(req);
    return fd;
}

/* An error line of the server's: printed, and its exit code. */
static int server_error(jv e) {
    jv code = jv_object_get(jv_copy(e), jv_string("code")), msg = jv_object_get(jv_copy(e), jv_string("message"));
    bool journal = jv_get_kind(code) == JV_KIND_STRING && strcmp(jv_string_value(code), "journal") == 0;
    if (jv_get_kind(msg) == JV_KIND_STRING) fprintf(stderr, "cairn: %s\n", jv_string_value(msg));
    jv_free(code);
    jv_free(msg);
    jv_free(e);
    return journal ? EXIT_JOURNAL : EXIT_USAGE;
}

/* Send req (freed) and read the server's one-line reply: -1 when no server
 * answers there, else 0 and *reply (the caller's; invalid when the line is
 * not JSON). */
static int ask_once(const cli_opts *o, char *req, jv *reply) {
    int fd = ask(o, req);
    if (fd < 0) return -1;
    cairn_buf b = {0};
    size_t consumed = 0;
    char *line;
    *reply = next_line(fd, &b, &consumed, &line) ? cairn_json_parse(line, strlen(line)) : jv_invalid();
    cairn_buf_free(&b);
    close(fd);
    return 0;
}

/* Whether reply (borrowed) is the server's error: then printed, and *rc its
 * exit code. */
static bool reply_error(jv reply, int *rc) {
    if (jv_get_kind(reply) != JV_KIND_OBJECT) return false;
    jv e = jv_object_get(jv_copy(reply), jv_string("error"));
    if (jv_get_kind(e) != JV_KIND_OBJECT) {
        jv_free(e);
        return false;
    }
    *rc = server_error(e);
    return true;
}

int cli_command_handoff(const cli_opts *o, const char *run_id, const char *type, const char *data,
                        bool wait_end, char *status, size_t len) {
    jv req = jv_object_set(jv_object(), jv_string("command"), jv_string(type));
    req = jv_object_set(req, jv_string("run"), jv_string(run_id));
    req = jv_object_set(req, jv_string("data"), cairn_json_parse(data, strlen(data)));
    req = jv_object_set(req, jv_string("wait_end"), jv_bool(wait_end));
    char *text = cairn_json_text(req);
    jv_free(req);
    jv a;
    if (ask_once(o, text, &a) != 0) return -1;
    int rc = -1;
    if (!reply_error(a, &rc) && jv_get_kind(a) == JV_KIND_OBJECT &&
        jv_object_has(jv_copy(a), jv_string("done"))) {
        jv st = jv_object_get(jv_copy(a), jv_string("status"));
        snprintf(status, len, "%s", jv_get_kind(st) == JV_KIND_STRING ? jv_string_value(st) : "");
        fprintf(stderr, "cairn: %s of run %s carried out by the cairn serve holding it\n", type, run_id);
        jv_free(st);
        rc = 0;
    }
    jv_free(a);
    return rc;
}

int cli_hook_handoff(const cli_opts *o, const char *source, const char *body, size_t len,
                     jv *answer) {
    jv req = jv_object_set(jv_object(), jv_string("hook"), jv_string(source));
    req = jv_object_set(req, jv_string("payload"), jv_string_sized(body, (int)len));
    char *text = cairn_json_text(req);
    jv_free(req);
    *answer = jv_invalid();
    jv a;
    if (ask_once(o, text, &a) != 0) return -1;
    int rc = EXIT_JOURNAL;
    if (!reply_error(a, &rc)) {
        jv got = jv_get_kind(a) == JV_KIND_OBJECT ? jv_object_get(jv_copy(a), jv_string("answer"))
                                                  : jv_null();
        if (jv_get_kind(got) == JV_KIND_OBJECT) {
            *answer = got;
            rc = 0;
        } else {
            jv_free(got);
            fprintf(stderr, "cairn: the cairn serve on this journal gave no answer\n");
        }
    }
    jv_free(a);
    return rc;
}

int cli_run_handoff(const cli_opts *o, const char *file, const char *workflow, jv inputs,
                    cairn_event_cb print, void *ud, char run_id[CAIRN_RUN_ID_MAX]) {
    int fd = ask(o, request_of(file, inputs));
    if (fd < 0) return -1;   /* no server holds this journal */
    bool sent = true;
    cairn_buf b = {0};
    size_t consumed = 0;
    char *line;
    int rc = -1;
    if (sent && next_line(fd, &b, &consumed, &line)) rc = first_answer(cairn_json_parse(line, strlen(line)), run_id);
    if (rc == 0) {
        fprintf(stderr, "cairn: run %s is held by the cairn serve on this journal\n", run_id);
        cairn_run_state *st = cairn_run_state_new(run_id, NULL, 0);
        st->workflow = cairn_strdup(workflow);
        while (next_line(fd, &b, &consumed, &line)) {
            jv ev = cairn_json_parse(line, strlen(line));
            bool last = jv_get_kind(ev) != JV_KIND_OBJECT ||
                        jv_object_has(jv_copy(ev), jv_string("end")) ||
                        jv_object_has(jv_copy(ev), jv_string("stopped"));
            if (!last) print_line(jv_copy(ev), st, print, ud);
            jv_free(ev);
            if (last) break;
        }
        cairn_run_state_free(st);
    }
    cairn_buf_free(&b);
    close(fd);
    return rc;
}
