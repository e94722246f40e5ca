/*
 * cmd_help.c - `cairn help [COMMAND]` and `cairn COMMAND --help`: each
 * command's usage and options, from one table.
 *
 * The table lists every command main.c dispatches (help included); a test
 * (tests/integration/docs.sh) holds it, `cairn --help` and docs/cli.md to
 * the same list.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    const char *name;
    const char *text;   /* usage lines, a blank line, what it does and its options */
} help_entry;

static const help_entry entries[] = {
    {"check", "usage: cairn check FILE...\n\n"
              "Load and check each workflow file; print every error as file:line:col with\n"
              "the source line and a caret.  Exit 0 when every file is valid, 1 otherwise.\n"},
    {"graph", "usage: cairn graph FILE [--format dot|mermaid]\n\n"
              "Print the workflow's step graph (default dot).\n"},
    {"actions", "usage: cairn actions [--json]\n\n"
                "List the built-in actions and their `with` fields (* marks a required one).\n"},
    {"run", "usage: cairn run FILE [--input NAME=VALUE]... [--inputs-file F] [--json] [--db PATH]\n\n"
            "Run a workflow to its end in this process, a line per durable transition; on a\n"
            "terminal, a view: progress, durations, approve commands, decisions, outputs.\n"
            "Every *.yaml beside FILE is loaded too, for child workflows.\n"
            "  --input NAME=VALUE  one input, read as its declared type (JSON for objects and arrays)\n"
            "  --inputs-file F     a JSON object of inputs\n"
            "  --json              last stdout line: the run as `show --json` prints it\n"
            "Exit 0 when the run succeeded, 1 when it failed or was cancelled.\n"},
    {"fork", "usage: cairn fork RUN --from STEP [--input NAME=VALUE]... [--inputs-file F] [--dry-run]\n"
             "                  [--json] [--db PATH]\n\n"
             "A new run of RUN's definition (RUN has ended) that runs STEP and every step\n"
             "that needs it again, and carries the results RUN recorded for the rest, marked\n"
             "in the journal with the event they come from; driven here as `run` drives one.\n"
             "  --from STEP         the first step to run again\n"
             "  --input NAME=VALUE  replace one of RUN's inputs, read as its declared type\n"
             "  --inputs-file F     a JSON object of inputs replacing RUN's (--input wins)\n"
             "  --dry-run           say what would be carried and what would run, and why;\n"
             "                      journal nothing\n"
             "  --json              last stdout line: the fork as `show --json` prints it (with\n"
             "                      --dry-run: {run, from, inputs, notes, steps})\n"
             "Exit 0 when the fork succeeded, 1 when it failed, 2 when refused.\n"},
    {"runs", "usage: cairn runs [--json] [--db PATH]\n\n"
             "List runs, newest first: id, workflow, status, created_at.\n"},
    {"show", "usage: cairn show RUN [--json] [--db PATH]\n\n"
             "A run's status, inputs, outputs, error and steps; refused when its hash chain\n"
             "or pinned definition does not check.\n"},
    {"journal", "usage: cairn journal RUN [--json] [--db PATH]\n\n"
                "Every event of a run.\n"},
    {"resume", "usage: cairn resume [RUN] [--db PATH]\n\n"
               "Finish every unfinished run (or only RUN) in this process.\n"},
    {"cancel", "usage: cairn cancel RUN [--db PATH]\n\n"
               "Stop a run and roll it back, from any process.\n"},
    {"pause", "usage: cairn pause RUN [--db PATH]\n\n"
              "Start no new step of RUN; running ones finish (journaled).\n"},
    {"unpause", "usage: cairn unpause RUN [--db PATH]\n\n"
                "Let a paused run start steps again.\n"},
    {"approvals", "usage: cairn approvals [--json] [--db PATH]\n\n"
                  "List the approval steps waiting for a decision.\n"},
    {"approve", "usage: cairn approve RUN STEP [--as NAME] [--comment TEXT] [--db PATH]\n\n"
                "Record an approval of RUN's approval step STEP by NAME (default: the Unix\n"
                "user).  It counts for a NAME listed in `approvers`, not through `group:`.\n"},
    {"reject", "usage: cairn reject RUN STEP [--as NAME] [--comment TEXT] [--db PATH]\n\n"
               "Record a rejection of RUN's approval step STEP by NAME (default: the Unix user).\n"},
    {"approval-link", "usage: cairn approval-link RUN STEP --url URL [--as NAME] [--expires-at TIME]\n"
                      "                           [--db PATH]\n\n"
                      "Print a signed, single-use link (URL/approve/TOKEN) for NAME (default: the\n"
                      "Unix user) to decide RUN's open approval STEP on the page of a `cairn serve`\n"
                      "on this journal (docs/api.md): a new link when one was lost or expired.\n"
                      "  --url URL          where the server is reached (its --public-url)\n"
                      "  --expires-at TIME  RFC 3339; default the approval's deadline; at most 7\n"
                      "                     days ahead; a past time makes a link refused as expired\n"},
    {"verify", "usage: cairn verify [RUN...] [--heads FILE] [--export-heads FILE] [--db PATH]\n\n"
               "Check the HMAC chains, pinned definitions and runs table; print each chain head.\n"
               "  --export-heads FILE  write every run's event count and chain head to FILE\n"
               "  --heads FILE         prove no event was cut off, and no run deleted, since\n"
               "                       FILE (heads, or an export) was written\n"
               "Exit 1 when a check fails.\n"},
    {"timeline", "usage: cairn timeline RUN [--db PATH]\n\n"
                 "What happened in a run, step by step: attempts, waits, approvals, durations.\n"},
    {"export", "usage: cairn export RUN [--format jsonl|json] [--db PATH]\n\n"
               "Print a run's events, pinned definition and chain head, for archiving.\n"},
    {"import", "usage: cairn import FILE [--db PATH]\n\n"
               "Take an export into this journal (same key), checking it first.\n"},
    {"replay", "usage: cairn replay [RUN...] [--definition FILE] [--json] [--db PATH]\n\n"
               "Re-take every decision a run's journal records (readiness, if, inputs, foreach,\n"
               "retries and back-off, until, approvals, children, rollback order) and compare;\n"
               "prints consistent or the first divergence (exit 1).  No RUN: every run.\n"
               "--definition replays against another version of the workflow.\n"},
    {"migrate", "usage: cairn migrate --from JOURNAL --to JOURNAL\n\n"
                "Copy a journal into another store, either way between a SQLite file and a\n"
                "postgres:// database: its id, key check value, definitions, every run's events\n"
                "as they are (verify --heads taken before passes after), commands, idempotency\n"
                "keys and claims.  The target must be empty; it is put under the source's key.\n"
                "Refused while an engine holds a run of the source.\n"},
    {"secret", "usage: cairn secret set NAME | secret list | secret rm NAME [--db PATH]\n\n"
               "  set NAME  store a secret, its value read from stdin\n"
               "  list      the names only\n"
               "  rm NAME   remove a secret\n"},
    {"trigger", "usage: cairn trigger SOURCE --payload FILE [--dry-run] [--workflows DIR] [--json]\n\n"
                "Carry out a webhook payload from SOURCE (alertmanager, pagerduty, datadog,\n"
                "grafana, servicenow, generic) as POST /v1/hooks/SOURCE does: through the\n"
                "cairn serve holding the journal, else with an engine here that runs what it\n"
                "starts to its end; one live run per dedupe key either way.\n"
                "  --payload FILE   the body as the source sends it (- for stdin)\n"
                "  --workflows DIR  every *.yaml and *.yml in DIR (default .), when no server\n"
                "                   holds the journal, and for --dry-run\n"
                "  --dry-run        journal nothing: the runs that would start, with their\n"
                "                   inputs and dedupe keys, the resolved alerts, the matches\n"
                "                   refused and the events nothing matched\n"
                "  --json           the whole answer (with --dry-run, the normalized events)\n"
                "Exit 0 when it was carried out (and the runs started here succeeded), 1 when\n"
                "such a run failed, 2 when the payload or a match was refused, 3 when the\n"
                "journal fails.\n"},
    {"token", "usage: cairn token add NAME --role viewer|operator|admin [--group G]... [--tokens FILE]\n"
              "       cairn token list [--json] [--tokens FILE]\n"
              "       cairn token rm NAME [--tokens FILE]\n\n"
              "Manage the server's API tokens.  `add` prints the new token once; the file\n"
              "keeps only its SHA-256.  The file is --tokens FILE, else $CAIRN_TOKENS, else\n"
              "DB.tokens beside the journal; mode 0600 (any other is refused).\n"},
    {"serve", "usage: cairn serve --workflows DIR [--listen HOST:PORT] [--tokens FILE]\n"
              "                   [--port-file FILE] [--public-url URL] [--db PATH]\n"
              "                   [--lease-ms N] [--placement spread|local]\n\n"
              "Run the engine and the HTTP API (docs/api.md) in one process: serve every\n"
              "workflow in DIR, take over every unfinished run, and run until SIGTERM.\n"
              "SIGHUP loads DIR again.  See docs/operations.md.\n"
              "  --listen HOST:PORT  where to listen (default 127.0.0.1:8080; port 0: any free)\n"
              "  --workflows DIR     the *.yaml and *.yml files to serve\n"
              "  --tokens FILE       check API tokens (cairn token); without it, loopback only\n"
              "  --port-file FILE    write the port listened on to FILE once listening\n"
              "  --public-url URL    where clients reach the server: approvals' notify\n"
              "                      messages carry links under it (without it, none)\n"
              "  --lease-ms N        PostgreSQL: this node's lease (default 15000)\n"
              "  --placement spread|local\n"
              "                      PostgreSQL: place new runs on the live node holding the\n"
              "                      fewest unfinished runs (spread, the default), or here\n"},
    {"help", "usage: cairn help [COMMAND]\n       cairn COMMAND --help\n\n"
             "The list of commands, or one command's usage.\n"},
};

static const help_entry *find(const char *name) {
    for (size_t k = 0; k < sizeof entries / sizeof entries[0]; k++)
        if (strcmp(entries[k].name, name) == 0) return &entries[k];
    return NULL;
}

int cli_help_command(const char *name) {
    const help_entry *h = find(name);
    if (h == NULL) return cli_usage("unknown command '%s' (see cairn help)", name);
    fputs(h->text, stdout);
    return EXIT_OK;
}

bool cli_wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    }
    return false;
}
