/*
 * cmd_check.c - `cairn check` and `cairn graph`: the language front end; the
 * set of workflows `check` and `run` load together; the secrets a run reads.
 */
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "cli/cli.h"
#include "common/mem.h"
#include "dsl/wfset.h"
#include "dsl/workflow.h"
#include "engine/secrets.h"

cairn_workflow *cli_load_workflow(const char *path) {
    cairn_diags d = CAIRN_DIAGS_INIT;
    cairn_workflow *wf = NULL;
    if (cairn_workflow_load_file(path, cairn_action_lookup_sig, &wf, &d) != 0) {
        FILE *f = fopen(path, "rb");
        char *src = NULL;
        size_t len = 0;
        if (f) {
            src = malloc(1 << 20);
            len = src ? fread(src, 1, 1 << 20, f) : 0;
            fclose(f);
        }
        cairn_diags_print(&d, stderr, src, len);
        free(src);
    }
    cairn_diags_free(&d);
    return wf;
}

/* Whether an error is in file, or in a file not named (one the named
 * files need: wfset.h). */
static bool blames(const cairn_diags *d, const char *file, const char *const *files, int n) {
    for (int i = 0; i < d->count; i++) {
        bool named = false;
        for (int k = 0; k < n && !named; k++) named = strcmp(d->items[i].file, files[k]) == 0;
        if (!named || strcmp(d->items[i].file, file) == 0) return true;
    }
    return false;
}

int cli_load_set(const char *const *files, int n, cairn_wfset **set, const cairn_workflow **wfs) {
    cairn_diags errors = CAIRN_DIAGS_INIT, warnings = CAIRN_DIAGS_INIT;
    *set = cairn_wfset_new(cairn_action_lookup_sig);
    for (int i = 0; i < n; i++) wfs[i] = cairn_wfset_add(*set, files[i], &errors);
    for (int i = 0; i < n; i++) cairn_wfset_add_siblings(*set, files[i]);
    cairn_wfset_check(*set, &errors, &warnings);
    cairn_diags_print_each(&warnings, stderr, "warning", cairn_wfset_source, *set);
    cairn_diags_print_each(&errors, stderr, "error", cairn_wfset_source, *set);
    for (int i = 0; i < n; i++)
        if (blames(&errors, files[i], files, n)) wfs[i] = NULL;
    int rc = cairn_diags_count(&errors) ? EXIT_USAGE : EXIT_OK;
    cairn_diags_free(&errors);
    cairn_diags_free(&warnings);
    return rc;
}

int cmd_check(cli_opts *o, int argc, char **argv) {
    const char **files = cairn_calloc((size_t)argc + 1, sizeof *files);
    const cairn_workflow **wfs = cairn_calloc((size_t)argc + 1, sizeof *wfs);
    cairn_wfset *set = NULL;
    int n = 0, rc;
    for (int i = 0; i < argc; i++)
        if (!cli_common_opt(o, argc, argv, &i)) files[n++] = argv[i];
    if (n == 0) {
        rc = cli_usage("check: name at least one workflow file");
    } else {
        rc = cli_load_set(files, n, &set, wfs);
        for (int i = 0; i < n; i++)
            if (wfs[i]) printf("%s: ok (%s, %d steps)\n", files[i], wfs[i]->name, wfs[i]->n_steps);
    }
    cairn_wfset_free(set);
    free(wfs);
    free(files);
    return rc;
}

/* Print each secret wf reads that s does not hold; how many. */
static int missing_secrets(const cairn_workflow *wf, const cairn_secrets *s) {
    int missing = 0;
    for (int i = 0; i < wf->n_secrets; i++) {
        const cairn_name_ref *r = &wf->secrets[i];
        if (cairn_secrets_has(s, r->name)) continue;
        fprintf(stderr, "%s:%d:%d: error: secret '%s' is not set: neither `cairn secret set "
                "%s` nor the environment (CAIRN_SECRET_%s) gives it\n", wf->file, r->line,
                r->col, r->name, r->name, r->name);
        missing++;
    }
    return missing;
}

int cli_check_secrets(const char *db, const cairn_wfset *set) {
    char *file = NULL, *key_file = NULL;
    cairn_secrets *s = NULL;
    cairn_err err;
    int n = cairn_wfset_count(set), reads = 0, missing = 0, rc = EXIT_OK;
    for (int i = 0; i < n; i++)
        if (cairn_wfset_needed(set, i)) reads += cairn_wfset_get(set, i)->n_secrets;
    if (reads == 0) return EXIT_OK;           /* nothing to read: no key needed */
    cairn_secrets_paths(db, &file, &key_file);
    if (cairn_secrets_load(file, key_file, &s, &err) != 0) {
        cli_error(&err);
        rc = EXIT_JOURNAL;
    }
    for (int i = 0; s && i < n; i++)
        if (cairn_wfset_needed(set, i)) missing += missing_secrets(cairn_wfset_get(set, i), s);
    if (missing) rc = EXIT_USAGE;
    cairn_secrets_free(s);
    free(file);
    free(key_file);
    return rc;
}

int cmd_graph(cli_opts *o, int argc, char **argv) {
    const char *format = "dot", *file = NULL, *v;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        if ((v = cli_opt_value(argc, argv, &i, "--format")) != NULL) format = v;
        else if (argv[i][0] == '-') return cli_usage("graph: unknown option '%s'", argv[i]);
        else if (file) return cli_usage("graph: one workflow file at a time");
        else file = argv[i];
    }
    if (file == NULL) return cli_usage("usage: cairn graph FILE [--format dot|mermaid]");
    if (strcmp(format, "dot") != 0 && strcmp(format, "mermaid") != 0)
        return cli_usage("graph: --format is dot or mermaid, not '%s'", format);
    cairn_workflow *wf = cli_load_workflow(file);
    if (wf == NULL) return EXIT_USAGE;
    cairn_workflow_graph(wf, format, stdout);
    cairn_workflow_free(wf);
    return EXIT_OK;
}
