/*
 * match.c - the `match` action: a PCRE2 pattern searched in a text.
 *
 * `with`:
 *   text      string, required: the subject (UTF-8)
 *   pattern   PCRE2 pattern, required, compiled with PCRE2_UTF and searched
 *             unanchored (add ^...$ to anchor), as every pattern of a
 *             workflow is; a constant one is checked when the workflow loads
 *   flags     string of letters: i caseless, m multiline (^ and $ at line
 *             breaks), s dotall (. matches \n), x extended (white space and
 *             #-comments ignored); default none
 *   all       true: every match, left to right, instead of the first
 * A field that is null counts as absent.
 *
 * Output: matched (bool); match (the whole matched text), offset (its start,
 * in bytes), groups (the numbered groups 1.. of the first match, each a
 * string, or null when it did not take part) and named (name -> string or
 * null; with a duplicated name, the first group of that name that took
 * part); on no match: match and offset null, groups [] and named {}.  With
 * all, also matches (a list of {match, offset, groups, named}; empty matches
 * count, and the search then moves on one character) and truncated (true
 * when a cap below ended the list early).
 *
 * Limits (kept, or the step fails with the kind shown):
 *   CAIRN_MATCH_TEXT_MAX        bytes of text ("size")
 *   CAIRN_MATCH_PATTERN_MAX     bytes of pattern ("size")
 *   CAIRN_MATCH_MAX             matches listed with all (more: truncated)
 *   CAIRN_MATCH_GROUPS_MAX      groups (the whole match counted) over all
 *                               matches (more: truncated)
 *   CAIRN_MATCH_OUTPUT_MAX      bytes of captured text over all matches, the
 *                               whole match and each group counted once
 *                               (more: truncated; the first match alone over
 *                               it: "size")
 *   CAIRN_MATCH_LIMIT,          PCRE2's match, depth and heap limits ("limit"):
 *   CAIRN_MATCH_DEPTH_LIMIT,    a pattern that backtracks catastrophically
 *   CAIRN_MATCH_HEAP_LIMIT_KIB  (^(a+)+$ on "aaa...b") fails at once
 *   CAIRN_MATCH_TIME_MAX_MS     one attempt's search in total ("limit")
 * PCRE2 10.42 applies its match limit to each start position afresh, so a
 * pattern that costs just under it at every position of a long text would
 * run for hours: hence the time budget.  To check it, and the step's deadline
 * ("timeout") and stop ("cancelled"), during one search, the compiled pattern
 * carries a callout (?C1) at its start (after any leading (*UTF)-style
 * items), which PCRE2 calls at every start position; the checks cost a
 * coarse clock read, and at most CAIRN_MATCH_LIMIT steps run between two.
 * (Should a pattern not compile with the callout, it runs without, bounded
 * per position only.)  That budget is also why the action runs on a worker
 * thread, not inline: a search of a long text legitimately takes a good
 * fraction of a second, which the orchestrator must not spend.
 *
 * Failures: "schema" (bad `with`, a pattern that does not compile, with
 * PCRE2's message and offset), "size", "limit", "timeout", "cancelled",
 * "internal" (an unexpected PCRE2 error, named).
 *
 * Patterns are compiled once: prepare (orchestrator thread) looks them up in
 * a process-wide cache of CAIRN_MATCH_CACHE_MAX compiled patterns keyed by
 * pattern and flags, guarded by a mutex (several engines may share the
 * process), the least recently used evicted; each job takes its own copy of
 * the code (pcre2_code_copy, no recompiling), so eviction never frees what a
 * worker is using.  The job holds plain C data only; finish builds the jv.
 * PCRE2 allocates through cairn_malloc (mem.h: out of memory aborts).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions/action.h"
#include "actions/with.h"
#include "common/clock.h"
#include "common/mem.h"

#define CAIRN_MATCH_TEXT_MAX (4u << 20)          /* 4 MiB */
#define CAIRN_MATCH_PATTERN_MAX (64u << 10)      /* 64 KiB */
#define CAIRN_MATCH_MAX 10000
#define CAIRN_MATCH_GROUPS_MAX 1000000
#define CAIRN_MATCH_OUTPUT_MAX (8u << 20)        /* 8 MiB: twice the text */
#define CAIRN_MATCH_LIMIT 1000000                /* backtracking steps per start position */
#define CAIRN_MATCH_DEPTH_LIMIT 250000           /* nested backtracking points */
#define CAIRN_MATCH_HEAP_LIMIT_KIB (64u * 1024)  /* memory for backtracking, KiB */
#define CAIRN_MATCH_TIME_MAX_MS 5000
#define CAIRN_MATCH_CACHE_MAX 256

#define MATCH_OPTIONS PCRE2_UTF                  /* as dsl/ compiles every pattern */
#define MATCH_CHECKPOINT "(?C1)"
#define MATCH_CHECKPOINT_LEN (sizeof MATCH_CHECKPOINT - 1)

static const cairn_field_sig match_fields[] = {
    {"text", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"pattern", CAIRN_FIELD_PATTERN, CAIRN_FIELD_REQUIRED},
    {"flags", CAIRN_FIELD_STRING, 0},
    {"all", CAIRN_FIELD_BOOL, 0},
    {NULL, 0, 0},
};

static const cairn_action_sig match_sig = {.name = "match", .fields = match_fields};

/* ---- PCRE2 memory through mem.h ----------------------------------------- */

static void *pc_malloc(PCRE2_SIZE n, void *data) {
    (void)data;
    return cairn_malloc(n);
}

static void pc_free(void *p, void *data) {
    (void)data;
    free(p);
}

static pcre2_general_context *pc_general;
static pthread_once_t pc_once = PTHREAD_ONCE_INIT;

static void pc_init(void) {
    pc_general = pcre2_general_context_create(pc_malloc, pc_free, NULL);
    if (pc_general == NULL) cairn_malloc((size_t)-1);   /* the OOM policy: abort */
}

static pcre2_general_context *pc_context(void) {
    pthread_once(&pc_once, pc_init);
    return pc_general;
}

/* ---- compiling, with the checkpoint callout ----------------------------- */

/* Bytes taken by the items that must open a pattern: (*UTF), (*CRLF),
 * (*LIMIT_MATCH=100)...  (Verbs of the same shape, such as (*COMMIT), are
 * passed over too; the callout may stand after them as well.) */
static size_t leading_items(const char *p, size_t len) {
    size_t at = 0;
    while (at + 2 < len && p[at] == '(' && p[at + 1] == '*') {
        size_t i = at + 2;
        while (i < len && ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '_')) i++;
        if (i < len && p[i] == '=')
            for (i++; i < len && p[i] >= '0' && p[i] <= '9';) i++;
        if (i >= len || p[i] != ')') break;
        at = i + 1;
    }
    return at;
}

static pcre2_code *compile_raw(const char *p, size_t len, uint32_t options, int *code,
                               PCRE2_SIZE *off) {
    pcre2_compile_context *cc = pcre2_compile_context_create(pc_context());
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, len, options, code, off, cc);
    pcre2_compile_context_free(cc);
    return re;
}

/* The pattern with the checkpoint inserted; else as written; else NULL with
 * f set from the pattern as written (so offsets are the author's). */
static pcre2_code *compile(const char *p, size_t len, uint32_t options, cairn_fail *f) {
    size_t head = leading_items(p, len);
    char *inst = cairn_malloc(len + MATCH_CHECKPOINT_LEN);
    memcpy(inst, p, head);
    memcpy(inst + head, MATCH_CHECKPOINT, MATCH_CHECKPOINT_LEN);
    memcpy(inst + head + MATCH_CHECKPOINT_LEN, p + head, len - head);
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = compile_raw(inst, len + MATCH_CHECKPOINT_LEN, options, &code, &off);
    free(inst);
    if (re == NULL) re = compile_raw(p, len, options, &code, &off);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        cairn_fail_set(f, "schema", "match: invalid PCRE2 pattern at offset %zu: %s",
                       (size_t)off, (const char *)msg);
    }
    return re;
}

/* ---- the cache of compiled patterns ------------------------------------- */

typedef struct cache_entry {
    char *pattern;                     /* len bytes as written (may hold NUL) */
    size_t len;
    uint32_t options;
    pcre2_code *code;
    uint64_t used;                     /* tick of the last use */
} cache_entry;

static struct {
    pthread_mutex_t lock;
    cache_entry e[CAIRN_MATCH_CACHE_MAX];
    int n;
    uint64_t tick;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Index of the entry, or -1.  Lock held. */
static int cache_find(const char *p, size_t len, uint32_t options) {
    for (int i = 0; i < cache.n; i++) {
        const cache_entry *e = &cache.e[i];
        if (e->options == options && e->len == len && memcmp(e->pattern, p, len) == 0)
            return i;
    }
    return -1;
}

/* Add re (the cache owns it), evicting the least recently used when full.
 * Lock held. */
static void cache_put(const char *p, size_t len, uint32_t options, pcre2_code *re) {
    int slot = cache.n;
    if (cache.n == CAIRN_MATCH_CACHE_MAX) {
        slot = 0;
        for (int i = 1; i < cache.n; i++)
            if (cache.e[i].used < cache.e[slot].used) slot = i;
        free(cache.e[slot].pattern);
        pcre2_code_free(cache.e[slot].code);
    } else {
        cache.n++;
    }
    cache.e[slot] = (cache_entry){cairn_strndup(p, len), len, options, re, ++cache.tick};
}

/* The compiled pattern for the job to own (free with pcre2_code_free), or
 * NULL with f set. */
static pcre2_code *code_for(const char *p, size_t len, uint32_t options, cairn_fail *f) {
    pcre2_code *own = NULL;
    pthread_mutex_lock(&cache.lock);
    int i = cache_find(p, len, options);
    if (i >= 0) {
        cache.e[i].used = ++cache.tick;
        own = pcre2_code_copy(cache.e[i].code);
    }
    pthread_mutex_unlock(&cache.lock);
    if (i >= 0) return own;
    pcre2_code *re = compile(p, len, options, f);    /* outside the lock: may be slow */
    if (re == NULL) return NULL;
    pthread_mutex_lock(&cache.lock);
    if (cache_find(p, len, options) < 0) {           /* not added meanwhile */
        cache_put(p, len, options, re);
        re = pcre2_code_copy(re);
    }
    pthread_mutex_unlock(&cache.lock);
    return re;
}

/* ---- the job ------------------------------------------------------------ */

typedef struct match_job {
    char *text;
    size_t text_len;
    pcre2_code *code;                  /* owned copy */
    uint32_t ncap;                     /* capture groups of the pattern */
    bool all;
    /* result, filled by execute */
    PCRE2_SIZE *ov;                    /* (ncap + 1) start/end pairs per kept match */
    size_t n_matches, ov_cap;          /* ov_cap in matches */
    size_t n_groups, n_bytes;          /* toward the caps */
    bool truncated;
    cairn_fail fail;                   /* kind "" unless execute failed */
} match_job;

static void job_free(match_job *j) {
    if (j == NULL) return;
    free(j->text);
    pcre2_code_free(j->code);
    free(j->ov);
    free(j);
}

/* ---- prepare: read `with` ----------------------------------------------- */

/* with[name], or jv_invalid() when absent or null. */
/* with[name], a required string of at most max bytes: a copy in *out. */
static int read_text(jv with, const char *name, size_t max, char **out, size_t *len,
                     cairn_fail *f) {
    jv v = cairn_with_get(with, name);
    jv_kind k = jv_get_kind(v);
    size_t n = k == JV_KIND_STRING ? (size_t)jv_string_length_bytes(jv_copy(v)) : 0;
    int rc = 0;
    if (k == JV_KIND_INVALID)
        rc = cairn_fail_set(f, "schema", "match: %s is required", name);
    else if (k != JV_KIND_STRING)
        rc = cairn_fail_set(f, "schema", "match: %s must be a string, not %s", name,
                            jv_kind_name(k));
    else if (n > max)
        rc = cairn_fail_set(f, "size", "match: %s is %zu bytes, more than the %zu allowed",
                            name, n, max);
    else {
        *len = n;
        *out = cairn_strndup(jv_string_value(v), n);
    }
    jv_free(v);
    return rc;
}

/* `flags` as PCRE2 options. */
static int read_flags(jv with, uint32_t *options, cairn_fail *f) {
    static const char letters[] = "imsx";
    static const uint32_t bits[] = {PCRE2_CASELESS, PCRE2_MULTILINE, PCRE2_DOTALL,
                                    PCRE2_EXTENDED};
    jv v = cairn_with_get(with, "flags");
    jv_kind k = jv_get_kind(v);
    int rc = 0, n = k == JV_KIND_STRING ? jv_string_length_bytes(jv_copy(v)) : 0;
    *options = MATCH_OPTIONS;
    if (k != JV_KIND_STRING && k != JV_KIND_INVALID)
        rc = cairn_fail_set(f, "schema", "match: flags must be a string such as \"im\", not %s",
                            jv_kind_name(k));
    for (int i = 0; i < n && rc == 0; i++) {
        const char *at = memchr(letters, jv_string_value(v)[i], sizeof letters - 1);
        if (at == NULL)
            rc = cairn_fail_set(f, "schema", "match: flags may hold only the letters "
                                "i, m, s and x, not '%.32s'", jv_string_value(v));
        else
            *options |= bits[at - letters];
    }
    jv_free(v);
    return rc;
}

static int read_all(jv with, bool *all, cairn_fail *f) {
    jv v = cairn_with_get(with, "all");
    jv_kind k = jv_get_kind(v);
    int rc = 0;
    *all = k == JV_KIND_TRUE;
    if (k != JV_KIND_TRUE && k != JV_KIND_FALSE && k != JV_KIND_INVALID)
        rc = cairn_fail_set(f, "schema", "match: all must be true or false, not %s",
                            jv_kind_name(k));
    jv_free(v);
    return rc;
}

static int match_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    (void)info;
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "match: with must be a map");
    match_job *j = cairn_calloc(1, sizeof *j);
    char *pattern = NULL;
    size_t pattern_len = 0;
    uint32_t options = 0;
    int rc = cairn_with_keys(with, &match_sig, f);
    if (rc == 0) rc = read_text(with, "text", CAIRN_MATCH_TEXT_MAX, &j->text, &j->text_len, f);
    if (rc == 0)
        rc = read_text(with, "pattern", CAIRN_MATCH_PATTERN_MAX, &pattern, &pattern_len, f);
    if (rc == 0) rc = read_flags(with, &options, f);
    if (rc == 0) rc = read_all(with, &j->all, f);
    if (rc == 0 && (j->code = code_for(pattern, pattern_len, options, f)) == NULL) rc = -1;
    if (rc == 0) pcre2_pattern_info(j->code, PCRE2_INFO_CAPTURECOUNT, &j->ncap);
    free(pattern);
    if (rc != 0) {
        job_free(j);
        return -1;
    }
    *job = j;
    return 0;
}

/* ---- execute: search, keep offsets -------------------------------------- */

/* What the checkpoint callout reads, and why it stopped the search. */
typedef struct match_watch {
    const cairn_stop *stop;
    int64_t deadline_ms;               /* 0: none */
    int64_t budget_end_ms;             /* start + CAIRN_MATCH_TIME_MAX_MS */
    const char *why;                   /* "cancelled", "timeout", "limit" once stopped */
} match_watch;

/* CLOCK_MONOTONIC to a tick or so (the same clock as cairn_now_ms), read
 * cheaply since it is read at every start position. */
static int64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool watch_expired(match_watch *w) {
    int64_t now = coarse_ms();
    if (cairn_stop_requested(w->stop))
        w->why = "cancelled";
    else if (w->deadline_ms > 0 && now >= w->deadline_ms)
        w->why = "timeout";
    else if (now >= w->budget_end_ms)
        w->why = "limit";
    return w->why != NULL;
}

static int checkpoint(pcre2_callout_block *cb, void *data) {
    (void)cb;
    return watch_expired(data) ? PCRE2_ERROR_CALLOUT : 0;
}

/* Keep the match in ov.  Returns false when the search must end: a cap is
 * reached (truncated), or the first match alone is over one (failed). */
static bool keep(match_job *j, const PCRE2_SIZE *ov) {
    size_t pairs = (size_t)j->ncap + 1, bytes = 0;
    for (size_t i = 0; i < pairs; i++)
        if (ov[2 * i] != PCRE2_UNSET && ov[2 * i + 1] > ov[2 * i])
            bytes += ov[2 * i + 1] - ov[2 * i];
    if (j->n_matches > 0 && (j->n_matches == CAIRN_MATCH_MAX ||
                             j->n_groups + pairs > CAIRN_MATCH_GROUPS_MAX ||
                             j->n_bytes + bytes > CAIRN_MATCH_OUTPUT_MAX)) {
        j->truncated = true;
        return false;
    }
    if (bytes > CAIRN_MATCH_OUTPUT_MAX) {
        cairn_fail_set(&j->fail, "size", "match: the match and its groups hold %zu bytes, "
                       "more than the %u allowed", bytes, CAIRN_MATCH_OUTPUT_MAX);
        return false;
    }
    if (j->n_matches == j->ov_cap) {
        j->ov_cap = j->ov_cap ? 2 * j->ov_cap : 4;
        j->ov = cairn_realloc(j->ov, j->ov_cap * pairs * 2 * sizeof *j->ov);
    }
    memcpy(j->ov + j->n_matches * pairs * 2, ov, pairs * 2 * sizeof *ov);
    j->n_matches++;
    j->n_groups += pairs;
    j->n_bytes += bytes;
    return true;
}

/* The start of the character after the one at pos (a CR LF pair is one
 * when the pattern's newline convention includes it). */
static PCRE2_SIZE next_char(const match_job *j, PCRE2_SIZE pos, bool crlf) {
    const unsigned char *s = (const unsigned char *)j->text;
    if (crlf && pos + 1 < j->text_len && s[pos] == '\r' && s[pos + 1] == '\n') return pos + 2;
    for (pos++; pos < j->text_len && (s[pos] & 0xc0) == 0x80;) pos++;
    return pos;
}

static bool crlf_newline(const pcre2_code *re) {
    uint32_t nl = 0;
    pcre2_pattern_info(re, PCRE2_INFO_NEWLINE, &nl);
    return nl == PCRE2_NEWLINE_ANY || nl == PCRE2_NEWLINE_CRLF || nl == PCRE2_NEWLINE_ANYCRLF;
}

/* Search from the start, keeping each match, until no more (or the first
 * one without `all`).  Returns 0 or the PCRE2 error that ended it.  After an
 * empty match the next try at the same place must not be empty (as Perl's
 * //g); failing that, the search moves on one character. */
static int search(match_job *j, pcre2_match_data *md, pcre2_match_context *mc, match_watch *w) {
    PCRE2_SIZE start = 0;
    uint32_t retry = 0, utf_checked = 0;
    bool crlf = crlf_newline(j->code);
    for (;;) {
        int rc = pcre2_match(j->code, (PCRE2_SPTR)j->text, j->text_len, start,
                             retry | utf_checked, md, mc);
        utf_checked = PCRE2_NO_UTF_CHECK;        /* the first call checked the whole text */
        if (rc == PCRE2_ERROR_NOMATCH && retry) {
            start = next_char(j, start, crlf);
            retry = 0;
            continue;
        }
        if (rc < 0) return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (!keep(j, ov) || !j->all) return 0;
        if (watch_expired(w)) return PCRE2_ERROR_CALLOUT;
        PCRE2_SIZE sc = pcre2_get_startchar(md);
        start = ov[1];
        if (ov[0] == ov[1] && ov[1] == j->text_len) return 0;
        if (ov[0] == ov[1])
            retry = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
        else if (start <= sc)                    /* ended before it began (\K) */
            start = sc < j->text_len ? next_char(j, sc, crlf) : j->text_len + 1;
        if (start > j->text_len) return 0;
    }
}

/* Set j->fail for the PCRE2 error rc that ended the search. */
static void explain(match_job *j, int rc, const match_watch *w, pcre2_match_data *md) {
    cairn_fail *f = &j->fail;
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    if (rc == PCRE2_ERROR_CALLOUT && w->why && strcmp(w->why, "cancelled") == 0)
        cairn_fail_set(f, "cancelled", "match: stop requested");
    else if (rc == PCRE2_ERROR_CALLOUT && w->why && strcmp(w->why, "timeout") == 0)
        cairn_fail_set(f, "timeout", "match: deadline reached while searching");
    else if (rc == PCRE2_ERROR_CALLOUT && w->why)
        cairn_fail_set(f, "limit", "match: searching took more than %d ms",
                       CAIRN_MATCH_TIME_MAX_MS);
    else if (rc == PCRE2_ERROR_MATCHLIMIT)
        cairn_fail_set(f, "limit", "match: the pattern backtracks too much: more than %d steps "
                       "at one position of the text (PCRE2 match limit)", CAIRN_MATCH_LIMIT);
    else if (rc == PCRE2_ERROR_DEPTHLIMIT)
        cairn_fail_set(f, "limit", "match: the pattern nests more than %d backtracking points "
                       "(PCRE2 depth limit)", CAIRN_MATCH_DEPTH_LIMIT);
    else if (rc == PCRE2_ERROR_HEAPLIMIT)
        cairn_fail_set(f, "limit", "match: backtracking needs more than %u KiB "
                       "(PCRE2 heap limit)", CAIRN_MATCH_HEAP_LIMIT_KIB);
    else if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21)
        cairn_fail_set(f, "schema", "match: text is not valid UTF-8 at byte %zu: %s",
                       (size_t)pcre2_get_startchar(md), (const char *)msg);
    else
        cairn_fail_set(f, "internal", "match: PCRE2 error %d: %s", rc, (const char *)msg);
}

static void match_execute(void *job, const cairn_attempt_info *info) {
    match_job *j = job;
    match_watch w = {info->stop, info->deadline_ms, cairn_now_ms() + CAIRN_MATCH_TIME_MAX_MS,
                     NULL};
    if (watch_expired(&w)) {
        explain(j, PCRE2_ERROR_CALLOUT, &w, NULL);
        return;
    }
    pcre2_match_context *mc = pcre2_match_context_create(pc_context());
    pcre2_set_match_limit(mc, CAIRN_MATCH_LIMIT);
    pcre2_set_depth_limit(mc, CAIRN_MATCH_DEPTH_LIMIT);
    pcre2_set_heap_limit(mc, CAIRN_MATCH_HEAP_LIMIT_KIB);
    pcre2_set_callout(mc, checkpoint, &w);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(j->code, pc_context());
    int rc = search(j, md, mc, &w);
    if (rc < 0) explain(j, rc, &w, md);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
}

/* ---- finish: the output ------------------------------------------------- */

static jv group_jv(const match_job *j, const PCRE2_SIZE *pair) {
    if (pair[0] == PCRE2_UNSET) return jv_null();
    PCRE2_SIZE from = pair[0] < pair[1] ? pair[0] : pair[1];
    return jv_string_sized(j->text + from, (int)(pair[1] - from));
}

/* name -> the first group of that name that took part (else null). */
static jv named_jv(const match_job *j, jv groups) {
    uint32_t count = 0, size = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(j->code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(j->code, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(j->code, PCRE2_INFO_NAMETABLE, &table);
    jv named = jv_object();
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR e = table + (size_t)i * size;
        int n = (e[0] << 8) | e[1];
        jv name = jv_string((const char *)e + 2);
        jv old = jv_object_get(jv_copy(named), jv_copy(name));
        if (jv_get_kind(old) == JV_KIND_STRING)
            jv_free(name);
        else
            named = jv_object_set(named, name, jv_array_get(jv_copy(groups), n - 1));
        jv_free(old);
    }
    return named;
}

/* {match, offset, groups, named} of kept match k. */
static jv one_jv(const match_job *j, size_t k) {
    size_t pairs = (size_t)j->ncap + 1;
    const PCRE2_SIZE *ov = j->ov + k * pairs * 2;
    jv groups = jv_array();
    for (size_t i = 1; i < pairs; i++) groups = jv_array_append(groups, group_jv(j, ov + 2 * i));
    jv m = jv_object_set(jv_object(), jv_string("match"), group_jv(j, ov));
    m = jv_object_set(m, jv_string("offset"), jv_number((double)ov[0]));
    m = jv_object_set(m, jv_string("named"), named_jv(j, groups));
    return jv_object_set(m, jv_string("groups"), groups);
}

static jv output_jv(const match_job *j) {
    jv matches = jv_array();
    for (size_t k = 0; k < j->n_matches; k++) matches = jv_array_append(matches, one_jv(j, k));
    jv out = j->n_matches ? jv_array_get(jv_copy(matches), 0)
                          : jv_parse("{\"match\":null,\"offset\":null,\"groups\":[],\"named\":{}}");
    out = jv_object_set(out, jv_string("matched"), jv_bool(j->n_matches > 0));
    if (!j->all) {
        jv_free(matches);
        return out;
    }
    out = jv_object_set(out, jv_string("matches"), matches);
    return jv_object_set(out, jv_string("truncated"), jv_bool(j->truncated));
}

static int match_finish(void *job, jv *output, cairn_fail *f) {
    match_job *j = job;
    int rc = 0;
    if (j->fail.kind[0])
        rc = cairn_fail_set(f, j->fail.kind, "%s", j->fail.message);
    else
        *output = output_jv(j);
    job_free(j);
    return rc;
}

static void match_discard(void *job) { job_free(job); }

const cairn_action cairn_action_match = {
    .sig = &match_sig,
    .flags = 0,
    .prepare = match_prepare,
    .execute = match_execute,
    .finish = match_finish,
    .discard = match_discard,
};
