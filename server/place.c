/*
 * place.c - where a new run starts (place.h).
 */
#include "server/place.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/strmap.h"
#include "engine/journal.h"
#include "engine/store_pg.h"

struct srv_place {
    srv_place_mode mode;
    char self[CAIRN_PLACE_NODE_MAX];
    pthread_mutex_t mu;          /* everything below */
    cairn_journal *j;            /* reading; NULL in local mode */
    cairn_strmap *pending;       /* engine -> starts chosen for it, not durable yet */
    uint64_t turn;               /* ties go round */
    bool failing;                /* the last read failed (said once) */
};

int srv_place_mode_parse(const char *s, srv_place_mode *mode, cairn_err *err) {
    static const struct { const char *name; srv_place_mode mode; } modes[] = {
        {"spread", SRV_PLACE_SPREAD}, {"local", SRV_PLACE_LOCAL}};
    if (s == NULL || *s == '\0') s = "spread";
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(s, modes[i].name) == 0) {
            *mode = modes[i].mode;
            return 0;
        }
    return cairn_err_set(err, CAIRN_EINVAL, "placement '%s': expected spread or local", s);
}

int srv_place_new(const char *db_path, srv_place_mode mode, const char *self, srv_place **out,
                  cairn_err *err) {
    srv_place *p = cairn_calloc(1, sizeof *p);
    p->mode = cairn_pg_url(db_path) ? mode : SRV_PLACE_LOCAL;
    snprintf(p->self, sizeof p->self, "%s", self);
    pthread_mutex_init(&p->mu, NULL);
    p->pending = cairn_strmap_new();
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    int rc = p->mode == SRV_PLACE_SPREAD ? cairn_journal_open(db_path, &jc, &p->j, err) : 0;
    if (rc) {
        srv_place_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void srv_place_free(srv_place *p) {
    if (p == NULL) return;
    cairn_journal_close(p->j);
    cairn_strmap_free(p->pending);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int srv_place_pick(const int64_t *load, int n, int prefer, uint64_t turn) {
    if (n <= 0) return -1;
    int64_t least = load[0];
    int ties = 0;
    for (int i = 1; i < n; i++)
        if (load[i] < least) least = load[i];
    if (prefer >= 0 && prefer < n && load[prefer] == least) return prefer;
    for (int i = 0; i < n; i++) ties += load[i] == least;
    int want = (int)(turn % (uint64_t)ties);
    for (int i = 0; i < n; i++)
        if (load[i] == least && want-- == 0) return i;
    return -1;
}

static int64_t pending_of(const srv_place *p, const char *node) {
    int64_t k = 0;
    return cairn_strmap_get(p->pending, node, &k) ? k : 0;
}

/* Under the lock: the live engines' loads with what is pending added, and
 * the least of them into node ("" when none can be read). */
static void choose_locked(srv_place *p, char node[CAIRN_PLACE_NODE_MAX]) {
    char **nodes = NULL;
    int64_t *runs = NULL;
    int n = 0;
    cairn_err err;
    int rc = cairn_journal_node_loads(p->j, &nodes, &runs, &n, &err);
    if (rc && !p->failing) fprintf(stderr, "cairn: placing runs: %s; they start here\n", err.msg);
    p->failing = rc != 0;
    int here = -1;
    for (int i = 0; i < n; i++) {
        runs[i] += pending_of(p, nodes[i]);
        if (strcmp(nodes[i], p->self) == 0) here = i;
    }
    int at = srv_place_pick(runs, n, here, p->turn++);
    snprintf(node, CAIRN_PLACE_NODE_MAX, "%s", at >= 0 ? nodes[at] : "");
    for (int i = 0; i < n; i++) free(nodes[i]);
    free(nodes);
    free(runs);
}

void srv_place_choose(srv_place *p, char node[CAIRN_PLACE_NODE_MAX]) {
    node[0] = '\0';
    if (p == NULL || p->mode == SRV_PLACE_LOCAL) return;
    pthread_mutex_lock(&p->mu);
    choose_locked(p, node);
    if (node[0]) cairn_strmap_put(p->pending, node, pending_of(p, node) + 1);
    pthread_mutex_unlock(&p->mu);
}

void srv_place_done(srv_place *p, const char *node) {
    if (p == NULL || node[0] == '\0') return;
    pthread_mutex_lock(&p->mu);
    int64_t k = pending_of(p, node);
    if (k > 1) cairn_strmap_put(p->pending, node, k - 1);
    else cairn_strmap_remove(p->pending, node);
    pthread_mutex_unlock(&p->mu);
}
