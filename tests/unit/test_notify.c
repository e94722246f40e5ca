/*
 * The `notify` action against real local servers: the HTTP target
 * (tests/servers/http_target.py, recording each request) for slack, webhook
 * and pagerduty, and the SMTP sink (tests/servers/smtp_sink.py, recording
 * each message) for email.  What is checked is what the servers received.
 *
 * The server helpers live in test_http.c.
 */
#include "test.h"
#include "actions/action.h"
#include "common/clock.h"

#include <jv.h>
#include <sys/stat.h>
#include <unistd.h>

extern const cairn_action cairn_action_notify;

/* From test_http.c. */
int test_srv_start(const char *script, const char *const *extra);
int test_srv_dead_port(void);
void test_srv_cert(const char *dir);
jv test_srv_json_file(const char *path);

#define HTTP_TARGET "tests/servers/http_target.py"
#define SMTP_SINK "tests/servers/smtp_sink.py"

static cairn_stop notify_stop;
static const cairn_attempt_info notify_info = {
    .run_id = "r9", .step_id = "page", .idempotency_key = "r9/page", .attempt = 1,
    .stop = &notify_stop,
};

/* ---- helpers ------------------------------------------------------------ */

/* JSON with ' for "; the first %d is port, then up to two %s are s. */
static jv nj(const char *fmt, int port, const char *s) {
    char text[4096];
    snprintf(text, sizeof text, fmt, port, s ? s : "", s ? s : "");
    return test_json(text);
}

static int notify_run(jv with, jv *out, cairn_fail *f) {
    const cairn_action *a = &cairn_action_notify;
    void *job = NULL;
    int rc = a->prepare(with, &notify_info, &job, f);
    jv_free(with);
    if (rc != 0) return 1;
    a->execute(job, &notify_info);
    return a->finish(job, out, f);
}

static jv notify_ok(jv with) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    if (notify_run(with, &out, &f) != 0) TEST_FAIL("notify failed: %s: %s", f.kind, f.message);
    jv d = jv_object_get(jv_copy(out), jv_string("delivered"));
    CHECK_INT(jv_get_kind(d), JV_KIND_TRUE);
    jv_free(d);
    return out;
}

static void notify_fails(jv with, const char *kind, const char *needle) {
    jv out = jv_invalid();
    cairn_fail f = {{0}, {0}};
    if (notify_run(with, &out, &f) == 0) TEST_FAIL("notify succeeded, expected %s", kind);
    CHECK_STR(f.kind, kind);
    CHECK_CONTAINS(f.message, needle);
}

/* obj.a as text (strings raw, anything else as JSON, "(absent)" when
 * missing), in a rotating buffer. */
static const char *txt(jv obj, const char *a) {
    static char keep[8][1 << 16];
    static int slot;
    jv v = jv_object_get(jv_copy(obj), jv_string(a));
    if (!jv_is_valid(v)) {
        jv_free(v);
        v = jv_string("(absent)");
    }
    if (jv_get_kind(v) != JV_KIND_STRING) v = jv_dump_string(v, 0);
    char *s = keep[slot++ % 8];
    snprintf(s, 1 << 16, "%s", jv_string_value(v));
    jv_free(v);
    return s;
}

static char rec_dir[300];

/* A fresh recording directory in the test's tmpdir. */
static const char *make_rec_dir(void) {
    static int serial;
    snprintf(rec_dir, sizeof rec_dir, "%s/rec%d", test_tmpdir(), ++serial);
    mkdir(rec_dir, 0700);
    return rec_dir;
}

static int rec_exists(int n) {
    char path[400];
    snprintf(path, sizeof path, "%s/%04d.json", rec_dir, n);
    return access(path, F_OK) == 0;
}

static jv rec_get(int n) {
    char path[400];
    snprintf(path, sizeof path, "%s/%04d.json", rec_dir, n);
    return test_srv_json_file(path);
}

static int start_recording_target(void) {
    const char *extra[] = {"--record", make_rec_dir(), NULL};
    return test_srv_start(HTTP_TARGET, extra);
}

/* The recorded request n's body, parsed. */
static jv rec_body_json(int n) {
    jv rec = rec_get(n);
    jv body = jv_parse(txt(rec, "body"));
    jv_free(rec);
    if (!jv_is_valid(body)) TEST_FAIL("request %d has no JSON body", n);
    return body;
}

/* ---- HTTP channels ------------------------------------------------------ */

TEST(notify_slack_posts_text_and_blocks) {
    int port = start_recording_target();
    jv out = notify_ok(nj("{'channel': 'slack', 'webhook_url': 'http://127.0.0.1:%d/services/"
                          "T0/B0/secret', 'text': 'nginx restarted on web-1', 'blocks': "
                          "[{'type': 'section', 'text': {'type': 'mrkdwn', 'text': '*done*'}}]}",
                          port, NULL));
    CHECK_STR(txt(out, "channel"), "slack");
    CHECK_STR(txt(out, "status"), "200");
    jv_free(out);
    jv rec = rec_get(1);
    CHECK_STR(txt(rec, "method"), "POST");
    CHECK_STR(txt(rec, "path"), "/services/T0/B0/secret");
    jv h = jv_object_get(jv_copy(rec), jv_string("headers"));
    CHECK_STR(txt(h, "content-type"), "application/json");
    CHECK_STR(txt(h, "idempotency-key"), "r9/page");
    jv body = rec_body_json(1);
    CHECK_STR(txt(body, "text"), "nginx restarted on web-1");
    CHECK_STR(txt(body, "blocks"),
              "[{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\"*done*\"}}]");
    jv_free(body);
    jv_free(h);
    jv_free(rec);
}

TEST(notify_webhook_posts_json_with_headers) {
    int port = start_recording_target();
    jv out = notify_ok(nj("{'channel': 'webhook', 'url': 'http://127.0.0.1:%d/hook', 'json': "
                          "{'event': 'restart', 'hosts': ['a', 'b'], 'n': 2}, 'headers': "
                          "{'X-Token': 'tok', 'Content-Type': 'application/vnd.x+json'}}",
                          port, NULL));
    CHECK_STR(txt(out, "channel"), "webhook");
    jv_free(out);
    jv rec = rec_get(1);
    jv h = jv_object_get(jv_copy(rec), jv_string("headers"));
    CHECK_STR(txt(h, "x-token"), "tok");
    CHECK_STR(txt(h, "content-type"), "application/vnd.x+json");   /* the author's wins */
    CHECK_STR(txt(rec, "body"), "{\"event\":\"restart\",\"hosts\":[\"a\",\"b\"],\"n\":2}");
    jv_free(h);
    jv_free(rec);
}

TEST(notify_http_error_status_fails_without_leaking_the_path) {
    int port = start_recording_target();
    cairn_fail f = {{0}, {0}};
    jv out = jv_invalid();
    CHECK(notify_run(nj("{'channel': 'slack', 'webhook_url': 'http://127.0.0.1:%d/status/404/"
                        "T0SECRET?body=no_service', 'text': 'x'}", port, NULL), &out, &f) != 0);
    CHECK_STR(f.kind, "status");
    CHECK_CONTAINS(f.message, "HTTP 404, not delivered: no_service");
    CHECK_CONTAINS(f.message, "slack webhook at http://127.0.0.1:");
    CHECK(strstr(f.message, "T0SECRET") == NULL);
    /* A redirect is not followed: a moved hook must be fixed, not turned into a GET. */
    notify_fails(nj("{'channel': 'webhook', 'url': 'http://127.0.0.1:%d/redirect/1', "
                    "'json': {}}", port, NULL), "status", "HTTP 302");
    int64_t t0 = cairn_now_ms();
    notify_fails(nj("{'channel': 'webhook', 'url': 'http://127.0.0.1:%d/slow/20000', "
                    "'json': {}, 'timeout': '300ms'}", port, NULL), "timeout",
                 "webhook at http://127.0.0.1:");
    CHECK(cairn_now_ms() - t0 < 3000);
}

TEST(notify_pagerduty_sends_events_v2_and_reports_dedup_key) {
    int port = start_recording_target();
    jv out = notify_ok(nj("{'channel': 'pagerduty', 'url': 'http://127.0.0.1:%d/pagerduty', "
                          "'routing_key': 'R0UTING', 'summary': 'db pool exhausted', "
                          "'custom_details': {'pool': 'main'}}", port, NULL));
    CHECK_STR(txt(out, "status"), "202");
    CHECK_STR(txt(out, "dedup_key"), "r9/page");      /* the idempotency key by default */
    jv_free(out);
    jv ev = rec_body_json(1);
    CHECK_STR(txt(ev, "routing_key"), "R0UTING");
    CHECK_STR(txt(ev, "event_action"), "trigger");
    CHECK_STR(txt(ev, "dedup_key"), "r9/page");
    jv p = jv_object_get(jv_copy(ev), jv_string("payload"));
    CHECK_STR(txt(p, "summary"), "db pool exhausted");
    CHECK_STR(txt(p, "source"), "cairn");
    CHECK_STR(txt(p, "severity"), "error");
    CHECK_STR(txt(p, "custom_details"), "{\"pool\":\"main\"}");
    jv_free(p);
    jv_free(ev);
    /* resolve: names the incident, carries no payload. */
    out = notify_ok(nj("{'channel': 'pagerduty', 'url': 'http://127.0.0.1:%d/pagerduty', "
                       "'routing_key': 'R', 'event_action': 'resolve', 'dedup_key': '%s'}",
                       port, "incident-7"));
    CHECK_STR(txt(out, "dedup_key"), "incident-7");
    jv_free(out);
    ev = rec_body_json(2);
    CHECK_STR(txt(ev, "event_action"), "resolve");
    CHECK_STR(txt(ev, "payload"), "(absent)");
    jv_free(ev);
    notify_fails(nj("{'channel': 'pagerduty', 'url': 'http://127.0.0.1:%d/pagerduty', "
                    "'routing_key': 'R', 'event_action': 'acknowledge'}", port, NULL),
                 "schema", "'dedup_key' is required");
    notify_fails(nj("{'channel': 'pagerduty', 'routing_key': 'R', 'summary': 's', "
                    "'severity': 'fatal'}", 0, NULL), "schema", "severity must be one of");
    notify_fails(nj("{'channel': 'pagerduty', 'routing_key': 'R'}", 0, NULL), "schema",
                 "'summary' is required");
}

TEST(notify_bad_with_fails_with_schema) {
    notify_fails(nj("{'text': 'x'}", 0, NULL), "schema", "'channel' is required");
    notify_fails(nj("{'channel': 'pigeon'}", 0, NULL), "schema", "not 'pigeon'");
    notify_fails(nj("{'channel': 'slack', 'text': 'x'}", 0, NULL), "schema",
                 "channel slack needs the field 'webhook_url'");
    notify_fails(nj("{'channel': 'slack', 'webhook_url': 'http://127.0.0.1/', 'text': 'x', "
                    "'smtp_url': 'smtp://127.0.0.1'}", 0, NULL), "schema",
                 "'smtp_url' does not apply to channel slack");
    notify_fails(nj("{'channel': 'webhook', 'url': 'gopher://127.0.0.1/', 'json': 1}", 0, NULL),
                 "schema", "scheme 'gopher'");
    notify_fails(nj("{'channel': 'email', 'smtp_url': 'http://127.0.0.1/', 'from': 'a@b', "
                    "'to': 'c@d', 'subject': 's', 'body': 'b'}", 0, NULL), "schema",
                 "scheme 'http'");
    notify_fails(nj("{'channel': 'email', 'smtp_url': 'smtp://127.0.0.1/', 'from': 'a@b', "
                    "'to': ['c@d', 'not an address'], 'subject': 's', 'body': 'b'}", 0, NULL),
                 "schema", "to[1]: 'not an address' is not an e-mail address");
    notify_fails(nj("{'channel': 'email', 'smtp_url': 'smtp://127.0.0.1/', 'from': "
                    "'a@b\\r\\nBcc: x@y', 'to': 'c@d', 'subject': 's', 'body': 'b'}", 0, NULL),
                 "schema", "line break");
    notify_fails(nj("{'channel': 'email', 'smtp_url': 'smtps://127.0.0.1/', 'from': 'a@b', "
                    "'to': 'c@d', 'subject': 's', 'body': 'b', 'starttls': true}", 0, NULL),
                 "schema", "starttls applies to smtp://");
    notify_fails(nj("{'channel': 'email', 'smtp_url': 'smtp://127.0.0.1/', 'from': 'a@b', "
                    "'to': [], 'subject': 's', 'body': 'b'}", 0, NULL), "schema", "to must list");
}

/* ---- e-mail ------------------------------------------------------------- */

/* Start the sink with extra args, recording into a fresh rec_dir. */
static int start_sink(const char *const *more) {
    const char *extra[16] = {"--dir", make_rec_dir()};
    int n = 2;
    for (const char *const *a = more; a && *a && n < 15; a++) extra[n++] = *a;
    extra[n] = NULL;
    return test_srv_start(SMTP_SINK, extra);
}

/* with for an e-mail to port; extra is more JSON fields (starting ", ") or "". */
static jv mail_with(int port, const char *scheme, const char *extra) {
    char fmt[2048];
    snprintf(fmt, sizeof fmt, "{'channel': 'email', 'smtp_url': '%s://127.0.0.1:%%d', "
             "'from': 'Cairn Bot <cairn@example.com>', 'to': 'oncall@example.com', "
             "'subject': 'nginx restarted', 'body': 'line one\\n.hidden dot line\\nend'%s}",
             scheme, extra);
    return nj(fmt, port, NULL);
}

/* line must be in the message's header block (up to the first empty line). */
static void check_header(const char *data, const char *line) {
    const char *end = strstr(data, "\r\n\r\n");
    const char *at = strstr(data, line);
    if (at == NULL || (end && at > end)) TEST_FAIL("no header \"%s\" in:\n%s", line, data);
}

TEST(notify_email_is_a_proper_message) {
    int port = start_sink(NULL);
    jv out = notify_ok(mail_with(port, "smtp", ""));
    CHECK_STR(txt(out, "channel"), "email");
    CHECK_STR(txt(out, "recipients"), "[\"oncall@example.com\"]");
    CHECK_STR(txt(out, "message_id"), "<cairn.r9/page@example.com>");
    CHECK_CONTAINS(txt(out, "reply"), "250 2.0.0 Ok: queued as SINK0001");
    jv_free(out);
    jv rec = rec_get(1);
    CHECK_STR(txt(rec, "mail_from"), "cairn@example.com");
    CHECK_STR(txt(rec, "rcpt_to"), "[\"oncall@example.com\"]");
    CHECK_STR(txt(rec, "tls"), "false");
    const char *data = txt(rec, "data");
    CHECK(strncmp(data, "Date: ", 6) == 0);
    check_header(data, " +0000\r\n");
    check_header(data, "\r\nFrom: \"Cairn Bot\" <cairn@example.com>\r\n");
    check_header(data, "\r\nTo: oncall@example.com\r\n");
    check_header(data, "\r\nSubject: nginx restarted\r\n");
    check_header(data, "\r\nMessage-ID: <cairn.r9/page@example.com>\r\n");
    check_header(data, "\r\nMIME-Version: 1.0\r\n");
    check_header(data, "\r\nContent-Type: text/plain; charset=utf-8\r\n");
    check_header(data, "\r\nContent-Transfer-Encoding: quoted-printable\r\n");
    /* The body, dot-stuffing undone by the server: the dot line came through. */
    CHECK_CONTAINS(data, "\r\n\r\nline one\r\n.hidden dot line\r\nend\r\n");
    jv_free(rec);
}

TEST(notify_email_to_a_list_with_unicode) {
    int port = start_sink(NULL);
    jv out = notify_ok(mail_with(port, "smtp", ", 'to': ['a@example.com', "
                                 "'Zo\u00eb <zoe@example.org>', 'c@example.net'], "
                                 "'subject': 'caf\u00e9 down', 'body': 'na\u00efve = ok'"));
    CHECK_STR(txt(out, "recipients"),
              "[\"a@example.com\",\"zoe@example.org\",\"c@example.net\"]");
    jv_free(out);
    jv rec = rec_get(1);
    CHECK_STR(txt(rec, "rcpt_to"), "[\"a@example.com\",\"zoe@example.org\",\"c@example.net\"]");
    const char *data = txt(rec, "data");
    check_header(data, "\r\nTo: a@example.com,\r\n =?UTF-8?B?Wm/Dqw==?= <zoe@example.org>,\r\n"
                       " c@example.net\r\n");
    check_header(data, "\r\nSubject: =?UTF-8?B?Y2Fmw6kgZG93bg==?=\r\n");
    CHECK_CONTAINS(data, "\r\n\r\nna=C3=AFve =3D ok\r\n");
    jv_free(rec);
}

TEST(notify_email_auth_plain_and_login) {
    const char *mechs[] = {"PLAIN", "LOGIN"};
    for (int i = 0; i < 2; i++) {
        const char *args[] = {"--auth", mechs[i], "--user", "bot", "--password", "s3cret", NULL};
        int port = start_sink(args);
        jv out = notify_ok(mail_with(port, "smtp", ", 'username': 'bot', 'password': 's3cret'"));
        jv_free(out);
        jv rec = rec_get(1);
        CHECK_STR(txt(rec, "auth_user"), "bot");
        jv_free(rec);
        jv bad = jv_invalid();
        cairn_fail f = {{0}, {0}};
        CHECK(notify_run(mail_with(port, "smtp", ", 'username': 'bot', 'password': 'wrong'"),
                         &bad, &f) != 0);
        CHECK_STR(f.kind, "auth");
        CHECK_CONTAINS(f.message, "535 5.7.8 Authentication credentials invalid");
        CHECK(strstr(f.message, "wrong") == NULL);
        /* No login at all: the server refuses the sender. */
        notify_fails(mail_with(port, "smtp", ""), "rejected", "530 5.7.0 Authentication required");
    }
}

TEST(notify_email_starttls) {
    const char *d = test_tmpdir();
    test_srv_cert(d);
    char cert[300], key[300], extra[600];
    snprintf(cert, sizeof cert, "%s/cert.pem", d);
    snprintf(key, sizeof key, "%s/key.pem", d);
    const char *args[] = {"--cert", cert, "--key", key, NULL};
    int port = start_sink(args);
    /* Required, and trusted through ca_file. */
    snprintf(extra, sizeof extra, ", 'starttls': true, 'ca_file': '%s'", cert);
    jv out = notify_ok(mail_with(port, "smtp", extra));
    jv_free(out);
    jv rec = rec_get(1);
    CHECK_STR(txt(rec, "tls"), "true");
    jv_free(rec);
    /* The self-signed certificate is refused against the system's CAs. */
    notify_fails(mail_with(port, "smtp", ", 'starttls': true"), "tls", "certificate");
    /* Opted out: delivered, and the output says so. */
    out = notify_ok(mail_with(port, "smtp", ", 'starttls': true, 'tls_verify': false"));
    CHECK_STR(txt(out, "tls_verify"), "false");
    CHECK_CONTAINS(txt(out, "warning"), "verification was off");
    jv_free(out);
    rec = rec_get(2);
    CHECK_STR(txt(rec, "tls"), "true");
    jv_free(rec);
    /* Without starttls the session stays plain. */
    out = notify_ok(mail_with(port, "smtp", ""));
    jv_free(out);
    rec = rec_get(3);
    CHECK_STR(txt(rec, "tls"), "false");
    jv_free(rec);
}

TEST(notify_email_starttls_required_but_not_offered) {
    int port = start_sink(NULL);
    notify_fails(mail_with(port, "smtp", ", 'starttls': true"), "tls", "STARTTLS is required");
    CHECK(!rec_exists(1));
}

TEST(notify_email_smtps) {
    const char *d = test_tmpdir();
    test_srv_cert(d);
    char cert[300], key[300], extra[600];
    snprintf(cert, sizeof cert, "%s/cert.pem", d);
    snprintf(key, sizeof key, "%s/key.pem", d);
    const char *args[] = {"--cert", cert, "--key", key, "--implicit-tls", NULL};
    int port = start_sink(args);
    snprintf(extra, sizeof extra, ", 'ca_file': '%s'", cert);
    jv out = notify_ok(mail_with(port, "smtps", extra));
    jv_free(out);
    jv rec = rec_get(1);
    CHECK_STR(txt(rec, "tls"), "true");
    jv_free(rec);
}

TEST(notify_email_refused_recipient_fails_and_sends_nothing) {
    const char *args[] = {"--refuse", "nobody@example.com", NULL};
    int port = start_sink(args);
    notify_fails(mail_with(port, "smtp", ", 'to': ['ok@example.com', 'nobody@example.com']"),
                 "rejected", "550 5.1.1 <nobody@example.com>: Recipient address rejected");
    CHECK(!rec_exists(1));                    /* all or none: ok@ got nothing either */
}

TEST(notify_email_connection_refused_and_stop) {
    int port = test_srv_dead_port();
    char where[64];
    snprintf(where, sizeof where, "smtp://127.0.0.1:%d", port);
    notify_fails(mail_with(port, "smtp", ""), "connect", where);
    cairn_attempt_info info = notify_info;
    cairn_stop stop;
    atomic_store(&stop.requested, 1);
    info.stop = &stop;
    void *job = NULL;
    cairn_fail f = {{0}, {0}};
    jv with = mail_with(port, "smtp", "");
    CHECK_INT(cairn_action_notify.prepare(with, &info, &job, &f), 0);
    jv_free(with);
    cairn_action_notify.execute(job, &info);
    jv out = jv_invalid();
    CHECK_INT(cairn_action_notify.finish(job, &out, &f), -1);
    CHECK_STR(f.kind, "cancelled");
}
