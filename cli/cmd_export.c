/*
 * cmd_export.c - `cairn export RUN` and `cairn import FILE`: a run carried
 * out of one journal and into another, for archiving.
 *
 * An export holds the run's events as journaled (each with its hash), the
 * definition the run is pinned to, and the run's chain head (audit_fmt.h).
 * Import believes none of it: before anything is opened for writing, the
 * export's key check value must be the target journal key's (the chain is
 * an HMAC: only the same key can check it), the definition must hash to the
 * hash its run_created event pins, every event's hash must follow from the
 * one before under that key (an edited event is named by its seq), and the
 * events must reach the head the export records (a truncated export falls
 * short).  Only a run that has ended is taken: an imported run is an
 * archive, never resumed there.  Then the run goes in as its own engine
 * wrote it, and `verify --heads FILE` checks it there.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/audit_fmt.h"
#include "actions/action.h"
#include "cli/cli.h"
#include "common/mem.h"

/* ---- export ------------------------------------------------------------------ */

static int export_args(cli_opts *o, int argc, char **argv, const char **run_id, bool *jsonl) {
    const char *v;
    *run_id = NULL;
    *jsonl = true;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--format")) != NULL) {
            if (strcmp(v, "jsonl") != 0 && strcmp(v, "json") != 0)
                return cli_usage("--format is jsonl or json, not '%s'", v);
            *jsonl = strcmp(v, "jsonl") == 0;
        } else if (argv[i][0] == '-' || *run_id) {
            return cli_usage("usage: cairn export RUN [--format jsonl|json] [--db PATH]");
        } else {
            *run_id = argv[i];
        }
    }
    if (*run_id == NULL) return cli_usage("usage: cairn export RUN [--format jsonl|json] [--db PATH]");
    return 0;
}

int cmd_export(cli_opts *o, int argc, char **argv) {
    const char *run_id;
    bool jsonl;
    int rc = export_args(o, argc, argv, &run_id, &jsonl);
    if (rc) return rc;
    audit_journal *j = NULL;
    cairn_run_state *st = NULL;
    cairn_workflow *wf = NULL;
    audit_export x = {0};
    cairn_err err;
    if ((rc = audit_open(o->db, false, &j, &err)) == 0 &&
        (rc = audit_load_run(j, run_id, &st, &wf, &err)) == 0)
        rc = audit_events(j, run_id, &x.events, &x.n, &err);
    if (rc == 0) {   /* the definition as loaded: its source checked against its hash */
        snprintf(x.run, sizeof x.run, "%s", run_id);
        x.def_hash = cairn_strdup(wf->sha256);
        x.def_name = cairn_strdup(wf->name);
        x.def_path = cairn_strdup(wf->file);
        x.source = cairn_strndup(wf->source, wf->source_len);
        x.source_len = wf->source_len;
        audit_identity(j, x.heads.journal, x.heads.key_check);
        audit_heads_add(&x.heads, run_id, st->last_seq, st->head);
        audit_export_write(stdout, &x, jsonl);
        if (fflush(stdout) != 0) rc = cairn_err_set(&err, CAIRN_EIO, "writing the export failed");
    }
    if (rc) {
        cli_error(&err);
        rc = j ? cli_lookup_exit(rc) : EXIT_JOURNAL;
    }
    audit_export_free(&x);
    cairn_run_state_free(st);
    cairn_workflow_free(wf);
    audit_close(j);
    return rc;
}

/* ---- import ------------------------------------------------------------------ */

/* run_created pins the definition the export carries. */
static int check_pin(const cairn_event *ev, const char *def_hash, const char *path,
                     cairn_err *err) {
    jv d = jv_parse(ev->data);
    jv h = jv_get_kind(d) == JV_KIND_OBJECT ? jv_object_get(jv_copy(d), jv_string("def_hash"))
                                             : jv_null();
    int rc = 0;
    if (jv_get_kind(h) != JV_KIND_STRING || strcmp(jv_string_value(h), def_hash) != 0)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: event 1 (run_created) pins %s, the export"
                           " carries definition %s", path,
                           jv_get_kind(h) == JV_KIND_STRING ? jv_string_value(h) : "none", def_hash);
    jv_free(h);
    jv_free(d);
    return rc;
}

/* Every event in order, each hash following from the one before under key. */
static int check_chain(const audit_export *x, cairn_chain *chain, const char *path,
                       cairn_err *err) {
    int rc = 0;
    for (int i = 0; rc == 0 && i < x->n; i++) {
        cairn_event copy = x->events[i];
        if (copy.seq != i + 1) {
            rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: run %s: event %d is missing (the export"
                               " holds event %lld there)", path, x->run, i + 1, (long long)copy.seq);
            break;
        }
        cairn_chain_hash(chain, i ? x->events[i - 1].hash : NULL, &copy);
        if (memcmp(copy.hash, x->events[i].hash, CAIRN_HASH_LEN) != 0)
            rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: run %s: event %lld does not match its"
                               " hash chain (the export was edited)", path, x->run,
                               (long long)copy.seq);
    }
    return rc;
}

/* The events reach the head the export records for its run, and end it. */
static int check_head(const audit_export *x, const char *path, cairn_err *err) {
    const audit_head *h = NULL;
    for (int i = 0; i < x->heads.n; i++)
        if (strcmp(x->heads.v[i].run, x->run) == 0) h = &x->heads.v[i];
    if (h == NULL)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: no chain head for run %s", path, x->run);
    if (x->n < h->events)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: run %s: event %d is missing: the export"
                             " ends at event %d, its head is event %lld (the export was cut"
                             " short)", path, x->run, x->n + 1, x->n, (long long)h->events);
    if (x->n > h->events || memcmp(x->events[x->n - 1].hash, h->head, CAIRN_HASH_LEN) != 0)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: run %s: event %lld is not the head the"
                             " export records (the export was edited)", path, x->run,
                             (long long)h->events);
    if (!cairn_event_ends_run(x->events[x->n - 1].type))
        return cairn_err_set(err, CAIRN_ESTATE, "%s: run %s has not ended: only a run that has"
                             " ended is imported", path, x->run);
    return 0;
}

/* All an import must prove before it writes. */
static int check_export(const audit_export *x, cairn_chain *chain, const char *mine, const char *path,
                        cairn_err *err) {
    char actual[65];
    int rc;
    if (strcmp(mine, x->heads.key_check) != 0)
        return cairn_err_set(err, CAIRN_EAUTH, "%s: exported under another journal key (key_check"
                             " %s, this journal's key gives %s): it cannot be checked here",
                             path, x->heads.key_check, mine);
    cairn_workflow_hash(x->source, x->source_len, actual);
    if (strcmp(actual, x->def_hash) != 0)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: the definition hashes to %s, not %s (the"
                             " export was edited)", path, actual, x->def_hash);
    if (x->n == 0 || x->events[0].type != CAIRN_EV_RUN_CREATED)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: run %s: event 1 (run_created) is missing",
                             path, x->run);
    rc = check_chain(x, chain, path, err);
    if (rc == 0) rc = check_head(x, path, err);
    if (rc == 0) rc = check_pin(&x->events[0], x->def_hash, path, err);
    return rc;
}

/* The export's definition compiled here, as runs of it are loaded. */
static int compile(const audit_export *x, cairn_workflow **wf, cairn_err *err) {
    cairn_diags d = CAIRN_DIAGS_INIT;
    int rc = cairn_workflow_load(x->def_path, x->source, x->source_len, cairn_action_lookup_sig,
                                 wf, &d);
    if (rc) cairn_diags_to_err(&d, err);
    cairn_diags_free(&d);
    return rc;
}

int cmd_import(cli_opts *o, int argc, char **argv) {
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if (argv[i][0] == '-' || path) return cli_usage("usage: cairn import FILE [--db PATH]");
        path = argv[i];
    }
    if (path == NULL) return cli_usage("usage: cairn import FILE [--db PATH]");
    audit_export x = {0};
    audit_journal *j = NULL;
    cairn_workflow *wf = NULL;
    cairn_chain *chain = NULL;
    char mine[AUDIT_HEX_LEN + 1];
    cairn_err err;
    int rc = cairn_journal_key_of(o->db, &chain, mine, &err), out = EXIT_JOURNAL;
    if (rc)   /* a key made now could never check the export */
        fprintf(stderr, "cairn: import checks an export with its journal's key (DB.key,"
                " CAIRN_FILES.key or CAIRN_JOURNAL_KEY)\n");
    if (rc == 0) {
        out = EXIT_USAGE;
        rc = audit_export_read(path, &x, &err);
    }
    if (rc == 0) rc = check_export(&x, chain, mine, path, &err);
    if (rc == 0) rc = compile(&x, &wf, &err);
    if (rc == 0) {
        out = EXIT_JOURNAL;
        cairn_event **evs = cairn_malloc((size_t)x.n * sizeof *evs);
        for (int i = 0; i < x.n; i++) evs[i] = &x.events[i];
        rc = audit_open(o->db, true, &j, &err);
        if (rc == 0) {
            rc = audit_import(j, wf, evs, x.n, &err);
            if (rc == CAIRN_EEXISTS) out = EXIT_USAGE;
        }
        free(evs);
    }
    if (rc == 0) {
        char hex[AUDIT_HEX_LEN + 1];
        audit_hex(x.events[x.n - 1].hash, hex);
        printf("imported run %s: %d events, head %s\n", x.run, x.n, hex);
    } else {
        cli_error(&err);
    }
    cairn_workflow_free(wf);
    cairn_chain_free(chain);
    audit_export_free(&x);
    audit_close(j);
    return rc ? out : EXIT_OK;
}
