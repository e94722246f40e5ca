/*
 * secrets_mask.c - replacing secrets, in the spellings listed in secrets.h,
 * by "***" in every value the engine stores.
 *
 * Each secret's spellings are computed once, when the set is loaded
 * (cairn__secrets_spell), and kept as a flat list of needles.  Masking a
 * string then costs one memmem per needle over it, and one more pass over a
 * percent-decoded copy when the string holds a '%': linear in the string for
 * a given secret set, never a scan per position and secret.  Every hit is
 * found in the original text first and replaced afterwards, so overlapping
 * spellings (a value and its base64 core) merge into one "***".
 */
#include "engine/secrets.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/mem.h"

typedef struct {
    char *p;
    size_t len;
} needle;

struct cairn_secret_spellings {
    int n, cap;
    needle *v;
};

/* ---- the spellings of one value -------------------------------------------- */

/* Adds p[0..len), taking p; duplicates go when the list is sorted. */
static void add_taken(struct cairn_secret_spellings *sp, char *p, size_t len) {
    if (sp->n == sp->cap) {
        sp->cap = sp->cap ? 2 * sp->cap : 16;
        sp->v = cairn_realloc(sp->v, (size_t)sp->cap * sizeof *sp->v);
    }
    sp->v[sp->n++] = (needle){p, len};
}

/* Adds the needle, and its form-encoded twin (space as '+') when it has a space. */
static void add(struct cairn_secret_spellings *sp, char *p, size_t len) {
    if (memchr(p, ' ', len)) {
        char *plus = cairn_strndup(p, len);
        for (size_t i = 0; i < len; i++)
            if (plus[i] == ' ') plus[i] = '+';
        add_taken(sp, plus, len);
    }
    add_taken(sp, p, len);
}

static void add_case(struct cairn_secret_spellings *sp, const char *v, size_t len, int upper) {
    char *c = cairn_strndup(v, len);
    for (size_t i = 0; i < len; i++)   /* ASCII only, as jq's ascii_upcase/downcase */
        if (c[i] >= 'a' && c[i] <= 'z' && upper) c[i] = (char)(c[i] - 'a' + 'A');
        else if (c[i] >= 'A' && c[i] <= 'Z' && !upper) c[i] = (char)(c[i] - 'A' + 'a');
    add(sp, c, len);
}

static void add_hex(struct cairn_secret_spellings *sp, const char *v, size_t len,
                    const char *digits) {
    char *h = cairn_malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        h[2 * i] = digits[(unsigned char)v[i] >> 4];
        h[2 * i + 1] = digits[(unsigned char)v[i] & 15];
    }
    h[2 * len] = '\0';
    add(sp, h, 2 * len);
}

/* The body (no quotes) of the value as a JSON string: as Cairn writes it
 * (common/json.h) and as jq's tojson does (\b, \f and DEL differ). */
static void add_json(struct cairn_secret_spellings *sp, const char *v, size_t len) {
    cairn_buf b = CAIRN_BUF_INIT;
    cairn_json_write_string(&b, v, len);
    add(sp, cairn_strndup(b.data + 1, b.len - 2), b.len - 2);
    OPENSSL_cleanse(b.data, b.len);
    cairn_buf_free(&b);
    jv text = jv_dump_string(jv_string_sized(v, (int)len), 0);
    size_t n = (size_t)jv_string_length_bytes(jv_copy(text));
    add(sp, cairn_strndup(jv_string_value(text) + 1, n - 2), n - 2);
    jv_free(text);
}

/* Base64 of v[0..len), standard alphabet or URL-safe, without padding. */
static void add_base64(struct cairn_secret_spellings *sp, const unsigned char *v, size_t len,
                       int url) {
    char *b = cairn_malloc(4 * ((len + 2) / 3) + 1);
    size_t n = (size_t)EVP_EncodeBlock((unsigned char *)b, v, (int)len);
    while (n > 0 && b[n - 1] == '=') b[--n] = '\0';
    for (size_t i = 0; url && i < n; i++)
        b[i] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
    add(sp, b, n);
}

/* Base64 of the value on its own, and of the whole 3-byte groups of it that
 * encode the same wherever it sits in a longer string: starting 0, 2 or 1
 * bytes in (for a value at offset 0, 1 or 2 mod 3 of what was encoded). */
_Static_assert(CAIRN_SECRET_SPELLING_MIN >= 3, "add_base64_all skips up to 2 bytes");

static void add_base64_all(struct cairn_secret_spellings *sp, const char *v, size_t len) {
    const unsigned char *u = (const unsigned char *)v;
    for (int url = 0; url <= 1; url++) {
        add_base64(sp, u, len, url);
        for (size_t skip = 0; skip < 3; skip++)
            add_base64(sp, u + skip, (len - skip) / 3 * 3, url);
    }
}

static void spell_one(struct cairn_secret_spellings *sp, const char *v, size_t len) {
    if (len == 0) return;
    add(sp, cairn_strndup(v, len), len);
    if (len < CAIRN_SECRET_SPELLING_MIN) return;   /* see secrets.h: too short to guess at */
    add_case(sp, v, len, 1);
    add_case(sp, v, len, 0);
    add_json(sp, v, len);
    add_hex(sp, v, len, "0123456789abcdef");
    add_hex(sp, v, len, "0123456789ABCDEF");
    add_base64_all(sp, v, len);
}

static void needle_free(needle *k) {
    OPENSSL_cleanse(k->p, k->len);
    free(k->p);
}

/* Shortest first (see find_all), equal ones side by side. */
static int by_length(const void *a, const void *b) {
    const needle *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->p, y->p, x->len);
}

/* Sorts the needles and drops empty and repeated ones (a value whose
 * spellings coincide: no letters, nothing to escape). */
static void sort_unique(struct cairn_secret_spellings *sp) {
    if (sp->n == 0) return;
    qsort(sp->v, (size_t)sp->n, sizeof *sp->v, by_length);
    int kept = 0;
    for (int i = 0; i < sp->n; i++) {
        if (sp->v[i].len == 0 || (kept > 0 && by_length(&sp->v[kept - 1], &sp->v[i]) == 0))
            needle_free(&sp->v[i]);
        else
            sp->v[kept++] = sp->v[i];
    }
    sp->n = kept;
}

void cairn__secrets_spell(cairn_secrets *s) {
    cairn__secrets_spellings_free(s->spellings);
    s->spellings = cairn_calloc(1, sizeof *s->spellings);
    for (int i = 0; i < s->count; i++) spell_one(s->spellings, s->values[i], s->lens[i]);
    sort_unique(s->spellings);
}

void cairn__secrets_spellings_free(struct cairn_secret_spellings *sp) {
    if (sp == NULL) return;
    for (int i = 0; i < sp->n; i++) needle_free(&sp->v[i]);
    free(sp->v);
    free(sp);
}

/* ---- finding them -------------------------------------------------------------- */

/* Byte ranges [at, end) of the text to replace. */
typedef struct {
    size_t at, end;
} span;

typedef struct {
    span *v;
    int n, cap;
} spans;

static void spans_add(spans *h, size_t at, size_t end) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 8;
        h->v = cairn_realloc(h->v, (size_t)h->cap * sizeof *h->v);
    }
    h->v[h->n++] = (span){at, end};
}

/* Every occurrence of every needle in text[0..n), overlapping ones included,
 * added to out; with out NULL, stops at the first.  Returns how many were
 * found.  origin (when not NULL) maps a position of text to one of the
 * string masked, origin[n] being that string's length.  Needles are sorted
 * by length, so a short string (most stored values) is passed over after a
 * comparison or two. */
static int find_all(const struct cairn_secret_spellings *sp, const char *text, size_t n,
                    const size_t *origin, spans *out) {
    int found = 0;
    for (int i = 0; i < sp->n && sp->v[i].len <= n; i++) {
        const needle *k = &sp->v[i];
        const char *p = text, *end = text + n, *q;
        while ((size_t)(end - p) >= k->len && (q = memmem(p, (size_t)(end - p), k->p, k->len))) {
            size_t at = (size_t)(q - text);
            found++;
            if (out == NULL) return found;
            if (origin) spans_add(out, origin[at], origin[at + k->len]);
            else spans_add(out, at, at + k->len);
            p = q + 1;
        }
    }
    return found;
}

static int hexdigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The text with every %XX (either case) decoded, and where each decoded
 * byte came from; a '%' not followed by two hex digits stays as it is. */
static char *percent_decode(const char *text, size_t n, size_t *dlen, size_t **origin) {
    char *d = cairn_malloc(n + 1);
    size_t *o = cairn_malloc((n + 1) * sizeof *o), j = 0;
    for (size_t i = 0; i < n; j++) {
        int hi = text[i] == '%' && i + 2 < n ? hexdigit(text[i + 1]) : -1;
        int lo = hi >= 0 ? hexdigit(text[i + 2]) : -1;
        o[j] = i;
        if (lo >= 0) {
            d[j] = (char)(hi << 4 | lo);
            i += 3;
        } else {
            d[j] = text[i++];
        }
    }
    o[j] = n;
    *dlen = j;
    *origin = o;
    return d;
}

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* text with every span (sorted, overlapping ones merged) replaced by ***. */
static jv replace_spans(const char *text, size_t n, spans *h) {
    qsort(h->v, (size_t)h->n, sizeof *h->v, span_cmp);
    cairn_buf b = CAIRN_BUF_INIT;
    size_t done = 0;
    for (int i = 0; i < h->n;) {
        size_t at = h->v[i].at, end = h->v[i].end;
        for (i++; i < h->n && h->v[i].at < end; i++)
            if (h->v[i].end > end) end = h->v[i].end;
        cairn_buf_append(&b, text + done, at - done);
        cairn_buf_puts(&b, "***");
        done = end;
    }
    cairn_buf_append(&b, text + done, n - done);
    jv out = jv_string_sized(b.data, (int)b.len);
    cairn_buf_free(&b);
    return out;
}

static char *percent_decode(const char *text, size_t n, size_t *dlen, size_t **origin);

/* find_all over text, and over it percent-decoded when it holds a '%' (the
 * URL-encoded spellings, whichever characters the encoder escaped). */
static int search(const struct cairn_secret_spellings *sp, const char *text, size_t n,
                  spans *out) {
    int found = find_all(sp, text, n, NULL, out);
    if ((found && out == NULL) || n < sp->v[0].len || !memchr(text, '%', n)) return found;
    size_t dlen, *origin;
    char *d = percent_decode(text, n, &dlen, &origin);
    found += find_all(sp, d, dlen, origin, out);
    OPENSSL_cleanse(d, dlen);
    free(d);
    free(origin);
    return found;
}

static int search_jv(const struct cairn_secret_spellings *sp, jv str, spans *out) {
    return search(sp, jv_string_value(str), (size_t)jv_string_length_bytes(jv_copy(str)), out);
}

/* Whether v (borrowed) holds a spelling anywhere: most values hold none and
 * are then stored as they are, not rebuilt. */
static bool holds_any(jv v, const struct cairn_secret_spellings *sp) {
    bool hit = false;
    switch (jv_get_kind(v)) {
    case JV_KIND_STRING: return search_jv(sp, v, NULL) > 0;
    case JV_KIND_ARRAY:
        jv_array_foreach(v, i, x) {
            hit = hit || holds_any(x, sp);
            jv_free(x);
        }
        return hit;
    case JV_KIND_OBJECT:
        jv_object_foreach(v, k, x) {
            hit = hit || search_jv(sp, k, NULL) > 0 || holds_any(x, sp);
            jv_free(k);
            jv_free(x);
        }
        return hit;
    default: return false;
    }
}

/* str (consumed) with every spelling of every secret replaced by ***. */
static jv mask_string(jv str, const struct cairn_secret_spellings *sp) {
    spans hits = {0};
    if (search_jv(sp, str, &hits) == 0) return str;
    jv out = replace_spans(jv_string_value(str), (size_t)jv_string_length_bytes(jv_copy(str)),
                           &hits);
    free(hits.v);
    jv_free(str);
    return out;
}

static jv mask(jv v, const struct cairn_secret_spellings *sp) {
    switch (jv_get_kind(v)) {
    case JV_KIND_STRING: return mask_string(v, sp);
    case JV_KIND_ARRAY: {
        int n = jv_array_length(jv_copy(v));
        for (int i = 0; i < n; i++) v = jv_array_set(v, i, mask(jv_array_get(jv_copy(v), i), sp));
        return v;
    }
    case JV_KIND_OBJECT: {
        jv out = jv_object();
        jv_object_foreach(v, k, val) out = jv_object_set(out, mask_string(k, sp), mask(val, sp));
        jv_free(v);
        return out;
    }
    default: return v;
    }
}

jv cairn_secrets_mask(jv v, const cairn_secrets *sec) {
    if (sec == NULL || sec->spellings == NULL || sec->spellings->n == 0) return v;
    return holds_any(v, sec->spellings) ? mask(v, sec->spellings) : v;
}
