/*
 * cmd_secret.c - `cairn secret set NAME` (value on stdin), `list`, `rm NAME`.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "engine/secrets.h"

static int read_stdin(char **value, size_t *len) {
    cairn_buf b = CAIRN_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        cairn_buf_append(&b, chunk, n);
        if (b.len > CAIRN_SECRET_VALUE_MAX + 1) break;
    }
    if (b.len > 0 && b.data[b.len - 1] == '\n') b.len--;   /* `echo x |` adds one */
    if (b.len > 0 && b.data[b.len - 1] == '\r') b.len--;
    *len = b.len;
    *value = cairn_buf_detach(&b);
    (*value)[*len] = '\0';
    return 0;
}

int cmd_secret(cli_opts *o, int argc, char **argv) {
    const char *words[3] = {0};
    int nwords = 0;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if (nwords == 2) return cli_usage("usage: cairn secret set NAME | list | rm NAME");
        words[nwords++] = argv[i];
    }
    char *file = NULL, *key_file = NULL;
    cairn_secrets_paths(o->db, &file, &key_file);
    cairn_err err;
    int rc = EXIT_OK;
    if (nwords == 2 && strcmp(words[0], "set") == 0) {
        char *value = NULL;
        size_t len = 0;
        read_stdin(&value, &len);
        if (cairn_secrets_set(file, key_file, words[1], value, len, &err) != 0) {
            cli_error(&err);
            rc = err.code == CAIRN_EINVAL || err.code == CAIRN_ELIMIT ? EXIT_USAGE : EXIT_JOURNAL;
        } else {
            printf("secret %s stored in %s\n", words[1], file);
        }
        memset(value, 0, len);
        free(value);
    } else if (nwords == 2 && strcmp(words[0], "rm") == 0) {
        if (cairn_secrets_remove(file, key_file, words[1], &err) != 0) {
            cli_error(&err);
            rc = err.code == CAIRN_ENOTFOUND ? EXIT_USAGE : EXIT_JOURNAL;
        }
    } else if (nwords == 1 && strcmp(words[0], "list") == 0) {
        char **names = NULL;
        int n = 0;
        if (cairn_secrets_names(file, &names, &n, &err) != 0) {
            cli_error(&err);
            rc = EXIT_JOURNAL;
        }
        jv arr = jv_array();
        for (int i = 0; i < n; i++) {
            if (o->json) arr = jv_array_append(arr, jv_string(names[i]));
            else printf("%s\n", names[i]);
            free(names[i]);
        }
        free(names);
        if (o->json && rc == 0) cli_print_json(stdout, arr, false);
        else jv_free(arr);
    } else {
        rc = cli_usage("usage: cairn secret set NAME (value on stdin) | list | rm NAME");
    }
    free(file);
    free(key_file);
    return rc;
}
