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
 * Masking (cairn_secrets_mask, secrets_mask.c) replaces by "***", in every
 * string and object key, each of these spellings of each secret's value:
 *   - the value itself;
 *   - for values of at least CAIRN_SECRET_SPELLING_MIN bytes, also:
 *     the value upper-cased and lower-cased (ASCII, as jq's ascii_upcase and
 *     ascii_downcase); the body of its JSON string, as Cairn and as jq's
 *     tojson escape it; hex, lower and upper case; base64 in the standard and
 *     the URL-safe alphabets, with or without padding: the value's own
 *     encoding, and, for a value inside a longer encoded string, the run of
 *     whole 3-byte groups that encodes the same at each of the three offsets
 *     (the one or two characters at each edge, which mix the value's first
 *     or last bytes with its neighbours', are left);
 *   - any of the above URL-encoded: a string holding '%' is also searched
 *     with every %XX decoded (either case of hex digit, whichever characters
 *     the encoder chose to escape), and a spelling holding a space is also
 *     searched with '+' for it.
 * A shorter value is masked only where it appears as it is: its other
 * spellings are a handful of characters that ordinary text holds by chance
 * (hex "6162" for "ab"), and masking them would eat stored data.  A value of
 * one byte still masks that byte everywhere: a secret that short protects
 * nothing, and leaking it would be worse than the noise.
 * Not caught: any other transformation (part of the value, reversed, hashed,
 * encrypted, compressed, mixed case, base64 or hex wrapped across lines,
 * two encodings stacked other than URL-encoding over one above, JSON with
 * non-ASCII escaped as \uXXXX, any other encoding).  Masking is a safety
 * net for mistakes, not a barrier against a workflow author who means to
 * leak a secret.
 * Cost: the spellings (at most 20 a secret) are computed once per loaded set
 * and sorted by length; masking a string is one memmem per spelling no
 * longer than it, plus a percent-decoded pass when it holds '%'; a value
 * holding none is stored as it is, not rebuilt (`make bench`, "mask").
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
#define CAIRN_SECRET_SPELLING_MIN 8   /* bytes: shorter values are masked as they are only */

typedef struct cairn_secrets {
    int count;
    char **names;
    char **values;
    size_t *lens;
    struct cairn_secret_spellings *spellings;   /* what masking searches; secrets_mask.c */
} cairn_secrets;

/* Where the secrets file and its key file are, for a journal at db_path:
 * $CAIRN_SECRETS and $CAIRN_SECRET_KEY_FILE, else beside the journal's
 * local files (store.h, cairn_journal_files).  NULL when there are none (a
 * journal in a database without CAIRN_FILES): then loading gives the
 * environment's secrets only, and storing one is refused, saying so. */
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

/* Whether s (may be NULL) holds a secret of that name. */
bool cairn_secrets_has(const cairn_secrets *s, const char *name);

/* v (consumed) with every occurrence of every secret value, in each spelling
 * listed above, in strings and object keys (at any depth), replaced by "***".
 * What the journal, logs and API keep.  s may be NULL. */
jv cairn_secrets_mask(jv v, const cairn_secrets *s);

/* Private to secrets*.c: (re)compute s's spellings from its values; free them. */
void cairn__secrets_spell(cairn_secrets *s);
void cairn__secrets_spellings_free(struct cairn_secret_spellings *sp);

void cairn_secrets_free(cairn_secrets *s);

#endif
