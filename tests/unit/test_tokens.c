/*
 * The server's API tokens file (server/tokens.h).
 */
#include "server/tokens.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mem.h"
#include "test.h"

static char *tokens_path(void) { return cairn_sprintf("%s/cairn.tokens", test_tmpdir()); }

static void write_file(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    if (!f) TEST_FAIL("cannot write %s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) TEST_FAIL("cannot read %s", path);
    char *buf = cairn_calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void add(const char *path, const char *name, cairn_role role, const char *group, char *token) {
    cairn_err err;
    const char *groups[] = {group};
    if (cairn_tokens_add(path, name, role, groups, group ? 1 : 0, 1796540531000, token, &err) != 0)
        TEST_FAIL("add %s: %s", name, err.msg);
}

TEST(tokens_add_then_look_up_by_the_token_only) {
    char *path = tokens_path();
    char alice[CAIRN_TOKEN_TEXT_LEN + 1], bot[CAIRN_TOKEN_TEXT_LEN + 1];
    cairn_err err;
    cairn_tokens *t = NULL;
    CHECK_INT(cairn_tokens_load(path, &t, &err), CAIRN_ENOTFOUND);
    add(path, "alice", CAIRN_ROLE_OPERATOR, "dba", alice);
    add(path, "ci-bot", CAIRN_ROLE_VIEWER, NULL, bot);
    CHECK_INT(strlen(alice), CAIRN_TOKEN_TEXT_LEN);
    CHECK(strncmp(alice, "cairn_", 6) == 0);
    CHECK(strcmp(alice, bot) != 0);
    struct stat sb;
    CHECK_INT(stat(path, &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0600);
    char *text = slurp(path);
    CHECK(strstr(text, alice) == NULL && strstr(text, bot) == NULL);   /* kept hashed */
    CHECK_CONTAINS(text, "\"created\":\"2026-12-06T");
    free(text);
    CHECK_INT(cairn_tokens_load(path, &t, &err), 0);
    CHECK_INT(cairn_tokens_count(t), 2);
    const cairn_token *k = cairn_tokens_lookup(t, alice);
    CHECK(k != NULL);
    CHECK_STR(k->name, "alice");
    CHECK_STR(cairn_role_name(k->role), "operator");
    CHECK_INT(k->n_groups, 1);
    CHECK_STR(k->groups[0], "dba");
    CHECK_STR(cairn_tokens_lookup(t, bot)->name, "ci-bot");
    char near[CAIRN_TOKEN_TEXT_LEN + 1];
    strcpy(near, alice);
    near[20] = near[20] == 'A' ? 'B' : 'A';
    CHECK(cairn_tokens_lookup(t, near) == NULL);
    CHECK(cairn_tokens_lookup(t, "") == NULL);
    CHECK(cairn_role_allows(CAIRN_ROLE_ADMIN, CAIRN_ROLE_OPERATOR));
    CHECK(!cairn_role_allows(CAIRN_ROLE_VIEWER, CAIRN_ROLE_OPERATOR));
    cairn_tokens_free(t);
    free(path);
}

TEST(tokens_refuse_taken_and_bad_names_and_remove) {
    char *path = tokens_path();
    char tok[CAIRN_TOKEN_TEXT_LEN + 1], bob[CAIRN_TOKEN_TEXT_LEN + 1];
    cairn_err err;
    cairn_role r;
    add(path, "alice", CAIRN_ROLE_ADMIN, NULL, tok);
    add(path, "bob", CAIRN_ROLE_ADMIN, NULL, bob);
    CHECK_INT(cairn_tokens_add(path, "alice", CAIRN_ROLE_VIEWER, NULL, 0, 0, tok, &err), CAIRN_EEXISTS);
    CHECK_STR(tok, "");
    CHECK_INT(cairn_tokens_add(path, "al ice", CAIRN_ROLE_VIEWER, NULL, 0, 0, tok, &err), CAIRN_EINVAL);
    const char *bad[] = {"ops,dba"};
    CHECK_INT(cairn_tokens_add(path, "carol", CAIRN_ROLE_VIEWER, bad, 1, 0, tok, &err), CAIRN_EINVAL);
    CHECK_INT(cairn_role_parse("root", &r, &err), CAIRN_EINVAL);
    CHECK_CONTAINS(err.msg, "expected viewer, operator or admin");
    CHECK_INT(cairn_tokens_remove(path, "alice", &err), 0);
    CHECK_INT(cairn_tokens_remove(path, "alice", &err), CAIRN_ENOTFOUND);
    cairn_tokens *t = NULL;
    CHECK_INT(cairn_tokens_load(path, &t, &err), 0);
    CHECK_INT(cairn_tokens_count(t), 1);
    CHECK_STR(cairn_tokens_lookup(t, bob)->name, "bob");
    cairn_tokens_free(t);
    free(path);
}

TEST(tokens_file_others_may_read_is_refused) {
    char *path = tokens_path();
    char tok[CAIRN_TOKEN_TEXT_LEN + 1];
    cairn_err err;
    cairn_tokens *t = NULL;
    add(path, "alice", CAIRN_ROLE_ADMIN, NULL, tok);
    const mode_t bad[] = {0644, 0640, 0604, 0660, 0602};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chmod(path, bad[i]);
        CHECK_INT(cairn_tokens_load(path, &t, &err), CAIRN_EAUTH);
        CHECK_CONTAINS(err.msg, "chmod 600");
        CHECK(t == NULL);
        /* and no edit goes through it either */
        CHECK_INT(cairn_tokens_add(path, "bob", CAIRN_ROLE_ADMIN, NULL, 0, 0, tok, &err), CAIRN_EAUTH);
    }
    chmod(path, 0400);
    CHECK_INT(cairn_tokens_load(path, &t, &err), 0);
    cairn_tokens_free(t);
    free(path);
}

static void refused(const char *text, int code, const char *why) {
    char *path = tokens_path();
    cairn_err err;
    cairn_tokens *t = NULL;
    write_file(path, text, 0600);
    int rc = cairn_tokens_load(path, &t, &err);
    if (rc != code) TEST_FAIL("%s: got %d (%s), want %d", text, rc, rc ? err.msg : "", code);
    CHECK_CONTAINS(err.msg, why);
    CHECK(t == NULL);
    free(path);
}

#define HASH "\"sha256\":\"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843\""

TEST(tokens_damaged_file_is_refused) {
    refused("", CAIRN_ECORRUPT, "not a Cairn tokens file");
    refused("{\"cairn_tokens\":2,\"tokens\":[]}", CAIRN_ECORRUPT, "version 1");
    refused("{\"cairn_tokens\":1,\"tokens\":[{\"name\":\"a\",\"role\":\"viewer\",\"groups\":[],"
            "\"sha256\":\"00\"}]}", CAIRN_ECORRUPT, "tokens[0]: sha256 is not 64 hex digits");
    refused("{\"cairn_tokens\":1,\"tokens\":[{\"name\":\"a\",\"role\":\"root\",\"groups\":[]," HASH "}]}",
            CAIRN_ECORRUPT, "tokens[0]: role");
    refused("{\"cairn_tokens\":1,\"tokens\":[{\"name\":\"a\",\"role\":\"admin\",\"groups\":[]," HASH "},"
            "{\"name\":\"a\",\"role\":\"admin\",\"groups\":[]," HASH "}]}", CAIRN_ECORRUPT,
            "tokens[1]: the name is used twice");
    refused("{\"cairn_tokens\":1,\"tokens\":[{\"name\":\"a\",\"role\":\"admin\",\"groups\":[1]," HASH "}]}",
            CAIRN_ECORRUPT, "a group is not a name");
    char *big = cairn_malloc(CAIRN_TOKENS_FILE_MAX + 2);
    memset(big, ' ', CAIRN_TOKENS_FILE_MAX + 1);
    big[CAIRN_TOKENS_FILE_MAX + 1] = '\0';
    refused(big, CAIRN_ELIMIT, "larger than 1048576 bytes");
    free(big);
}

/* Edits from several processes at once lose none: each holds FILE.lock. */
TEST(tokens_concurrent_adds_lose_nothing) {
    char *path = tokens_path();
    enum { PROCS = 8, EACH = 6 };
    for (int p = 0; p < PROCS; p++) {
        if (fork() != 0) continue;
        for (int i = 0; i < EACH; i++) {
            char name[32], tok[CAIRN_TOKEN_TEXT_LEN + 1];
            cairn_err err;
            snprintf(name, sizeof name, "p%d-%d", p, i);
            if (cairn_tokens_add(path, name, CAIRN_ROLE_VIEWER, NULL, 0, 0, tok, &err) != 0) _exit(1);
        }
        _exit(0);
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        wait(&status);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    cairn_tokens *t = NULL;
    cairn_err err;
    CHECK_INT(cairn_tokens_load(path, &t, &err), 0);
    CHECK_INT(cairn_tokens_count(t), PROCS * EACH);
    cairn_tokens_free(t);
    free(path);
}
