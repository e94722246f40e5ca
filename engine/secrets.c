/*
 * secrets.c - sealing and opening secrets with AES-256-GCM.  See secrets.h;
 * masking is in secrets_mask.c.
 */
#include "engine/secrets.h"
#include "common/json.h"
#include "engine/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jv.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mem.h"

#define IV_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32

extern char **environ;

void cairn_secrets_paths(const char *db_path, char **file, char **key_file) {
    const char *f = getenv("CAIRN_SECRETS"), *k = getenv("CAIRN_SECRET_KEY_FILE");
    /* a journal in a database with no CAIRN_FILES has no file: NULL */
    const char *base = cairn_journal_files(db_path);
    *file = f && *f ? cairn_strdup(f) : base ? cairn_sprintf("%s.secrets", base) : NULL;
    *key_file = k && *k ? cairn_strdup(k) : base ? cairn_sprintf("%s.secrets.key", base) : NULL;
}

bool cairn_secret_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > CAIRN_SECRET_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

void cairn_secrets_free(cairn_secrets *s) {
    if (s == NULL) return;
    for (int i = 0; i < s->count; i++) {
        OPENSSL_cleanse(s->values[i], s->lens[i]);
        free(s->values[i]);
        free(s->names[i]);
    }
    free(s->names);
    free(s->values);
    free(s->lens);
    cairn__secrets_spellings_free(s->spellings);
    free(s);
}

bool cairn_secrets_has(const cairn_secrets *s, const char *name) {
    for (int i = 0; s && i < s->count; i++)
        if (strcmp(s->names[i], name) == 0) return true;
    return false;
}

static void secrets_put(cairn_secrets *s, const char *name, const char *value, size_t len) {
    for (int i = 0; i < s->count; i++) {
        if (strcmp(s->names[i], name) != 0) continue;
        OPENSSL_cleanse(s->values[i], s->lens[i]);
        free(s->values[i]);
        s->values[i] = cairn_strndup(value, len);
        s->lens[i] = len;
        return;
    }
    s->names = cairn_realloc(s->names, (size_t)(s->count + 1) * sizeof *s->names);
    s->values = cairn_realloc(s->values, (size_t)(s->count + 1) * sizeof *s->values);
    s->lens = cairn_realloc(s->lens, (size_t)(s->count + 1) * sizeof *s->lens);
    s->names[s->count] = cairn_strdup(name);
    s->values[s->count] = cairn_strndup(value, len);
    s->lens[s->count] = len;
    s->count++;
}

/* ---- the key ------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int key_from_env(const char *hex, unsigned char key[KEY_LEN], cairn_err *err) {
    if (strlen(hex) != 2 * KEY_LEN)
        return cairn_err_set(err, CAIRN_EINVAL, "CAIRN_SECRET_KEY must be 64 hex digits");
    for (int i = 0; i < KEY_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return cairn_err_set(err, CAIRN_EINVAL, "CAIRN_SECRET_KEY must be 64 hex digits");
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int key_from_file(const char *path, bool create, unsigned char key[KEY_LEN],
                         cairn_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0 && errno == ENOENT && create) {
        if (getrandom(key, KEY_LEN, 0) != KEY_LEN)
            return cairn_err_set(err, CAIRN_EIO, "getrandom: %s", strerror(errno));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0) return cairn_err_set(err, CAIRN_EIO, "%s: %s", path, strerror(errno));
        int rc = (write(fd, key, KEY_LEN) == KEY_LEN && fsync(fd) == 0)
                     ? 0 : cairn_err_set(err, CAIRN_EIO, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (fd < 0)
        return cairn_err_set(err, CAIRN_ENOTFOUND,
                             "no secret key: set CAIRN_SECRET_KEY or create %s (%s)", path,
                             strerror(errno));
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
        rc = cairn_err_set(err, CAIRN_EAUTH, "%s: the secret key must not be readable by others"
                           " (chmod 600)", path);
    else if (read(fd, key, KEY_LEN) != KEY_LEN)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: not a 32-byte key", path);
    close(fd);
    return rc;
}

/* A journal in a database, and neither CAIRN_FILES nor the secrets' own
 * variables set (cairn_secrets_paths gave NULL). */
static int no_files(cairn_err *err) {
    return cairn_err_set(err, CAIRN_EINVAL, "the secrets of a journal in a database are kept in"
                         " local files: set CAIRN_FILES (CAIRN_FILES.secrets and .secrets.key),"
                         " or CAIRN_SECRETS and CAIRN_SECRET_KEY_FILE");
}

static int get_key(const char *key_file, bool create, unsigned char key[KEY_LEN], cairn_err *err) {
    const char *hex = getenv("CAIRN_SECRET_KEY");
    if (hex && *hex) return key_from_env(hex, key, err);
    if (key_file == NULL) return no_files(err);
    return key_from_file(key_file, create, key, err);
}

/* ---- sealing ----------------------------------------------------------- */

static int seal(const unsigned char key[KEY_LEN], const char *name, const char *value,
                size_t len, char **b64) {
    size_t raw_len = IV_LEN + len + TAG_LEN;
    unsigned char *raw = cairn_malloc(raw_len);
    int outl = 0, rc = -1;
    if (getrandom(raw, IV_LEN, 0) != IV_LEN) goto done;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
        EVP_EncryptUpdate(c, NULL, &outl, (const unsigned char *)name, (int)strlen(name)) == 1 &&
        EVP_EncryptUpdate(c, raw + IV_LEN, &outl, (const unsigned char *)value, (int)len) == 1 &&
        EVP_EncryptFinal_ex(c, raw + IV_LEN + outl, &outl) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + IV_LEN + len) == 1) {
        *b64 = cairn_malloc(4 * ((raw_len + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)*b64, raw, (int)raw_len);
        rc = 0;
    }
    EVP_CIPHER_CTX_free(c);
done:
    OPENSSL_cleanse(raw, raw_len);
    free(raw);
    return rc;
}

/* Returns 0 and *value (caller frees), or -1 when the value does not open
 * (wrong key, tampered, or swapped from another name). */
static int open_sealed(const unsigned char key[KEY_LEN], const char *name, const char *b64,
                       char **value, size_t *len) {
    size_t b64_len = strlen(b64);
    unsigned char *raw = cairn_malloc(b64_len / 4 * 3 + 3);
    int n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)b64_len), rc = -1, outl = 0;
    while (n > 0 && b64_len > 0 && b64[--b64_len] == '=') n--;   /* padding */
    if (n < IV_LEN + TAG_LEN) {
        free(raw);
        return -1;
    }
    size_t clen = (size_t)n - IV_LEN - TAG_LEN;
    char *plain = cairn_malloc(clen + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
        EVP_DecryptUpdate(c, NULL, &outl, (const unsigned char *)name, (int)strlen(name)) == 1 &&
        EVP_DecryptUpdate(c, (unsigned char *)plain, &outl, raw + IV_LEN, (int)clen) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, raw + IV_LEN + clen) == 1 &&
        EVP_DecryptFinal_ex(c, (unsigned char *)plain + outl, &outl) == 1) {
        plain[clen] = '\0';
        *value = plain;
        *len = clen;
        rc = 0;
    } else {
        OPENSSL_cleanse(plain, clen);
        free(plain);
    }
    EVP_CIPHER_CTX_free(c);
    free(raw);
    return rc;
}

/* ---- the file ------------------------------------------------------------ */

/* The file's "secrets" object; an absent file is an empty one. */
static int read_file(const char *path, jv *secrets, cairn_err *err) {
    if (path == NULL) {   /* no file: the environment's secrets alone */
        *secrets = jv_object();
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno != ENOENT) return cairn_err_set(err, CAIRN_EIO, "%s: %s", path, strerror(errno));
        *secrets = jv_object();
        return 0;
    }
    char *buf = cairn_malloc(CAIRN_SECRETS_FILE_MAX + 1);
    size_t n = fread(buf, 1, CAIRN_SECRETS_FILE_MAX + 1, f);
    fclose(f);
    int rc = 0;
    jv doc = n > CAIRN_SECRETS_FILE_MAX ? jv_invalid() : cairn_json_parse(buf, n);
    free(buf);
    jv s = jv_get_kind(doc) == JV_KIND_OBJECT ? jv_object_get(jv_copy(doc), jv_string("secrets"))
                                              : jv_invalid();
    if (jv_get_kind(s) != JV_KIND_OBJECT) {
        jv_free(s);
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: not a Cairn secrets file", path);
    } else {
        *secrets = s;
    }
    jv_free(doc);
    return rc;
}

static int fsync_dir(const char *path) {
    char *copy = cairn_strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Write, fsync, rename over, fsync the folder. */
static int write_file(const char *path, jv secrets, cairn_err *err) {
    jv doc = jv_object_set(jv_object(), jv_string("cairn_secrets"), jv_number(1));
    doc = jv_object_set(doc, jv_string("secrets"), secrets);
    jv text = jv_dump_string(doc, JV_PRINT_SORTED | JV_PRINT_PRETTY);
    char *tmp = cairn_sprintf("%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t len = (size_t)jv_string_length_bytes(jv_copy(text));
    if (fd < 0 || write(fd, jv_string_value(text), len) != (ssize_t)len || fsync(fd) != 0 ||
        close(fd) != 0 || (fd = -1, rename(tmp, path) != 0) || fsync_dir(path) != 0) {
        rc = cairn_err_set(err, CAIRN_EIO, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
    }
    jv_free(text);
    free(tmp);
    return rc;
}

int cairn_secrets_set(const char *file, const char *key_file, const char *name,
                      const char *value, size_t len, cairn_err *err) {
    unsigned char key[KEY_LEN];
    jv secrets = jv_invalid();
    char *b64 = NULL;
    if (!cairn_secret_name_ok(name))
        return cairn_err_set(err, CAIRN_EINVAL, "secret name '%s': use letters, digits and _"
                             " (not first), at most %d", name, CAIRN_SECRET_NAME_MAX);
    if (len > CAIRN_SECRET_VALUE_MAX)
        return cairn_err_set(err, CAIRN_ELIMIT, "secret '%s' is larger than %d bytes", name,
                             CAIRN_SECRET_VALUE_MAX);
    if (file == NULL) return no_files(err);
    int rc = get_key(key_file, true, key, err);
    if (rc == 0) rc = read_file(file, &secrets, err);
    if (rc == 0 && seal(key, name, value, len, &b64) != 0)
        rc = cairn_err_set(err, CAIRN_EIO, "could not encrypt secret '%s'", name);
    if (rc == 0) {
        secrets = jv_object_set(secrets, jv_string(name), jv_string(b64));
        rc = write_file(file, secrets, err);
        secrets = jv_invalid();
    }
    jv_free(secrets);
    free(b64);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int cairn_secrets_remove(const char *file, const char *key_file, const char *name,
                         cairn_err *err) {
    (void)key_file;
    jv secrets = jv_invalid();
    if (file == NULL) return no_files(err);
    int rc = read_file(file, &secrets, err);
    if (rc) return rc;
    if (!jv_object_has(jv_copy(secrets), jv_string(name))) {
        jv_free(secrets);
        return cairn_err_set(err, CAIRN_ENOTFOUND, "no secret '%s' in %s", name, file);
    }
    return write_file(file, jv_object_delete(secrets, jv_string(name)), err);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cairn_secrets_names(const char *file, char ***names, int *n, cairn_err *err) {
    jv secrets = jv_invalid();
    int rc = read_file(file, &secrets, err);
    if (rc) return rc;
    *n = 0;
    *names = cairn_calloc((size_t)jv_object_length(jv_copy(secrets)) + 1, sizeof **names);
    jv_object_foreach(secrets, k, v) {
        (*names)[(*n)++] = cairn_strdup(jv_string_value(k));
        jv_free(k);
        jv_free(v);
    }
    jv_free(secrets);
    qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return 0;
}

static void load_env(cairn_secrets *s) {
    static const char prefix[] = "CAIRN_SECRET_";
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0) continue;
        const char *name = *e + sizeof prefix - 1, *eq = strchr(name, '=');
        if (!eq) continue;
        char *n = cairn_strndup(name, (size_t)(eq - name));
        if (strcmp(n, "KEY") != 0 && strcmp(n, "KEY_FILE") != 0 && cairn_secret_name_ok(n))
            secrets_put(s, n, eq + 1, strlen(eq + 1));
        free(n);
    }
}

int cairn_secrets_load(const char *file, const char *key_file, cairn_secrets **out,
                       cairn_err *err) {
    cairn_secrets *s = cairn_calloc(1, sizeof *s);
    jv sealed = jv_invalid();
    unsigned char key[KEY_LEN];
    int rc = read_file(file, &sealed, err);
    if (rc == 0 && jv_object_length(jv_copy(sealed)) > 0) rc = get_key(key_file, false, key, err);
    if (rc == 0) {
        jv_object_foreach(sealed, k, v) {
            char *value = NULL;
            size_t len = 0;
            if (rc == 0 && (jv_get_kind(v) != JV_KIND_STRING ||
                            open_sealed(key, jv_string_value(k), jv_string_value(v), &value, &len)))
                rc = cairn_err_set(err, CAIRN_EAUTH, "secret '%s' in %s does not open with this"
                                   " key (wrong key, or the file was altered)",
                                   jv_string_value(k), file);
            if (value) {
                secrets_put(s, jv_string_value(k), value, len);
                OPENSSL_cleanse(value, len);
                free(value);
            }
            jv_free(k);
            jv_free(v);
        }
    }
    jv_free(sealed);
    OPENSSL_cleanse(key, sizeof key);
    if (rc) {
        cairn_secrets_free(s);
        return rc;
    }
    load_env(s);
    cairn__secrets_spell(s);
    *out = s;
    return 0;
}
