/*
 * json_parse.c - reading JSON from outside (json.h): a strict syntax check,
 * then libjq's parser.
 *
 * jq 1.6's parser leaks a string when two values stand side by side
 * without a separator (`{"a" "b"}`), about 20 bytes each time: a peer
 * sending such bodies would grow the process without end.  So a text is
 * checked against RFC 8259's grammar first, by a small recursive-descent
 * scanner that allocates nothing, and only a text that passes reaches jq.
 * Its error names the byte offset, like jq's own.
 */
#include "common/json.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct scan {
    const char *s;
    size_t n, i;
    int depth;
    char why[96];
} scan;

static bool fail(scan *c, const char *what) {
    if (c->i >= c->n && c->n > 0)
        snprintf(c->why, sizeof c->why, "unfinished: %s at byte %zu, the end", what, c->i);
    else
        snprintf(c->why, sizeof c->why, "%s at byte %zu", what, c->i);
    return false;
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

static void spaces(scan *c) {
    while (c->i < c->n && is_space(c->s[c->i])) c->i++;
}

static bool literal(scan *c, const char *word) {
    size_t len = strlen(word);
    if (c->n - c->i < len || memcmp(c->s + c->i, word, len) != 0) return fail(c, "unexpected word");
    c->i += len;
    return true;
}

static bool is_digit(scan *c) { return c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9'; }

static bool digits(scan *c) {
    if (!is_digit(c)) return fail(c, "expected a digit");
    while (is_digit(c)) c->i++;
    return true;
}

static bool number(scan *c) {
    if (c->s[c->i] == '-') c->i++;
    if (c->i < c->n && c->s[c->i] == '0') c->i++;
    else if (!digits(c)) return false;
    if (c->i < c->n && c->s[c->i] == '.' && (c->i++, !digits(c))) return false;
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
        if (!digits(c)) return false;
    }
    return true;
}

static bool string(scan *c) {
    for (c->i++; c->i < c->n; c->i++) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == '"') {
            c->i++;
            return true;
        }
        if (ch < 0x20) return fail(c, "a control character in a string");
        if (ch != '\\') continue;
        if (++c->i == c->n) break;
        if (c->s[c->i] == 'u') {
            for (int k = 0; k < 4; k++)
                if (++c->i == c->n || !strchr("0123456789abcdefABCDEF", c->s[c->i]) ||
                    c->s[c->i] == '\0')
                    return fail(c, "a bad \\u escape");
        } else if (!strchr("\"\\/bfnrt", c->s[c->i]) || c->s[c->i] == '\0') {
            return fail(c, "a bad escape");
        }
    }
    return fail(c, "an unterminated string");
}

static bool value(scan *c);

/* An object or array from its opening bracket: values (objects: string
 * keys and ':') separated by ',' up to the closing bracket. */
static bool container(scan *c, char close) {
    if (++c->depth > CAIRN_JSON_DEPTH_MAX) return fail(c, "nested too deeply");
    c->i++;
    spaces(c);
    if (c->i < c->n && c->s[c->i] == close) {
        c->i++;
        c->depth--;
        return true;
    }
    for (;;) {
        if (close == '}') {
            if (c->i >= c->n || c->s[c->i] != '"') return fail(c, "expected a string key");
            if (!string(c)) return false;
            spaces(c);
            if (c->i >= c->n || c->s[c->i] != ':') return fail(c, "expected ':'");
            c->i++;
        }
        if (!value(c)) return false;
        spaces(c);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            spaces(c);
            continue;
        }
        if (c->i < c->n && c->s[c->i] == close) break;
        return fail(c, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    c->i++;
    c->depth--;
    return true;
}

static bool value(scan *c) {
    spaces(c);
    if (c->i >= c->n) return fail(c, "expected a value");
    switch (c->s[c->i]) {
    case '{': return container(c, '}');
    case '[': return container(c, ']');
    case '"': return string(c);
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case 'n': return literal(c, "null");
    default:
        if (c->s[c->i] == '-' || is_digit(c)) return number(c);
        return fail(c, "expected a value");
    }
}

jv cairn_json_parse(const char *s, size_t n) {
    scan c = {.s = s, .n = n};
    if (n > (size_t)CAIRN_JSON_TEXT_MAX) {
        snprintf(c.why, sizeof c.why, "longer than %d bytes", CAIRN_JSON_TEXT_MAX);
        return jv_invalid_with_msg(jv_string(c.why));
    }
    bool ok = value(&c);
    if (ok) {
        spaces(&c);
        if (c.i < n) ok = fail(&c, "more after the value");
    }
    if (!ok) return jv_invalid_with_msg(jv_string(c.why));
    return jv_parse_sized(s, (int)n);
}

/* The key at c (a string), compared as written: a key holding an escape is
 * not compared (ambiguous: *escaped set). */
static int key_index(const scan *c, size_t from, size_t to, const char *const *keys, int n_keys,
                     bool *escaped) {
    size_t len = to - from;
    *escaped = memchr(c->s + from, '\\', len) != NULL;
    for (int k = 0; !*escaped && k < n_keys; k++)
        if (strlen(keys[k]) == len && memcmp(keys[k], c->s + from, len) == 0) return k;
    return -1;
}

bool cairn_json_members(const char *s, size_t n, const char *const *keys, int n_keys,
                        cairn_json_span *spans) {
    scan c = {.s = s, .n = n};
    for (int k = 0; k < n_keys; k++) spans[k] = (cairn_json_span){0, 0};
    spaces(&c);
    if (n > (size_t)CAIRN_JSON_TEXT_MAX || c.i >= n || s[c.i] != '{') return false;
    c.i++;
    c.depth = 1;
    spaces(&c);
    bool more = c.i < n && s[c.i] != '}';
    while (more) {
        bool escaped;
        size_t from = c.i + 1;
        if (c.i >= n || s[c.i] != '"' || !string(&c)) return false;
        int k = key_index(&c, from, c.i - 1, keys, n_keys, &escaped);
        spaces(&c);
        if (escaped || c.i >= n || s[c.i] != ':') return false;
        c.i++;
        spaces(&c);
        size_t at = c.i;
        if (!value(&c)) return false;
        if (k >= 0 && spans[k].len > 0) return false;   /* twice: which one counts? */
        if (k >= 0) spans[k] = (cairn_json_span){at, c.i - at};
        spaces(&c);
        more = c.i < n && s[c.i] == ',';
        if (more) {
            c.i++;
            spaces(&c);
        }
    }
    if (c.i >= n || s[c.i] != '}') return false;
    c.i++;
    spaces(&c);
    return c.i == n;
}
