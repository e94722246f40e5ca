#include "common/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether any of the 8 bytes of w must be escaped: one below 0x20, a '"' or
 * a '\\' (each test is exact: a byte of the word is below n, n <= 128). */
static bool word_needs_escape(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
}

void cairn_json_write_string(cairn_buf *out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    cairn_buf_putc(out, '"');
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t w;   /* most text needs no escape: skip it eight bytes at a time */
        if (i + 8 <= len && (memcpy(&w, s + i, 8), !word_needs_escape(w))) {
            i += 7;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        cairn_buf_append(out, s + start, (size_t)(i - start));
        start = i + 1;
        switch (c) {
        case '"': cairn_buf_puts(out, "\\\""); break;
        case '\\': cairn_buf_puts(out, "\\\\"); break;
        case '\n': cairn_buf_puts(out, "\\n"); break;
        case '\t': cairn_buf_puts(out, "\\t"); break;
        case '\r': cairn_buf_puts(out, "\\r"); break;
        default: {
            char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            cairn_buf_append(out, esc, 6);
        }
        }
    }
    cairn_buf_append(out, s + start, (size_t)(len - start));
    cairn_buf_putc(out, '"');
}

static void write_number(cairn_buf *out, double d) {
    char num[40];
    int n;
    if (d == floor(d) && fabs(d) < 9007199254740992.0 && !(d == 0 && signbit(d))) {
        cairn_buf_put_ll(out, (long long)d);   /* integers are the common case */
        return;
    }
    if (isnan(d))
        n = snprintf(num, sizeof num, "null");
    else if (isinf(d))
        n = snprintf(num, sizeof num, d > 0 ? "1.7976931348623157e+308" : "-1.7976931348623157e+308");
    else if (d == 0)
        n = snprintf(num, sizeof num, "-0");
    else
        n = snprintf(num, sizeof num, "%.17g", d);
    cairn_buf_append(out, num, (size_t)n);
}

typedef struct {
    const char *s;
    int len;
    jv key, val;
} key_ref;

int cairn_json_key_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int cmp_keys(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    return cairn_json_key_cmp(x->s, (size_t)x->len, y->s, (size_t)y->len);
}

/* Most objects in events have a handful of keys: insertion sort them. */
static void sort_keys(key_ref *keys, int n) {
    if (n > 16) {
        qsort(keys, (size_t)n, sizeof *keys, cmp_keys);
        return;
    }
    for (int i = 1; i < n; i++) {
        key_ref k = keys[i];
        int j = i;
        for (; j > 0 && cmp_keys(&keys[j - 1], &k) > 0; j--) keys[j] = keys[j - 1];
        keys[j] = k;
    }
}

static void write_object(cairn_buf *out, jv v) {
    key_ref small[16], *keys = small;
    int n = 0, cap = 16;
    jv_object_foreach(v, k, val) {
        if (n == cap) {
            cap *= 2;
            if (keys == small) {
                keys = cairn_malloc((size_t)cap * sizeof *keys);
                memcpy(keys, small, sizeof small);
            } else {
                keys = cairn_realloc(keys, (size_t)cap * sizeof *keys);
            }
        }
        keys[n++] = (key_ref){jv_string_value(k), jv_string_length_bytes(jv_copy(k)), k, val};
    }
    sort_keys(keys, n);
    cairn_buf_putc(out, '{');
    for (int i = 0; i < n; i++) {
        if (i) cairn_buf_putc(out, ',');
        cairn_json_write_string(out, keys[i].s, (size_t)keys[i].len);
        cairn_buf_putc(out, ':');
        cairn_json_write(out, keys[i].val);
        jv_free(keys[i].val);
        jv_free(keys[i].key);
    }
    cairn_buf_putc(out, '}');
    if (keys != small) free(keys);
}

void cairn_json_write(cairn_buf *out, jv v) {
    switch (jv_get_kind(v)) {
    case JV_KIND_NULL: cairn_buf_puts(out, "null"); break;
    case JV_KIND_TRUE: cairn_buf_puts(out, "true"); break;
    case JV_KIND_FALSE: cairn_buf_puts(out, "false"); break;
    case JV_KIND_NUMBER: write_number(out, jv_number_value(v)); break;
    case JV_KIND_STRING:
        cairn_json_write_string(out, jv_string_value(v), (size_t)jv_string_length_bytes(jv_copy(v)));
        break;
    case JV_KIND_ARRAY: {
        cairn_buf_putc(out, '[');
        int n = jv_array_length(jv_copy(v));
        for (int i = 0; i < n; i++) {
            if (i) cairn_buf_putc(out, ',');
            jv item = jv_array_get(jv_copy(v), i);
            cairn_json_write(out, item);
            jv_free(item);
        }
        cairn_buf_putc(out, ']');
        break;
    }
    case JV_KIND_OBJECT: write_object(out, v); break;
    default: cairn_buf_puts(out, "null"); break;   /* invalid: never stored */
    }
}

char *cairn_json_text(jv v) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_buf_reserve(&b, 240);   /* an event's data, mostly, in one allocation */
    cairn_json_write(&b, v);
    return cairn_buf_detach(&b);
}
