/*
 * wfset.h - the workflows loaded together: the files named (on a command
 * line) and the workflow files beside them (*.yaml, *.yml), among which a
 * `uses: workflow` step finds its child by name.  `cairn check` and `cairn
 * run` load the same set, so what check passes, run finds.
 *
 * cairn_wfset_check holds the set to these rules.  A workflow is *needed*
 * when it is named, or a needed one starts it by a constant name (a field
 * marked CAIRN_FIELD_WORKFLOW: wf->children).
 *   - A constant child name in a needed workflow names a loaded workflow;
 *     else an error at the name, with a did-you-mean.  When a file beside
 *     that failed to load gives that name, the error says so and its own
 *     errors are added.
 *   - Two loaded workflows of the same name are an error naming both files
 *     when a needed workflow starts a child of that name (it could start
 *     either), or when both files are named; else a warning (a copy kept
 *     beside the file run is not an error while nothing starts it by name).
 *   - A file beside that does not load is a warning (its first error),
 *     unless a needed workflow names it (above).
 *
 * A file beside whose YAML has no `cairn:` key at its top is not a
 * workflow (a compose or CI file) and is left out without a word.
 *
 * Memory: the set owns what it loads; cairn_wfset_free(NULL) does nothing.
 */
#ifndef CAIRN_WFSET_H
#define CAIRN_WFSET_H

#include "dsl/diag.h"
#include "dsl/workflow.h"

typedef struct cairn_wfset cairn_wfset;

cairn_wfset *cairn_wfset_new(cairn_action_lookup lookup);
void cairn_wfset_free(cairn_wfset *s);

/* Load path as a named workflow.  Returns it (owned by the set) or NULL,
 * its errors in diags. */
const cairn_workflow *cairn_wfset_add(cairn_wfset *s, const char *path, cairn_diags *diags);

/* Load each *.yaml and *.yml file in path's folder that the set does not
 * hold yet (compared by real path).  One that does not load is kept, with
 * its errors, for cairn_wfset_check. */
void cairn_wfset_add_siblings(cairn_wfset *s, const char *path);

/* Check the rules above: errors to errors, warnings to warnings.  Returns
 * 0, or CAIRN_ESYNTAX when there is an error. */
int cairn_wfset_check(cairn_wfset *s, cairn_diags *errors, cairn_diags *warnings);

/* The text of a file the set read (for caret lines: a cairn_diag_source). */
const char *cairn_wfset_source(void *set, const char *file, size_t *len);

/* The number of files loaded, and the i-th loaded workflow (files beside
 * first, then those named, each in the order added), or NULL past the end or
 * once taken. */
int cairn_wfset_count(const cairn_wfset *s);
const cairn_workflow *cairn_wfset_get(const cairn_wfset *s, int i);

/* Whether the i-th loaded workflow is needed (named, or started by a
 * needed one by a constant name), as the last cairn_wfset_check found. */
bool cairn_wfset_needed(const cairn_wfset *s, int i);

/* The i-th loaded workflow, now the caller's; the set keeps its source for
 * cairn_wfset_source. */
cairn_workflow *cairn_wfset_take(cairn_wfset *s, int i);

#endif
