/*
 * cmd_migrate.c - `cairn migrate --from A --to B`: copy a journal into
 * another store (a SQLite file or a PostgreSQL database, either way), with
 * its chains, ids and key (engine/journal.h, cairn_journal_copy).
 */
#include <stdio.h>

#include "cli/cli.h"

int cmd_migrate(cli_opts *o, int argc, char **argv) {
    const char *from = NULL, *to = NULL, *v;
    for (int i = 0; i < argc; i++) {
        if ((v = cli_opt_value(argc, argv, &i, "--from")) != NULL) from = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--to")) != NULL) to = v;
        else if (!cli_common_opt(o, argc, argv, &i)) from = NULL, to = NULL, i = argc;
    }
    if (from == NULL || to == NULL)
        return cli_usage("usage: cairn migrate --from JOURNAL --to JOURNAL");
    cairn_copy_counts c;
    cairn_err err;
    int rc = cairn_journal_copy(from, to, &c, &err);
    if (rc) {
        cli_error(&err);
        return rc == CAIRN_EINVAL ? EXIT_USAGE : EXIT_JOURNAL;
    }
    fprintf(stderr, "cairn: copied %d runs (%lld events), %d definitions, %d commands,"
            " %d idempotency keys, %d claims\n", c.runs, (long long)c.events, c.definitions,
            c.commands, c.requests, c.claims);
    return EXIT_OK;
}
