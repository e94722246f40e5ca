/*
 * secrets.h - the encrypted secrets file, and secrets from the environment.
 *
 * `.secrets.NAME` in expressions comes from, in order:
 *   1. the environment variable CAIRN_SECRET_NAME;
 *   2. the secrets file (default DB.secrets, or $CAIRN_SECRETS): a JSON
 *      document {"cairn_secrets": 1, "secrets": {NAME: base64(iv | ciphertext
 *      | tag)}}, each value sealed with AES-256-GCM (12-byte random IV, 16-byte
 *      tag, the name as associated data, so values cannot be swapped between
 *      names).  The file is replaced atomically (write, fsync, rename, fsync
 *      the folder) and created with mode 0600.
 * The key is CAIRN_SECRET_KEY (64 hex digits), or the key file (default
 * DB.secrets.key, or $CAIRN_SECRET_KEY_FILE): 32 random bytes, mode 0600,
 * created by the first `cairn secret set`; a key file others can read is
 * refused.
 *
 * Names are [A-Za-z_][A-Za-z0-9_]*, at most CAIRN_SECRET_NAME_MAX bytes;
 * values at most CAIRN_SECRET_VALUE_MAX bytes.
 *
 * Memory: a cairn_secrets owns its names and values; free it with
 * cairn_secrets_free (NULL allowed), which wipes the values.
 */
#ifndef CAIRN_SECRETS_H
#define CAIRN_SECRETS_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define CAIRN_SECRET_NAME_MAX 128
#define CAIRN_SECRET_VALUE_MAX 65536
#define CAIRN_SECRETS_FILE_MAX (16 << 20)

typedef struct cairn_secrets {
    int count;
    char **names;
    char **values;
    size_t *lens;
} cairn_secrets;

/* Where the secrets file and its key file are, for a journal at db_path. */
void cairn_secrets_paths(const char *db_path, char **file, char **key_file);

/* Every secret: the file's (when it exists; it needs the key then) and the
 * environment's CAIRN_SECRET_* (which win).  *out is never NULL on success. */
int cairn_secrets_load(const char *file, const char *key_file, cairn_secrets **out,
                       cairn_err *err);

/* Seal value under name into the file (creating the key file if needed). */
int cairn_secrets_set(const char *file, const char *key_file, const char *name,
                      const char *value, size_t len, cairn_err *err);

/* Remove name from the file; CAIRN_ENOTFOUND when it is not there. */
int cairn_secrets_remove(const char *file, const char *key_file, const char *name,
                         cairn_err *err);

/* Names in the file (not decrypted), sorted. */
int cairn_secrets_names(const char *file, char ***names, int *n, cairn_err *err);

bool cairn_secret_name_ok(const char *name);

/* v (consumed) with every occurrence of every secret value, in strings and
 * object keys, replaced by "***".  What the journal, logs and API keep. */
jv cairn_secrets_mask(jv v, const cairn_secrets *s);

void cairn_secrets_free(cairn_secrets *s);

#endif
