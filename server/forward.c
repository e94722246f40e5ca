/*
 * forward.c - a command for a run another engine holds, recorded and
 * waited for (forward.h).
 */
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/json.h"
#include "engine/owner.h"
#include "engine/store.h"
#include "server/forward.h"

/* The command just put: the newest row for run_id of its type and data
 * (*found false when there is none: carried out already). */
static int find_mine(cairn_journal *j, const char *run_id, const char *type, const char *data,
                     int64_t *id, int64_t *at, bool *found, cairn_err *err) {
    cairn_command *cmds = NULL;
    int n = 0;
    int rc = cairn_journal_run_commands(j, run_id, &cmds, &n, err);
    *found = false;
    for (int i = n - 1; rc == 0 && i >= 0 && !*found; i--)
        if (strcmp(cmds[i].type, type) == 0 && strcmp(cmds[i].data, data) == 0) {
            *id = cmds[i].id;
            *at = cmds[i].created_at;
            *found = true;
        }
    cairn_commands_free(cmds, n);
    return rc;
}

/* Whether the row (id, at) is still in the table. */
static int waiting(cairn_journal *j, const char *run_id, int64_t id, int64_t at, bool *still,
                   cairn_err *err) {
    cairn_command *cmds = NULL;
    int n = 0;
    int rc = cairn_journal_run_commands(j, run_id, &cmds, &n, err);
    *still = false;
    for (int i = 0; rc == 0 && i < n && !*still; i++)
        *still = cmds[i].id == id && cmds[i].created_at == at;
    cairn_commands_free(cmds, n);
    return rc;
}

/* Whether run_id has ended (its row's status): the holder takes no more
 * commands for it, so one still waiting will not be carried out. */
static int run_ended(cairn_journal *j, const char *run_id, bool *ended, cairn_err *err) {
    cairn_run_row row = {0};
    int rc = cairn_journal_get_run(j, run_id, &row, err);
    *ended = rc == 0 && cairn_run_status_name_ends(row.status);
    cairn_run_row_clear(&row);
    return rc;
}

static const char *field(jv o, const char *key, jv *keep) {
    *keep = jv_get_kind(o) == JV_KIND_OBJECT ? jv_object_get(jv_copy(o), jv_string(key)) : jv_null();
    return jv_get_kind(*keep) == JV_KIND_STRING ? jv_string_value(*keep) : "";
}

/* Whether an approval_decided event after seq `before` carries the
 * decision `data` (its step and who decided). */
static int decision_journaled(cairn_journal *j, const char *run_id, const char *data,
                              int64_t before, bool *found, cairn_err *err) {
    cairn_event *evs = NULL;
    int n = 0;
    jv d = cairn_json_parse(data, strlen(data)), step, by;
    const char *want_step = field(d, "step", &step), *want_by = field(d, "by", &by);
    int rc = cairn_journal_load_events(j, run_id, &evs, &n, NULL, err);
    *found = false;
    for (int i = 0; rc == 0 && i < n && !*found; i++) {
        if (evs[i].seq <= before || evs[i].type != CAIRN_EV_APPROVAL_DECIDED || evs[i].step == NULL ||
            strcmp(evs[i].step, want_step) != 0)
            continue;
        jv e = cairn_json_parse(evs[i].data, evs[i].data_len), who;
        *found = strcmp(field(e, "by", &who), want_by) == 0;
        jv_free(who);
        jv_free(e);
    }
    cairn_events_free(evs, n);
    jv_free(step);
    jv_free(by);
    jv_free(d);
    return rc;
}

static void pause_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int srv_forward_command(cairn_journal *j, const char *run_id, const char *owner, const char *type,
                        const char *data, int64_t before, int64_t wait_ms, bool *recorded,
                        cairn_err *err) {
    int64_t id = 0, at = 0, deadline = cairn_now_ms() + wait_ms;
    bool still = true;
    *recorded = true;
    int rc = cairn_journal_put_command(j, run_id, type, data, err);
    if (rc == 0) rc = find_mine(j, run_id, type, data, &id, &at, &still, err);
    if (rc || owner == NULL || !cairn_journal_owner_alive(j, owner)) return rc;   /* for the next holder */
    bool ended = false;
    while (rc == 0 && still && !ended && cairn_now_ms() < deadline) {
        pause_ms(CAIRN_SERVE_FORWARD_POLL_MS);
        rc = waiting(j, run_id, id, at, &still, err);
        if (rc == 0 && still) rc = run_ended(j, run_id, &ended, err);
        if (rc == 0 && ended)   /* ended by the batch that took it, read in between */
            rc = waiting(j, run_id, id, at, &still, err);
    }
    if (rc == 0 && still && ended)
        rc = cairn_err_set(err, CAIRN_ESTATE, "run %s ended before the engine holding it took"
                           " this %s", run_id, type);
    if (rc || still) return rc;
    *recorded = false;
    if (strcmp(type, "decide") != 0) return 0;
    bool found = false;
    rc = decision_journaled(j, run_id, data, before, &found, err);
    if (rc == 0 && !found)
        rc = cairn_err_set(err, CAIRN_ESTATE, "the engine holding run %s found the decision moot"
                           " (decided already)", run_id);
    return rc;
}
