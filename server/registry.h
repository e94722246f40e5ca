/*
 * registry.h - the workflows a server offers, by name, loaded from one
 * directory and loaded again on demand (SIGHUP).
 *
 * A file that does not load is reported and skipped; on a reload it keeps
 * the version it had, if it had one.  A file gone from the directory is no
 * longer offered.  Two files with one workflow name: the one loaded first
 * keeps it, the other is reported.  Runs are pinned to a definition's hash
 * (engine.h), so a reload never changes a run already started.
 *
 * Threads: any; a lock guards the table.  Memory: what is returned is the
 * caller's.
 */
#ifndef CAIRN_SERVER_REGISTRY_H
#define CAIRN_SERVER_REGISTRY_H

#include <jv.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"
#include "dsl/workflow.h"

#define CAIRN_SERVE_WORKFLOWS_MAX 10000   /* files one directory may offer */

typedef struct srv_registry srv_registry;

/* Hands a loaded workflow (consumed) to the engine: 0 and its hash, or an
 * error. */
typedef int (*srv_add_fn)(void *ud, cairn_workflow *wf, char hash[65], cairn_err *err);
/* Sees each workflow loaded, before add takes it (metrics). */
typedef void (*srv_seen_fn)(void *ud, const cairn_workflow *wf);

srv_registry *srv_registry_new(const char *dir, srv_add_fn add, srv_seen_fn seen, void *ud);
void srv_registry_free(srv_registry *r);

/* Load (or load again) every *.yaml and *.yml in the directory.  Each
 * failure is reported to `report` as "cairn: FILE: why".  *loaded and
 * *failed count files.  CAIRN_EIO when the directory cannot be read. */
int srv_registry_load(srv_registry *r, FILE *report, int *loaded, int *failed, cairn_err *err);

/* The hash of the definition offered as name; false when none is. */
bool srv_registry_find(srv_registry *r, const char *name, char hash[65]);

/* [{name, description, version, file, hash, inputs: [{name, type,
 * required, description}]}], by name. */
jv srv_registry_list(srv_registry *r);

#endif
