/*
 * store_pg.c - the journal in PostgreSQL, through libpq (store_pg.h).
 *
 * Every parameter goes as text and every result comes back as text (bytea
 * as hex), so one pair of helpers serves every statement.  An append is
 * one transaction sent as a pipeline: BEGIN, each event's statements,
 * COMMIT, one round trip for a batch of up to CAIRN_PG_PIPELINE statements
 * (a longer batch syncs every that many, still in the one transaction),
 * so a batch costs about what its commit costs.
 *
 * A connection that broke (the server restarted, the network dropped it)
 * fails the statement it broke under and is made again before the next
 * one (pg_ready): nothing went over the broken one, so nothing is sent
 * twice.
 *
 * Opening never modifies a database that is not already a Cairn journal:
 * what the current schema holds is read first, and the tables are created
 * only in a schema that holds none, inside a transaction that holds an
 * advisory lock (two engines creating the journal at once make it once).
 *
 * The commands, claims, meta and copies are store_pg_ops.c.
 */
#include "engine/store_pg_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/clock.h"
#include "common/mem.h"

/* Statements sent before the pipeline syncs: the results of that many wait
 * in the socket's buffers (a few hundred bytes each) while more are sent. */
#define CAIRN_PG_PIPELINE 256
#define CAIRN_PG_LOCK 1128354382     /* "CARN": the advisory lock taken to create the schema */

extern const char cairn_schema_pg_sql[];

static const cairn_store_ops pg_ops;

bool cairn_pg_url(const char *where) {
    return strncmp(where, "postgres://", 11) == 0 || strncmp(where, "postgresql://", 13) == 0;
}

/* ---- naming the database without its password ---------------------------- */

char *cairn_pg_name(const char *url) {
    cairn_buf b = CAIRN_BUF_INIT;
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t auth = strcspn(p, "/?#");
    const char *at = memchr(p, '@', auth), *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (colon) {
        cairn_buf_append(&b, url, (size_t)(colon - url));
        cairn_buf_puts(&b, ":***");
        p = at;
    } else {
        cairn_buf_append(&b, url, (size_t)(p - url));
    }
    /* a password among the query's parameters: "password=" after ? or & */
    const char *q = p;
    for (const char *hit; (hit = strstr(q, "password=")) != NULL;) {
        bool param = hit > p && (hit[-1] == '?' || hit[-1] == '&');
        cairn_buf_append(&b, q, (size_t)(hit - q) + 9);
        q = hit + 9;
        if (param) {
            cairn_buf_puts(&b, "***");
            q += strcspn(q, "&#");
        }
    }
    cairn_buf_puts(&b, q);
    return cairn_buf_detach(&b);
}

/* ---- helpers ---------------------------------------------------------------- */

int pg_error(pg_store *s, const PGresult *res, const char *what, cairn_err *err) {
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
    return cairn_err_set(err, CAIRN_EIO, "%s: %s: %.*s", s->name, what, (int)n,
                         n ? msg : "the connection failed");
}

PGresult *pg_query(pg_store *s, const char *sql, int n, const char *const *vals, const char *what,
                   cairn_err *err) {
    if (pg_ready(s, err)) return NULL;
    /* with no parameters, sql may be several statements */
    PGresult *res = n ? PQexecParams(s->conn, sql, n, NULL, vals, NULL, NULL, 0)
                      : PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return res;
    pg_error(s, res, what, err);
    PQclear(res);
    return NULL;
}

int pg_exec(pg_store *s, const char *sql, int n, const char *const *vals, const char *what,
            cairn_err *err) {
    PGresult *res = pg_query(s, sql, n, vals, what, err);
    PQclear(res);
    return res ? 0 : CAIRN_EIO;
}

char *pg_text(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? NULL : cairn_strdup(PQgetvalue(res, row, col));
}

int64_t pg_int(const PGresult *res, int row, int col) {
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *pg_bytes(const PGresult *res, int row, int col, size_t *len) {
    const char *v = PQgetvalue(res, row, col);
    size_t n = strncmp(v, "\\x", 2) == 0 ? (strlen(v) - 2) / 2 : 0;
    char *out = cairn_malloc(n + 1);
    for (size_t i = 0; i < n; i++) out[i] = (char)(hexval(v[2 + 2 * i]) << 4 | hexval(v[3 + 2 * i]));
    out[n] = '\0';
    *len = n;
    return out;
}

const char *pg_num(char *buf, int64_t v) {
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

char *pg_hex_bytea(const void *p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    char *out = cairn_malloc(2 * n + 3);
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < n; i++) {
        out[2 + 2 * i] = digits[((const unsigned char *)p)[i] >> 4];
        out[3 + 2 * i] = digits[((const unsigned char *)p)[i] & 15];
    }
    out[2 * n + 2] = '\0';
    return out;
}

/* ---- opening ------------------------------------------------------------- */

/* The hot statements, prepared once per connection. */
static const struct { const char *name, *sql; } prepared[] = {
    {"ev", "INSERT INTO events(run_id, seq, time, type, step, attempt, data, hash)"
           " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"},
    /* the runs columns are run_created's data members (event.h) */
    {"run", "INSERT INTO runs(id, workflow, def_hash, parent_id, status, created_at, updated_at,"
            " owner) VALUES ($1, coalesce($2::json->>'workflow', '?'),"
            " coalesce($2::json->>'def_hash', ''), $2::json->>'parent', 'running', $3, $3, $4)"},
    /* a run placed on engine $4 (cairn_pg_place), which hears of it at the commit */
    {"placed", "WITH r AS (INSERT INTO runs(id, workflow, def_hash, parent_id, status, created_at,"
               " updated_at, owner, epoch) VALUES ($1, coalesce($2::json->>'workflow', '?'),"
               " coalesce($2::json->>'def_hash', ''), $2::json->>'parent', 'running', $3, $3, $4, "
               PG_EPOCH_PLACED ") RETURNING owner) SELECT pg_notify('" CAIRN_PG_PLACED_CHANNEL
               "', owner) FROM r"},
    /* $4: the status the run must have for the change, or NULL for any */
    {"status", "UPDATE runs SET status = $1, updated_at = $2 WHERE id = $3"
               " AND status = coalesce($4, status)"},
    {"done", "DELETE FROM commands WHERE id = $1"},
    {"last", "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = $1"},
    /* the fence (cairn_pg_append_held): 1 / 0 unless all $4 runs are
     * still $3's at their epochs; their rows locked to the commit */
    {"fence", "SELECT 1 / (count(*) = $4::int)::int FROM (SELECT r.id FROM runs r"
              " JOIN unnest($1::text[], $2::bigint[]) AS h(id, epoch) ON r.id = h.id"
              " WHERE r.owner = $3 AND r.epoch = h.epoch FOR UPDATE OF r) AS held"},
    {"begin", "BEGIN"},
    {"commit", "COMMIT"},
    /* an append inside batch_begin's transaction (a copy made whole or not at all) */
    {"savepoint", "SAVEPOINT cairn_append"},
    {"release", "RELEASE cairn_append"},
};

static int prepare_all(pg_store *s, cairn_err *err) {
    if (s->prepared) return 0;
    for (size_t i = 0; i < sizeof prepared / sizeof prepared[0]; i++) {
        PGresult *res = PQprepare(s->conn, prepared[i].name, prepared[i].sql, 0, NULL);
        int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0
                                                          : pg_error(s, res, "preparing statements", err);
        PQclear(res);
        if (rc) return rc;
    }
    s->prepared = true;
    return 0;
}

/* What the current schema holds: *tables, whether one is cairn_journal, and
 * the database's encoding. */
typedef struct {
    int64_t tables;
    bool journal;
    char schema[64], encoding[32];
} pg_shape;

static int read_shape(pg_store *s, pg_shape *sh, cairn_err *err) {
    PGresult *res = pg_query(s,
        "SELECT (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()),"
        " to_regclass(quote_ident(current_schema()) || '.cairn_journal') IS NOT NULL,"
        " coalesce(current_schema(), ''), pg_encoding_to_char(encoding)"
        " FROM pg_catalog.pg_database WHERE datname = current_database()",
        0, NULL, "reading what the database holds", err);
    if (!res) return CAIRN_EIO;
    sh->tables = pg_int(res, 0, 0);
    sh->journal = PQgetvalue(res, 0, 1)[0] == 't';
    snprintf(sh->schema, sizeof sh->schema, "%s", PQgetvalue(res, 0, 2));
    snprintf(sh->encoding, sizeof sh->encoding, "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    if (sh->schema[0] == '\0')
        return cairn_err_set(err, CAIRN_EINVAL, "%s: no schema to hold the journal (none of the"
                             " search_path exists); nothing was changed", s->name);
    return 0;
}

static int check_version(pg_store *s, cairn_err *err) {
    PGresult *res = pg_query(s, "SELECT app, version FROM cairn_journal", 0, NULL,
                             "reading the journal's version", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "cairn") != 0)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: not a Cairn journal (its cairn_journal table"
                           " does not say so); the database was not modified", s->name);
    else if (pg_int(res, 0, 1) != CAIRN_PG_SCHEMA_VERSION)
        rc = cairn_err_set(err, CAIRN_ECORRUPT, "%s: journal schema version %s, this cairn reads"
                           " version %d; the database was not modified", s->name,
                           PQgetvalue(res, 0, 1), CAIRN_PG_SCHEMA_VERSION);
    PQclear(res);
    return rc;
}

static int create_schema(pg_store *s, cairn_err *err) {
    unsigned char raw[CAIRN_JOURNAL_ID_HEX / 2];
    char id[CAIRN_JOURNAL_ID_HEX + 1], lock[24], version[24];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return cairn_err_set(err, CAIRN_EIO, "getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof raw; i++) snprintf(id + 2 * i, 3, "%02x", raw[i]);
    const char *lk[] = {pg_num(lock, CAIRN_PG_LOCK)}, *v[] = {pg_num(version, CAIRN_PG_SCHEMA_VERSION), id};
    pg_shape sh;
    int rc = pg_exec(s, "BEGIN", 0, NULL, "creating the journal", err);
    if (rc == 0) rc = pg_exec(s, "SELECT pg_advisory_xact_lock($1)", 1, lk, "creating the journal", err);
    if (rc == 0) rc = read_shape(s, &sh, err);
    if (rc == 0 && !sh.journal && sh.tables == 0) {
        PGresult *res = PQexec(s->conn, cairn_schema_pg_sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) rc = pg_error(s, res, "creating the journal", err);
        PQclear(res);
        if (rc == 0)
            rc = pg_exec(s, "INSERT INTO cairn_journal(one, app, version) VALUES (1, 'cairn', $1);"
                            , 1, v, "creating the journal", err);
        if (rc == 0)
            rc = pg_exec(s, "INSERT INTO meta(key, value) VALUES ('journal_id', $1)", 1, v + 1,
                         "creating the journal", err);
    }
    if (rc == 0) return pg_exec(s, "COMMIT", 0, NULL, "creating the journal", err);
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

/* A Cairn journal (created when mode allows and the schema holds no table),
 * or a refusal that changed nothing. */
static int check_journal(pg_store *s, cairn_pg_mode mode, cairn_err *err) {
    pg_shape sh;
    int rc = read_shape(s, &sh, err);
    if (rc) return rc;
    if (!sh.journal && sh.tables > 0)
        return cairn_err_set(err, CAIRN_ECORRUPT, "%s: not a Cairn journal (schema %s holds %lld"
                             " tables, none of them cairn_journal); the database was not"
                             " modified", s->name, sh.schema, (long long)sh.tables);
    if (!sh.journal && mode == CAIRN_PG_READ)
        return cairn_err_set(err, CAIRN_ENOTFOUND, "%s: no journal here yet (use --db or"
                             " CAIRN_DB)", s->name);
    if (!sh.journal && strcmp(sh.encoding, "UTF8") != 0 && strcmp(sh.encoding, "SQL_ASCII") != 0)
        return cairn_err_set(err, CAIRN_EINVAL, "%s: the database's encoding is %s; a journal"
                             " keeps the bytes its chains hashed, so it needs UTF8; nothing was"
                             " changed", s->name, sh.encoding);
    if (!sh.journal && (rc = create_schema(s, err)) != 0) return rc;
    return check_version(s, err);
}

static void quiet(void *arg, const char *message) {
    (void)arg;
    (void)message;
}

/* What a connection is told once made (and made again): its durability,
 * bytea as hex, and LISTEN for a listening one.  The hot statements are
 * prepared by the first append (a reading command makes none). */
static int set_up(pg_store *s, cairn_err *err) {
    int rc = pg_exec(s, s->sync == CAIRN_SYNC_NORMAL
                            ? "SET synchronous_commit = off; SET bytea_output = hex"
                            : "SET synchronous_commit = on; SET bytea_output = hex",
                     0, NULL, "setting up the connection", err);
    if (rc == 0 && s->listening)
        rc = pg_exec(s, "LISTEN " CAIRN_PG_CHANNEL, 0, NULL, "listening for commands", err);
    if (rc == 0 && s->hears_placed)
        rc = pg_exec(s, "LISTEN " CAIRN_PG_PLACED_CHANNEL, 0, NULL, "listening for runs placed",
                     err);
    return rc;
}

/* The connection's connect_timeout in ms: the URL's when it sets one
 * (libpq leaves it to whoever polls), else CAIRN_PG_CONNECT_TIMEOUT_S. */
static int64_t connect_timeout_ms(PGconn *conn) {
    int64_t seconds = CAIRN_PG_CONNECT_TIMEOUT_S;
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && atoi(o->val) > 0)
            seconds = atoi(o->val);
    PQconninfoFree(opts);
    return seconds * 1000;
}

/* Drive the connection started on s->conn (poll: PQconnectPoll or
 * PQresetPoll) to its end, or give up at the bound's deadline, else at
 * the connection's connect_timeout (libpq does not keep it for a caller
 * that polls). */
static int finish_connect(pg_store *s, PostgresPollingStatusType (*poll_fn)(PGconn *),
                          const char *what, cairn_err *err) {
    int64_t start = cairn_now_ms();
    int64_t deadline = s->bound.deadline ? s->bound.deadline(s->bound.ud)
                                         : start + connect_timeout_ms(s->conn);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;   /* as libpq asks, to begin */
    while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        int64_t left = deadline - cairn_now_ms();
        if (left <= 0)
            return cairn_err_set(err, CAIRN_EIO, "%s: %s: no answer from the server within %lld"
                                 " ms", s->name, what, (long long)(cairn_now_ms() - start));
        struct pollfd p = {.fd = PQsocket(s->conn),
                           .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int ready = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (ready < 0 && errno != EINTR) return cairn_err_set(err, CAIRN_EIO, "%s: %s: poll: %s",
                                                              s->name, what, strerror(errno));
        if (ready > 0) st = poll_fn(s->conn);
    }
    return PQstatus(s->conn) == CONNECTION_OK ? 0 : pg_error(s, NULL, what, err);
}

static int connect_pg(pg_store *s, const char *url, cairn_err *err) {
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", CAIRN_PG_CONNECT_TIMEOUT_S);
    /* the URL may set the first two; client_encoding after it is ours */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", "client_encoding", NULL};
    const char *vals[] = {timeout, "cairn", url, "UTF8", NULL};
    s->conn = PQconnectStartParams(keys, vals, 1);
    if (s->conn == NULL) return cairn_err_set(err, CAIRN_EIO, "%s: out of memory", s->name);
    int rc = finish_connect(s, PQconnectPoll, "cannot connect", err);
    if (rc) return rc;
    PQsetNoticeProcessor(s->conn, quiet, NULL);
    return set_up(s, err);
}

int pg_ready(pg_store *s, cairn_err *err) {
    if (PQstatus(s->conn) == CONNECTION_OK) return 0;
    if (!PQresetStart(s->conn)) return pg_error(s, NULL, "reconnecting", err);
    if (finish_connect(s, PQresetPoll, "reconnecting", err)) return CAIRN_EIO;
    s->in_batch = false;   /* the transaction went with the connection */
    cairn_strmap_clear(s->last_seq);
    s->changes++;          /* and what was NOTIFYed meanwhile: look again */
    s->prepared = false;   /* statements go with the session */
    return set_up(s, err);
}

void cairn_pg_bound_connects(cairn_store *base, const cairn_pg_bound *bound) {
    pg_store *s = (pg_store *)base;
    s->bound = bound ? *bound : (cairn_pg_bound){0};
}

int cairn_store_open_pg(const char *url, cairn_pg_mode mode, cairn_sync_mode sync,
                        cairn_store **out, cairn_err *err) {
    return cairn_store_open_pg_bounded(url, mode, sync, NULL, out, err);
}

int cairn_store_open_pg_bounded(const char *url, cairn_pg_mode mode, cairn_sync_mode sync,
                                const cairn_pg_bound *bound, cairn_store **out, cairn_err *err) {
    pg_store *s = cairn_calloc(1, sizeof *s);
    if (bound) s->bound = *bound;
    s->base.ops = &pg_ops;
    s->name = cairn_pg_name(url);
    s->last_seq = cairn_strmap_new();
    s->sync = sync;
    *out = NULL;
    int rc = connect_pg(s, url, err);
    if (rc == 0) rc = check_journal(s, mode, err);
    s->listening = mode == CAIRN_PG_LISTEN;
    if (rc == 0 && s->listening)
        rc = pg_exec(s, "LISTEN " CAIRN_PG_CHANNEL, 0, NULL, "listening for commands", err);
    if (rc) {
        pg_ops.close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* ---- appending ------------------------------------------------------------ */

static int next_seq(pg_store *s, const char *run_id, int64_t *next, cairn_err *err) {
    int64_t last;
    if (!cairn_strmap_get(s->last_seq, run_id, &last)) {
        PGresult *res = PQexecPrepared(s->conn, "last", 1, &run_id, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            int rc = pg_error(s, res, "reading a run's last event", err);
            PQclear(res);
            return rc;
        }
        last = pg_int(res, 0, 0);
        PQclear(res);
    }
    *next = last + 1;
    return 0;
}

/* Whether ev follows its run's last event (*held: it is in the journal
 * already, when skip_held), as store_sqlite.c's check_seq says. */
static int check_seq(pg_store *s, const cairn_event *ev, bool *held, cairn_err *err) {
    int64_t want = 1;
    int rc = (held || ev->type != CAIRN_EV_RUN_CREATED) ? next_seq(s, ev->run_id, &want, err) : 0;
    if (rc) return rc;
    if (held) *held = ev->seq < want;
    if (held && *held) return 0;
    if (ev->seq == want && (want > 1 || ev->type == CAIRN_EV_RUN_CREATED)) {
        cairn_strmap_put(s->last_seq, ev->run_id, ev->seq);
        return 0;
    }
    if (ev->seq == want)
        return cairn_err_set(err, CAIRN_ESTATE, "%s: run %s: its first event is %s, not"
                             " run_created; nothing of this batch was written", s->name,
                             ev->run_id, cairn_event_type_name(ev->type));
    return cairn_err_set(err, CAIRN_ESTATE,
                         "%s: run %s: event %lld (%s) arrives where event %lld belongs; nothing"
                         " of this batch was written (is a second engine writing this run?)",
                         s->name, ev->run_id, (long long)ev->seq,
                         cairn_event_type_name(ev->type), (long long)want);
}

/* Statements sent in pipeline mode, their results read every
 * CAIRN_PG_PIPELINE; the first failure is kept. */
typedef struct {
    pg_store *s;
    int pending, rc;
    int seen, fence_at;          /* results read; the fence's place (-1: none) */
    cairn_err *err;
} pipe_t;

/* The first failure of a statement's result, kept in p. */
static void pipe_result(pipe_t *p, PGresult *res) {
    ExecStatusType st = PQresultStatus(res);
    bool fence = p->seen++ == p->fence_at;
    if (p->rc || st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (fence && state && strcmp(state, "22012") == 0)   /* the fence's 1 / 0: a run refused */
        p->rc = cairn_err_set(p->err, CAIRN_EFENCED, "%s: a run of this batch is held by"
                              " another engine now", p->s->name);
    else if (state && strcmp(state, "23505") == 0)
        p->rc = cairn_err_set(p->err, CAIRN_ESTATE, "%s: an event of this batch is in the journal"
                              " already; nothing of this batch was written (is a second engine"
                              " writing this run?)", p->s->name);
    else
        p->rc = pg_error(p->s, res, "appending to the journal", p->err);
}

/* Sync, and read the results of the statements sent since the last. */
static int pipe_flush(pipe_t *p) {
    PGconn *c = p->s->conn;
    if (p->pending == 0) return p->rc;
    if (!PQpipelineSync(c)) {
        if (p->rc == 0) p->rc = pg_error(p->s, NULL, "appending to the journal", p->err);
        p->pending = 0;
        return p->rc;
    }
    for (; p->pending > 0; p->pending--) {
        PGresult *res = PQgetResult(c);
        if (res == NULL) {   /* the connection is gone */
            if (p->rc == 0) p->rc = pg_error(p->s, NULL, "appending to the journal", p->err);
            p->pending = 0;
            return p->rc;
        }
        pipe_result(p, res);
        PQclear(res);
        while ((res = PQgetResult(c)) != NULL) PQclear(res);   /* to the statement's end */
    }
    PGresult *sync = PQgetResult(c);   /* PGRES_PIPELINE_SYNC */
    PQclear(sync);
    return p->rc;
}

static void pipe_send(pipe_t *p, const char *stmt, int n, const char *const *vals) {
    if (p->rc) return;
    if (!PQsendQueryPrepared(p->s->conn, stmt, n, vals, NULL, NULL, 0)) {
        p->rc = pg_error(p->s, NULL, "appending to the journal", p->err);
        return;
    }
    if (++p->pending >= CAIRN_PG_PIPELINE) pipe_flush(p);
}

static void send_event(pipe_t *p, const cairn_event *ev) {
    pg_store *s = p->s;
    char seq[24], time[24], attempt[24], cmd[24];
    char *hash = pg_hex_bytea(ev->hash, CAIRN_HASH_LEN);
    const char *e[] = {ev->run_id, pg_num(seq, ev->seq), pg_num(time, ev->time_ms),
                       cairn_event_type_name(ev->type), ev->step, pg_num(attempt, ev->attempt),
                       ev->data ? ev->data : "{}", hash};
    pipe_send(p, "ev", 8, e);
    free(hash);
    if (ev->type == CAIRN_EV_RUN_CREATED) {
        const char *node = s->n_placed ? pg_placed_on(s, ev->run_id) : NULL;
        const char *r[] = {ev->run_id, ev->data ? ev->data : "{}", time, node ? node : s->owner};
        pipe_send(p, node ? "placed" : "run", 4, r);
    }
    const char *from, *status = cairn_store_status_after(ev->type, &from);
    if (status) {
        const char *u[] = {status, time, ev->run_id, from};
        pipe_send(p, "status", 4, u);
    }
    if (ev->command_id > 0) {
        const char *d[] = {pg_num(cmd, ev->command_id)};
        pipe_send(p, "done", 1, d);
    }
}

/* The fence of a batch (cairn_pg_append_held): the runs it writes to that
 * it does not create, with the epochs held; those refused are skipped. */
typedef struct {
    const char *owner;
    cairn_pg_hold *holds;
    int n;
    cairn_strmap *refused;       /* run id -> 1, for the events to skip */
} pg_fence;

/* Send the fence's statement: it fails (division by zero) unless every
 * run not refused is still owner's at its epoch, and locks their rows. */
static void send_fence(pipe_t *p, pg_fence *f) {
    char count[24], *id_arr, *ep_arr;
    int k;
    pg_hold_arrays(f->holds, f->n, false, &id_arr, &ep_arr, &k);
    if (k > 0) {
        const char *v[] = {id_arr, ep_arr, f->owner, pg_num(count, k)};
        p->fence_at = p->seen + p->pending;
        pipe_send(p, "fence", 4, v);
    }
    free(id_arr);
    free(ep_arr);
}

static int append_batch(pg_store *s, cairn_event *const *evs, int n, bool skip_held,
                        pg_fence *fence, cairn_err *err) {
    int rc = pg_ready(s, err);
    if (rc == 0) rc = prepare_all(s, err);
    if (rc) return rc;
    bool *held = cairn_calloc((size_t)n + 1, sizeof *held);
    int64_t one;
    for (int i = 0; fence && i < n; i++) held[i] = cairn_strmap_get(fence->refused, evs[i]->run_id, &one);
    for (int i = 0; rc == 0 && i < n; i++)
        if (!held[i]) rc = check_seq(s, evs[i], skip_held ? &held[i] : NULL, err);
    pipe_t p = {.s = s, .err = err, .rc = rc, .fence_at = -1};
    if (rc == 0 && !PQenterPipelineMode(s->conn))
        p.rc = pg_error(s, NULL, "appending to the journal", err);
    if (p.rc == 0) {
        pipe_send(&p, s->in_batch ? "savepoint" : "begin", 0, NULL);
        if (fence) send_fence(&p, fence);
        for (int i = 0; i < n; i++)
            if (!held[i]) send_event(&p, evs[i]);
        pipe_send(&p, s->in_batch ? "release" : "commit", 0, NULL);
        pipe_flush(&p);
        PQexitPipelineMode(s->conn);
        if (p.rc) PQclear(PQexec(s->conn, s->in_batch ? "ROLLBACK TO cairn_append" : "ROLLBACK"));
    }
    free(held);
    if (p.rc) {
        cairn_strmap_clear(s->last_seq);
        return p.rc;
    }
    /* a run ended, or placed on another engine, gets no more events from
     * here; one taken back later has its last seq read again */
    for (int i = 0; i < n; i++)
        if (cairn_event_ends_run(evs[i]->type) || (s->n_placed && pg_placed_on(s, evs[i]->run_id)))
            cairn_strmap_remove(s->last_seq, evs[i]->run_id);
    return 0;
}

/* Which of the fence's runs are not owner's at their epoch any more:
 * refused, and how many newly. */
static int find_refused(pg_store *s, pg_fence *f, int *newly, cairn_err *err) {
    char *id_arr, *ep_arr;
    int k;
    pg_hold_arrays(f->holds, f->n, true, &id_arr, &ep_arr, &k);
    const char *v[] = {id_arr, ep_arr, f->owner};
    PGresult *res = pg_query(s, "SELECT h.id FROM unnest($1::text[], $2::bigint[]) AS h(id, epoch)"
                                " WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = h.id"
                                " AND r.owner = $3 AND r.epoch = h.epoch)",
                             3, v, "checking the runs this engine holds", err);
    free(id_arr);
    free(ep_arr);
    if (!res) return CAIRN_EIO;
    *newly = 0;
    for (int r = 0; r < PQntuples(res); r++)
        for (int i = 0; i < f->n; i++)
            if (!f->holds[i].refused && strcmp(f->holds[i].run_id, PQgetvalue(res, r, 0)) == 0) {
                f->holds[i].refused = true;
                cairn_strmap_put(f->refused, f->holds[i].run_id, 1);
                (*newly)++;
            }
    PQclear(res);
    return 0;
}

int cairn_pg_append_held(cairn_store *base, cairn_event *const *evs, int n, cairn_pg_hold *holds,
                         int n_holds, const char *owner, bool skip_written, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    pg_fence f = {.owner = owner, .holds = holds, .n = n_holds, .refused = cairn_strmap_new()};
    for (int i = 0; i < n_holds; i++)
        if (holds[i].refused) cairn_strmap_put(f.refused, holds[i].run_id, 1);
    /* Each round refuses one run more, or ends.  A run another engine
     * wrote to since shows first as an event out of its place (its seq is
     * checked before anything is sent): that too is looked into. */
    int rc, newly;
    while ((rc = append_batch(s, evs, n, skip_written, &f, err)) == CAIRN_EFENCED ||
           rc == CAIRN_ESTATE) {
        int was = rc;
        if ((rc = find_refused(s, &f, &newly, err)) != 0) break;
        if (newly > 0) continue;
        rc = was;   /* every run checks out: the batch itself is wrong */
        if (was == CAIRN_EFENCED)
            cairn_err_set(err, CAIRN_ESTATE, "%s: the fence refused a batch whose runs all"
                          " look held; nothing of it was written", s->name);
        break;
    }
    cairn_strmap_free(f.refused);
    return rc == CAIRN_EFENCED ? CAIRN_ESTATE : rc;
}

bool cairn_pg_broken(cairn_store *base) {
    return PQstatus(((pg_store *)base)->conn) != CONNECTION_OK;
}

static int pg_append(cairn_store *base, cairn_event *const *evs, int n, cairn_err *err) {
    return append_batch((pg_store *)base, evs, n, false, NULL, err);
}

static int pg_append_missing(cairn_store *base, cairn_event *const *evs, int n, cairn_err *err) {
    return append_batch((pg_store *)base, evs, n, true, NULL, err);
}

/* Durable at commit (synchronous_commit): nothing is left to sync. */
static int pg_sync(cairn_store *base, cairn_err *err) {
    (void)base;
    (void)err;
    return 0;
}

/* ---- reading -------------------------------------------------------------- */

static int pg_load_events(cairn_store *base, const char *run_id, cairn_event **out, int *n,
                          cairn_err *err) {
    pg_store *s = (pg_store *)base;
    PGresult *res = pg_query(s, "SELECT seq, time, type, step, attempt, data, hash FROM events"
                                " WHERE run_id = $1 ORDER BY seq", 1, &run_id, "reading events", err);
    if (!res) return CAIRN_EIO;
    int rows = PQntuples(res);
    cairn_event *v = cairn_calloc((size_t)rows + 1, sizeof *v);
    for (int i = 0; i < rows; i++) {
        cairn_event *ev = &v[i];
        size_t len = 0;
        snprintf(ev->run_id, sizeof ev->run_id, "%s", run_id);
        ev->seq = pg_int(res, i, 0);
        ev->time_ms = pg_int(res, i, 1);
        ev->type = cairn_event_type_parse(PQgetvalue(res, i, 2));
        ev->step = pg_text(res, i, 3);
        ev->attempt = (int)pg_int(res, i, 4);
        ev->data = pg_text(res, i, 5);
        ev->data_len = (size_t)PQgetlength(res, i, 5);
        char *hash = pg_bytes(res, i, 6, &len);
        if (len == CAIRN_HASH_LEN) memcpy(ev->hash, hash, CAIRN_HASH_LEN);
        free(hash);
    }
    PQclear(res);
    *out = v;
    *n = rows;
    return 0;
}

#define RUN_COLUMNS "id, workflow, def_hash, parent_id, status, created_at, updated_at, owner"

static void fill_run(const PGresult *res, int i, cairn_run_row *r) {
    r->id = pg_text(res, i, 0);
    r->workflow = pg_text(res, i, 1);
    r->def_hash = pg_text(res, i, 2);
    r->parent_id = pg_text(res, i, 3);
    r->status = pg_text(res, i, 4);
    r->created_at = pg_int(res, i, 5);
    r->updated_at = pg_int(res, i, 6);
    r->owner = pg_text(res, i, 7);
}

static int collect_runs(PGresult *res, cairn_run_row **out, int *n) {
    int rows = PQntuples(res);
    cairn_run_row *v = cairn_calloc((size_t)rows + 1, sizeof *v);
    for (int i = 0; i < rows; i++) fill_run(res, i, &v[i]);
    PQclear(res);
    *out = v;
    *n = rows;
    return 0;
}

static int pg_list_runs(cairn_store *base, const char *filter, cairn_run_row **out, int *n,
                        cairn_err *err) {
    pg_store *s = (pg_store *)base;
    PGresult *res = filter
        ? pg_query(s, "SELECT " RUN_COLUMNS " FROM runs WHERE status = ANY(string_to_array($1, ','))"
                      " ORDER BY created_at DESC, id DESC", 1, &filter, "listing runs", err)
        : pg_query(s, "SELECT " RUN_COLUMNS " FROM runs ORDER BY created_at DESC, id DESC", 0,
                   NULL, "listing runs", err);
    return res ? collect_runs(res, out, n) : CAIRN_EIO;
}

static int pg_get_run(cairn_store *base, const char *run_id, cairn_run_row *out, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    memset(out, 0, sizeof *out);
    PGresult *res = pg_query(s, "SELECT " RUN_COLUMNS " FROM runs WHERE id = $1", 1, &run_id,
                             "reading a run", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) == 1) fill_run(res, 0, out);
    else rc = cairn_err_set(err, CAIRN_ENOTFOUND, "no run '%s' in %s", run_id, s->name);
    PQclear(res);
    return rc;
}

static int pg_page_runs(cairn_store *base, const cairn_run_page *q, cairn_run_row **out, int *n,
                        cairn_err *err) {
    pg_store *s = (pg_store *)base;
    char at[24], limit[24];
    const char *v[] = {q->status && *q->status ? q->status : NULL,
                       q->workflow && *q->workflow ? q->workflow : NULL,
                       q->after_id && *q->after_id ? q->after_id : NULL, pg_num(at, q->after_at),
                       pg_num(limit, q->limit)};
    PGresult *res = pg_query(s, "SELECT " RUN_COLUMNS " FROM runs"
                                " WHERE ($1::text IS NULL OR status = ANY(string_to_array($1, ',')))"
                                " AND ($2::text IS NULL OR workflow = $2)"
                                " AND ($3::text IS NULL OR created_at < $4::bigint"
                                "      OR (created_at = $4::bigint AND id < $3))"
                                " ORDER BY created_at DESC, id DESC LIMIT $5::bigint",
                             5, v, "listing runs", err);
    return res ? collect_runs(res, out, n) : CAIRN_EIO;
}

/* ---- definitions ------------------------------------------------------------ */

static int pg_put_definition(cairn_store *base, const char *hash, const char *name,
                             const char *path, const char *source, size_t len, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    char now[24], *src = pg_hex_bytea(source, len);
    const char *v[] = {hash, name, path, src, pg_num(now, cairn_wall_ms())};
    /* the newest load of a definition is the one child runs get by name */
    int rc = pg_exec(s, "INSERT INTO definitions(hash, name, path, source, created_at)"
                        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO UPDATE"
                        " SET created_at = excluded.created_at, loaded = DEFAULT",
                     5, v, "storing a definition", err);
    free(src);
    return rc;
}

static int pg_get_definition(cairn_store *base, const char *hash, char **source, size_t *len,
                             char **path, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    PGresult *res = pg_query(s, "SELECT source, path FROM definitions WHERE hash = $1", 1, &hash,
                             "reading a definition", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) == 1) {
        *source = pg_bytes(res, 0, 0, len);
        *path = pg_text(res, 0, 1);
    } else {
        rc = cairn_err_set(err, CAIRN_ENOTFOUND, "definition %s is missing from %s", hash, s->name);
    }
    PQclear(res);
    return rc;
}

static int pg_put_steps(cairn_store *base, const char *hash, const char *steps, cairn_err *err) {
    const char *v[] = {hash, steps};
    return pg_exec((pg_store *)base, "INSERT INTO definition_steps(hash, steps) VALUES ($1, $2)"
                   " ON CONFLICT (hash) DO UPDATE SET steps = excluded.steps", 2, v,
                   "storing a definition's steps", err);
}

static int pg_get_steps(cairn_store *base, const char *hash, char **steps, cairn_err *err) {
    pg_store *s = (pg_store *)base;
    *steps = NULL;
    PGresult *res = pg_query(s, "SELECT steps FROM definition_steps WHERE hash = $1", 1, &hash,
                             "reading a definition's steps", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) == 1) *steps = pg_text(res, 0, 0);
    else rc = cairn_err_set(err, CAIRN_ENOTFOUND, "definition %s: no steps stored", hash);
    PQclear(res);
    return rc;
}

static int pg_find_definition(cairn_store *base, const char *name, char hash[65], cairn_err *err) {
    pg_store *s = (pg_store *)base;
    PGresult *res = pg_query(s, "SELECT hash FROM definitions WHERE name = $1"
                                " ORDER BY created_at DESC, loaded DESC LIMIT 1", 1, &name,
                             "finding a definition", err);
    if (!res) return CAIRN_EIO;
    int rc = 0;
    if (PQntuples(res) == 1) snprintf(hash, 65, "%s", PQgetvalue(res, 0, 0));
    else rc = cairn_err_set(err, CAIRN_ENOTFOUND, "no workflow named '%s' is loaded (cairn run"
                            " loads every *.yaml beside its FILE)", name);
    PQclear(res);
    return rc;
}

static void pg_set_owner(cairn_store *base, const char *owner) {
    pg_store *s = (pg_store *)base;
    free(s->owner);
    s->owner = cairn_strdup(owner);
}

static void pg_close(cairn_store *base) {
    pg_store *s = (pg_store *)base;
    PQfinish(s->conn);
    cairn_strmap_free(s->last_seq);
    pg_place_free(s);
    free(s->owner);
    free(s->name);
    free(s);
}

static const cairn_store_ops pg_ops = {
    .name = "postgres",
    .append = pg_append,
    .append_missing = pg_append_missing,
    .sync = pg_sync,
    .load_events = pg_load_events,
    .list_runs = pg_list_runs,
    .get_run = pg_get_run,
    .put_definition = pg_put_definition,
    .get_definition = pg_get_definition,
    .put_steps = pg_put_steps,
    .get_steps = pg_get_steps,
    .find_definition = pg_find_definition,
    .claim_run = pg_claim_run,
    .batch_begin = pg_batch_begin,
    .batch_end = pg_batch_end,
    .release_runs = pg_release_runs,
    .add_command = pg_add_command,
    .list_commands = pg_list_commands,
    .run_commands = pg_run_commands,
    .delete_command = pg_delete_command,
    .page_runs = pg_page_runs,
    .get_request = pg_get_request,
    .put_request = pg_put_request,
    .claim = pg_claim,
    .get_claim = pg_get_claim,
    .set_owner = pg_set_owner,
    .data_version = pg_data_version,
    .get_meta = pg_get_meta,
    .put_meta = pg_put_meta,
    .run_ids = pg_run_ids,
    .dump = pg_dump,
    .load = pg_load,
    .scan = pg_scan,
    .close = pg_close,
};
