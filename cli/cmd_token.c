/*
 * cmd_token.c - `cairn token add|list|rm`: the server's API tokens
 * (server/tokens.h).
 *
 * The file is --tokens FILE, else $CAIRN_TOKENS, else DB.tokens beside the
 * journal.  A new token is printed once, on stdout alone, so that
 * `cairn token add ci --role viewer > ci.token` keeps it and nothing else.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/mem.h"
#include "engine/store.h"
#include "server/tokens.h"

typedef struct {
    const char *verb, *name, *role, *file;
    const char **groups;
    int n_groups;
} token_args;

static int parse_args(cli_opts *o, int argc, char **argv, token_args *a) {
    const char *v;
    a->groups = cairn_calloc((size_t)argc + 1, sizeof *a->groups);
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--role")) != NULL) a->role = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--group")) != NULL) a->groups[a->n_groups++] = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--tokens")) != NULL) a->file = v;
        else if (argv[i][0] == '-') return cli_usage("token: unknown option '%s'", argv[i]);
        else if (a->verb == NULL) a->verb = argv[i];
        else if (a->name == NULL) a->name = argv[i];
        else return cli_usage("token: one name at a time");
    }
    return 0;
}

/* 2 for what the user named wrong, 3 for a file that cannot be used. */
static int fail(const cairn_err *err) {
    cli_error(err);
    bool usage = err->code == CAIRN_EINVAL || err->code == CAIRN_EEXISTS || err->code == CAIRN_ENOTFOUND;
    return usage ? EXIT_USAGE : EXIT_JOURNAL;
}

static int token_add(const token_args *a, const char *file) {
    cairn_role role;
    cairn_err err;
    char token[CAIRN_TOKEN_TEXT_LEN + 1];
    if (a->name == NULL || a->role == NULL)
        return cli_usage("usage: cairn token add NAME --role viewer|operator|admin [--group G]...");
    if (cairn_role_parse(a->role, &role, &err) != 0) return fail(&err);
    if (cairn_tokens_add(file, a->name, role, a->groups, a->n_groups, cairn_wall_ms(), token, &err) != 0)
        return fail(&err);
    printf("%s\n", token);
    fprintf(stderr, "cairn: token '%s' (%s) added to %s; it is shown only now\n", a->name,
            cairn_role_name(role), file);
    return EXIT_OK;
}

static jv entry_json(const cairn_token *k) {
    jv groups = jv_array();
    for (int g = 0; g < k->n_groups; g++) groups = jv_array_append(groups, jv_string(k->groups[g]));
    jv o = jv_object_set(jv_object(), jv_string("name"), jv_string(k->name));
    o = jv_object_set(o, jv_string("role"), jv_string(cairn_role_name(k->role)));
    o = jv_object_set(o, jv_string("groups"), groups);
    return jv_object_set(o, jv_string("created"), jv_string(k->created));
}

static int token_list(const cli_opts *o, const char *file) {
    cairn_tokens *t = NULL;
    cairn_err err;
    if (cairn_tokens_load(file, &t, &err) != 0) return fail(&err);
    jv all = jv_array();
    for (int i = 0; i < cairn_tokens_count(t); i++) {
        const cairn_token *k = cairn_tokens_at(t, i);
        if (o->json) {
            all = jv_array_append(all, entry_json(k));
            continue;
        }
        printf("%-24s %-9s %s  ", k->name, cairn_role_name(k->role), k->created);
        for (int g = 0; g < k->n_groups; g++) printf("%s%s", g ? "," : "", k->groups[g]);
        printf("%s\n", k->n_groups ? "" : "-");
    }
    if (o->json) cli_print_json(stdout, all, true);
    else jv_free(all);
    cairn_tokens_free(t);
    return EXIT_OK;
}

static int token_rm(const token_args *a, const char *file) {
    cairn_err err;
    if (a->name == NULL) return cli_usage("usage: cairn token rm NAME");
    if (cairn_tokens_remove(file, a->name, &err) != 0) return fail(&err);
    fprintf(stderr, "cairn: token '%s' removed from %s\n", a->name, file);
    return EXIT_OK;
}

int cmd_token(cli_opts *o, int argc, char **argv) {
    token_args a = {0};
    int rc = parse_args(o, argc, argv, &a);
    const char *env = getenv("CAIRN_TOKENS");
    const char *base = cairn_journal_files(o->db);
    char *file = a.file ? cairn_strdup(a.file)
                 : env && *env ? cairn_strdup(env)
                 : base ? cairn_sprintf("%s.tokens", base) : NULL;
    if (file == NULL && rc == 0)
        rc = cli_usage("the journal is in a database: name the tokens file (--tokens FILE,"
                       " CAIRN_TOKENS or CAIRN_FILES)");
    if (rc == 0 && a.verb && strcmp(a.verb, "add") == 0) rc = token_add(&a, file);
    else if (rc == 0 && a.verb && strcmp(a.verb, "list") == 0 && a.name == NULL) rc = token_list(o, file);
    else if (rc == 0 && a.verb && strcmp(a.verb, "rm") == 0) rc = token_rm(&a, file);
    else if (rc == 0) rc = cli_usage("usage: cairn token add NAME --role ROLE [--group G]... | token list | token rm NAME");
    free(file);
    free(a.groups);
    return rc;
}
