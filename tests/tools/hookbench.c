/*
 * hookbench.c - `make bench`'s webhook load (bench/hooks.sh): CLIENTS
 * concurrent clients post Alertmanager webhooks to a `cairn serve` for
 * SECONDS, each alert new (its own fingerprint), each client on one
 * keep-alive connection, the next request sent when the answer came.
 *
 *   hookbench load PORT CLIENTS SECONDS PAIRS
 *       prints the latency from the request's first byte to the answer
 *       (the run's run_created durable: the run started), p50 and p99,
 *       runs started per second, and failed requests (any answer but 201,
 *       or a 201 naming no run); writes "FINGERPRINT RUN" a line to PAIRS.
 *   hookbench verify DB PAIRS WORKFLOW
 *       checks the journal after the server stopped: every accepted
 *       webhook's dedupe claim names its run, that run is in the journal,
 *       and the journal holds no other run of WORKFLOW.  Exit 1 otherwise.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/journal.h"

#define MAX_CLIENTS 256
#define MAX_SAMPLES 2000000

typedef struct client {
    int id, port;
    int64_t deadline_ms;
    int n_ok, n_failed;
    double *lat_us;              /* per accepted request */
    char (*fp)[17];
    char (*run)[CAIRN_RUN_ID_MAX];
    int cap;
} client;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int dial(int port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* One answer: its status and body (into body, at most len - 1 bytes). */
static int answer(int fd, char *body, size_t len) {
    char buf[16384];
    size_t have = 0;
    char *end = NULL;
    while (end == NULL) {
        if (have + 1 >= sizeof buf) return -1;
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0) return -1;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    const char *cl = strcasestr(buf, "Content-Length:");
    long want = cl ? strtol(cl + 15, NULL, 10) : 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    size_t head = (size_t)(end + 4 - buf), got = have - head;
    if (want < 0 || (size_t)want >= len) return -1;
    memcpy(body, end + 4, got);
    while ((long)got < want) {
        ssize_t r = recv(fd, body + got, (size_t)want - got, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    body[want] = '\0';
    return status;
}

static void *load(void *arg) {
    client *c = arg;
    char body[2048], req[4096], got[65536];
    int fd = dial(c->port);
    for (int k = 0; fd >= 0 && cairn_now_ms() < c->deadline_ms; k++) {
        char fp[17];
        snprintf(fp, sizeof fp, "%04x%012x", c->id, k);
        int n = snprintf(body, sizeof body,
                         "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"cairn\","
                         "\"groupLabels\":{\"alertname\":\"BenchAlert\"},\"commonLabels\":{},"
                         "\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":"
                         "\"BenchAlert\",\"severity\":\"critical\",\"instance\":\"host-%d:9100\"},"
                         "\"annotations\":{\"summary\":\"bench\"},\"startsAt\":"
                         "\"2026-12-07T07:00:00Z\",\"fingerprint\":\"%s\"}]}", c->id, fp);
        int m = snprintf(req, sizeof req, "POST /v1/hooks/alertmanager HTTP/1.1\r\nHost: bench\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", n, body);
        int64_t t0 = now_us();
        int status = send_all(fd, req, (size_t)m) ? answer(fd, got, sizeof got) : -1;
        int64_t t1 = now_us();
        const char *run = strstr(got, "\"run\":\"");
        if (status != 201 || run == NULL || c->n_ok >= c->cap) {
            c->n_failed++;
            if (status < 0) {   /* the connection is gone: a new one */
                close(fd);
                fd = dial(c->port);
            }
            continue;
        }
        c->lat_us[c->n_ok] = (double)(t1 - t0);
        memcpy(c->fp[c->n_ok], fp, sizeof fp);
        snprintf(c->run[c->n_ok], CAIRN_RUN_ID_MAX, "%.*s", (int)strcspn(run + 7, "\""), run + 7);
        c->n_ok++;
    }
    if (fd >= 0) close(fd);
    else c->n_failed++;
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_load(int port, int clients, int seconds, const char *pairs) {
    if (clients < 1 || clients > MAX_CLIENTS || seconds < 1) return 2;
    client *cs = cairn_calloc((size_t)clients, sizeof *cs);
    pthread_t th[MAX_CLIENTS];
    int64_t start = cairn_now_ms();
    for (int i = 0; i < clients; i++) {
        cs[i] = (client){.id = i, .port = port, .deadline_ms = start + seconds * 1000,
                         .cap = MAX_SAMPLES / clients};
        cs[i].lat_us = cairn_calloc((size_t)cs[i].cap, sizeof *cs[i].lat_us);
        cs[i].fp = cairn_calloc((size_t)cs[i].cap, sizeof *cs[i].fp);
        cs[i].run = cairn_calloc((size_t)cs[i].cap, sizeof *cs[i].run);
        pthread_create(&th[i], NULL, load, &cs[i]);
    }
    for (int i = 0; i < clients; i++) pthread_join(th[i], NULL);
    double took_s = (double)(cairn_now_ms() - start) / 1000.0;
    int ok = 0, failed = 0;
    for (int i = 0; i < clients; i++) ok += cs[i].n_ok, failed += cs[i].n_failed;
    double *all = cairn_calloc((size_t)ok + 1, sizeof *all);
    FILE *f = fopen(pairs, "w");
    int k = 0;
    for (int i = 0; i < clients; i++)
        for (int j = 0; j < cs[i].n_ok; j++) {
            all[k++] = cs[i].lat_us[j];
            if (f) fprintf(f, "%s %s\n", cs[i].fp[j], cs[i].run[j]);
        }
    if (f) fclose(f);
    qsort(all, (size_t)ok, sizeof *all, by_value);
    double p50 = ok ? all[ok / 2] / 1000.0 : 0, p99 = ok ? all[(size_t)((ok - 1) * 0.99)] / 1000.0 : 0;
    printf("%-44s %9.2f ms %10s\n", "webhook to run started, p50", p50, "-");
    printf("%-44s %9.2f ms %10s\n", "webhook to run started, p99", p99, "-");
    printf("%-44s %9.0f /s %10s\n", "runs started from webhooks", ok / took_s, "-");
    printf("%-44s %9d    %10s\n", "webhooks failed (of all sent)", failed, "-");
    for (int i = 0; i < clients; i++) {
        free(cs[i].lat_us);
        free(cs[i].fp);
        free(cs[i].run);
    }
    free(cs);
    free(all);
    return failed ? 1 : 0;
}

static int run_verify(const char *db, const char *pairs, const char *workflow) {
    cairn_journal *j = NULL;
    cairn_journal_config jc = {.role = CAIRN_JOURNAL_READER};
    cairn_err err;
    if (cairn_journal_open(db, &jc, &j, &err) != 0) {
        fprintf(stderr, "hookbench: %s\n", err.msg);
        return 1;
    }
    char *space = cairn_sprintf("dedupe/%s", workflow);
    FILE *f = fopen(pairs, "r");
    char fp[64], run[64];
    int n = 0, bad = 0;
    while (f && fscanf(f, "%63s %63s", fp, run) == 2) {
        char *held = NULL;
        cairn_run_row row = {0};
        n++;
        bool claimed = cairn_journal_get_claim(j, space, fp, &held, NULL) == 0 &&
                       strncmp(held, run, strlen(run)) == 0 && held[strlen(run)] == ' ';
        bool there = cairn_journal_get_run(j, run, &row, NULL) == 0 && row.workflow &&
                     strcmp(row.workflow, workflow) == 0;
        if (!claimed || !there) bad++;
        cairn_run_row_clear(&row);
        free(held);
    }
    if (f) fclose(f);
    cairn_run_row *rows = NULL;
    int n_rows = 0, mine = 0;
    if (cairn_journal_list_runs(j, NULL, &rows, &n_rows, &err) == 0)
        for (int i = 0; i < n_rows; i++) mine += rows[i].workflow && strcmp(rows[i].workflow, workflow) == 0;
    cairn_run_rows_free(rows, n_rows);
    printf("%-44s %9s    %10s\n", "every accepted webhook has exactly one run",
           bad == 0 && mine == n ? "yes" : "NO", "-");
    if (bad || mine != n)
        fprintf(stderr, "hookbench: %d accepted, %d without their run, %d runs in the journal\n", n,
                bad, mine);
    free(space);
    cairn_journal_close(j);
    return bad || mine != n;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "load") == 0)
        return run_load(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5]);
    if (argc == 5 && strcmp(argv[1], "verify") == 0) return run_verify(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: hookbench load PORT CLIENTS SECONDS PAIRS | verify DB PAIRS WORKFLOW\n");
    return 2;
}
