/*
 * clog.c - the commit log (format and contract: clog.h).
 */
#include "engine/clog.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/owner.h"

#define HEADER_MAGIC "CAIRNCL2"
#define OLD_HEADER_MAGIC "CAIRNCL1"  /* before logs named their journal */
#define OLD_RECORD_MAGIC 0x31524c43u /* "CLR1" */
#define ID_LEN (CAIRN_JOURNAL_ID_HEX / 2)
#define HEADER_OWNER 32              /* where the owner's length is, after magic, generation, id */
#define RECORD_HEAD 32               /* magic, length, generation, synced, count, checksum */
#define OWNER_MAX 255
#define NO_STRING 0xffffffffu

struct cairn_clog {
    int fd;
    char *path;
    char *owner;                 /* this holder: the next reset's writer */
    char writer[OWNER_MAX + 1];  /* the header's: who wrote the records */
    uint64_t generation;
    unsigned char id[ID_LEN];    /* the journal's, as the header names it; zeros: none */
    bool rebind;                 /* the header names no journal or another: rewrite it */
    bool restart;                /* damage was let go: start over, even for a reader */
    int64_t size;                /* of the file */
    _Atomic int64_t end;         /* past the last record */
    _Atomic int64_t synced;      /* the records before this offset are durable */
    int64_t damage;              /* damage proven past the last record: its offset, or -1 */
    int64_t last;                /* the last whole record of this generation past end, or -1 */
    cairn_buf out;               /* the record being appended */
    unsigned char *in;           /* records read back (apply) */
    size_t in_cap;
};

/* ---- CRC-32C ------------------------------------------------------------ */

/* Every record is checksummed when written and again when applied: one byte
 * at a time through the table, that was about a tenth of the engine's CPU
 * in W2.  x86-64 CPUs with SSE4.2 compute CRC-32C (this very polynomial)
 * eight bytes an instruction; others use the table. */

static uint32_t crc_table[256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_bytes(uint32_t crc, const unsigned char *p, size_t n) {
    while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p,
                                                            size_t n) {
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);   /* little-endian, as the instruction reads it */
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n > 0; n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t cairn_clog_crc32c(uint32_t crc, const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc_hw) return ~crc_sse42(~crc, p, n);
#endif
    return ~crc_bytes(~crc, p, n);
}

/* ---- little-endian fields ----------------------------------------------- */

static void put32(cairn_buf *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    cairn_buf_append(b, x, 4);
}

static void put64(cairn_buf *b, uint64_t v) {
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

static void put_str(cairn_buf *b, const char *s, size_t len) {
    if (s == NULL) {
        put32(b, NO_STRING);
        return;
    }
    put32(b, (uint32_t)len);
    cairn_buf_append(b, s, len);
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p) {
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void set32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A bounded reader over a payload: every get fails once past its end. */
typedef struct {
    const unsigned char *p, *end;
    bool bad;
} cursor;

static const unsigned char *take(cursor *c, size_t n) {
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        return NULL;
    }
    const unsigned char *at = c->p;
    c->p += n;
    return at;
}

static uint64_t take64(cursor *c) {
    const unsigned char *p = take(c, 8);
    return p ? get64(p) : 0;
}

static uint32_t take32(cursor *c) {
    const unsigned char *p = take(c, 4);
    return p ? get32(p) : 0;
}

/* A string, NUL-terminated, in a new allocation (NULL for none, or on error:
 * c->bad tells which). */
static char *take_str(cursor *c, size_t *len_out) {
    uint32_t len = take32(c);
    if (c->bad || len == NO_STRING) return NULL;
    const unsigned char *p = take(c, len);
    if (p == NULL) return NULL;
    if (len_out) *len_out = len;
    return cairn_strndup((const char *)p, len);
}

/* ---- events ------------------------------------------------------------- */

/* Fields written at p, which has room for them (encode_event sizes it). */
static unsigned char *at32(unsigned char *p, uint32_t v) {
    set32(p, v);
    return p + 4;
}

static unsigned char *at64(unsigned char *p, uint64_t v) {
    set32(p, (uint32_t)v);
    set32(p + 4, (uint32_t)(v >> 32));
    return p + 8;
}

static unsigned char *at_str(unsigned char *p, const char *s, size_t len) {
    if (s == NULL) return at32(p, NO_STRING);
    p = at32(p, (uint32_t)len);
    memcpy(p, s, len);
    return p + len;
}

/* The buffer grown once for the whole event, its fields written in place:
 * the writer encodes every event of W2's thousand runs. */
static void encode_event(cairn_buf *b, const cairn_event *ev) {
    size_t data_len = ev->data_len ? ev->data_len : strlen(ev->data);
    size_t run_len = strlen(ev->run_id), step_len = ev->step ? strlen(ev->step) : 0;
    size_t size = 4 + run_len + 8 + 8 + 4 + 4 + step_len + 4 + 4 + data_len + CAIRN_HASH_LEN +
                  8 + 3 * 4;
    cairn_buf_reserve(b, size);
    unsigned char *p = (unsigned char *)b->data + b->len;
    p = at_str(p, ev->run_id, run_len);
    p = at64(p, (uint64_t)ev->seq);
    p = at64(p, (uint64_t)ev->time_ms);
    p = at32(p, (uint32_t)ev->type);
    p = at_str(p, ev->step, step_len);
    p = at32(p, (uint32_t)ev->attempt);
    p = at_str(p, ev->data, data_len);
    memcpy(p, ev->hash, CAIRN_HASH_LEN);
    p = at64(p + CAIRN_HASH_LEN, (uint64_t)ev->command_id);
    /* three slots that held run_created's runs columns, which the journal
     * now takes from its data: kept, empty, so the format stays "CAIRNCL2" */
    for (int i = 0; i < 3; i++) p = at_str(p, NULL, 0);
    b->len = (size_t)(p - (unsigned char *)b->data);
    b->data[b->len] = '\0';
}

/* One event into ev (cleared first); false when the bytes are not one. */
static bool decode_event(cursor *c, cairn_event *ev) {
    memset(ev, 0, sizeof *ev);
    char *run_id = take_str(c, NULL);
    ev->seq = (int64_t)take64(c);
    ev->time_ms = (int64_t)take64(c);
    uint32_t type = take32(c);
    ev->step = take_str(c, NULL);
    ev->attempt = (int)take32(c);
    ev->data = take_str(c, &ev->data_len);
    const unsigned char *hash = take(c, CAIRN_HASH_LEN);
    if (hash) memcpy(ev->hash, hash, CAIRN_HASH_LEN);
    ev->command_id = (int64_t)take64(c);
    for (int i = 0; i < 3; i++) free(take_str(c, NULL));   /* see encode_event */
    bool ok = !c->bad && run_id && strlen(run_id) < CAIRN_RUN_ID_MAX && ev->data &&
              cairn_event_type_known(type) && ev->seq > 0;
    if (ok) {
        snprintf(ev->run_id, sizeof ev->run_id, "%s", run_id);
        ev->type = (cairn_event_type)type;
    }
    free(run_id);
    return ok;
}

/* ---- records ------------------------------------------------------------ */

/* The record at p (avail bytes there) if it is one of generation gen:
 * its total size, or 0. */
static size_t valid_record(const unsigned char *p, size_t avail, uint64_t gen) {
    if (avail < RECORD_HEAD || get32(p) != CAIRN_CLOG_MAGIC || get64(p + 8) != gen) return 0;
    uint32_t len = get32(p + 4);
    if (len > avail - RECORD_HEAD) return 0;
    uint32_t crc = cairn_clog_crc32c(0, p, RECORD_HEAD - 4);
    crc = cairn_clog_crc32c(crc, p + RECORD_HEAD, len);
    return crc == get32(p + RECORD_HEAD - 4) ? RECORD_HEAD + (size_t)len : 0;
}

/* ---- the file ------------------------------------------------------------ */

static int io_error(cairn_clog *l, cairn_err *err, const char *what) {
    return cairn_err_set(err, CAIRN_EIO, "%s: %s: %s", l->path, what, strerror(errno));
}

static int write_all(int fd, const void *p, size_t n, int64_t off) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, c, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n, int64_t off) {
    char *c = p;
    while (n > 0) {
        ssize_t r = pread(fd, c, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* Zeros over [from, to), then a sync of the data and the size. */
static int write_zeros(cairn_clog *l, int64_t from, int64_t to, cairn_err *err) {
    static const char zeros[65536];
    for (int64_t at = from; at < to; at += (int64_t)sizeof zeros) {
        size_t n = to - at < (int64_t)sizeof zeros ? (size_t)(to - at) : sizeof zeros;
        if (write_all(l->fd, zeros, n, at)) return io_error(l, err, "writing the log");
    }
    if (fsync(l->fd) != 0) return io_error(l, err, "syncing the log");
    if (to > l->size) l->size = to;
    return 0;
}

static int write_header(cairn_clog *l, uint64_t gen, const char *owner, cairn_err *err) {
    cairn_buf b = {0};
    cairn_buf_append(&b, HEADER_MAGIC, 8);
    put64(&b, gen);
    cairn_buf_append(&b, l->id, ID_LEN);
    put_str(&b, owner, strlen(owner));
    put32(&b, cairn_clog_crc32c(0, (const unsigned char *)b.data, b.len));
    int rc = write_all(l->fd, b.data, b.len, 0) || fdatasync(l->fd) != 0
                 ? io_error(l, err, "writing the log's header") : 0;
    cairn_buf_free(&b);
    if (rc == 0) {
        l->generation = gen;
        snprintf(l->writer, sizeof l->writer, "%s", owner);
        l->end = l->synced = CAIRN_CLOG_HEADER;
        l->rebind = l->restart = false;
    }
    return rc;
}

/* A header that holds: 1.  One of the format before logs named their
 * journal: 2.  All zeros (a log whose making was cut short, or whose header
 * a crash tore while starting over: either way, every record in it had been
 * applied): 0.  Anything else is not a commit log: -1. */
static int read_header(cairn_clog *l, const unsigned char *h) {
    uint32_t len = get32(h + HEADER_OWNER);
    if (memcmp(h, HEADER_MAGIC, 8) == 0 && len <= OWNER_MAX &&
        cairn_clog_crc32c(0, h, HEADER_OWNER + 4 + len) == get32(h + HEADER_OWNER + 4 + len)) {
        l->generation = get64(h + 8);
        memcpy(l->id, h + 16, ID_LEN);
        memcpy(l->writer, h + HEADER_OWNER + 4, len);
        l->writer[len] = '\0';
        return 1;
    }
    uint32_t old_len = get32(h + 16);
    if (memcmp(h, OLD_HEADER_MAGIC, 8) == 0 && old_len <= OWNER_MAX &&
        cairn_clog_crc32c(0, h, 20 + old_len) == get32(h + 20 + old_len)) {
        l->generation = get64(h + 8);
        return 2;
    }
    if (memcmp(h, HEADER_MAGIC, 8) == 0 || memcmp(h, OLD_HEADER_MAGIC, 8) == 0)
        return 0;   /* torn while starting over */
    for (int i = 0; i < CAIRN_CLOG_HEADER; i++)
        if (h[i]) return -1;
    return 0;
}

/* Read n bytes at off into l->in (grown to fit). */
static int read_in(cairn_clog *l, size_t n, int64_t off, cairn_err *err) {
    if (n > l->in_cap) {
        free(l->in);
        l->in = cairn_malloc(n);
        l->in_cap = n;
    }
    return read_all(l->fd, l->in, n, off) ? io_error(l, err, "reading the log") : 0;
}

/* *size receives the size of the whole record of this generation at at
 * (left in l->in), or 0 when there is none there. */
static int record_at(cairn_clog *l, int64_t at, size_t *size, cairn_err *err) {
    *size = 0;
    int rc = 0;
    if (l->size - at < RECORD_HEAD || (rc = read_in(l, RECORD_HEAD, at, err)) != 0) return rc;
    const unsigned char *h = l->in;
    int64_t len = get32(h + 4);
    if (get32(h) != CAIRN_CLOG_MAGIC || get64(h + 8) != l->generation ||
        len > l->size - at - RECORD_HEAD)
        return 0;
    size_t n = RECORD_HEAD + (size_t)len;
    if ((rc = read_in(l, n, at, err)) == 0) *size = valid_record(l->in, n, l->generation);
    return rc;
}

/* Past the last record, at from, lie zeros or older generations' records
 * (a crash tears only what was never synced), or damage.  Look at every
 * offset after from for a whole record of this generation (its length may
 * be what was damaged, so records cannot be followed): l->last receives the
 * last one's offset, and l->damage receives from if one of them was written
 * once from had been synced (its synced field passes from).  A record
 * written before that may outlive a torn one before it, when both were
 * unsynced at a power loss: that is still a crash. */
static int look_past(cairn_clog *l, int64_t from, cairn_err *err) {
    unsigned char *chunk = cairn_malloc(CAIRN_CLOG_SCAN_CHUNK);
    static const unsigned char magic[4] = {0x43, 0x4c, 0x52, 0x32};   /* CAIRN_CLOG_MAGIC */
    int rc = 0;
    /* Each candidate's checksum covers up to the rest of the file: a file
     * of candidates would cost its size squared.  Past the budget it is
     * damage, with no record known after it. */
    int64_t budget = CAIRN_CLOG_SCAN_WORK * l->size;
    l->damage = l->last = -1;
    for (int64_t at = from + 1; rc == 0 && l->size - at >= RECORD_HEAD;) {
        size_t size = 0, n = l->size - at < CAIRN_CLOG_SCAN_CHUNK ? (size_t)(l->size - at)
                                                                 : CAIRN_CLOG_SCAN_CHUNK;
        if (read_all(l->fd, chunk, n, at)) {
            rc = io_error(l, err, "reading the log");
            break;
        }
        int64_t next = at + (int64_t)n - 3;   /* a magic across the chunk's end: read again */
        for (unsigned char *p = chunk; rc == 0 && size == 0 &&
             (p = memmem(p, n - (size_t)(p - chunk), magic, 4)) != NULL; p++) {
            size_t i = (size_t)(p - chunk);
            if (i + 16 <= n && get64(p + 8) != l->generation) continue;
            if ((budget -= RECORD_HEAD + (i + 8 <= n ? get32(p + 4) : 0)) < 0) {
                l->damage = from;
                l->last = -1;
                break;
            }
            if ((rc = record_at(l, at + (int64_t)i, &size, err)) != 0 || size == 0) continue;
            l->last = at + (int64_t)i;
            if ((int64_t)get64(l->in + 16) > from) l->damage = from;
            next = l->last + (int64_t)size;
        }
        at = budget < 0 ? l->size : next;
    }
    free(chunk);
    return rc;
}

/* Find the end of the records of the header's generation, a record at a
 * time, then look past it for damage. */
static int scan(cairn_clog *l, cairn_err *err) {
    int64_t at = CAIRN_CLOG_HEADER;
    size_t size = 0;
    int rc;
    while ((rc = record_at(l, at, &size, err)) == 0 && size > 0) at += (int64_t)size;
    l->end = at;
    return rc ? rc : look_past(l, at, err);
}

/* Make a log anew: zeros over the whole file first, synced, then the header,
 * so a header that holds always heads a file of its full size. */
static int make_new(cairn_clog *l, cairn_err *err) {
    int64_t size = l->size > CAIRN_CLOG_BYTES ? l->size : CAIRN_CLOG_BYTES;
    int rc = write_zeros(l, 0, size, err);
    char *dir_of = cairn_strdup(l->path);
    int dir = rc ? -1 : open(dirname(dir_of), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rc == 0 && (dir < 0 || fsync(dir) != 0)) rc = io_error(l, err, "syncing its directory");
    if (dir >= 0) close(dir);
    free(dir_of);
    if (rc == 0) rc = write_header(l, 1, "", err);
    return rc;
}

static int decode_range(cairn_clog *l, const unsigned char *p, size_t n, cairn_event **evs,
                        int *n_evs, cairn_err *err);

/* hex (CAIRN_JOURNAL_ID_HEX digits, or "") into id (zeros for ""). */
static void id_from_hex(const char *hex, unsigned char id[ID_LEN]) {
    memset(id, 0, ID_LEN);
    for (int i = 0; hex[0] && i < ID_LEN; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        id[i] = (unsigned char)v;
    }
}

static void id_to_hex(const unsigned char id[ID_LEN], char hex[CAIRN_JOURNAL_ID_HEX + 1]) {
    for (int i = 0; i < ID_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
}

static bool id_none(const unsigned char id[ID_LEN]) {
    static const unsigned char zeros[ID_LEN];
    return memcmp(id, zeros, ID_LEN) == 0;
}

/* A log of the older format: taken over when it holds no record, else
 * refused (it names no journal, so its records cannot be told to be this
 * journal's). */
static int old_format(cairn_clog *l, cairn_err *err) {
    unsigned char r[RECORD_HEAD] = {0};
    if (l->size >= CAIRN_CLOG_HEADER + RECORD_HEAD &&
        read_all(l->fd, r, sizeof r, CAIRN_CLOG_HEADER))
        return io_error(l, err, "reading the log");
    if (get32(r) == OLD_RECORD_MAGIC && get64(r + 8) == l->generation)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: a commit log written by an older cairn"
                             " still holds records; nothing was applied or changed: apply them"
                             " with the cairn that wrote them (cairn resume), then use this one",
                             l->path);
    l->end = l->synced = CAIRN_CLOG_HEADER;
    l->damage = l->last = -1;
    l->rebind = true;
    return 0;
}

/* The log must be the journal's (want: its id, zeros for none yet).  One
 * that holds no record is taken over, whatever journal it names. */
static int bind(cairn_clog *l, const unsigned char want[ID_LEN], cairn_err *err) {
    bool records = l->end > CAIRN_CLOG_HEADER || l->last >= 0;
    if (memcmp(l->id, want, ID_LEN) == 0 && !id_none(want)) return 0;
    if (!records) {
        l->rebind = l->rebind || memcmp(l->id, want, ID_LEN) != 0;
        memcpy(l->id, want, ID_LEN);
        return 0;
    }
    char have_hex[CAIRN_JOURNAL_ID_HEX + 1], want_hex[CAIRN_JOURNAL_ID_HEX + 1];
    id_to_hex(l->id, have_hex);
    id_to_hex(want, want_hex);
    return cairn_err_set(err, CAIRN_ECORRUPT, "%s: holds records of another journal (the log"
                         " names journal %s, this journal is %s); nothing was applied or"
                         " changed: if the file was copied here, move it away (engine/clog.h,"
                         " \"Damage, for an operator\")", l->path,
                         id_none(l->id) ? "none" : have_hex,
                         id_none(want) ? "not yet named" : want_hex);
}

/* Whether every event of the record at l->last is in the journal: then so
 * is everything before it, since the journal holds a prefix of the log. */
static int last_record_held(cairn_clog *l, const char *db_path, bool *held, cairn_err *err) {
    size_t size = 0;
    cairn_event *evs = NULL;
    int n = 0;
    cairn_store *s = NULL;
    *held = false;
    int rc = record_at(l, l->last, &size, err);
    if (rc == 0) rc = decode_range(l, l->in, size, &evs, &n, err);
    if (rc == 0) rc = cairn_store_open_sqlite(db_path, CAIRN_SYNC_FULL, true, &s, err);
    *held = rc == 0;
    for (int i = 0; rc == 0 && *held && i < n; i++) {
        cairn_event *have = NULL;
        int count = 0;
        rc = s->ops->load_events(s, evs[i].run_id, &have, &count, err);
        *held = rc == 0 && count >= evs[i].seq;
        cairn_events_free(have, count);
    }
    cairn_store_close(s);
    cairn_events_free(evs, n);
    return rc == CAIRN_ENOTFOUND ? 0 : rc;
}

/* Proven damage (look_past): go on when the journal holds every event from
 * there on, or the operator accepts losing them (CAIRN_CLOG_ACCEPT_DAMAGE
 * names the offset); else refuse, changing nothing. */
static int judge_damage(cairn_clog *l, const char *db_path, cairn_err *err) {
    bool held = false;
    int rc = l->damage < 0 || l->last < 0 ? 0 : last_record_held(l, db_path, &held, err);
    if (rc || l->damage < 0) return rc;
    const char *accept = getenv("CAIRN_CLOG_ACCEPT_DAMAGE");
    bool accepted = accept && *accept && atoll(accept) == l->damage;
    if (!held && !accepted)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: damaged at offset %lld: the record there"
                             " fails its checksum, and records written after it was synced follow"
                             " it, with events the journal does not hold; nothing was applied or"
                             " changed.  Keep a copy of the file, then restore it from a backup,"
                             " or accept losing every event from that offset on with"
                             " CAIRN_CLOG_ACCEPT_DAMAGE=%lld (engine/clog.h, \"Damage, for an"
                             " operator\")",
                             l->path, (long long)l->damage, (long long)l->damage);
    fprintf(stderr, "cairn: warning: %s: damaged at offset %lld; %s: applying the records"
            " before it and starting the log over\n", l->path, (long long)l->damage,
            held ? "the journal already holds every event from there on"
                 : "CAIRN_CLOG_ACCEPT_DAMAGE drops every event from there on");
    l->restart = true;   /* started over even by a reader, so the damage is told once */
    return 0;
}

/* Open and lock the file, and read its header (state: read_header's). */
static int open_file(cairn_clog *l, const char *db_path, bool create, int *state, cairn_err *err) {
    /* readable by whoever may read the journal, as SQLite makes its -wal */
    struct stat db_sb, sb;
    mode_t mode = stat(db_path, &db_sb) == 0 ? (db_sb.st_mode & 0666) : 0600;
    unsigned char header[CAIRN_CLOG_HEADER] = {0};
    l->fd = open(l->path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), mode);
    int rc = 0;
    if (l->fd < 0 && errno == ENOENT && !create)
        rc = cairn_err_set(err, CAIRN_ENOTFOUND, "%s: no commit log", l->path);
    else if (l->fd < 0) rc = io_error(l, err, "cannot open the commit log");
    else if (flock(l->fd, LOCK_EX | LOCK_NB) != 0)
        rc = errno == EWOULDBLOCK
                 ? cairn_err_set(err, CAIRN_EBUSY, "%s: another engine holds the log", l->path)
                 : io_error(l, err, "cannot lock the commit log");
    else if (fstat(l->fd, &sb) != 0) rc = io_error(l, err, "cannot read the log's size");
    if (rc == 0) {
        l->size = sb.st_size;
        size_t have = l->size < CAIRN_CLOG_HEADER ? (size_t)l->size : sizeof header;
        if (read_all(l->fd, header, have, 0)) rc = io_error(l, err, "reading the log's header");
    }
    if (rc == 0 && (*state = read_header(l, header)) < 0)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: not a Cairn commit log; the file was not"
                           " modified", l->path);
    return rc;
}

/* The journal's id into want (zeros when it has none yet). */
static int journal_id(const char *db_path, unsigned char want[ID_LEN], cairn_err *err) {
    char hex[CAIRN_JOURNAL_ID_HEX + 1];
    int rc = cairn_journal_id(db_path, hex, err);
    id_from_hex(rc == 0 ? hex : "", want);
    return rc;
}

int cairn_clog_open(const char *db_path, const char *owner, bool create, cairn_clog **out,
                    cairn_err *err) {
    cairn_clog *l = cairn_calloc(1, sizeof *l);
    l->path = cairn_sprintf("%s-clog", db_path);
    l->owner = cairn_strndup(owner, strlen(owner) > OWNER_MAX ? OWNER_MAX : strlen(owner));
    l->damage = l->last = -1;
    unsigned char want[ID_LEN];
    int state = 0;
    int rc = open_file(l, db_path, create, &state, err);
    if (rc == 0 && state == 0 && (rc = journal_id(db_path, l->id, err)) == 0)
        rc = make_new(l, err);
    else if (rc == 0 && state != 0)
        rc = state == 2 ? old_format(l, err) : scan(l, err);
    /* a reader of a log without records writes nothing: the id cannot matter */
    bool records = l->end > CAIRN_CLOG_HEADER || l->last >= 0;
    if (rc == 0 && (records || l->owner[0]) && (rc = journal_id(db_path, want, err)) == 0)
        rc = bind(l, want, err);
    if (rc == 0) rc = judge_damage(l, db_path, err);
    if (rc) {
        cairn_clog_close(l);
        return rc;
    }
    *out = l;
    return 0;
}

int cairn_clog_append(cairn_clog *l, cairn_event *const *events, int n, int64_t *end,
                      cairn_err *err) {
    cairn_buf *b = &l->out;
    cairn_buf_reset(b);
    put32(b, CAIRN_CLOG_MAGIC);
    put32(b, 0);   /* the payload's length, once known */
    put64(b, l->generation);
    put64(b, (uint64_t)atomic_load(&l->synced));
    put32(b, (uint32_t)n);
    put32(b, 0);   /* the checksum */
    for (int i = 0; i < n; i++) encode_event(b, events[i]);
    if (l->end + (int64_t)b->len > l->size) {
        *end = (int64_t)b->len;
        return cairn_err_set(err, CAIRN_EFULL, "%s: the log is full", l->path);
    }
    unsigned char *p = (unsigned char *)b->data;
    set32(p + 4, (uint32_t)(b->len - RECORD_HEAD));
    uint32_t crc = cairn_clog_crc32c(0, p, RECORD_HEAD - 4);
    set32(p + RECORD_HEAD - 4, cairn_clog_crc32c(crc, p + RECORD_HEAD, b->len - RECORD_HEAD));
    if (write_all(l->fd, p, b->len, l->end)) return io_error(l, err, "writing the log");
    l->end += (int64_t)b->len;
    *end = l->end;
    return 0;
}

int cairn_clog_sync(cairn_clog *l, cairn_err *err) {
    int64_t upto = atomic_load(&l->end);   /* appended before the sync began: covered */
    if (fdatasync(l->fd) != 0) return io_error(l, err, "syncing the log");
    if (upto > atomic_load(&l->synced)) atomic_store(&l->synced, upto);
    return 0;
}

int64_t cairn_clog_end(const cairn_clog *l) {
    return l->end;
}

const char *cairn_clog_writer(const cairn_clog *l) {
    return l->writer;
}

/* Decode every record of [p, p + n) into evs (n_evs of them). */
static int decode_range(cairn_clog *l, const unsigned char *p, size_t n, cairn_event **evs,
                        int *n_evs, cairn_err *err) {
    size_t at = 0, size;
    int count = 0, cap = 0;
    cairn_event *v = NULL;
    bool ok = true;
    while (ok && at < n && (size = valid_record(p + at, n - at, l->generation)) > 0) {
        uint32_t k = get32(p + at + 24);
        cursor c = {p + at + RECORD_HEAD, p + at + size, false};
        for (uint32_t i = 0; ok && i < k; i++) {
            if (count == cap) {
                cap = cap ? cap * 2 : 64;
                v = cairn_realloc(v, (size_t)cap * sizeof *v);
            }
            ok = decode_event(&c, &v[count]);
            count++;
        }
        ok = ok && c.p == c.end;
        at += size;
    }
    *evs = v;
    *n_evs = count;
    if (ok && at == n) return 0;
    return cairn_err_set(err, CAIRN_ECORRUPT, "%s: a record at offset %lld does not hold events;"
                         " the log was not applied", l->path,
                         (long long)(CAIRN_CLOG_HEADER + at));
}

int cairn_clog_apply(cairn_clog *l, cairn_store *store, int64_t from, int64_t to, int *events,
                     cairn_err *err) {
    size_t n = to > from ? (size_t)(to - from) : 0;
    if (events) *events = 0;
    if (n == 0) return 0;
    cairn_event *evs = NULL;
    int n_evs = 0;
    int rc = read_in(l, n, from, err);
    if (rc == 0) rc = decode_range(l, l->in, n, &evs, &n_evs, err);
    cairn_event **ptrs = cairn_malloc((size_t)(n_evs ? n_evs : 1) * sizeof *ptrs);
    for (int i = 0; i < n_evs; i++) ptrs[i] = &evs[i];
    if (rc == 0) rc = store->ops->append_missing(store, ptrs, n_evs, err);
    if (rc == 0 && events) *events = n_evs;
    free(ptrs);
    cairn_events_free(evs, n_evs);
    return rc;
}

/* Apply the records the log holds to the journal at db_path, through a
 * connection that syncs every commit, and start the log over.  An empty
 * log is started over only to name a new writer or its journal: a reader
 * (owner "") writes nothing then.  A journal without an id yet gets one
 * first (its first connection that writes makes it), for the header. */
static int replay(cairn_clog *l, const char *db_path, cairn_err *err) {
    bool records = l->end > CAIRN_CLOG_HEADER;
    if (!records && !l->restart &&
        (l->owner[0] == '\0' || (strcmp(l->owner, l->writer) == 0 && !l->rebind)))
        return 0;
    cairn_store *s = NULL;
    char hex[CAIRN_JOURNAL_ID_HEX + 1];
    int rc = 0;
    if (records || id_none(l->id))   /* applies; gives the journal its id if it has none */
        rc = cairn_store_open_sqlite(db_path, CAIRN_SYNC_FULL, false, &s, err);
    if (rc == 0 && records) {
        s->ops->set_owner(s, l->writer);
        rc = cairn_clog_apply(l, s, CAIRN_CLOG_HEADER, l->end, NULL, err);
    }
    cairn_store_close(s);
    if (rc == 0 && id_none(l->id) && (rc = cairn_journal_id(db_path, hex, err)) == 0)
        id_from_hex(hex, l->id);
    return rc ? rc : cairn_clog_reset(l, 0, err);
}

int cairn_clog_take(const char *db_path, const char *owner, bool create, cairn_clog **out,
                    cairn_err *err) {
    cairn_clog *l = NULL;
    int rc = cairn_clog_open(db_path, owner, create, &l, err);
    if (rc == 0) rc = replay(l, db_path, err);
    if (rc) {
        cairn_clog_close(l);
        l = NULL;
    }
    *out = l;
    return rc;
}

/* Whether the log at path, read without its lock, holds a record written
 * by an engine that is gone: then whoever holds the lock is applying it. */
static bool gone_writer_pending(const char *path) {
    unsigned char h[CAIRN_CLOG_HEADER], r[RECORD_HEAD];
    cairn_clog peek = {.fd = open(path, O_RDONLY | O_CLOEXEC)};
    bool pending = peek.fd >= 0 && read_all(peek.fd, h, sizeof h, 0) == 0 &&
                   read_header(&peek, h) == 1 && peek.writer[0] &&
                   read_all(peek.fd, r, sizeof r, CAIRN_CLOG_HEADER) == 0 &&
                   get32(r) == CAIRN_CLOG_MAGIC && get64(r + 8) == peek.generation &&
                   !cairn_owner_alive(peek.writer);
    if (peek.fd >= 0) close(peek.fd);
    return pending;
}

int cairn_clog_settle(const char *db_path, cairn_err *err) {
    char *path = cairn_sprintf("%s-clog", db_path);
    int rc;
    bool timed_out = false;
    /* The lock's holder is a live engine, whose records are its own runs'
     * (it applied what it found when it took the log), or someone applying
     * a dead engine's records right now: wait for that one to finish. */
    if (access(path, F_OK) == 0 && access(path, W_OK) != 0) {
        /* a reader that may not write the journal: it can only tell */
        rc = gone_writer_pending(path)
                 ? cairn_err_set(err, CAIRN_EIO, "%s: holds events of a stopped engine that"
                                 " this user may not apply", path)
                 : 0;
        free(path);
        return rc;
    }
    for (int64_t until = cairn_now_ms() + CAIRN_CLOG_SETTLE_WAIT_MS;;) {
        cairn_clog *l = NULL;
        rc = cairn_clog_take(db_path, "", false, &l, err);
        cairn_clog_close(l);
        if (rc != CAIRN_EBUSY || !gone_writer_pending(path)) break;
        if (cairn_now_ms() >= until) {
            timed_out = true;
            rc = cairn_err_set(err, CAIRN_EBUSY, "%s: another process has been applying the log"
                               " of a stopped engine for %d s", path,
                               CAIRN_CLOG_SETTLE_WAIT_MS / 1000);
            break;
        }
        usleep(5000);
    }
    free(path);
    if (timed_out) return rc;
    return rc == CAIRN_EBUSY || rc == CAIRN_ENOTFOUND ? 0 : rc;
}

int cairn_clog_reset(cairn_clog *l, size_t need, cairn_err *err) {
    int rc = 0;
    int64_t want = CAIRN_CLOG_HEADER + (int64_t)need;
    if (want > l->size) {
        int64_t size = l->size * 2 > want ? l->size * 2 : want;
        rc = write_zeros(l, l->size, size, err);
    }
    if (rc == 0) rc = write_header(l, l->generation + 1, l->owner, err);
    return rc;
}

void cairn_clog_close(cairn_clog *l) {
    if (l == NULL) return;
    if (l->fd >= 0) close(l->fd);   /* releases the lock */
    cairn_buf_free(&l->out);
    free(l->in);
    free(l->path);
    free(l->owner);
    free(l);
}
