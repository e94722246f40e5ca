/*
 * notify.c - the `notify` action: tell people something happened, through
 * Slack, a generic webhook, e-mail or PagerDuty.
 *
 * `with` (`channel` picks the rest; a field of another channel is refused):
 *   slack      webhook_url, text, optional blocks: POST {"text", "blocks"}
 *   webhook    url, json, optional headers: POST the json
 *   email      smtp_url (smtp://host:port, or smtps:// for TLS from the
 *              start), from, to (an address or a list), subject, body;
 *              optional username and password (AUTH, whichever mechanism
 *              the server offers), starttls (true: upgrade an smtp://
 *              connection with STARTTLS and fail, kind "tls", when the
 *              server does not offer it; absent or false: no STARTTLS)
 *   pagerduty  routing_key, summary (for trigger), optional event_action
 *              (trigger, acknowledge, resolve; default trigger), severity
 *              (critical, error, warning, info; default error), source
 *              (default "cairn"), custom_details (a map), dedup_key (default
 *              for trigger: the step's idempotency key, so a retried page
 *              never opens a second incident; required to acknowledge or
 *              resolve), url (default the Events API v2 endpoint)
 *   any        tls_verify (default true), ca_file, timeout (default
 *              CAIRN_NOTIFY_TIMEOUT_DEFAULT_MS; the step deadline also
 *              applies)
 * Only `channel` is marked required in the signature (its fields are one
 * flat list); each channel's required fields are checked in prepare, kind
 * "schema".  Addresses are "user@host" or "Display Name <user@host>".
 *
 * HTTP channels POST compact JSON with an Idempotency-Key header (the
 * step's key), follow no redirect (a moved webhook should be fixed, not
 * silently turned into a GET), and count any 2xx as delivered (PagerDuty
 * answers 202).  Another status fails with kind "status" and the start of
 * the reply.  Messages name a webhook by its origin only: Slack's URL path
 * is its secret.
 *
 * E-mail: one RFC 5322 message (Date, From, To, Subject, Message-ID,
 * MIME-Version, Content-Type text/plain; charset=utf-8, the body in
 * quoted-printable so any text and line length is safe; non-ASCII subjects
 * and names as RFC 2047 encoded words).  The Message-ID derives from the
 * idempotency key, so a resent message can be recognised as the same one.
 * Delivery is all or none: a recipient the server refuses fails the step
 * with kind "rejected" and the server's reply, before the message is sent
 * to anyone; a refused login is kind "auth".
 *
 * Output: delivered (true), channel, and: status (HTTP channels),
 * dedup_key (PagerDuty's, from its reply), recipients, message_id and reply
 * (email); with tls_verify false also "tls_verify": false and a warning.
 */
#include "actions/action.h"
#include "common/json.h"
#include "actions/curl_req.h"
#include "common/clock.h"
#include "common/mem.h"

#include <ctype.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define CAIRN_NOTIFY_RCPT_MAX 100              /* recipients of one e-mail */
#define CAIRN_NOTIFY_TEXT_MAX (1024 * 1024)    /* bytes of a body, text or payload */
#define CAIRN_NOTIFY_REPLY_MAX (64 * 1024)     /* bytes of an HTTP reply kept */
#define CAIRN_NOTIFY_TIMEOUT_DEFAULT_MS 30000
#define CAIRN_NOTIFY_SNIPPET_MAX 512           /* reply bytes quoted in a failure */
#define NOTIFY_ADDR_MAX 254                    /* RFC 5321 path limit */
#define NOTIFY_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"
#define NOTIFY_QP_LINE 75                      /* quoted-printable line, before "=" */
#define NOTIFY_WORD_BYTES 45                   /* text bytes per encoded word */

static const cairn_field_sig notify_fields[] = {
    {"channel", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"webhook_url", CAIRN_FIELD_STRING, 0},
    {"text", CAIRN_FIELD_STRING, 0},
    {"blocks", CAIRN_FIELD_ARRAY, 0},
    {"url", CAIRN_FIELD_STRING, 0},
    {"json", CAIRN_FIELD_ANY, 0},
    {"headers", CAIRN_FIELD_OBJECT, 0},
    {"smtp_url", CAIRN_FIELD_STRING, 0},
    {"from", CAIRN_FIELD_STRING, 0},
    {"to", CAIRN_FIELD_STRING_OR_ARRAY, 0},
    {"subject", CAIRN_FIELD_STRING, 0},
    {"body", CAIRN_FIELD_STRING, 0},
    {"username", CAIRN_FIELD_STRING, 0},
    {"password", CAIRN_FIELD_STRING, 0},
    {"starttls", CAIRN_FIELD_BOOL, 0},
    {"routing_key", CAIRN_FIELD_STRING, 0},
    {"event_action", CAIRN_FIELD_STRING, 0},
    {"summary", CAIRN_FIELD_STRING, 0},
    {"severity", CAIRN_FIELD_STRING, 0},
    {"dedup_key", CAIRN_FIELD_STRING, 0},
    {"source", CAIRN_FIELD_STRING, 0},
    {"custom_details", CAIRN_FIELD_OBJECT, 0},
    {"tls_verify", CAIRN_FIELD_BOOL, 0},
    {"ca_file", CAIRN_FIELD_STRING, 0},
    {"timeout", CAIRN_FIELD_DURATION, 0},
    {NULL, 0, 0},
};

static void notify_check(cairn_wcheck *w);

static const cairn_action_sig notify_sig = {
    .name = "notify", .fields = notify_fields, .check = notify_check};

/* PagerDuty's enumerations, checked at load (constants) and in prepare. */
static const char pd_actions[] = "trigger,acknowledge,resolve";
static const char pd_severities[] = "critical,error,warning,info";

typedef enum { CH_SLACK, CH_WEBHOOK, CH_EMAIL, CH_PAGERDUTY } channel_id;

typedef struct notify_job {
    channel_id channel;
    bool tls_verify;
    char *ca_file;
    int64_t timeout_ms;
    /* HTTP channels */
    char *url, *label;
    cairn_strv headers;
    char *payload;
    size_t payload_len;
    char *dedup_key;                   /* PagerDuty: the key sent */
    /* e-mail */
    char *smtp_url, *username, *password;
    bool starttls;
    char *from_header, *from_addr, *subject, *text, *message_id, *idem_key;
    cairn_strv to_header, rcpt;        /* as written in To:, and bare addresses */
    /* results */
    int rc;
    cairn_fail fail;
    cairn_http_resp resp;
    char reply[CAIRN_CURL_REPLY_MAX];
} notify_job;

typedef int (*channel_reader)(jv with, const cairn_attempt_info *info, notify_job *j,
                              cairn_fail *f);

typedef struct channel_def {
    const char *name;
    const char *fields;                /* its own fields, comma-separated */
    const char *required;              /* of which these must be present */
    channel_reader read;
} channel_def;

static const char common_fields[] = "channel,tls_verify,ca_file,timeout";

static void job_free(notify_job *j) {
    if (j == NULL) return;
    char *strs[] = {j->ca_file, j->url, j->label, j->payload, j->dedup_key, j->smtp_url,
                    j->username, j->password, j->from_header, j->from_addr, j->subject,
                    j->text, j->message_id, j->idem_key};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) free(strs[i]);
    cairn_strv_free(&j->headers);
    cairn_strv_free(&j->to_header);
    cairn_strv_free(&j->rcpt);
    cairn_http_resp_free(&j->resp);
    free(j);
}

/* ---- HTTP channels ------------------------------------------------------ */

/* "scheme://host[:port]" of url, for messages. */
static char *origin_of(const char *url) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *out;
    curl_url_set(u, CURLUPART_URL, url, 0);
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    out = cairn_sprintf("%s://%s%s%s", scheme ? scheme : "?", host ? host : "?",
                        port ? ":" : "", port ? port : "");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

/* The target URL (owned from now on, checked), the label for messages, the
 * Idempotency-Key and Content-Type headers. */
static int http_target(notify_job *j, const char *field, char *url, const char *what,
                       const cairn_attempt_info *info, cairn_fail *f) {
    j->url = url;
    if (cairn_curl_check_url(url, "http,https", field, f)) return -1;
    char *origin = origin_of(url);
    j->label = cairn_sprintf("%s at %s", what, origin);
    free(origin);
    if (info->idempotency_key && !cairn_strv_has_header(&j->headers, "idempotency-key"))
        cairn_strv_push(&j->headers, cairn_sprintf("Idempotency-Key: %s", info->idempotency_key));
    if (!cairn_strv_has_header(&j->headers, "content-type"))
        cairn_strv_push(&j->headers, cairn_strdup("Content-Type: application/json"));
    return 0;
}

/* The payload: obj as compact JSON (consumed). */
static int set_payload(notify_job *j, jv obj, cairn_fail *f) {
    jv text = jv_dump_string(obj, 0);
    j->payload_len = (size_t)jv_string_length_bytes(jv_copy(text));
    j->payload = cairn_strndup(jv_string_value(text), j->payload_len);
    jv_free(text);
    if (j->payload_len <= CAIRN_NOTIFY_TEXT_MAX) return 0;
    return cairn_fail_set(f, "schema", "the payload is %zu bytes, over the %d-byte cap",
                          j->payload_len, CAIRN_NOTIFY_TEXT_MAX);
}

static int read_slack(jv with, const cairn_attempt_info *info, notify_job *j, cairn_fail *f) {
    char *url = NULL;
    if (cairn_with_string(with, "webhook_url", true, &url, f) ||
        http_target(j, "webhook_url", url, "slack webhook", info, f))
        return -1;
    jv text = cairn_with_get(with, "text"), blocks = cairn_with_get(with, "blocks");
    int rc;
    if (jv_get_kind(text) != JV_KIND_STRING)
        rc = cairn_fail_set(f, "schema", "text must be a string");
    else if (jv_is_valid(blocks) && jv_get_kind(blocks) != JV_KIND_ARRAY)
        rc = cairn_fail_set(f, "schema", "blocks must be a list of Slack blocks");
    else {
        jv obj = jv_object_set(jv_object(), jv_string("text"), jv_copy(text));
        if (jv_is_valid(blocks)) obj = jv_object_set(obj, jv_string("blocks"), jv_copy(blocks));
        rc = set_payload(j, obj, f);
    }
    jv_free(text);
    jv_free(blocks);
    return rc;
}

static int read_webhook(jv with, const cairn_attempt_info *info, notify_job *j, cairn_fail *f) {
    char *url = NULL;
    if (cairn_with_headers(with, "headers", &j->headers, f) ||
        cairn_with_string(with, "url", true, &url, f) ||
        http_target(j, "url", url, "webhook", info, f))
        return -1;
    return set_payload(j, cairn_with_get(with, "json"), f);
}

/* ---- PagerDuty ---------------------------------------------------------- */

/* A string field that must be one of `allowed` (comma-separated). */
static int enum_field(jv with, const char *name, const char *allowed, const char *def,
                      char **out, cairn_fail *f) {
    if (cairn_with_string(with, name, false, out, f)) return -1;
    if (*out == NULL) *out = cairn_strdup(def);
    if (cairn_with_listed(allowed, *out)) return 0;
    return cairn_fail_set(f, "schema", "%s must be one of %s, not '%.40s'", name, allowed, *out);
}

/* The event's payload (trigger only); its fields were checked by pd_fields. */
static jv pd_payload(jv with, const char *severity) {
    jv source = cairn_with_get(with, "source"), details = cairn_with_get(with, "custom_details");
    if (!jv_is_valid(source)) {
        jv_free(source);
        source = jv_string("cairn");
    }
    jv p = jv_object_set(jv_object(), jv_string("summary"), cairn_with_get(with, "summary"));
    p = jv_object_set(p, jv_string("source"), source);
    p = jv_object_set(p, jv_string("severity"), jv_string(severity));
    if (jv_is_valid(details)) return jv_object_set(p, jv_string("custom_details"), details);
    jv_free(details);
    return p;
}

/* summary (required to trigger) and source are strings; custom_details is a map. */
static int pd_fields(jv with, const char *action, cairn_fail *f) {
    char *s = NULL;
    const char *names[] = {"summary", "source"};
    for (int i = 0; i < 2; i++) {
        if (cairn_with_string(with, names[i], i == 0 && strcmp(action, "trigger") == 0, &s, f))
            return -1;
        free(s);
    }
    jv details = cairn_with_get(with, "custom_details");
    bool bad = jv_is_valid(details) && jv_get_kind(details) != JV_KIND_OBJECT;
    jv_free(details);
    return bad ? cairn_fail_set(f, "schema", "custom_details must be a map") : 0;
}

static int pd_event(jv with, notify_job *j, const char *action, const char *severity,
                    cairn_fail *f) {
    char *key = NULL;
    if (cairn_with_string(with, "routing_key", true, &key, f)) return -1;
    jv ev = jv_object_set(jv_object(), jv_string("routing_key"), jv_string(key));
    free(key);
    ev = jv_object_set(ev, jv_string("event_action"), jv_string(action));
    if (j->dedup_key) ev = jv_object_set(ev, jv_string("dedup_key"), jv_string(j->dedup_key));
    if (strcmp(action, "trigger") == 0)
        ev = jv_object_set(ev, jv_string("payload"), pd_payload(with, severity));
    ev = jv_object_set(ev, jv_string("client"), jv_string("cairn"));
    return set_payload(j, ev, f);
}

static int read_pagerduty(jv with, const cairn_attempt_info *info, notify_job *j,
                          cairn_fail *f) {
    char *action = NULL, *severity = NULL, *url = NULL;
    int rc = -1;
    if (enum_field(with, "event_action", pd_actions, "trigger", &action, f) ||
        enum_field(with, "severity", pd_severities, "error", &severity, f) ||
        pd_fields(with, action, f) ||
        cairn_with_string(with, "dedup_key", strcmp(action, "trigger") != 0, &j->dedup_key, f) ||
        cairn_with_string(with, "url", false, &url, f))
        goto cleanup;
    if (j->dedup_key == NULL && info->idempotency_key)
        j->dedup_key = cairn_strdup(info->idempotency_key);
    if (url == NULL) url = cairn_strdup(NOTIFY_PAGERDUTY_URL);
    if (http_target(j, "url", url, "PagerDuty", info, f) == 0)
        rc = pd_event(with, j, action, severity, f);
    url = NULL;                        /* owned by j now */
cleanup:
    free(url);
    free(action);
    free(severity);
    return rc;
}

/* ---- e-mail: addresses and fields -------------------------------------- */

static bool addr_ok(const char *a) {
    const char *at = strchr(a, '@');
    size_t n = strlen(a);
    if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@') || n > NOTIFY_ADDR_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= ' ' || *p >= 0x7F || strchr("<>()[],;:\"\\", *p)) return false;
    return true;
}

static bool ascii_printable(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < ' ' || *p >= 0x7F) return false;
    return true;
}

static void base64(cairn_buf *b, const char *s, size_t n) {
    unsigned char *out = cairn_malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock(out, (const unsigned char *)s, (int)n);
    cairn_buf_append(b, out, (size_t)len);
    free(out);
}

/* RFC 2047 encoded words, each at most NOTIFY_WORD_BYTES of text, cut on
 * UTF-8 character boundaries and folded onto their own lines. */
static void encoded_words(cairn_buf *b, const char *s) {
    size_t n = strlen(s), at = 0;
    while (at < n) {
        size_t k = n - at < NOTIFY_WORD_BYTES ? n - at : NOTIFY_WORD_BYTES;
        while (at + k < n && k > 1 && ((unsigned char)s[at + k] & 0xC0) == 0x80) k--;
        cairn_buf_puts(b, at ? "\r\n =?UTF-8?B?" : "=?UTF-8?B?");
        base64(b, s + at, k);
        cairn_buf_puts(b, "?=");
        at += k;
    }
}

/* A display name: a quoted string when plain ASCII, else encoded words. */
static void display_name(cairn_buf *b, const char *name) {
    if (!ascii_printable(name)) {
        encoded_words(b, name);
        return;
    }
    cairn_buf_putc(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\') cairn_buf_putc(b, '\\');
        cairn_buf_putc(b, *p);
    }
    cairn_buf_putc(b, '"');
}

/* The display name before '<': trimmed, one pair of quotes removed. */
static char *display_text(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    return cairn_strndup(s, n);
}

/* "user@host" or "Name <user@host>": the bare address to *addr and the
 * header form to *header (both owned by the caller, even on failure). */
static int parse_address(const char *s, const char *what, char **addr, char **header,
                         cairn_fail *f) {
    const char *lt = strrchr(s, '<');
    size_t n = strlen(s);
    cairn_buf h = CAIRN_BUF_INIT;
    if (strpbrk(s, "\r\n"))
        return cairn_fail_set(f, "schema", "%s must not contain a line break", what);
    if (lt && n && s[n - 1] == '>') {
        *addr = cairn_strndup(lt + 1, (size_t)(s + n - 2 - lt));
        char *name = display_text(s, (size_t)(lt - s));
        if (name[0]) {
            display_name(&h, name);
            cairn_buf_putc(&h, ' ');
        }
        free(name);
        cairn_buf_printf(&h, "<%s>", *addr);
    } else {
        *addr = cairn_strdup(s);
        cairn_buf_puts(&h, s);
    }
    *header = cairn_buf_detach(&h);
    if (addr_ok(*addr)) return 0;
    return cairn_fail_set(f, "schema", "%s: '%.100s' is not an e-mail address (user@host, or "
                                       "Name <user@host>)", what, s);
}

static int add_recipient(notify_job *j, jv v, int i, cairn_fail *f) {
    char what[32], *addr = NULL, *header = NULL;
    snprintf(what, sizeof what, i < 0 ? "to" : "to[%d]", i);
    if (jv_get_kind(v) != JV_KIND_STRING)
        return cairn_fail_set(f, "schema", "%s must be an address string", what);
    if (parse_address(jv_string_value(v), what, &addr, &header, f) != 0) {
        free(addr);
        free(header);
        return -1;
    }
    cairn_strv_push(&j->rcpt, addr);
    cairn_strv_push(&j->to_header, header);
    return 0;
}

static int read_to(jv with, notify_job *j, cairn_fail *f) {
    jv to = cairn_with_get(with, "to");
    int rc = 0, n = jv_get_kind(to) == JV_KIND_ARRAY ? jv_array_length(jv_copy(to)) : -1;
    if (n == 0 || n > CAIRN_NOTIFY_RCPT_MAX)
        rc = cairn_fail_set(f, "schema", "to must list 1 to %d addresses", CAIRN_NOTIFY_RCPT_MAX);
    for (int i = 0; rc == 0 && i < n; i++) {
        jv item = jv_array_get(jv_copy(to), i);
        rc = add_recipient(j, item, i, f);
        jv_free(item);
    }
    if (n < 0) rc = add_recipient(j, to, -1, f);
    jv_free(to);
    return rc;
}

/* Message-ID: from the idempotency key (the same in every attempt), or
 * random without one. */
static char *message_id(const char *key, const char *from_addr) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_puts(&b, "<cairn.");
    if (key && key[0])
        for (const char *p = key; *p; p++)
            cairn_buf_putc(&b, isalnum((unsigned char)*p) || strchr("-_/=+", *p) ? *p : '-');
    else {
        unsigned char r[12] = {0};
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) memset(r, 0, sizeof r);
        for (size_t i = 0; i < sizeof r; i++) cairn_buf_printf(&b, "%02x", r[i]);
        cairn_buf_printf(&b, ".%lld", (long long)cairn_wall_ms());
    }
    cairn_buf_printf(&b, "@%s>", strchr(from_addr, '@') + 1);
    return cairn_buf_detach(&b);
}

static int read_text_field(jv with, const char *name, char **out, cairn_fail *f) {
    if (cairn_with_string(with, name, true, out, f)) return -1;
    if (strlen(*out) > CAIRN_NOTIFY_TEXT_MAX)
        return cairn_fail_set(f, "schema", "%s is over the %d-byte cap", name,
                              CAIRN_NOTIFY_TEXT_MAX);
    return 0;
}

static int read_email(jv with, const cairn_attempt_info *info, notify_job *j, cairn_fail *f) {
    char *from = NULL;
    int rc = -1;
    if (cairn_with_string(with, "smtp_url", true, &j->smtp_url, f) ||
        cairn_curl_check_url(j->smtp_url, "smtp,smtps", "smtp_url", f) ||
        cairn_with_string(with, "from", true, &from, f) ||
        parse_address(from, "from", &j->from_addr, &j->from_header, f) ||
        read_to(with, j, f) || read_text_field(with, "subject", &j->subject, f) ||
        read_text_field(with, "body", &j->text, f) ||
        cairn_with_string(with, "username", false, &j->username, f) ||
        cairn_with_string(with, "password", false, &j->password, f) ||
        cairn_with_bool(with, "starttls", &j->starttls, f))
        goto cleanup;
    if (j->starttls && strncasecmp(j->smtp_url, "smtps:", 6) == 0) {
        cairn_fail_set(f, "schema", "starttls applies to smtp:// URLs; smtps:// is TLS from "
                                    "the start");
        goto cleanup;
    }
    if (j->password && !j->username) {
        cairn_fail_set(f, "schema", "password needs a username");
        goto cleanup;
    }
    j->message_id = message_id(info->idempotency_key, j->from_addr);
    if (info->idempotency_key) j->idem_key = cairn_strdup(info->idempotency_key);
    rc = 0;
cleanup:
    free(from);
    return rc;
}

/* ---- e-mail: the message ------------------------------------------------ */

static void header_date(cairn_buf *b) {
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    cairn_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
                     tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

/* One line of text (no line end) as quoted-printable, soft-broken. */
static void qp_line(cairn_buf *b, const unsigned char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        bool literal = (c >= 33 && c <= 126 && c != '=') ||
                       ((c == ' ' || c == '\t') && i + 1 < n);
        size_t w = literal ? 1 : 3;
        if (col + w > NOTIFY_QP_LINE) {
            cairn_buf_puts(b, "=\r\n");
            col = 0;
        }
        if (literal) cairn_buf_putc(b, (char)c);
        else cairn_buf_printf(b, "=%c%c", hex[c >> 4], hex[c & 15]);
        col += w;
    }
    cairn_buf_puts(b, "\r\n");
}

/* The body: any line end (LF, CRLF) becomes CRLF; each line quoted-printable. */
static void qp_body(cairn_buf *b, const char *text) {
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, "\n");
        size_t k = n && p[n - 1] == '\r' ? n - 1 : n;
        qp_line(b, (const unsigned char *)p, k);
        p += n + (p[n] == '\n');
    }
}

static char *build_message(const notify_job *j) {
    cairn_buf b = CAIRN_BUF_INIT;
    header_date(&b);
    cairn_buf_printf(&b, "From: %s\r\nTo: ", j->from_header);
    for (int i = 0; i < j->to_header.n; i++)
        cairn_buf_printf(&b, "%s%s", i ? ",\r\n " : "", j->to_header.v[i]);
    cairn_buf_puts(&b, "\r\nSubject: ");
    if (ascii_printable(j->subject) && strlen(j->subject) < 900) cairn_buf_puts(&b, j->subject);
    else encoded_words(&b, j->subject);
    cairn_buf_printf(&b, "\r\nMessage-ID: %s\r\n", j->message_id);
    if (j->idem_key && ascii_printable(j->idem_key))
        cairn_buf_printf(&b, "X-Cairn-Idempotency-Key: %s\r\n", j->idem_key);
    cairn_buf_puts(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    qp_body(&b, j->text);
    return cairn_buf_detach(&b);
}

/* ---- the three phases --------------------------------------------------- */

static const channel_def channels[] = {
    [CH_SLACK] = {"slack", "webhook_url,text,blocks", "webhook_url,text", read_slack},
    [CH_WEBHOOK] = {"webhook", "url,json,headers", "url,json", read_webhook},
    [CH_EMAIL] = {"email", "smtp_url,from,to,subject,body,username,password,starttls",
                  "smtp_url,from,to,subject,body", read_email},
    [CH_PAGERDUTY] = {"pagerduty", "routing_key,event_action,summary,severity,dedup_key,"
                                   "source,custom_details,url", "routing_key", read_pagerduty},
};

/* Every field present belongs to the channel, and its required ones are there. */
static int check_channel_fields(jv with, const channel_def *c, cairn_fail *f) {
    int rc = 0;
    jv_object_foreach(with, key, value) {
        const char *k = jv_string_value(key);
        if (rc == 0 && jv_get_kind(value) != JV_KIND_NULL && !cairn_with_listed(common_fields, k) &&
            !cairn_with_listed(c->fields, k))
            rc = cairn_fail_set(f, "schema", "notify: the field '%s' does not apply to channel "
                                             "%s (it takes: %s)", k, c->name, c->fields);
        jv_free(key);
        jv_free(value);
    }
    for (const char *p = c->required; rc == 0 && *p;) {
        char name[32];
        size_t len = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        jv v = cairn_with_get(with, name);
        if (!jv_is_valid(v))
            rc = cairn_fail_set(f, "schema", "notify: channel %s needs the field '%s'",
                                c->name, name);
        jv_free(v);
        p += len + (p[len] == ',');
    }
    return rc;
}

/* Each name of list (comma-separated) the wcheck does not have is reported
 * as needed by what. */
static void check_needed(cairn_wcheck *w, const char *list, const char *what) {
    for (const char *p = list; *p;) {
        char name[32];
        size_t len = strcspn(p, ",");
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        if (!cairn_wcheck_given(w, name)) cairn_wcheck_error(w, name, "%s needs this field", what);
        p += len + (p[len] == ',');
    }
}

/* The load-time rules on constants: the channel, the fields it takes and
 * needs (as check_channel_fields and the readers do when the step runs),
 * and PagerDuty's enumerations. */
static void notify_check(cairn_wcheck *w) {
    const char *name = cairn_wcheck_string(w, "channel");
    const channel_def *c = NULL;
    if (!cairn_wcheck_enum(w, "channel", "slack,webhook,email,pagerduty", 0) || name == NULL)
        return;
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++)
        if (strcmp(channels[i].name, name) == 0) c = &channels[i];
    for (const cairn_field_sig *f = notify_fields; f->name; f++)
        if (cairn_wcheck_given(w, f->name) && !cairn_with_listed(common_fields, f->name) &&
            !cairn_with_listed(c->fields, f->name))
            cairn_wcheck_error(w, f->name, "does not apply to channel %s (it takes: %s)",
                               c->name, c->fields);
    char what[48];
    snprintf(what, sizeof what, "channel %s", c->name);
    check_needed(w, c->required, what);
    if (c != &channels[CH_PAGERDUTY] || !cairn_wcheck_enum(w, "event_action", pd_actions, 0) ||
        !cairn_wcheck_enum(w, "severity", pd_severities, 0))
        return;
    const char *action = cairn_wcheck_string(w, "event_action");
    if (!cairn_wcheck_given(w, "event_action") || (action && strcmp(action, "trigger") == 0))
        check_needed(w, "summary", "a PagerDuty trigger");
    else if (action)
        check_needed(w, "dedup_key", "a PagerDuty acknowledge or resolve");
}

static int read_channel(jv with, notify_job *j, cairn_fail *f) {
    char *name = NULL;
    int rc = cairn_with_string(with, "channel", true, &name, f);
    size_t n = sizeof channels / sizeof channels[0], i = 0;
    while (rc == 0 && i < n && strcmp(channels[i].name, name) != 0) i++;
    if (rc == 0 && i == n)
        rc = cairn_fail_set(f, "schema", "notify: channel must be slack, webhook, email or "
                                         "pagerduty, not '%.40s'", name);
    j->channel = (channel_id)i;
    free(name);
    return rc;
}

static int notify_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "notify: with must be a map");
    notify_job *j = cairn_calloc(1, sizeof *j);
    j->tls_verify = true;
    j->timeout_ms = CAIRN_NOTIFY_TIMEOUT_DEFAULT_MS;
    if (cairn_with_keys(with, &notify_sig, f) || read_channel(with, j, f) ||
        check_channel_fields(with, &channels[j->channel], f) ||
        cairn_with_bool(with, "tls_verify", &j->tls_verify, f) ||
        cairn_with_string(with, "ca_file", false, &j->ca_file, f) ||
        cairn_with_duration(with, "timeout", &j->timeout_ms, f) ||
        channels[j->channel].read(with, info, j, f)) {
        job_free(j);
        return -1;
    }
    *job = j;
    return 0;
}

static void notify_execute(void *job, const cairn_attempt_info *info) {
    notify_job *j = job;
    cairn_curl_opts opts = {.tls_verify = j->tls_verify, .ca_file = j->ca_file,
                            .timeout_ms = j->timeout_ms, .deadline_ms = info->deadline_ms,
                            .stop = info->stop};
    if (j->channel == CH_EMAIL) {
        char *msg = build_message(j);
        cairn_smtp_req req = {
            .opts = opts, .url = j->smtp_url, .require_starttls = j->starttls,
            .username = j->username, .password = j->password, .from = j->from_addr,
            .rcpt = (const char *const *)j->rcpt.v, .message = msg, .message_len = strlen(msg),
        };
        j->rc = cairn_curl_smtp(&req, j->reply, sizeof j->reply, &j->fail);
        free(msg);
        return;
    }
    cairn_http_req req = {
        .opts = opts, .method = "POST", .url = j->url, .label = j->label,
        .headers = j->headers.v, .body = j->payload, .body_len = j->payload_len,
        .follow_redirects = false, .body_max = CAIRN_NOTIFY_REPLY_MAX, .body_over_fails = false,
    };
    j->rc = cairn_curl_http(&req, &j->resp, &j->fail);
}

static int status_fail(const notify_job *j, cairn_fail *f) {
    const cairn_capbuf *b = &j->resp.body;
    size_t n = b->head.len < CAIRN_NOTIFY_SNIPPET_MAX ? b->head.len : CAIRN_NOTIFY_SNIPPET_MAX;
    cairn_buf s = CAIRN_BUF_INIT;
    cairn_utf8_repair(&s, b->head.data ? b->head.data : "", n, true);
    cairn_fail_set(f, "status", "%s: HTTP %ld, not delivered%s%s", j->label, j->resp.status,
                   s.len ? ": " : "", s.len ? s.data : "");
    cairn_buf_free(&s);
    return -1;
}

/* PagerDuty's dedup_key from its reply, else the one sent. */
static jv pd_dedup_key(const notify_job *j) {
    const cairn_capbuf *b = &j->resp.body;
    jv reply = b->head.len && !cairn_capbuf_truncated(b)
                   ? cairn_json_parse(b->head.data, b->head.len) : jv_invalid();
    jv key = jv_get_kind(reply) == JV_KIND_OBJECT
                 ? jv_object_get(jv_copy(reply), jv_string("dedup_key")) : jv_invalid();
    jv_free(reply);
    if (jv_get_kind(key) == JV_KIND_STRING) return key;
    jv_free(key);
    return j->dedup_key ? jv_string(j->dedup_key) : jv_null();
}

static jv email_output(const notify_job *j, jv out) {
    jv list = jv_array();
    for (int i = 0; i < j->rcpt.n; i++) list = jv_array_append(list, jv_string(j->rcpt.v[i]));
    out = jv_object_set(out, jv_string("recipients"), list);
    out = jv_object_set(out, jv_string("message_id"), jv_string(j->message_id));
    return jv_object_set(out, jv_string("reply"), jv_string(j->reply));
}

static jv build_output(const notify_job *j) {
    jv out = jv_object_set(jv_object(), jv_string("delivered"), jv_true());
    out = jv_object_set(out, jv_string("channel"), jv_string(channels[j->channel].name));
    if (j->channel == CH_EMAIL) out = email_output(j, out);
    else out = jv_object_set(out, jv_string("status"), jv_number((double)j->resp.status));
    if (j->channel == CH_PAGERDUTY)
        out = jv_object_set(out, jv_string("dedup_key"), pd_dedup_key(j));
    if (!j->tls_verify) {
        out = jv_object_set(out, jv_string("tls_verify"), jv_false());
        out = jv_object_set(out, jv_string("warning"),
                            jv_string("TLS certificate verification was off (tls_verify: "
                                      "false): the server's identity was not checked"));
    }
    return out;
}

static int notify_finish(void *job, jv *output, cairn_fail *f) {
    notify_job *j = job;
    int rc = -1;
    if (j->rc != 0)
        *f = j->fail;
    else if (j->channel != CH_EMAIL && (j->resp.status < 200 || j->resp.status > 299))
        status_fail(j, f);
    else {
        *output = build_output(j);
        rc = 0;
    }
    job_free(j);
    return rc;
}

static void notify_discard(void *job) { job_free(job); }

const cairn_action cairn_action_notify = {
    .sig = &notify_sig,
    .flags = 0,
    .prepare = notify_prepare,
    .execute = notify_execute,
    .finish = notify_finish,
    .discard = notify_discard,
};
