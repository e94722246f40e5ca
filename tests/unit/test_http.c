/*
 * The `http` action against a real local server (tests/servers/http_target.py,
 * HTTP and HTTPS with a certificate made here by the openssl command), driven
 * through prepare/execute/finish as the engine drives them.
 *
 * The server helpers at the top (test_srv_*) are shared with test_notify.c.
 * A server runs in its own process group with PR_SET_PDEATHSIG, and is killed
 * and reaped at exit, so no test leaves one behind, even when it fails.
 * Readiness is a port file the server writes once it listens, polled with a
 * deadline; nothing sleeps hoping a server is ready.
 */
#include "test.h"
#include "actions/action.h"
#include "actions/curl_req.h"
#include "common/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jv.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const cairn_action cairn_action_http;

/* ---- local servers (shared with test_notify.c) ------------------------- */

#define SRV_MAX 8
#define SRV_READY_MS 15000

static pid_t srv_pids[SRV_MAX];
static int srv_count;

static void srv_kill_all(void) {
    for (int i = 0; i < srv_count; i++) {
        kill(-srv_pids[i], SIGKILL);
        waitpid(srv_pids[i], NULL, 0);
    }
    srv_count = 0;
}

static void pause_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait until path exists (deadline ms from now); returns 1 if it does. */
int test_srv_wait_file(const char *path, int64_t ms) {
    int64_t until = cairn_now_ms() + ms;
    while (access(path, F_OK) != 0) {
        if (cairn_now_ms() > until) return 0;
        pause_ms(5);
    }
    return 1;
}

static void srv_exec(char **argv) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp(argv[0], argv);
    _exit(127);
}

/* Start python3 script with extra args (NULL-terminated); returns its port. */
int test_srv_start(const char *script, const char *const *extra) {
    static int serial;
    char portfile[300];
    const char *argv[32] = {"python3", script, "--port-file", portfile};
    int n = 4;
    snprintf(portfile, sizeof portfile, "%s/port-%d", test_tmpdir(), ++serial);
    for (const char *const *a = extra; a && *a && n < 31; a++) argv[n++] = *a;
    argv[n] = NULL;
    if (srv_count == 0) atexit(srv_kill_all);
    if (srv_count == SRV_MAX) TEST_FAIL("too many servers");
    unsetenv("http_proxy"), unsetenv("https_proxy"), unsetenv("HTTPS_PROXY"),
        unsetenv("ALL_PROXY"), unsetenv("all_proxy");
    pid_t pid = fork();
    if (pid == 0) srv_exec((char **)argv);
    setpgid(pid, pid);
    srv_pids[srv_count++] = pid;
    int64_t until = cairn_now_ms() + SRV_READY_MS;
    while (access(portfile, F_OK) != 0) {
        if (waitpid(pid, NULL, WNOHANG) == pid) TEST_FAIL("server %s exited at start", script);
        if (cairn_now_ms() > until) TEST_FAIL("server %s not ready", script);
        pause_ms(5);
    }
    FILE *fp = fopen(portfile, "r");
    int port = 0;
    if (fp == NULL || fscanf(fp, "%d", &port) != 1) TEST_FAIL("no port from %s", script);
    fclose(fp);
    return port;
}

/* A port where nothing listens: a bound socket that never listens (kept
 * open until exit), so a connection to it is refused and no other process
 * can take the port meanwhile. */
int test_srv_dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* A self-signed certificate for 127.0.0.1 in dir: cert.pem and key.pem. */
void test_srv_cert(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", dir, dir);
    CHECK_INT(system(cmd), 0);
}

/* The JSON in a file (a test failure when it is missing or not JSON). */
jv test_srv_json_file(const char *path) {
    FILE *fp = fopen(path, "r");
    if (fp == NULL) TEST_FAIL("no file %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    jv v = jv_parse(buf);
    if (!jv_is_valid(v)) TEST_FAIL("%s is not JSON", path);
    return v;
}

/* ---- running the action ------------------------------------------------- */

static cairn_stop http_stop;
static cairn_attempt_info http_info = {
    .run_id = "r1", .step_id = "s1", .idempotency_key = "r1/s1", .attempt = 1,
    .stop = &http_stop,
};

/* JSON with ' for " (readability); %d is the port where given. */
static jv hj(const char *fmt, int port) {
    char text[4096];
    snprintf(text, sizeof text, fmt, port, port, port);
    return test_json(text);
}

/* prepare + execute + finish; 1 when prepare refused, else finish's result. */
static int http_run(jv with, jv *out, cairn_fail *f) {
    const cairn_action *a = &cairn_action_http;
    void *job = NULL;
    int rc = a->prepare(with, &http_info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    a->execute(job, &http_info);
    return a->finish(job, out, f);
}

static jv http_ok(jv with) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    if (http_run(with, &out, &f) != 0) TEST_FAIL("http failed: %s: %s", f.kind, f.message);
    return out;
}

/* Expect a failure of kind, its message holding needle; returns the rc. */
static int http_fails(jv with, const char *kind, const char *needle) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    int rc = http_run(with, &out, &f);
    if (rc == 0) TEST_FAIL("http succeeded, expected %s (%s)", kind, needle);
    CHECK_STR(f.kind, kind);
    CHECK_CONTAINS(f.message, needle);
    return rc;
}

/* out[a][b]... as a string ("" path parts end the walk). */
static const char *gs(jv out, const char *a, const char *b) {
    static char keep[8][4096];
    static int slot;
    jv v = jv_object_get(jv_copy(out), jv_string(a));
    if (b) v = jv_get_kind(v) == JV_KIND_OBJECT ? jv_object_get(v, jv_string(b)) : v;
    if (jv_get_kind(v) != JV_KIND_STRING) {
        jv_free(v);
        return NULL;
    }
    char *s = keep[slot++ % 8];
    snprintf(s, 4096, "%s", jv_string_value(v));
    jv_free(v);
    return s;
}

static double gn(jv out, const char *a) {
    jv v = jv_object_get(jv_copy(out), jv_string(a));
    if (jv_get_kind(v) != JV_KIND_NUMBER) TEST_FAIL("output.%s is not a number", a);
    double d = jv_number_value(v);
    jv_free(v);
    return d;
}

static jv_kind gk(jv out, const char *a, const char *b) {
    jv v = jv_object_get(jv_copy(out), jv_string(a));
    if (b) v = jv_get_kind(v) == JV_KIND_OBJECT ? jv_object_get(v, jv_string(b)) : v;
    jv_kind k = jv_get_kind(v);
    jv_free(v);
    return k;
}

static int start_target(void) {
    return test_srv_start("tests/servers/http_target.py", NULL);
}

/* ---- requests ----------------------------------------------------------- */

TEST(http_get_sends_defaults_and_parses_json_reply) {
    int port = start_target();
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/echo'}", port));
    CHECK_INT(gn(out, "status"), 200);
    CHECK_STR(gs(out, "headers", "content-type"), "application/json");
    CHECK_INT(gk(out, "body", NULL), JV_KIND_OBJECT);
    jv body = jv_object_get(jv_copy(out), jv_string("body"));
    CHECK_STR(gs(body, "method", NULL), "GET");
    CHECK_STR(gs(body, "path", NULL), "/echo");
    CHECK_STR(gs(body, "headers", "user-agent"), "cairn/1");
    CHECK_STR(gs(body, "headers", "idempotency-key"), "r1/s1");
    CHECK(gs(body, "headers", "expect") == NULL);
    char want[100];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/echo", port);
    CHECK_STR(gs(out, "url", NULL), want);
    CHECK_INT(gk(out, "body_truncated", NULL), JV_KIND_FALSE);
    CHECK_INT(gn(out, "body_cap_bytes"), CAIRN_HTTP_BODY_MAX);
    CHECK_INT(gn(out, "redirects"), 0);
    CHECK_INT(gk(out, "tls_verify", NULL), JV_KIND_INVALID);   /* only when off */
    jv_free(body);
    jv_free(out);
}

TEST(http_methods_are_sent_as_named) {
    int port = start_target();
    const char *methods[] = {"PUT", "DELETE", "PATCH", "OPTIONS", "post"};
    const char *want[] = {"PUT", "DELETE", "PATCH", "OPTIONS", "POST"};
    for (int i = 0; i < 5; i++) {
        char text[200];
        snprintf(text, sizeof text, "{'url': 'http://127.0.0.1:%%d/m', 'method': '%s'}",
                 methods[i]);
        jv out = http_ok(hj(text, port));
        jv body = jv_object_get(jv_copy(out), jv_string("body"));
        CHECK_STR(gs(body, "method", NULL), want[i]);
        jv_free(body);
        jv_free(out);
    }
    /* HEAD: no body arrives, so a JSON type gives null. */
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/m', 'method': 'HEAD'}", port));
    CHECK_INT(gn(out, "status"), 200);
    CHECK_INT(gk(out, "body", NULL), JV_KIND_NULL);
    jv_free(out);
    http_fails(hj("{'url': 'http://127.0.0.1:%d/', 'method': 'GE T'}", port), "schema",
               "method must be one of GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS, not 'GE T'");
}

TEST(http_author_headers_win_over_defaults) {
    int port = start_target();
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/h', 'headers': {'X-Trace': 'abc',"
                        " 'idempotency-key': 'mine', 'User-Agent': 'custom/2', 'X-Num': 5,"
                        " 'X-Empty': ''}}", port));
    jv body = jv_object_get(jv_copy(out), jv_string("body"));
    CHECK_STR(gs(body, "headers", "x-trace"), "abc");
    CHECK_STR(gs(body, "headers", "idempotency-key"), "mine");
    CHECK_STR(gs(body, "headers", "user-agent"), "custom/2");
    CHECK_STR(gs(body, "headers", "x-num"), "5");
    CHECK_STR(gs(body, "headers", "x-empty"), "");
    jv_free(body);
    jv_free(out);
    http_fails(hj("{'url': 'http://127.0.0.1:%d/', 'headers': {'X-Bad': 'a\\r\\nX-Evil: 1'}}",
                  port), "schema", "line break");
    http_fails(hj("{'url': 'http://127.0.0.1:%d/', 'headers': {'Bad Name': 'a'}}", port),
               "schema", "not a valid header name");
}

TEST(http_query_is_encoded_and_appended) {
    int port = start_target();
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/q?a=1', 'query': {'q': 'a b&c=d/\u00e9',"
                        " 'n': 5, 'list': ['x', 'y'], 't': true, 'skip': null}}", port));
    jv body = jv_object_get(jv_copy(out), jv_string("body"));
    const char *q = gs(body, "query", NULL);
    CHECK(q != NULL);
    CHECK(strncmp(q, "a=1&", 4) == 0);
    CHECK_CONTAINS(q, "q=a%20b%26c%3Dd%2F%C3%A9");
    CHECK_CONTAINS(q, "n=5");
    CHECK_CONTAINS(q, "list=x&list=y");
    CHECK_CONTAINS(q, "t=true");
    CHECK(strstr(q, "skip") == NULL);
    jv_free(body);
    jv_free(out);
    http_fails(hj("{'url': 'http://127.0.0.1:%d/', 'query': {'o': {'a': 1}}}", port), "schema",
               "query.o");
}

TEST(http_json_and_body_are_sent_with_their_types) {
    int port = start_target();
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/j', 'json': {'a': [1, 2], 's': '\u00e9'}}",
                        port));
    jv body = jv_object_get(jv_copy(out), jv_string("body"));
    CHECK_STR(gs(body, "method", NULL), "POST");            /* a body: POST by default */
    CHECK_STR(gs(body, "headers", "content-type"), "application/json");
    CHECK_STR(gs(body, "body", NULL), "{\"a\":[1,2],\"s\":\"\xc3\xa9\"}");
    jv_free(body);
    jv_free(out);
    out = http_ok(hj("{'url': 'http://127.0.0.1:%d/b', 'method': 'PUT', 'body': 'plain text'}",
                     port));
    body = jv_object_get(jv_copy(out), jv_string("body"));
    CHECK_STR(gs(body, "method", NULL), "PUT");
    CHECK_STR(gs(body, "headers", "content-type"), "text/plain; charset=utf-8");
    CHECK_STR(gs(body, "body", NULL), "plain text");
    jv_free(body);
    jv_free(out);
    /* The author's Content-Type wins; an empty POST still says Content-Length: 0. */
    out = http_ok(hj("{'url': 'http://127.0.0.1:%d/b', 'body': 'a=1', 'headers': "
                     "{'Content-Type': 'application/x-www-form-urlencoded'}}", port));
    body = jv_object_get(jv_copy(out), jv_string("body"));
    CHECK_STR(gs(body, "headers", "content-type"), "application/x-www-form-urlencoded");
    jv_free(body);
    jv_free(out);
    out = http_ok(hj("{'url': 'http://127.0.0.1:%d/e', 'method': 'POST'}", port));
    body = jv_object_get(jv_copy(out), jv_string("body"));
    CHECK_STR(gs(body, "headers", "content-length"), "0");
    CHECK(gs(body, "headers", "content-type") == NULL);
    jv_free(body);
    jv_free(out);
    http_fails(hj("{'url': 'http://127.0.0.1:%d/', 'json': 1, 'body': 'x'}", port), "schema",
               "not both");
}

/* ---- statuses and redirects --------------------------------------------- */

TEST(http_unexpected_status_fails_with_body_start) {
    int port = start_target();
    http_fails(hj("{'url': 'http://127.0.0.1:%d/status/404?body=no%%20such%%20page'}", port),
               "status", "HTTP 404 from GET");
    http_fails(hj("{'url': 'http://127.0.0.1:%d/status/503?body=down%%20for%%20maintenance'}",
                  port), "status", "(expected 200-299): down for maintenance");
}

TEST(http_expect_status_accepts_integer_list_and_ranges) {
    int port = start_target();
    const char *ok[] = {"404", "[200, '400-404']", "'4xx'", "'404'", "['2xx', 404]"};
    for (int i = 0; i < 5; i++) {
        char text[300];
        snprintf(text, sizeof text, "{'url': 'http://127.0.0.1:%%d/status/404', "
                 "'expect_status': %s}", ok[i]);
        jv out = http_ok(hj(text, port));
        CHECK_INT(gn(out, "status"), 404);
        jv_free(out);
    }
    http_fails(hj("{'url': 'http://127.0.0.1:%d/status/404', 'expect_status': '500-599'}", port),
               "status", "(expected \"500-599\")");
    http_fails(hj("{'url': 'http://127.0.0.1:%d/status/200', 'expect_status': [201]}", port),
               "status", "HTTP 200");
    const char *bad[] = {"'abc'", "99", "'300-200'", "[]", "2.5", "{'a': 1}"};
    for (int i = 0; i < 6; i++) {
        char text[300];
        snprintf(text, sizeof text, "{'url': 'http://127.0.0.1:%%d/', 'expect_status': %s}",
                 bad[i]);
        http_fails(hj(text, port), "schema", "expect_status");
    }
}

TEST(http_redirects_are_followed_and_bounded) {
    int port = start_target();
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/redirect/3'}", port));
    char want[100];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/redirect/0", port);
    CHECK_STR(gs(out, "url", NULL), want);
    CHECK_INT(gn(out, "redirects"), 3);
    jv_free(out);
    char path[100];
    snprintf(path, sizeof path, "{'url': 'http://127.0.0.1:%%d/redirect/%d'}",
             CAIRN_HTTP_MAX_REDIRECTS);
    out = http_ok(hj(path, port));
    CHECK_INT(gn(out, "redirects"), CAIRN_HTTP_MAX_REDIRECTS);
    jv_free(out);
    snprintf(path, sizeof path, "{'url': 'http://127.0.0.1:%%d/redirect/%d'}",
             CAIRN_HTTP_MAX_REDIRECTS + 1);
    http_fails(hj(path, port), "protocol", "redirects");
    /* Not followed: the 302 itself is the answer. */
    http_fails(hj("{'url': 'http://127.0.0.1:%d/redirect/1', 'follow_redirects': false}", port),
               "status", "HTTP 302");
    out = http_ok(hj("{'url': 'http://127.0.0.1:%d/redirect/1', 'follow_redirects': false,"
                     " 'expect_status': 302}", port));
    CHECK_STR(gs(out, "headers", "location"), "/redirect/0");
    jv_free(out);
}

/* ---- bodies ------------------------------------------------------------- */

TEST(http_body_kept_as_string_unless_json_type) {
    int port = start_target();
    /* JSON text served as text/plain stays a string. */
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/status/200?body=%%7B%%22x%%22%%3A1%%7D'}",
                        port));
    CHECK_STR(gs(out, "body", NULL), "{\"x\":1}");
    CHECK_INT(gn(out, "body_bytes"), 7);
    jv_free(out);
    /* Any +json type, with parameters, is parsed. */
    out = http_ok(hj("{'url': 'http://127.0.0.1:%d/status/200?body=%%7B%%22x%%22%%3A1%%7D"
                     "&type=application/problem%%2Bjson%%3B%%20charset%%3Dutf-8'}", port));
    jv body = jv_object_get(jv_copy(out), jv_string("body"));
    CHECK_INT(jv_get_kind(body), JV_KIND_OBJECT);
    CHECK_INT(gn(body, "x"), 1);
    jv_free(body);
    jv_free(out);
    /* Repeated headers are joined. */
    out = http_ok(hj("{'url': 'http://127.0.0.1:%d/headers'}", port));
    CHECK_STR(gs(out, "headers", "x-multi"), "one, two");
    CHECK_STR(gs(out, "headers", "set-cookie"), "a=1, b=2");
    CHECK_STR(gs(out, "body", NULL), "ok");
    jv_free(out);
}

TEST(http_bad_json_body_fails_with_protocol) {
    int port = start_target();
    http_fails(hj("{'url': 'http://127.0.0.1:%d/truncated'}", port), "protocol",
               "Content-Type is application/json but its body is not valid JSON: unfinished");
    http_fails(hj("{'url': 'http://127.0.0.1:%d/status/200?body=not%%20json"
                  "&type=application/json'}", port), "protocol", "not valid JSON");
    /* A body cut short of its Content-Length. */
    http_fails(hj("{'url': 'http://127.0.0.1:%d/short'}", port), "protocol", "GET http");
}

TEST(http_body_over_cap_fails_with_size) {
    int port = start_target();
    jv out = http_ok(hj("{'url': 'http://127.0.0.1:%d/big/100000'}", port));
    CHECK_INT(gn(out, "body_bytes"), 100000);
    jv_free(out);
    http_fails(hj("{'url': 'http://127.0.0.1:%d/big/10485760'}", port), "size",
               "response body is over the 4194304-byte cap (Content-Length: 10485760)");
    http_fails(hj("{'url': 'http://127.0.0.1:%d/many-headers/1000'}", port), "size",
               "response headers are over the");
}

/* ---- connections, time, stopping ---------------------------------------- */

TEST(http_connection_refused_fails_with_connect) {
    http_fails(hj("{'url': 'http://127.0.0.1:%d/'}", test_srv_dead_port()), "connect",
               "Failed to connect");
}

TEST(http_timeout_and_step_deadline_fail_with_timeout) {
    int port = start_target();
    int64_t t0 = cairn_now_ms();
    http_fails(hj("{'url': 'http://127.0.0.1:%d/slow/20000', 'timeout': '300ms'}", port),
               "timeout", "within the 300 ms timeout");
    CHECK(cairn_now_ms() - t0 < 3000);
    t0 = cairn_now_ms();
    http_info.deadline_ms = t0 + 300;
    http_fails(hj("{'url': 'http://127.0.0.1:%d/slow/20000', 'timeout': '1m'}", port),
               "timeout", "step deadline reached");
    CHECK(cairn_now_ms() - t0 < 3000);
    http_info.deadline_ms = 0;
}

TEST(http_deadline_passed_sends_nothing) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/rec", test_tmpdir());
    mkdir(dir, 0700);
    const char *extra[] = {"--record", dir, NULL};
    int port = test_srv_start("tests/servers/http_target.py", extra);
    http_info.deadline_ms = cairn_now_ms() - 1;
    http_fails(hj("{'url': 'http://127.0.0.1:%d/'}", port), "timeout", "deadline");
    http_info.deadline_ms = 0;
    jv_free(http_ok(hj("{'url': 'http://127.0.0.1:%d/second'}", port)));
    char first[400];
    snprintf(first, sizeof first, "%s/0001.json", dir);
    jv rec = test_srv_json_file(first);
    CHECK_STR(gs(rec, "path", NULL), "/second");             /* the first never arrived */
    jv_free(rec);
}

typedef struct exec_arg {
    void *job;
} exec_arg;

static void *exec_thread(void *p) {
    cairn_action_http.execute(((exec_arg *)p)->job, &http_info);
    return NULL;
}

TEST(http_stop_request_cancels_promptly) {
    char dir[300], arrived[400];
    snprintf(dir, sizeof dir, "%s/rec", test_tmpdir());
    mkdir(dir, 0700);
    snprintf(arrived, sizeof arrived, "%s/0001.json", dir);
    const char *extra[] = {"--record", dir, NULL};
    int port = test_srv_start("tests/servers/http_target.py", extra);
    exec_arg e = {NULL};
    cairn_fail f = {{0}, {0}};
    jv with = hj("{'url': 'http://127.0.0.1:%d/slow/30000', 'timeout': '1m'}", port);
    CHECK_INT(cairn_action_http.prepare(with, &http_info, &e.job, &f), 0);
    jv_free(with);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, exec_thread, &e), 0);
    CHECK(test_srv_wait_file(arrived, 10000));               /* the request is in flight */
    int64_t asked = cairn_now_ms();
    atomic_store(&http_stop.requested, 1);
    CHECK_INT(pthread_join(t, NULL), 0);
    CHECK(cairn_now_ms() - asked < 1000);
    jv out = jv_invalid();
    CHECK_INT(cairn_action_http.finish(e.job, &out, &f), -1);
    CHECK_STR(f.kind, "cancelled");
    atomic_store(&http_stop.requested, 0);
}

/* ---- TLS ---------------------------------------------------------------- */

TEST(http_https_self_signed_verify_and_opt_out) {
    const char *d = test_tmpdir();
    test_srv_cert(d);
    char cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/cert.pem", d);
    snprintf(key, sizeof key, "%s/key.pem", d);
    const char *extra[] = {"--cert", cert, "--key", key, NULL};
    int port = test_srv_start("tests/servers/http_target.py", extra);
    http_fails(hj("{'url': 'https://127.0.0.1:%d/'}", port), "tls", "certificate");
    jv out = http_ok(hj("{'url': 'https://127.0.0.1:%d/', 'tls_verify': false}", port));
    CHECK_INT(gn(out, "status"), 200);
    CHECK_INT(gk(out, "tls_verify", NULL), JV_KIND_FALSE);
    CHECK_CONTAINS(gs(out, "warning", NULL), "verification was off");
    jv_free(out);
    /* Verification on, trusting the test certificate: it passes. */
    char text[600];
    snprintf(text, sizeof text, "{'url': 'https://127.0.0.1:%%d/', 'ca_file': '%s'}", cert);
    out = http_ok(hj(text, port));
    CHECK_INT(gn(out, "status"), 200);
    jv_free(out);
}

/* ---- bad `with` --------------------------------------------------------- */

TEST(http_bad_with_fails_with_schema) {
    http_fails(hj("{'url': 'ftp://127.0.0.1:%d/x'}", 21), "schema", "scheme 'ftp'");
    http_fails(hj("{'url': 'file:///etc/passwd'}", 0), "schema", "scheme 'file'");
    http_fails(hj("{'url': 'not a url'}", 0), "schema", "not a valid URL");
    http_fails(hj("{'url': 'http://127.0.0.1/', 'nope': 1}", 0), "schema", "unknown field 'nope'");
    http_fails(hj("{'method': 'GET'}", 0), "schema", "'url' is required");
    http_fails(hj("{'url': 'http://127.0.0.1/', 'timeout': 'soon'}", 0), "schema", "duration");
    http_fails(hj("{'url': 'http://127.0.0.1/', 'tls_verify': 'no'}", 0), "schema",
               "true or false");
    cairn_fail f = {{0}, {0}};
    void *job = NULL;
    jv notmap = jv_string("x");
    CHECK(cairn_action_http.prepare(notmap, &http_info, &job, &f) != 0);
    jv_free(notmap);
    CHECK_STR(f.kind, "schema");
}
