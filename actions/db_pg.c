/*
 * db_pg.c - the `db` action's PostgreSQL driver, on libpq's non-blocking
 * calls so that the deadline and a stop are honoured at every stage.
 *
 * Connecting: PQconnectStartParams with the dsn expanded as the database
 * name (a connection string or URI), then PQconnectPoll driven by poll() on
 * PQsocket in slices of CAIRN_DB_POLL_SLICE_MS, for at most
 * CAIRN_DB_CONNECT_TIMEOUT_MS.  client_encoding is forced to UTF8 (JSON is
 * UTF-8).  Host names are resolved inside PQconnectStartParams, which
 * blocks: give an address, or rely on a quick local resolver.
 *
 * Classifying a failed connection needs the server's SQLSTATE, which libpq
 * only gives inside the text of PQerrorMessage, and only in verbose mode:
 * "FATAL:  28P01: password authentication failed...".  Class 28 is "auth";
 * so is a password the server asked for and the dsn lacked; the rest is
 * "connect".
 *
 * Querying: PQsendQueryParams with every parameter as text of unknown type
 * (the server infers it from the query), in single-row mode so rows past the
 * caps are counted and dropped one by one instead of piling up in memory;
 * the statement still runs to its end (a DELETE ... RETURNING must not be
 * cut short).  On a deadline or stop, a cancel request goes to the server
 * (PQcancel, from a detached thread since it blocks) and we wait up to
 * CAIRN_DB_CANCEL_WAIT_MS for the query to end there before closing.
 *
 * Notices (NOTICE, WARNING) are dropped, not printed.
 */
#include "actions/db_int.h"
#include "common/mem.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs (catalog/pg_type.h; fixed since PostgreSQL 9.4). */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_OIDOID 26
#define PG_JSONOID 114
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701
#define PG_NUMERICOID 1700
#define PG_JSONBOID 3802

#define PG_SQLSTATE_LEN 5

typedef struct pg {
    db_job *j;
    PGconn *conn;
    bool have_columns;
} pg;

static void quiet(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

/* Wait at most one slice for the socket to be ready for events; *ready
 * tells whether it is.  Returns -1 (failure set) on a stop or deadline. */
static int pg_wait(pg *p, short events, bool *ready, const char *doing) {
    struct pollfd pfd = {PQsocket(p->conn), events, 0};
    *ready = false;
    if (cairn__db_check_stop(p->j, doing) != 0) return -1;
    int n = poll(&pfd, 1, cairn__db_wait_ms(p->j));
    *ready = n > 0;
    return cairn__db_check_stop(p->j, doing);
}

/* ---- connecting --------------------------------------------------------- */

/* The SQLSTATE in a verbose message ("FATAL:  28P01: ..."), or "". */
static void find_sqlstate(const char *msg, char out[PG_SQLSTATE_LEN + 1]) {
    out[0] = '\0';
    for (const char *s = strstr(msg, ":  "); s; s = strstr(s + 1, ":  ")) {
        const char *c = s + 3;
        size_t n = strspn(c, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if (n == PG_SQLSTATE_LEN && c[n] == ':') {
            memcpy(out, c, PG_SQLSTATE_LEN);
            out[PG_SQLSTATE_LEN] = '\0';
            return;
        }
    }
}

/* msg on one line, without verbose mode's LOCATION lines. */
static void one_line(const char *msg, char *out, size_t outlen) {
    cairn_buf b = CAIRN_BUF_INIT;
    while (*msg) {
        msg += strspn(msg, " \t");
        size_t n = strcspn(msg, "\n");
        if (n && strncmp(msg, "LOCATION:", 9) != 0) {
            if (b.len) cairn_buf_puts(&b, "; ");
            cairn_buf_append(&b, msg, n);
        }
        msg += n + (msg[n] == '\n');
    }
    snprintf(out, outlen, "%s", b.data ? b.data : "unknown error");
    cairn_buf_free(&b);
}

static int connect_failed(pg *p) {
    const char *raw = PQerrorMessage(p->conn);
    char state[PG_SQLSTATE_LEN + 1], msg[CAIRN_FAIL_MSG_MAX - 64];
    find_sqlstate(raw, state);
    one_line(raw, msg, sizeof msg);
    bool auth = strncmp(state, "28", 2) == 0 || PQconnectionNeedsPassword(p->conn);
    return cairn__db_fail(p->j, auth ? "auth" : "connect", "postgres: %s", msg);
}

static int pg_connect(pg *p) {
    const char *keys[] = {"dbname", "client_encoding", "fallback_application_name", NULL};
    const char *vals[] = {p->j->dsn, "UTF8", "cairn", NULL};
    p->conn = PQconnectStartParams(keys, vals, 1);
    if (p->conn == NULL) return cairn__db_fail(p->j, "connect", "postgres: out of memory");
    PQsetNoticeProcessor(p->conn, quiet, NULL);
    PQsetErrorVerbosity(p->conn, PQERRORS_VERBOSE);
    int64_t give_up = cairn_now_ms() + CAIRN_DB_CONNECT_TIMEOUT_MS;
    PostgresPollingStatusType st =
        PQstatus(p->conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        bool ready;
        if (st == PGRES_POLLING_FAILED) return connect_failed(p);
        if (cairn_now_ms() >= give_up)
            return cairn__db_fail(p->j, "connect", "postgres: no connection after %d ms",
                                  CAIRN_DB_CONNECT_TIMEOUT_MS);
        if (pg_wait(p, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, &ready,
                    "while connecting") != 0)
            return -1;
        if (ready) st = PQconnectPoll(p->conn);
    }
    PQsetErrorVerbosity(p->conn, PQERRORS_DEFAULT);
    return 0;
}

/* ---- cancelling --------------------------------------------------------- */

static void *cancel_thread(void *arg) {
    char err[256];
    PQcancel(arg, err, sizeof err);
    PQfreeCancel(arg);
    return NULL;
}

/* Ask the server to cancel the running query, and give it a moment to end
 * the query there before we close.  PQcancel opens a new connection with
 * blocking calls and no time limit, so it runs on a detached thread of its
 * own: a server gone silent cannot hold this worker past the wait.  That
 * thread starts with every signal blocked, so it takes none meant for the
 * process, and a SIGPIPE its send() may raise is never delivered. */
static void pg_cancel(pg *p) {
    PGcancel *c = PQgetCancel(p->conn);
    pthread_attr_t attr;
    pthread_t t;
    sigset_t all, old;
    if (c == NULL) return;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t, &attr, cancel_thread, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        PQfreeCancel(c);
        return;
    }
    int64_t until = cairn_now_ms() + CAIRN_DB_CANCEL_WAIT_MS;
    while (cairn_now_ms() < until) {
        struct pollfd pfd = {PQsocket(p->conn), POLLIN, 0};
        if (!PQisBusy(p->conn)) {
            PGresult *res = PQgetResult(p->conn);
            if (res == NULL) return;   /* the query has ended */
            PQclear(res);
            continue;
        }
        if (poll(&pfd, 1, (int)(until - cairn_now_ms())) > 0 && !PQconsumeInput(p->conn))
            return;
    }
}

/* ---- rows --------------------------------------------------------------- */

static void set_columns(pg *p, const PGresult *res) {
    int n = PQnfields(res);
    const char **names = cairn_calloc((size_t)n + 1, sizeof *names);
    for (int c = 0; c < n; c++) names[c] = PQfname(res, c);
    cairn__db_set_columns(p->j, n, names);
    free(names);
    p->have_columns = true;
}

/* A string value; past the byte cap it keeps its size only. */
static void text_value(db_value *v, db_type type, const char *s, size_t n) {
    v->type = type;
    v->len = n;
    if (n <= CAIRN_DB_OUTPUT_MAX) v->s = cairn_strndup(s, n);
}

static void bytea_value(db_value *v, const char *s) {
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)s, &n);
    if (raw == NULL) {
        text_value(v, DB_TEXT, s, strlen(s));
        return;
    }
    cairn__db_blob(v, raw, n);
    PQfreemem(raw);
}

static void read_value(const PGresult *res, int c, db_value *v) {
    const char *s = PQgetvalue(res, 0, c);
    memset(v, 0, sizeof *v);
    if (PQgetisnull(res, 0, c)) return;                        /* DB_NULL */
    switch (PQftype(res, c)) {
    case PG_BOOLOID: v->type = DB_BOOL; v->b = s[0] == 't'; break;
    case PG_INT2OID:
    case PG_INT4OID:
    case PG_INT8OID:
    case PG_OIDOID: v->type = DB_INT; v->i = strtoll(s, NULL, 10); break;
    case PG_FLOAT4OID:
    case PG_FLOAT8OID: v->type = DB_REAL; v->d = strtod(s, NULL); break;
    case PG_NUMERICOID: text_value(v, DB_NUMERIC, s, (size_t)PQgetlength(res, 0, c)); break;
    case PG_JSONOID:
    case PG_JSONBOID: text_value(v, DB_JSON, s, (size_t)PQgetlength(res, 0, c)); break;
    case PG_BYTEAOID: bytea_value(v, s); break;
    default: text_value(v, DB_TEXT, s, (size_t)PQgetlength(res, 0, c)); break;
    }
}

static void read_row(pg *p, const PGresult *res) {
    int n = p->j->ncols;
    db_value *row = cairn_calloc((size_t)n + 1, sizeof *row);
    for (int c = 0; c < n; c++) read_value(res, c, &row[c]);
    cairn__db_keep_row(p->j, row);
    free(row);
}

/* ---- results ------------------------------------------------------------ */

static int sql_failed(pg *p, const PGresult *res) {
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    char text[CAIRN_FAIL_MSG_MAX];
    cairn_buf b = CAIRN_BUF_INIT;
    if (primary == NULL) one_line(PQresultErrorMessage(res), text, sizeof text);
    cairn_buf_puts(&b, primary ? primary : text);
    if (pos) cairn_buf_printf(&b, " (at character %s of the query)", pos);
    if (detail) cairn_buf_printf(&b, "; detail: %s", detail);
    if (hint) cairn_buf_printf(&b, "; hint: %s", hint);
    int rc = cairn__db_fail(p->j, "sql", "postgres: SQLSTATE %s: %s", state ? state : "none",
                            b.data);
    cairn_buf_free(&b);
    return rc;
}

/* The command's own count ("INSERT 0 3" -> 3), else the rows seen. */
static void set_row_count(pg *p, PGresult *res) {
    const char *n = PQcmdTuples(res);
    p->j->row_count = n && n[0] ? strtoll(n, NULL, 10) : p->j->rows_seen;
}

/* One result: 0 to go on, -1 when the job failed. */
static int pg_result(pg *p, PGresult *res) {
    ExecStatusType st = PQresultStatus(res);
    if ((st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) && !p->have_columns)
        set_columns(p, res);
    switch (st) {
    case PGRES_SINGLE_TUPLE:
        if (cairn__db_want_row(p->j)) read_row(p, res);
        return 0;
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK: set_row_count(p, res); return 0;
    case PGRES_EMPTY_QUERY: return cairn__db_fail(p->j, "sql", "postgres: the query holds no statement");
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH: return cairn__db_fail(p->j, "sql", "postgres: COPY is not supported");
    default: return sql_failed(p, res);
    }
}

/* ---- sending and receiving ---------------------------------------------- */

static int pg_send(pg *p) {
    const char **values = cairn_calloc((size_t)p->j->nparams + 1, sizeof *values);
    for (int i = 0; i < p->j->nparams; i++) values[i] = p->j->params[i].text;
    PQsetnonblocking(p->conn, 1);
    int ok = PQsendQueryParams(p->conn, p->j->query, p->j->nparams, NULL, values, NULL, NULL, 0);
    free(values);
    if (!ok) {
        char msg[CAIRN_FAIL_MSG_MAX / 2];
        one_line(PQerrorMessage(p->conn), msg, sizeof msg);
        return cairn__db_fail(p->j, "connect", "postgres: cannot send the query: %s", msg);
    }
    PQsetSingleRowMode(p->conn);
    return 0;
}

/* Push the query out, reading meanwhile as libpq asks. */
static int pg_flush(pg *p) {
    int r;
    while ((r = PQflush(p->conn)) == 1) {
        bool ready;
        if (pg_wait(p, POLLIN | POLLOUT, &ready, "while sending the query") != 0) return -1;
        if (ready && !PQconsumeInput(p->conn)) break;
    }
    if (r == 0) return 0;
    char msg[CAIRN_FAIL_MSG_MAX / 2];
    one_line(PQerrorMessage(p->conn), msg, sizeof msg);
    return cairn__db_fail(p->j, "connect", "postgres: connection lost: %s", msg);
}

static int pg_receive(pg *p) {
    for (;;) {
        while (!PQisBusy(p->conn)) {
            PGresult *res = PQgetResult(p->conn);
            if (res == NULL) return 0;
            int rc = pg_result(p, res);
            PQclear(res);
            if (rc != 0) return -1;    /* COPY would hand out results forever */
        }
        bool ready;
        if (pg_wait(p, POLLIN, &ready, "while the query ran; a cancel was sent to the server") != 0)
            return -1;
        if (ready && !PQconsumeInput(p->conn)) {
            char msg[CAIRN_FAIL_MSG_MAX / 2];
            one_line(PQerrorMessage(p->conn), msg, sizeof msg);
            return cairn__db_fail(p->j, "connect", "postgres: connection lost: %s", msg);
        }
    }
}

void cairn__db_pg_run(db_job *j) {
    pg p = {j, NULL, false};
    int rc = pg_connect(&p);
    if (rc == 0) rc = pg_send(&p);
    if (rc == 0) rc = pg_flush(&p);
    if (rc == 0) rc = pg_receive(&p);
    if (rc != 0 && p.conn && PQstatus(p.conn) == CONNECTION_OK &&
        (strcmp(j->fail.kind, "timeout") == 0 || strcmp(j->fail.kind, "cancelled") == 0))
        pg_cancel(&p);
    PQfinish(p.conn);
}
