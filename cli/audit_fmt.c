/*
 * audit_fmt.c - heads files and run exports (audit_fmt.h).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/audit_fmt.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"

void audit_hex(const unsigned char *hash, char hex[AUDIT_HEX_LEN + 1]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < CAIRN_HASH_LEN; i++) {
        hex[2 * i] = digits[hash[i] >> 4];
        hex[2 * i + 1] = digits[hash[i] & 15];
    }
    hex[AUDIT_HEX_LEN] = '\0';
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int audit_unhex(const char *hex, unsigned char hash[CAIRN_HASH_LEN]) {
    if (hex == NULL || strlen(hex) != AUDIT_HEX_LEN) return -1;
    for (int i = 0; i < CAIRN_HASH_LEN; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        hash[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* ---- heads --------------------------------------------------------------- */

void audit_heads_add(audit_heads *h, const char *run, int64_t events,
                     const unsigned char head[CAIRN_HASH_LEN]) {
    h->v = cairn_realloc(h->v, (size_t)(h->n + 1) * sizeof *h->v);
    audit_head *x = &h->v[h->n++];
    snprintf(x->run, sizeof x->run, "%s", run);
    x->events = events;
    memcpy(x->head, head, CAIRN_HASH_LEN);
}

void audit_heads_free(audit_heads *h) {
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

void audit_heads_write(FILE *f, const audit_heads *h) {
    fprintf(f, "%s\njournal %s\nkey_check %s\n", CAIRN_HEADS_MAGIC, h->journal[0] ? h->journal : "-",
            h->key_check[0] ? h->key_check : "-");
    for (int i = 0; i < h->n; i++) {
        char hex[AUDIT_HEX_LEN + 1];
        audit_hex(h->v[i].head, hex);
        fprintf(f, "run %s %lld %s\n", h->v[i].run, (long long)h->v[i].events, hex);
    }
}

/* The whole file, NUL-terminated, at most CAIRN_AUDIT_FILE_MAX bytes. */
static int read_all(const char *path, char **out, size_t *len, cairn_err *err) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return cairn_err_set(err, CAIRN_EIO, "%s: cannot open", path);
    cairn_buf b = {0};
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > (size_t)CAIRN_AUDIT_FILE_MAX)
            rc = cairn_err_set(err, CAIRN_ELIMIT, "%s: larger than %ld bytes", path,
                               (long)CAIRN_AUDIT_FILE_MAX);
        else
            cairn_buf_append(&b, chunk, n);
    }
    if (rc == 0 && ferror(f)) rc = cairn_err_set(err, CAIRN_EIO, "%s: cannot read", path);
    fclose(f);
    cairn_buf_putc(&b, '\0');
    *len = b.len - 1;
    *out = cairn_buf_detach(&b);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Cut text at each newline in place: *line receives the next line. */
static char *next_line(char **p) {
    if (**p == '\0') return NULL;
    char *line = *p, *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = line + strlen(line);
    }
    return line;
}

/* "WORD" into out (size outlen, which it must fit), "-" read as "". */
static bool take_word(const char *word, char *out, size_t outlen) {
    size_t n = strcmp(word, "-") == 0 ? 0 : strlen(word);
    if (n >= outlen) return false;
    memcpy(out, word, n);
    out[n] = '\0';
    return true;
}

/* One line after the first: 0, or -1 when it is none of the three. */
static int heads_line(const char *line, audit_heads *h) {
    char run[CAIRN_RUN_ID_MAX + 1], hex[AUDIT_HEX_LEN + 2], word[AUDIT_HEX_LEN + 2];
    long long events;
    unsigned char head[CAIRN_HASH_LEN];
    int used = 0;
    if (line[0] == '\0') return 0;
    if (sscanf(line, "journal %65s%n", word, &used) == 1 && line[used] == '\0')
        return take_word(word, h->journal, sizeof h->journal) ? 0 : -1;
    if (sscanf(line, "key_check %65s%n", word, &used) == 1 && line[used] == '\0')
        return take_word(word, h->key_check, sizeof h->key_check) ? 0 : -1;
    if (sscanf(line, "run %40s %lld %65s%n", run, &events, hex, &used) == 3 && line[used] == '\0' &&
        strlen(run) < CAIRN_RUN_ID_MAX && events > 0 && audit_unhex(hex, head) == 0) {
        audit_heads_add(h, run, events, head);
        return 0;
    }
    return -1;
}

static int parse_heads_text(const char *path, char *text, audit_heads *h, cairn_err *err) {
    char *p = text, *line = next_line(&p);
    if (line == NULL || strcmp(line, CAIRN_HEADS_MAGIC) != 0)
        return cairn_err_at(err, CAIRN_ESYNTAX, path, 1, 1, "not a heads file (%s) nor an export",
                            CAIRN_HEADS_MAGIC);
    for (int no = 2; (line = next_line(&p)) != NULL; no++)
        if (heads_line(line, h) != 0)
            return cairn_err_at(err, CAIRN_ESYNTAX, path, no, 1, "expected `run ID EVENTS HEAD`,"
                                " `journal ID` or `key_check HEX`");
    return 0;
}

/* ---- JSON fields ----------------------------------------------------------- */

/* o[key] as a string copied into out (size outlen), or -1. */
static int get_str(jv o, const char *key, char *out, size_t outlen) {
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    int rc = -1;
    if (jv_get_kind(v) == JV_KIND_STRING && (size_t)jv_string_length_bytes(jv_copy(v)) < outlen) {
        snprintf(out, outlen, "%s", jv_string_value(v));
        rc = 0;
    }
    jv_free(v);
    return rc;
}

static char *dup_str(jv o, const char *key, size_t *len) {
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    char *s = NULL;
    if (jv_get_kind(v) == JV_KIND_STRING) {
        size_t n = (size_t)jv_string_length_bytes(jv_copy(v));
        s = cairn_strndup(jv_string_value(v), n);
        if (len) *len = n;
    }
    jv_free(v);
    return s;
}

/* o[key] as an integer, or -1 when it is not a non-negative integer. */
static int get_int(jv o, const char *key, int64_t *out) {
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    int rc = -1;
    if (jv_get_kind(v) == JV_KIND_NUMBER) {
        double d = jv_number_value(v);
        if (d >= 0 && d < 9007199254740992.0 && d == (double)(int64_t)d) {
            *out = (int64_t)d;
            rc = 0;
        }
    }
    jv_free(v);
    return rc;
}

static int parse_heads_json(jv list, audit_heads *h) {
    if (jv_get_kind(list) != JV_KIND_ARRAY) return -1;
    int rc = 0;
    jv_array_foreach(list, i, x) {
        char run[CAIRN_RUN_ID_MAX], hex[AUDIT_HEX_LEN + 1];
        int64_t events;
        unsigned char head[CAIRN_HASH_LEN];
        if (rc == 0 && jv_get_kind(x) == JV_KIND_OBJECT && get_str(x, "run", run, sizeof run) == 0 &&
            get_int(x, "events", &events) == 0 && events > 0 &&
            get_str(x, "head", hex, sizeof hex) == 0 && audit_unhex(hex, head) == 0)
            audit_heads_add(h, run, events, head);
        else
            rc = -1;
        jv_free(x);
    }
    return rc;
}

/* The header object of an export into x. */
static int parse_header(jv o, audit_export *x) {
    int64_t version = 0;
    if (jv_get_kind(o) != JV_KIND_OBJECT || get_int(o, "cairn_export", &version) != 0 ||
        version != CAIRN_EXPORT_VERSION || get_str(o, "run", x->run, sizeof x->run) != 0 ||
        get_str(o, "key_check", x->heads.key_check, sizeof x->heads.key_check) != 0)
        return -1;
    if (get_str(o, "journal", x->heads.journal, sizeof x->heads.journal) != 0) x->heads.journal[0] = 0;
    jv def = jv_object_get(jv_copy(o), jv_string("definition"));
    int rc = jv_get_kind(def) == JV_KIND_OBJECT ? 0 : -1;
    if (rc == 0) {
        x->def_hash = dup_str(def, "hash", NULL);
        x->def_name = dup_str(def, "name", NULL);
        x->def_path = dup_str(def, "path", NULL);
        x->source = dup_str(def, "source", &x->source_len);
        if (!x->def_hash || !x->def_name || !x->def_path || !x->source) rc = -1;
    }
    jv_free(def);
    jv heads = jv_object_get(jv_copy(o), jv_string("heads"));
    if (rc == 0) rc = parse_heads_json(heads, &x->heads);
    jv_free(heads);
    return rc;
}

static int parse_event(jv o, const char *run, cairn_event *ev) {
    char type[32], hex[AUDIT_HEX_LEN + 1];
    int64_t attempt = 0;
    memset(ev, 0, sizeof *ev);
    snprintf(ev->run_id, sizeof ev->run_id, "%s", run);
    if (jv_get_kind(o) != JV_KIND_OBJECT || get_int(o, "seq", &ev->seq) != 0 ||
        get_int(o, "time_ms", &ev->time_ms) != 0 || get_int(o, "attempt", &attempt) != 0 ||
        attempt > INT_MAX || get_str(o, "type", type, sizeof type) != 0 ||
        (ev->type = cairn_event_type_parse(type)) == CAIRN_EV_NONE ||
        get_str(o, "hash", hex, sizeof hex) != 0 || audit_unhex(hex, ev->hash) != 0)
        return -1;
    ev->attempt = (int)attempt;
    ev->step = dup_str(o, "step", NULL);
    ev->data = dup_str(o, "data", &ev->data_len);
    return ev->data ? 0 : -1;
}

static void add_event(audit_export *x, int *cap) {
    if (x->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        x->events = cairn_realloc(x->events, (size_t)*cap * sizeof *x->events);
    }
    cairn_event *ev = &x->events[x->n++];   /* freed whole even when it does not parse */
    memset(ev, 0, sizeof *ev);
}

static int bad_line(const char *path, int line, jv v, const char *what, cairn_err *err) {
    int rc;
    if (jv_is_valid(v)) {
        rc = cairn_err_at(err, CAIRN_ESYNTAX, path, line, 1, "%s", what);
    } else {
        jv m = jv_invalid_get_msg(jv_copy(v));
        rc = cairn_err_at(err, CAIRN_ESYNTAX, path, line, 1, "not JSON: %s",
                          jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "?");
        jv_free(m);
    }
    jv_free(v);
    return rc;
}

static int parse_events_json(const char *path, jv list, audit_export *x, cairn_err *err) {
    int cap = 0, rc = 0;
    if (jv_get_kind(list) != JV_KIND_ARRAY)
        return bad_line(path, 1, list, "\"events\" is not a list", err);
    jv_array_foreach(list, i, e) {
        if (rc == 0) {
            add_event(x, &cap);
            if (parse_event(e, x->run, &x->events[x->n - 1]) != 0)
                rc = cairn_err_at(err, CAIRN_ESYNTAX, path, 1, 1, "event %d of the export is"
                                  " not {seq, time_ms, type, step, attempt, data, hash}", i + 1);
        }
        jv_free(e);
    }
    jv_free(list);
    return rc;
}

static int parse_export(const char *path, char *text, size_t len, audit_export *x,
                        cairn_err *err) {
    jv whole = cairn_json_parse(text, len);
    if (jv_is_valid(whole) && jv_get_kind(whole) == JV_KIND_OBJECT &&
        jv_object_has(jv_copy(whole), jv_string("events"))) {
        int rc = parse_header(whole, x) == 0 ? 0 :
                 cairn_err_at(err, CAIRN_ESYNTAX, path, 1, 1, "not a Cairn export header");
        if (rc == 0) rc = parse_events_json(path, jv_object_get(jv_copy(whole), jv_string("events")),
                                            x, err);
        jv_free(whole);
        return rc;
    }
    jv_free(whole);
    char *p = text, *line;
    int no = 0, cap = 0;
    while ((line = next_line(&p)) != NULL) {
        jv v = cairn_json_parse(line, strlen(line));
        if (++no == 1) {
            if (!jv_is_valid(v) || parse_header(v, x) != 0)
                return bad_line(path, no, v, "not a Cairn export header", err);
        } else {
            add_event(x, &cap);
            if (!jv_is_valid(v) || parse_event(v, x->run, &x->events[x->n - 1]) != 0)
                return bad_line(path, no, v, "not an event {seq, time_ms, type, step, attempt,"
                                " data, hash}", err);
        }
        jv_free(v);
    }
    return no ? 0 : cairn_err_set(err, CAIRN_ESYNTAX, "%s: empty", path);
}

int audit_heads_read(const char *path, audit_heads *out, cairn_err *err) {
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = read_all(path, &text, &len, err);
    if (rc) return rc;
    if (text[0] == '{') {
        audit_export x = {0};
        rc = parse_export(path, text, len, &x, err);
        if (rc == 0) {
            *out = x.heads;
            x.heads.v = NULL;
            x.heads.n = 0;
        }
        audit_export_free(&x);
    } else {
        rc = parse_heads_text(path, text, out, err);
    }
    free(text);
    if (rc) audit_heads_free(out);
    return rc;
}

int audit_export_read(const char *path, audit_export *out, cairn_err *err) {
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = read_all(path, &text, &len, err);
    if (rc == 0) rc = parse_export(path, text, len, out, err);
    free(text);
    if (rc) audit_export_free(out);
    return rc;
}

void audit_export_free(audit_export *x) {
    audit_heads_free(&x->heads);
    free(x->def_hash);
    free(x->def_name);
    free(x->def_path);
    free(x->source);
    cairn_events_free(x->events, x->n);
    memset(x, 0, sizeof *x);
}

/* ---- writing an export -------------------------------------------------------- */

static void put_field(cairn_buf *b, const char *key, const char *s, size_t len) {
    cairn_buf_printf(b, "\"%s\":", key);
    if (s) cairn_json_write_string(b, s, len);
    else cairn_buf_puts(b, "null");
}

static void put_header(cairn_buf *b, const audit_export *x) {
    cairn_buf_printf(b, "{\"cairn_export\":%d,", CAIRN_EXPORT_VERSION);
    put_field(b, "run", x->run, strlen(x->run));
    cairn_buf_putc(b, ',');
    put_field(b, "journal", x->heads.journal, strlen(x->heads.journal));
    cairn_buf_printf(b, ",\"key_check\":\"%s\",\"definition\":{", x->heads.key_check);
    put_field(b, "hash", x->def_hash, strlen(x->def_hash));
    cairn_buf_putc(b, ',');
    put_field(b, "name", x->def_name, strlen(x->def_name));
    cairn_buf_putc(b, ',');
    put_field(b, "path", x->def_path, strlen(x->def_path));
    cairn_buf_putc(b, ',');
    put_field(b, "source", x->source, x->source_len);
    cairn_buf_puts(b, "},\"heads\":[");
    for (int i = 0; i < x->heads.n; i++) {
        char hex[AUDIT_HEX_LEN + 1];
        audit_hex(x->heads.v[i].head, hex);
        cairn_buf_printf(b, "%s{\"run\":\"%s\",\"events\":%lld,\"head\":\"%s\"}", i ? "," : "",
                         x->heads.v[i].run, (long long)x->heads.v[i].events, hex);
    }
    cairn_buf_putc(b, ']');
}

static void put_event(cairn_buf *b, const cairn_event *ev) {
    char when[40], hex[AUDIT_HEX_LEN + 1];
    audit_hex(ev->hash, hex);
    cairn_buf_printf(b, "{\"seq\":%lld,\"time_ms\":%lld,\"time\":\"%s\",\"type\":\"%s\",",
                     (long long)ev->seq, (long long)ev->time_ms,
                     cairn_rfc3339(ev->time_ms, when, sizeof when), cairn_event_type_name(ev->type));
    put_field(b, "step", ev->step, ev->step ? strlen(ev->step) : 0);
    cairn_buf_printf(b, ",\"attempt\":%d,", ev->attempt);
    put_field(b, "data", ev->data, ev->data ? strlen(ev->data) : 0);
    cairn_buf_printf(b, ",\"hash\":\"%s\"}", hex);
}

void audit_export_write(FILE *f, const audit_export *x, bool jsonl) {
    cairn_buf b = {0};
    put_header(&b, x);
    cairn_buf_puts(&b, jsonl ? "}\n" : ",\"events\":[\n");
    for (int i = 0; i < x->n; i++) {
        put_event(&b, &x->events[i]);
        cairn_buf_puts(&b, jsonl || i == x->n - 1 ? "\n" : ",\n");
        if (b.len > 65536) {
            fwrite(b.data, 1, b.len, f);
            cairn_buf_reset(&b);
        }
    }
    if (!jsonl) cairn_buf_puts(&b, "]}\n");
    fwrite(b.data, 1, b.len, f);
    cairn_buf_free(&b);
}
