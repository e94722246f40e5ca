/*
 * cmd_check.c - `cairn check` and `cairn graph`: the language front end.
 */
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "cli/cli.h"
#include "dsl/workflow.h"

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

int cmd_check(cli_opts *o, int argc, char **argv) {
    int bad = 0, files = 0;
    for (int i = 0; i < argc; i++) {
        if (cli_common_opt(o, argc, argv, &i)) continue;
        files++;
        cairn_workflow *wf = cli_load_workflow(argv[i]);
        if (wf == NULL) bad++;
        else printf("%s: ok (%s, %d steps)\n", argv[i], wf->name, wf->n_steps);
        cairn_workflow_free(wf);
    }
    if (files == 0) return cli_usage("check: name at least one workflow file");
    return bad ? EXIT_USAGE : EXIT_OK;
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
