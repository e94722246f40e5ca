/*
 * tokens.c - the tokens file (tokens.h): reading and checking it, looking a
 * presented token up, and editing it under a lock.
 */
#include "server/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jv.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "server/sig.h"

struct cairn_tokens {
    cairn_token *t;
    int n;
};

static const char *const roles[] = {"viewer", "operator", "admin"};

const char *cairn_role_name(cairn_role r) {
    return (unsigned)r < sizeof roles / sizeof roles[0] ? roles[r] : "?";
}

int cairn_role_parse(const char *s, cairn_role *out, cairn_err *err) {
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(s, roles[i]) == 0) {
            *out = (cairn_role)i;
            return 0;
        }
    return cairn_err_set(err, CAIRN_EINVAL, "role '%.64s': expected viewer, operator or admin", s);
}

bool cairn_role_allows(cairn_role have, cairn_role need) { return have >= need; }

static bool valid_name(const char *s) {
    size_t n = strlen(s);
    return n >= 1 && n <= CAIRN_TOKEN_NAME_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@-") == n;
}

int cairn_tokens_count(const cairn_tokens *t) { return t ? t->n : 0; }

const cairn_token *cairn_tokens_at(const cairn_tokens *t, int i) {
    return t && i >= 0 && i < t->n ? &t->t[i] : NULL;
}

const cairn_token *cairn_tokens_lookup(const cairn_tokens *t, const char *presented) {
    unsigned char d[CAIRN_SIG_SHA256_LEN];
    const cairn_token *found = NULL;
    cairn_sig_sha256(presented, strlen(presented), d);
    for (int i = 0; t && i < t->n; i++) {   /* every entry, match or not */
        bool eq = CRYPTO_memcmp(d, t->t[i].sha256, sizeof d) == 0;
        found = eq ? &t->t[i] : found;
    }
    return found;
}

static void token_clear(cairn_token *k) {
    free(k->name);
    for (int g = 0; g < k->n_groups; g++) free(k->groups[g]);
    free(k->groups);
    free(k->created);
}

void cairn_tokens_free(cairn_tokens *t) {
    if (t == NULL) return;
    for (int i = 0; i < t->n; i++) token_clear(&t->t[i]);
    free(t->t);
    free(t);
}

/* ---- reading ----------------------------------------------------------------- */

static jv field(jv o, const char *key, jv_kind kind) {
    if (jv_get_kind(o) != JV_KIND_OBJECT) return jv_invalid();
    jv v = jv_object_get(jv_copy(o), jv_string(key));
    if (jv_get_kind(v) == kind) return v;
    jv_free(v);
    return jv_invalid();
}

static int bad_entry(const char *path, int i, const char *what, cairn_err *err) {
    return cairn_err_set(err, CAIRN_ECORRUPT, "%s: tokens[%d]: %s", path, i, what);
}

/* Entry i of the file's list into k (cleared first); the error names it. */
static int parse_entry(const char *path, int i, jv o, cairn_token *k, cairn_err *err) {
    memset(k, 0, sizeof *k);
    jv name = field(o, "name", JV_KIND_STRING), role = field(o, "role", JV_KIND_STRING);
    jv hash = field(o, "sha256", JV_KIND_STRING), groups = field(o, "groups", JV_KIND_ARRAY);
    jv created = field(o, "created", JV_KIND_STRING);
    cairn_err ignored;
    int rc = 0;
    if (!jv_is_valid(name) || !valid_name(jv_string_value(name)))
        rc = bad_entry(path, i, "bad or missing name", err);
    else if (!jv_is_valid(role) || cairn_role_parse(jv_string_value(role), &k->role, &ignored))
        rc = bad_entry(path, i, "role is not viewer, operator or admin", err);
    else if (!jv_is_valid(hash) || cairn_sig_unhex(jv_string_value(hash), strlen(jv_string_value(hash)),
                                                   k->sha256, sizeof k->sha256) != (int)sizeof k->sha256)
        rc = bad_entry(path, i, "sha256 is not 64 hex digits", err);
    else if (!jv_is_valid(groups) || jv_array_length(jv_copy(groups)) > CAIRN_TOKEN_GROUPS_MAX)
        rc = bad_entry(path, i, "groups is not a list, or is longer than CAIRN_TOKEN_GROUPS_MAX", err);
    if (rc == 0) {
        k->name = cairn_strdup(jv_string_value(name));
        k->created = cairn_strdup(jv_is_valid(created) ? jv_string_value(created) : "");
        k->groups = cairn_calloc((size_t)jv_array_length(jv_copy(groups)) + 1, sizeof *k->groups);
        jv_array_foreach(groups, g, gv) {
            if (rc == 0 && (jv_get_kind(gv) != JV_KIND_STRING || !valid_name(jv_string_value(gv))))
                rc = bad_entry(path, i, "a group is not a name", err);
            else if (rc == 0)
                k->groups[k->n_groups++] = cairn_strdup(jv_string_value(gv));
            jv_free(gv);
        }
    }
    jv_free(name); jv_free(role); jv_free(hash); jv_free(groups); jv_free(created);
    return rc;
}

static int parse_file(const char *path, const char *text, size_t len, cairn_tokens *t, cairn_err *err) {
    jv doc = cairn_json_parse(text, len);
    jv version = field(doc, "cairn_tokens", JV_KIND_NUMBER), list = field(doc, "tokens", JV_KIND_ARRAY);
    int rc = 0;
    if (!jv_is_valid(version) || jv_number_value(version) != 1 || !jv_is_valid(list))
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: not a Cairn tokens file (version 1)", path);
    else if (jv_array_length(jv_copy(list)) > CAIRN_TOKENS_MAX)
        rc = cairn_err_set(err, CAIRN_ELIMIT, "%s: more than %d tokens", path, CAIRN_TOKENS_MAX);
    if (rc == 0) t->t = cairn_calloc((size_t)jv_array_length(jv_copy(list)) + 1, sizeof *t->t);
    for (int i = 0; rc == 0 && i < jv_array_length(jv_copy(list)); i++) {
        jv o = jv_array_get(jv_copy(list), i);
        rc = parse_entry(path, i, o, &t->t[t->n], err);
        if (rc) token_clear(&t->t[t->n]);
        else t->n++;
        for (int j = 0; rc == 0 && j < t->n - 1; j++)
            if (strcmp(t->t[j].name, t->t[t->n - 1].name) == 0)
                rc = bad_entry(path, i, "the name is used twice", err);
        jv_free(o);
    }
    jv_free(doc); jv_free(version); jv_free(list);
    return rc;
}

/* The file's bytes, after checking it is a regular file only its owner
 * may read and write, and its size. */
static int read_checked(const char *path, char **text, size_t *len, cairn_err *err) {
    struct stat sb;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    *text = NULL;
    if (fd < 0 && errno == ENOENT)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "%s: no tokens file (`cairn token add` makes one)",
                             path);
    if (fd < 0) return cairn_err_set(err, CAIRN_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        rc = cairn_err_set(err, CAIRN_EIO, "%s: not a regular file", path);
    else if (sb.st_mode & 077)
        rc = cairn_err_set(err, CAIRN_EAUTH, "%s: mode %04o lets others read or write the tokens; "
                           "it must be 0600 (chmod 600 %s)", path, (unsigned)(sb.st_mode & 07777), path);
    else if (sb.st_size > CAIRN_TOKENS_FILE_MAX)
        rc = cairn_err_set(err, CAIRN_ELIMIT, "%s: larger than %d bytes", path, CAIRN_TOKENS_FILE_MAX);
    if (rc == 0) {
        *text = cairn_malloc((size_t)sb.st_size + 1);
        ssize_t got = read(fd, *text, (size_t)sb.st_size);
        if (got != (ssize_t)sb.st_size)
            rc = cairn_err_set(err, CAIRN_EIO, "%s: short read", path);
        *len = got > 0 ? (size_t)got : 0;
    }
    close(fd);
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

int cairn_tokens_load(const char *path, cairn_tokens **out, cairn_err *err) {
    cairn_tokens *t = cairn_calloc(1, sizeof *t);
    char *text = NULL;
    size_t len = 0;
    int rc = read_checked(path, &text, &len, err);
    if (rc == 0) rc = parse_file(path, text, len, t, err);
    free(text);
    if (rc) {
        cairn_tokens_free(t);
        t = NULL;
    }
    *out = t;
    return rc;
}

/* ---- writing ----------------------------------------------------------------- */

static jv to_json(const cairn_tokens *t) {
    jv list = jv_array();
    for (int i = 0; i < t->n; i++) {
        const cairn_token *k = &t->t[i];
        char hex[2 * CAIRN_SIG_SHA256_LEN + 1];
        cairn_sig_hex(k->sha256, sizeof k->sha256, hex);
        jv groups = jv_array();
        for (int g = 0; g < k->n_groups; g++) groups = jv_array_append(groups, jv_string(k->groups[g]));
        jv o = jv_object_set(jv_object(), jv_string("name"), jv_string(k->name));
        o = jv_object_set(o, jv_string("role"), jv_string(cairn_role_name(k->role)));
        o = jv_object_set(o, jv_string("groups"), groups);
        o = jv_object_set(o, jv_string("sha256"), jv_string(hex));
        o = jv_object_set(o, jv_string("created"), jv_string(k->created));
        list = jv_array_append(list, o);
    }
    jv doc = jv_object_set(jv_object(), jv_string("cairn_tokens"), jv_number(1));
    return jv_object_set(doc, jv_string("tokens"), list);
}

static int fsync_dir(const char *path) {
    char *copy = cairn_strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

/* Write, fsync, rename over path, fsync the folder. */
static int save(const char *path, const cairn_tokens *t, cairn_err *err) {
    jv doc = to_json(t);
    char *text = cairn_json_text(doc);
    jv_free(doc);
    char *tmp = cairn_sprintf("%s.tmp", path);
    size_t len = strlen(text);
    int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 ||
        close(fd) != 0 || (fd = -1, rename(tmp, path) != 0) || fsync_dir(path) != 0) {
        rc = cairn_err_set(err, CAIRN_EIO, "%s: cannot write: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
    }
    free(tmp);
    free(text);
    return rc;
}

typedef int (*edit_fn)(cairn_tokens *t, void *ud, cairn_err *err);

/* Under FILE.lock: load (an empty set when create and there is no file),
 * apply fn, save. */
static int edit(const char *path, bool create, edit_fn fn, void *ud, cairn_err *err) {
    char *lock = cairn_sprintf("%s.lock", path);
    cairn_tokens *t = NULL;
    int rc = 0, fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0)
        rc = cairn_err_set(err, CAIRN_EIO, "%s: cannot lock: %s", lock, strerror(errno));
    if (rc == 0) rc = cairn_tokens_load(path, &t, err);
    if (rc == CAIRN_ENOTFOUND && create) {
        t = cairn_calloc(1, sizeof *t);
        rc = 0;
    }
    if (rc == 0) rc = fn(t, ud, err);
    if (rc == 0) rc = save(path, t, err);
    cairn_tokens_free(t);
    if (fd >= 0) close(fd);   /* releases the lock */
    free(lock);
    return rc;
}

typedef struct {
    const char *name;
    cairn_role role;
    const char *const *groups;
    int n_groups;
    int64_t now_ms;
    char *token;
} add_args;

static int do_add(cairn_tokens *t, void *ud, cairn_err *err) {
    add_args *a = ud;
    unsigned char raw[32];
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->t[i].name, a->name) == 0)
            return cairn_err_set(err, CAIRN_EEXISTS, "a token named '%s' exists; remove it first",
                                 a->name);
    if (t->n >= CAIRN_TOKENS_MAX)
        return cairn_err_set(err, CAIRN_ELIMIT, "the file holds %d tokens, the most", CAIRN_TOKENS_MAX);
    if (cairn_sig_random(raw, sizeof raw) != 0)
        return cairn_err_set(err, CAIRN_EIO, "no random bytes from the operating system");
    strcpy(a->token, "cairn_");
    cairn_sig_b64(raw, sizeof raw, true, a->token + 6);
    OPENSSL_cleanse(raw, sizeof raw);
    t->t = cairn_realloc(t->t, (size_t)(t->n + 1) * sizeof *t->t);
    cairn_token *k = &t->t[t->n++];
    char when[40];
    memset(k, 0, sizeof *k);
    k->name = cairn_strdup(a->name);
    k->role = a->role;
    k->groups = cairn_calloc((size_t)a->n_groups + 1, sizeof *k->groups);
    for (int g = 0; g < a->n_groups; g++) k->groups[k->n_groups++] = cairn_strdup(a->groups[g]);
    k->created = cairn_strdup(cairn_rfc3339(a->now_ms, when, sizeof when));
    cairn_sig_sha256(a->token, strlen(a->token), k->sha256);
    return 0;
}

int cairn_tokens_add(const char *path, const char *name, cairn_role role,
                     const char *const *groups, int n_groups, int64_t now_ms,
                     char token[CAIRN_TOKEN_TEXT_LEN + 1], cairn_err *err) {
    token[0] = '\0';
    if (!valid_name(name))
        return cairn_err_set(err, CAIRN_EINVAL, "token name '%.80s': 1 to %d of A-Z a-z 0-9 _ . @ -",
                             name, CAIRN_TOKEN_NAME_MAX);
    if (n_groups > CAIRN_TOKEN_GROUPS_MAX)
        return cairn_err_set(err, CAIRN_ELIMIT, "more than %d groups", CAIRN_TOKEN_GROUPS_MAX);
    for (int g = 0; g < n_groups; g++)
        if (!valid_name(groups[g]))
            return cairn_err_set(err, CAIRN_EINVAL, "group '%.80s': 1 to %d of A-Z a-z 0-9 _ . @ -",
                                 groups[g], CAIRN_TOKEN_NAME_MAX);
    add_args a = {name, role, groups, n_groups, now_ms, token};
    int rc = edit(path, true, do_add, &a, err);
    if (rc) token[0] = '\0';
    return rc;
}

static int do_remove(cairn_tokens *t, void *ud, cairn_err *err) {
    const char *name = ud;
    for (int i = 0; i < t->n; i++) {
        if (strcmp(t->t[i].name, name) != 0) continue;
        token_clear(&t->t[i]);
        memmove(&t->t[i], &t->t[i + 1], (size_t)(t->n - i - 1) * sizeof *t->t);
        t->n--;
        return 0;
    }
    return cairn_err_set(err, CAIRN_ENOTFOUND, "no token named '%.80s'", name);
}

int cairn_tokens_remove(const char *path, const char *name, cairn_err *err) {
    return edit(path, false, do_remove, (void *)name, err);
}
