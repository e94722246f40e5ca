/*
 * main.c - the cairn command: global options, then one subcommand.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/journal.h"

static const char usage_text[] =
    "usage: cairn [--db PATH] COMMAND [ARGS]\n"
    "\n"
    "Workflows:\n"
    "  check FILE...                      check workflows; print every error\n"
    "  graph FILE [--format dot|mermaid]  print a workflow's step graph\n"
    "  actions [--json]                   the built-in actions and their fields\n"
    "  run FILE [--input k=v]... [--inputs-file F] [--json]\n"
    "                                     run a workflow to its end in this process\n"
    "Runs:\n"
    "  runs [--json]                      list runs, newest first\n"
    "  show RUN [--json]                  a run's status, inputs, outputs and steps\n"
    "  journal RUN [--json]               every event of a run\n"
    "  resume                             finish every unfinished run\n"
    "  cancel RUN                         stop a run and roll it back\n"
    "  fork RUN --from STEP [--input k=v]...\n"
    "                                     re-run an ended run from STEP, keeping the rest\n"
    "  pause RUN | unpause RUN            start no new step (running ones finish) / go on\n"
    "Approvals:\n"
    "  approvals [--json]                 pending approvals\n"
    "  approve RUN STEP [--as NAME] [--comment TEXT]\n"
    "  reject RUN STEP [--as NAME] [--comment TEXT]\n"
    "  approval-link RUN STEP --url URL [--as NAME] [--expires-at TIME]\n"
    "                                     a signed, single-use link to decide it\n"
    "Audit:\n"
    "  verify [RUN...] [--heads F] [--export-heads F]\n"
    "                                     check the journal's hash chains and heads\n"
    "  timeline RUN                       what happened in a run, step by step\n"
    "  export RUN [--format jsonl|json]   a run, its definition and chain head, for archiving\n"
    "  import FILE                        take an export into this journal\n"
    "  replay [RUN...] [--definition F]   re-take a run's decisions and compare with its journal\n"
    "  migrate --from JOURNAL --to JOURNAL  copy a journal into another store\n"
    "Triggers:\n"
    "  trigger SOURCE --payload FILE --dry-run [--workflows DIR] [--json]\n"
    "                                     what a webhook from SOURCE would start\n"
    "  token add NAME --role ROLE [--group G]... | token list | token rm NAME\n"
    "                                     the server's API tokens (--tokens FILE)\n"
    "Serving:\n"
    "  serve --workflows DIR [--listen HOST:PORT] [--public-url URL]\n"
    "                                     the engine and an HTTP API in one process\n"
    "Secrets:\n"
    "  secret set NAME                    store a secret (value read from stdin)\n"
    "  secret list | secret rm NAME       names only; values never leave the file\n"
    "Help:\n"
    "  help [COMMAND]                     this list, or one command's usage (also COMMAND --help)\n"
    "\n"
    "The journal is --db PATH, else $CAIRN_DB, else ./cairn.db; a postgres:// URL\n"
    "names a journal in PostgreSQL (its key: CAIRN_FILES.key or CAIRN_JOURNAL_KEY).\n";

typedef struct {
    const char *name;
    cli_cmd_fn fn;
} command;

static const command commands[] = {
    {"check", cmd_check},   {"graph", cmd_graph},     {"run", cmd_run},
    {"resume", cmd_resume}, {"cancel", cmd_cancel},   {"show", cmd_show},
    {"runs", cmd_runs},     {"journal", cmd_journal}, {"verify", cmd_verify},
    {"secret", cmd_secret}, {"actions", cmd_actions}, {"pause", cmd_pause},
    {"unpause", cmd_unpause}, {"approvals", cmd_approvals}, {"approve", cmd_approve},
    {"reject", cmd_reject}, {"trigger", cmd_trigger}, {"token", cmd_token},
    {"timeline", cmd_timeline}, {"export", cmd_export}, {"import", cmd_import},
    {"serve", cmd_serve},   {"fork", cmd_fork},
    {"replay", cmd_replay},
    {"approval-link", cmd_approval_link},
    {"migrate", cmd_migrate},
};

void cli_error(const cairn_err *err) {
    char msg[CAIRN_ERR_MSG_MAX + CAIRN_ERR_FILE_MAX + 32];
    fprintf(stderr, "cairn: %s\n", cairn_err_format(err, msg, sizeof msg));
}

int cli_open_journal(const char *db, cairn_journal **j, cairn_err *err) {
    cairn_journal_config cfg = {.role = CAIRN_JOURNAL_READER};
    int rc = cairn_journal_open(db, &cfg, j, err);
    if (rc == 0 && cairn_journal_warning(*j))
        fprintf(stderr, "cairn: warning: %s\n", cairn_journal_warning(*j));
    return rc;
}

int cli_lookup_exit(int code) { return code == CAIRN_ENOTFOUND ? EXIT_USAGE : EXIT_JOURNAL; }

int cli_journal_exists(const char *db) {
    cairn_journal *j = NULL;
    cairn_err err;
    int rc = cli_open_journal(db, &j, &err);
    cairn_journal_close(j);
    if (rc == 0) return 0;
    cli_error(&err);
    return EXIT_JOURNAL;
}

int cli_sync_mode(cairn_sync_mode *out) {
    const char *v = getenv("CAIRN_SYNC");
    *out = CAIRN_SYNC_FULL;
    if (v == NULL || *v == '\0' || strcmp(v, "full") == 0) return 0;
    if (strcmp(v, "normal") == 0) {
        *out = CAIRN_SYNC_NORMAL;
        return 0;
    }
    return cli_usage("CAIRN_SYNC is full or normal, not '%s'", v);
}

int cli_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cairn: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return EXIT_USAGE;
}

const char *cli_opt_value(int argc, char **argv, int *i, const char *name) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

/* The journal: --db WHERE (before or after the command), else $CAIRN_DB,
 * else ./cairn.db.  A path or a postgres:// URL (engine/journal.h). */
static void default_db(cli_opts *o) {
    const char *env = getenv("CAIRN_DB");
    o->db = env && *env ? env : CLI_DEFAULT_DB;
}

static bool db_opt(cli_opts *o, int argc, char **argv, int *i) {
    const char *v = cli_opt_value(argc, argv, i, "--db");
    if (v) o->db = v;
    return v != NULL;
}

bool cli_common_opt(cli_opts *o, int argc, char **argv, int *i) {
    if (db_opt(o, argc, argv, i)) return true;
    if (strcmp(argv[*i], "--json") == 0) {
        o->json = true;
        return true;
    }
    return false;
}

void cli_print_json(FILE *out, jv v, bool pretty) {
    jv s = jv_dump_string(v, pretty ? JV_PRINT_PRETTY | JV_PRINT_SPACE1 : 0);
    fprintf(out, "%s\n", jv_string_value(s));
    jv_free(s);
}

bool cli_tty(void) { return isatty(STDOUT_FILENO) == 1; }

bool cli_colour(void) {
    const char *no = getenv("NO_COLOR");
    return cli_tty() && (no == NULL || *no == '\0');
}

int main(int argc, char **argv) {
    cli_opts o = {0};
    default_db(&o);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (db_opt(&o, argc, argv, &i)) {
            continue;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else {
            return cli_usage("unknown option '%s' (see cairn --help)", argv[i]);
        }
    }
    if (i >= argc) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (cli_wants_help(argc - i - 1, argv + i + 1)) return cli_help_command("help");
        if (i + 1 >= argc) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (i + 2 < argc) return cli_usage("usage: cairn help [COMMAND]");
        return cli_help_command(argv[i + 1]);
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(commands[k].name, argv[i]) != 0) continue;
        if (cli_wants_help(argc - i - 1, argv + i + 1)) return cli_help_command(argv[i]);
        if (cli_sync_mode(&o.sync) != 0) return EXIT_USAGE;
        return commands[k].fn(&o, argc - i - 1, argv + i + 1);
    }
    return cli_usage("unknown command '%s' (see cairn --help)", argv[i]);
}
