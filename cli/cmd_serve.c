/*
 * cmd_serve.c - `cairn serve`: options, then server/serve.h.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/serve.h"

/* --lease-ms N: a whole number of ms (its bounds are the journal's,
 * journal.h, which names them); -1 for anything else. */
static int64_t lease(const char *v) {
    char *end;
    long long n = strtoll(v, &end, 10);
    return *v && *end == '\0' && n > 0 ? n : -1;
}

int cmd_serve(cli_opts *o, int argc, char **argv) {
    srv_serve_opts so = {.listen = "127.0.0.1:8080", .db_path = o->db, .sync = o->sync};
    const char *v, *placement = getenv("CAIRN_PLACEMENT");
    cairn_err err;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) so.db_path = o->db;
        else if ((v = cli_opt_value(argc, argv, &i, "--listen")) != NULL) so.listen = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--workflows")) != NULL) so.workflows = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--tokens")) != NULL) so.tokens = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--port-file")) != NULL) so.port_file = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--public-url")) != NULL) so.public_url = v;
        else if ((v = cli_opt_value(argc, argv, &i, "--lease-ms")) != NULL) {
            if ((so.lease_ms = lease(v)) < 0)
                return cli_usage("serve: --lease-ms %s: expected a whole number of ms", v);
        }
        else if ((v = cli_opt_value(argc, argv, &i, "--placement")) != NULL) placement = v;
        else return cli_usage("serve: unknown option '%s'", argv[i]);
    }
    if (so.workflows == NULL)
        return cli_usage("usage: cairn serve --workflows DIR [--listen HOST:PORT] [--tokens FILE]"
                         " [--public-url URL] [--lease-ms N] [--placement spread|local]");
    if (srv_place_mode_parse(placement, &so.placement, &err) != 0)
        return cli_usage("serve: %s", err.msg);
    const char *grace = getenv("CAIRN_GRACE_MS");
    if (grace && atoll(grace) > 0) so.grace_ms = atoll(grace);
    int rc = srv_serve(&so, &err);
    if (rc == 0) return EXIT_OK;
    cli_error(&err);
    return rc == CAIRN_EINVAL ? EXIT_USAGE : EXIT_JOURNAL;
}
