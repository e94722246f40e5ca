/*
 * Fuzz target: loading and checking a workflow (dsl/yaml.c, dsl/workflow.c
 * and the checkers, expressions compiled), and printing its diagnostics
 * with the source line and caret, whose length is capped.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "dsl/workflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cairn_workflow *wf = NULL;
    cairn_diags d = CAIRN_DIAGS_INIT;
    const char *src = (const char *)data;
    cairn_workflow_load("fuzz.yaml", src, size, cairn_action_lookup_sig, &wf, &d);
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    cairn_diags_print(&d, f, src, size);
    fclose(f);
    /* the source line and the caret under it are bounded, however long the line */
    for (char *line = out, *nl; line && (nl = strchr(line, '\n')) != NULL; line = nl + 1)
        if (strncmp(line, "  ", 2) == 0 && (size_t)(nl - line) > CAIRN_DIAG_LINE_MAX + 16)
            abort();
    free(out);
    cairn_diags_free(&d);
    cairn_workflow_free(wf);
    return 0;
}
