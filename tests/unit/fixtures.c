#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/store_pg.h"
#include "test.h"

char *fx_run_created_data(const char *data) {
    jv d = jv_parse(data);
    if (jv_get_kind(d) != JV_KIND_OBJECT) {   /* bytes a test sends as they are */
        jv_free(d);
        return cairn_strdup(data);
    }
    jv w = jv_object_get(jv_copy(d), jv_string("workflow"));
    if (!jv_is_valid(w)) d = jv_object_set(d, jv_string("workflow"), jv_string("wf"));
    jv_free(w);
    jv h = jv_object_get(jv_copy(d), jv_string("def_hash"));
    if (!jv_is_valid(h)) d = jv_object_set(d, jv_string("def_hash"), jv_string("h1"));
    jv_free(h);
    jv text = jv_dump_string(d, JV_PRINT_SORTED);
    char *out = cairn_strdup(jv_string_value(text));
    jv_free(text);
    return out;
}

cairn_event *fx_event(const char *run, int64_t seq, cairn_event_type t, const char *data) {
    cairn_event *ev = cairn_calloc(1, sizeof *ev);
    snprintf(ev->run_id, sizeof ev->run_id, "%s", run);
    ev->seq = seq;
    ev->time_ms = 1000 + seq;
    ev->type = t;
    ev->data = t == CAIRN_EV_RUN_CREATED ? fx_run_created_data(data) : cairn_strdup(data);
    ev->data_len = strlen(ev->data);
    if (t != CAIRN_EV_RUN_CREATED) ev->step = cairn_strdup("a");
    return ev;
}

void fx_put_def(cairn_store *s) {
    cairn_err err;
    CHECK_INT(s->ops->put_definition(s, "h1", "wf", "wf.yaml", "src", 3, &err), 0);
}

void fx_free_events(cairn_event **evs, int n) {
    for (int i = 0; i < n; i++) {
        cairn_event_clear(evs[i]);
        free(evs[i]);
    }
}

/* ---- a PostgreSQL server of the test's own ------------------------------------ */

static char pg_dir[512];
static int pg_port;

void fx_pg_start(int databases) {
    /* the postgres user must reach it: not under the test's private folder */
    snprintf(pg_dir, sizeof pg_dir, "/tmp/cairn-pg-XXXXXX");
    if (mkdtemp(pg_dir) == NULL) TEST_FAIL("mkdtemp: %s", pg_dir);
    char *cmd = cairn_sprintf("sh tests/servers/pg.sh start %s %ld", pg_dir, (long)getpid());
    FILE *p = popen(cmd, "r");
    if (p == NULL || fscanf(p, "%d", &pg_port) != 1) TEST_FAIL("%s: no port", cmd);
    pclose(p);
    free(cmd);
    for (int i = 0; i < databases; i++) {
        cmd = cairn_sprintf("psql -X -q -h %s/sock -p %d -U postgres -d postgres"
                            " -c 'CREATE DATABASE cairn%d' >/dev/null", pg_dir, pg_port, i);
        if (system(cmd) != 0) TEST_FAIL("%s", cmd);
        free(cmd);
    }
}

int fx_pg_port(void) { return pg_port; }

const char *fx_pg_dir(void) { return pg_dir; }

char *fx_pg_url(int i, const char *user) {
    return cairn_sprintf("postgresql://%s@127.0.0.1:%d/cairn%d", user, pg_port, i);
}

void fx_psql(int i, const char *sql) {
    char *cmd = cairn_sprintf("psql -X -q -h %s/sock -p %d -U postgres -d cairn%d -c \"%s\""
                              " >/dev/null", pg_dir, pg_port, i, sql);
    if (system(cmd) != 0) TEST_FAIL("%s", cmd);
    free(cmd);
}

cairn_store *fx_pg_open(int i) {
    char *url = fx_pg_url(i, "postgres");
    cairn_store *s = NULL;
    cairn_err err;
    if (cairn_store_open_pg(url, CAIRN_PG_CREATE, CAIRN_SYNC_FULL, &s, &err))
        TEST_FAIL("open %s: %s", url, err.msg);
    free(url);
    return s;
}

char *fx_pg_value(int i, const char *sql) {
    char *cmd = cairn_sprintf("psql -X -q -At -h %s/sock -p %d -U postgres -d cairn%d -c \"%s\"",
                              pg_dir, pg_port, i, sql);
    FILE *p = popen(cmd, "r");
    char buf[512] = "";
    if (p == NULL || fgets(buf, sizeof buf, p) == NULL) buf[0] = '\0';
    if (p) pclose(p);
    free(cmd);
    return cairn_strdup(buf);
}

int64_t fx_pg_int(int i, const char *sql) {
    char *v = fx_pg_value(i, sql);
    int64_t n = atoll(v);
    free(v);
    return n;
}

int64_t fx_at(const char *rfc3339) {
    int64_t ms;
    if (cairn_rfc3339_parse(rfc3339, &ms) != 0) TEST_FAIL("bad time %s", rfc3339);
    return ms / 1000;
}

cairn_tz *fx_zone(const char *name) {
    cairn_tz *tz = NULL;
    cairn_err err;
    if (cairn_tz_load(name, &tz, &err) != 0) TEST_FAIL("zone %s: %s", name, err.msg);
    return tz;
}
