/*
 * replay_journal.c - replaying the runs of a journal (replay.h): each
 * against the definition it is pinned to, compiled once per definition
 * however many runs share it, or against one given; children looked up in
 * the same journal; the secrets beside it loaded once to mask with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "engine/replay.h"

/* A definition met so far, and its replayer. */
typedef struct known_def {
    char hash[65];
    cairn_replayer *rp;
    const cairn_workflow *wf;    /* the replayer's */
    struct known_def *next;
} known_def;

struct cairn_replay_journal {
    cairn_journal *j;
    cairn_secrets *secrets;
    known_def *defs;
    cairn_replayer *fixed;       /* the definition given, or NULL */
};

static int child_of(void *ud, const char *child_id, jv *created, const cairn_workflow **wf,
                    cairn_err *err);

static known_def *definition(cairn_replay_journal *rj, const char *hash, const char *run_id,
                             cairn_err *err) {
    for (known_def *d = rj->defs; d; d = d->next)
        if (strcmp(d->hash, hash) == 0) return d;
    cairn_workflow *wf = NULL;
    if (cairn_journal_definition(rj->j, hash, run_id, &wf, err) != 0) return NULL;
    known_def *d = cairn_calloc(1, sizeof *d);
    snprintf(d->hash, sizeof d->hash, "%s", hash);
    d->wf = wf;
    d->rp = cairn_replayer_new(wf, rj->secrets, child_of, rj);
    d->next = rj->defs;
    rj->defs = d;
    return d;
}

/* cairn_replay_child_fn: the child's run_created and its definition. */
static int child_of(void *ud, const char *child_id, jv *created, const cairn_workflow **wf,
                    cairn_err *err) {
    cairn_replay_journal *rj = ud;
    cairn_event *evs = NULL;
    int n = 0;
    char pin[65];
    int rc = cairn_journal_load_events(rj->j, child_id, &evs, &n, pin, err);
    if (rc == 0 && n == 0) rc = CAIRN_ENOTFOUND;
    known_def *d = rc == 0 ? definition(rj, pin, child_id, err) : NULL;
    if (rc == 0 && d == NULL) rc = err->code;
    if (rc == 0) {
        *created = jv_parse(evs[0].data ? evs[0].data : "{}");
        *wf = d->wf;
    }
    cairn_events_free(evs, n);
    return rc;
}

cairn_replay_journal *cairn_replay_journal_new(cairn_journal *j, cairn_workflow *fixed,
                                               cairn_err *warning) {
    cairn_replay_journal *rj = cairn_calloc(1, sizeof *rj);
    char *file = NULL, *key = NULL;
    rj->j = j;
    cairn_journal_secrets_paths(j, &file, &key);
    if (cairn_secrets_load(file, key, &rj->secrets, warning) != 0) rj->secrets = NULL;
    else cairn_err_clear(warning);
    free(file);
    free(key);
    if (fixed) rj->fixed = cairn_replayer_new(fixed, rj->secrets, child_of, rj);
    return rj;
}

void cairn_replay_journal_free(cairn_replay_journal *rj) {
    if (rj == NULL) return;
    while (rj->defs) {
        known_def *d = rj->defs;
        rj->defs = d->next;
        cairn_replayer_free(d->rp);
        free(d);
    }
    cairn_replayer_free(rj->fixed);
    cairn_secrets_free(rj->secrets);
    free(rj);
}

int cairn_replay_journal_run(cairn_replay_journal *rj, const char *run_id,
                             cairn_replay_result *out, cairn_err *err) {
    cairn_event *evs = NULL;
    int n = 0;
    char pin[65];
    known_def *d = NULL;
    int rc = cairn_journal_load_events(rj->j, run_id, &evs, &n, pin, err);
    if (rc == 0 && n == 0) rc = cairn_err_set(err, CAIRN_ENOTFOUND, "no run %s", run_id);
    if (rc == 0 && rj->fixed == NULL && (d = definition(rj, pin, run_id, err)) == NULL)
        rc = err->code;
    if (rc == 0) rc = cairn_replay_run(rj->fixed ? rj->fixed : d->rp, evs, n, out, err);
    cairn_events_free(evs, n);
    return rc;
}
