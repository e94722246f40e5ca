/*
 * tokens.h - the server's API tokens: a file of names, roles and groups,
 * each token kept only as its SHA-256.
 *
 * A token is "cairn_" and 43 characters of URL-safe base64: 32 bytes from
 * the operating system's random source, printed once when it is made.  The
 * file keeps the SHA-256 of the whole text.  A fast hash is enough here,
 * where a password would need a slow one (bcrypt, Argon2): a slow hash
 * protects secrets people choose, which can be guessed from a list, while
 * 256 random bits cannot be guessed at any speed; and it keeps every API
 * request's lookup cheap.  A lookup hashes what was presented and compares
 * it with every entry, each comparison in constant time, so the time taken
 * tells nothing of which entry, or how much of one, matched.
 *
 * Roles: viewer reads; operator starts, cancels, pauses and decides; admin
 * may do everything.  Groups are what `approvers: [group:NAME]` names.
 * Names and groups are 1 to CAIRN_TOKEN_NAME_MAX characters of
 * [A-Za-z0-9_.@-]; a token has at most CAIRN_TOKEN_GROUPS_MAX groups.
 *
 * The file, JSON: {"cairn_tokens": 1, "tokens": [{"name", "role",
 * "groups": [...], "sha256": HEX, "created": RFC 3339}]}.  It must be a
 * regular file that only its owner may read or write (mode 0600 or 0400):
 * any other mode is refused with the chmod that fixes it.  At most
 * CAIRN_TOKENS_FILE_MAX bytes and CAIRN_TOKENS_MAX tokens.  Edits take an
 * exclusive lock on FILE.lock, read, change, and replace the file
 * atomically (write FILE.tmp with mode 0600, fsync, rename, fsync the
 * folder), so two edits at once lose neither.
 *
 * Memory: a cairn_tokens owns its entries; cairn_tokens_free(NULL) does
 * nothing.  Pointers from cairn_tokens_at and _lookup live as long as it.
 */
#ifndef CAIRN_TOKENS_H
#define CAIRN_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define CAIRN_TOKENS_FILE_MAX (1 << 20)   /* bytes of the tokens file */
#define CAIRN_TOKENS_MAX 10000            /* tokens in the file */
#define CAIRN_TOKEN_NAME_MAX 64           /* characters of a name or a group */
#define CAIRN_TOKEN_GROUPS_MAX 32         /* groups of one token */
#define CAIRN_TOKEN_TEXT_LEN 49           /* "cairn_" and 43 base64 characters */

typedef enum { CAIRN_ROLE_VIEWER, CAIRN_ROLE_OPERATOR, CAIRN_ROLE_ADMIN } cairn_role;

typedef struct cairn_token {
    char *name;
    cairn_role role;
    char **groups;
    int n_groups;
    char *created;                     /* RFC 3339 */
    unsigned char sha256[32];
} cairn_token;

typedef struct cairn_tokens cairn_tokens;

/* "viewer", "operator", "admin". */
const char *cairn_role_name(cairn_role r);
/* The role named s: 0, or CAIRN_EINVAL with the three names in err. */
int cairn_role_parse(const char *s, cairn_role *out, cairn_err *err);
/* Whether a token of role have may do what needs role need. */
bool cairn_role_allows(cairn_role have, cairn_role need);

/* Read and check the file at path.  CAIRN_ENOTFOUND when it does not
 * exist; CAIRN_EAUTH when its mode lets others read or write it;
 * CAIRN_ELIMIT past a limit; CAIRN_ECORRUPT when it is not a tokens file
 * (err names the entry and what is wrong); CAIRN_EIO otherwise. */
int cairn_tokens_load(const char *path, cairn_tokens **out, cairn_err *err);

int cairn_tokens_count(const cairn_tokens *t);
const cairn_token *cairn_tokens_at(const cairn_tokens *t, int i);

/* The entry of the presented token, or NULL. */
const cairn_token *cairn_tokens_lookup(const cairn_tokens *t, const char *presented);

void cairn_tokens_free(cairn_tokens *t);

/* Add a token named name (the file is made when missing): its text, to be
 * shown once, into token (CAIRN_TOKEN_TEXT_LEN + 1 bytes).  CAIRN_EEXISTS
 * when the name is taken, CAIRN_EINVAL for a bad name or group, and the
 * errors of cairn_tokens_load but CAIRN_ENOTFOUND. */
int cairn_tokens_add(const char *path, const char *name, cairn_role role,
                     const char *const *groups, int n_groups, int64_t now_ms,
                     char token[CAIRN_TOKEN_TEXT_LEN + 1], cairn_err *err);

/* Remove the token named name: CAIRN_ENOTFOUND when there is none. */
int cairn_tokens_remove(const char *path, const char *name, cairn_err *err);

#endif
