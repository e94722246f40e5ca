/*
 * store.c - what every store backend shares: frees for returned rows, and
 * the journal's HMAC key and its check value.
 */
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/mem.h"
#include "engine/store_pg.h"

void cairn_store_close(cairn_store *s) {
    if (s) s->ops->close(s);
}

void cairn_run_row_clear(cairn_run_row *r) {
    if (r == NULL) return;
    free(r->id);
    free(r->workflow);
    free(r->def_hash);
    free(r->parent_id);
    free(r->status);
    free(r->owner);
    memset(r, 0, sizeof *r);
}

void cairn_run_rows_free(cairn_run_row *rows, int n) {
    for (int i = 0; rows && i < n; i++) cairn_run_row_clear(&rows[i]);
    free(rows);
}

void cairn_events_free(cairn_event *evs, int n) {
    for (int i = 0; evs && i < n; i++) cairn_event_clear(&evs[i]);
    free(evs);
}

void cairn_commands_free(cairn_command *cmds, int n) {
    for (int i = 0; cmds && i < n; i++) {
        free(cmds[i].run_id);
        free(cmds[i].type);
        free(cmds[i].data);
    }
    free(cmds);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int key_from_hex(const char *hex, unsigned char key[32], cairn_err *err) {
    if (strlen(hex) != 64)
        return cairn_err_set(err, CAIRN_EINVAL, "CAIRN_JOURNAL_KEY must be 64 hex digits");
    for (int i = 0; i < 32; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return cairn_err_set(err, CAIRN_EINVAL, "CAIRN_JOURNAL_KEY must be 64 hex digits");
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Write key to path, a new file (1: it exists, nothing written). */
static int write_key_file(const char *path, const unsigned char key[32], cairn_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return errno == EEXIST ? 1 : cairn_err_set(err, CAIRN_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    if (write(fd, key, 32) != 32 || fsync(fd) != 0)
        rc = cairn_err_set(err, CAIRN_EIO, "%s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

static int create_key_file(const char *path, unsigned char key[32], cairn_err *err) {
    if (getrandom(key, 32, 0) != 32)
        return cairn_err_set(err, CAIRN_EIO, "getrandom: %s", strerror(errno));
    return write_key_file(path, key, err);
}

static int read_key_file(const char *path, unsigned char key[32], cairn_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return cairn_err_set(err, CAIRN_ENOTFOUND, "%s: %s", path, strerror(errno));
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
        rc = cairn_err_set(err, CAIRN_EAUTH, "%s: the journal key must not be readable by others"
                           " (chmod 600)", path);
    else if (read(fd, key, 32) != 32)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: not a 32-byte journal key", path);
    close(fd);
    return rc;
}

const char *cairn_journal_files(const char *where) {
    if (strstr(where, "://") == NULL) return where;
    const char *files = getenv("CAIRN_FILES");
    return files && *files ? files : NULL;
}

/* where as messages name it: a URL without its password. */
static char *where_name(const char *where) {
    return cairn_pg_url(where) ? cairn_pg_name(where) : cairn_strdup(where);
}

int cairn_journal_key(const char *db_path, bool create, unsigned char key[32], cairn_err *err) {
    const char *hex = getenv("CAIRN_JOURNAL_KEY");
    if (hex && *hex) return key_from_hex(hex, key, err);
    const char *files = cairn_journal_files(db_path);
    if (files == NULL) {
        char *name = where_name(db_path);
        cairn_err_set(err, CAIRN_ENOTFOUND, "%s: the journal's key is kept outside the database:"
                      " set CAIRN_JOURNAL_KEY (64 hex digits), or CAIRN_FILES to the path its"
                      " key file is named from (CAIRN_FILES.key)", name);
        free(name);
        return CAIRN_ENOTFOUND;
    }
    char *path = cairn_sprintf("%s.key", files);
    int rc = 1;
    if (create && access(path, F_OK) != 0) rc = create_key_file(path, key, err);
    if (rc == 1) rc = read_key_file(path, key, err);
    free(path);
    return rc;
}

static int key_mismatch(const char *db_path, cairn_err *err);

int cairn_journal_key_give(const char *where, const unsigned char key[32], cairn_err *err) {
    unsigned char have[32];
    cairn_err ignored;
    int rc = cairn_journal_key(where, false, have, &ignored);
    if (rc == 0) {
        rc = memcmp(have, key, 32) == 0 ? 0 : key_mismatch(where, err);
        memset(have, 0, sizeof have);
        return rc;
    }
    const char *files = cairn_journal_files(where);
    if (files == NULL) return cairn_journal_key(where, false, have, err);   /* says what to set */
    char *path = cairn_sprintf("%s.key", files);
    rc = write_key_file(path, key, err);
    if (rc == 1) rc = cairn_journal_key(where, false, have, err);   /* there, unreadable: why */
    free(path);
    return rc;
}

/* ---- the key check value -------------------------------------------------- */

static void key_check_value(const unsigned char key[32], char hex[2 * CAIRN_HASH_LEN + 1]) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)CAIRN_KEY_CHECK_TEXT,
         strlen(CAIRN_KEY_CHECK_TEXT), mac, &n);
    for (unsigned int i = 0; i < n && i < CAIRN_HASH_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

static int key_mismatch(const char *db_path, cairn_err *err) {
    const char *hex = getenv("CAIRN_JOURNAL_KEY"), *files = cairn_journal_files(db_path);
    char *name = where_name(db_path);
    if (hex && *hex)
        cairn_err_set(err, CAIRN_EAUTH, "%s: the journal key does not match this journal"
                      " (the key is CAIRN_JOURNAL_KEY)", name);
    else
        cairn_err_set(err, CAIRN_EAUTH, "%s: the journal key does not match this journal"
                      " (the key is %s.key)", name, files ? files : "?");
    free(name);
    return CAIRN_EAUTH;
}

/* A journal with no check value: the key against the first event of its
 * oldest run, if it has any run.  1 when it matches or there is nothing to
 * check it against, 0 when it does not match. */
static int key_fits_events(cairn_store *s, const unsigned char key[32], cairn_err *err) {
    cairn_run_row *rows = NULL;
    cairn_event *evs = NULL;
    int n = 0, n_evs = 0;
    int rc = s->ops->list_runs(s, NULL, &rows, &n, err);
    if (rc == 0 && n > 0) rc = s->ops->load_events(s, rows[n - 1].id, &evs, &n_evs, err);
    if (rc == 0 && n_evs > 0) {
        cairn_chain *chain = cairn_chain_new(key, 32);
        cairn_event first = evs[0];
        cairn_chain_hash(chain, NULL, &first);
        rc = memcmp(first.hash, evs[0].hash, CAIRN_HASH_LEN) == 0;
        cairn_chain_free(chain);
    } else if (rc == 0) {
        rc = 1;
    }
    cairn_events_free(evs, n_evs);
    cairn_run_rows_free(rows, n);
    return rc;
}

int cairn_journal_key_check(cairn_store *s, const char *db_path, const unsigned char key[32],
                            bool record, cairn_err *err) {
    char want[2 * CAIRN_HASH_LEN + 1], *have = NULL;
    if (s->ops->get_meta == NULL) return 0;
    key_check_value(key, want);
    int rc = s->ops->get_meta(s, "key_check", &have, err);
    if (rc == 0) rc = strcmp(have, want) == 0 ? 0 : key_mismatch(db_path, err);
    else if (rc == CAIRN_ENOTFOUND && !record) rc = 0;
    else if (rc == CAIRN_ENOTFOUND && (rc = key_fits_events(s, key, err)) >= 0)
        rc = rc == 0 ? key_mismatch(db_path, err) : s->ops->put_meta(s, "key_check", want, err);
    free(have);
    return rc;
}

const char *cairn_store_status_after(cairn_event_type t, const char **from) {
    *from = NULL;
    switch (t) {
    case CAIRN_EV_RUN_SUCCEEDED: return "succeeded";
    case CAIRN_EV_RUN_FAILED: return "failed";
    case CAIRN_EV_RUN_CANCELLED: return "cancelled";
    case CAIRN_EV_RUN_COMPENSATING: return "compensating";
    case CAIRN_EV_RUN_PAUSED: *from = "running"; return "paused";
    case CAIRN_EV_RUN_UNPAUSED: *from = "paused"; return "running";
    default: return NULL;
    }
}
