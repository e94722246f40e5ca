/*
 * orphan.c - the process groups of attempts: journaled as they start,
 * killed at recovery when a crash left them running.
 *
 * A worker starts the process (actions/proc.c) and the orchestrator owns the
 * journal, so the worker posts the group's id and its leader's start time to
 * the orchestrator's inbox (MSG_SPAWNED, before the attempt's own result,
 * which comes later through the same queue), and the orchestrator appends
 * step_spawned {pgid, start, host}.  The fold keeps it while the attempt is
 * in flight (fold.h, cairn_spawned); recovery kills the group, if it is
 * still the same one (actions/pgroup.h), before the attempt is retried,
 * failed or asked about, and says in step_crashed what it found.
 *
 * The gap: the engine may die after the process started and before its
 * step_spawned is durable: the group is reported once it has run for
 * CAIRN_PROC_REPORT_MS (so that short steps cost no commit for it), then
 * takes one commit.  The leader then dies with the engine
 * (PR_SET_PDEATHSIG, proc.h), but a child it started in that time is in no
 * journal and outlives both.
 */
#include <stddef.h>
#include <stdio.h>

#include "actions/pgroup.h"
#include "common/mem.h"
#include "engine/engine_int.h"

void eng_attempt_spawned(const cairn_attempt_info *info, int64_t pgid, int64_t start) {
    eng_msg *m = cairn_calloc(1, sizeof *m);
    m->kind = MSG_SPAWNED;
    m->attempt = (eng_attempt *)((char *)info - offsetof(eng_attempt, info));
    m->pgid = pgid;
    m->start = start;
    eng_post(info->spawned_ud, m);
}

void eng_spawned(cairn_engine *e, eng_msg *m) {
    eng_attempt *a = m->attempt;
    if (eng_is_sticky(e)) return;   /* nothing more becomes durable */
    jv data = jv_object_set(jv_object(), jv_string("pgid"), jv_number((double)m->pgid));
    data = jv_object_set(data, jv_string("start"), jv_number((double)m->start));
    data = jv_object_set(data, jv_string("host"), jv_string(cairn_pgroup_host()));
    eng_emit(e, a->run, CAIRN_EV_STEP_SPAWNED, a->step, a->index, a->attempt, data);
}

jv eng_kill_orphan(const eng_run *r, int step, int index, int attempt, jv data) {
    const cairn_spawned *p = cairn_run_state_spawned(r->st, step, index, attempt);
    if (p == NULL) return data;
    cairn_orphan_outcome o = cairn_pgroup_kill_orphan(p->pgid, p->start, p->host,
                                                      CAIRN_ORPHAN_WAIT_MS);
    if (o == CAIRN_ORPHAN_STUCK)
        fprintf(stderr, "cairn: run %s step %s: process group %lld still there %d ms after"
                        " SIGKILL; retrying beside it\n", r->st->id, r->plan->ids[step],
                (long long)p->pgid, CAIRN_ORPHAN_WAIT_MS);
    return jv_object_set(data, jv_string("orphan"), jv_string(cairn_orphan_outcome_name(o)));
}
