/*
 * db.c - the `db` action: run one SQL statement against SQLite or
 * PostgreSQL, with every parameter bound (never spliced into the text), and
 * return the rows as JSON.
 *
 * with:
 *   driver    "sqlite" or "postgres"
 *   dsn       sqlite: a file path (it must exist; it is opened read-write
 *             and never created); postgres: a libpq connection string or URI
 *   query     one SQL statement (a second one is refused); placeholders
 *             are ?, ?NNN, :name (sqlite) or $1, $2... (postgres), bound
 *             in order from `params`.  PostgreSQL gets every parameter as
 *             text of no stated type and infers it from the query; where it
 *             cannot, cast: `$1::int`
 *   params    list: strings, numbers, booleans, null; objects and arrays are
 *             bound as their compact JSON text
 *   timeout   a duration for this statement; the step's deadline applies too
 *   max_rows  rows kept, 0..CAIRN_DB_MAX_ROWS (the default)
 *
 * output:
 *   rows            list of objects, column name -> value (when two columns
 *                   share a name, the object holds the later one)
 *   columns         the column names, in order
 *   row_count       rows the statement returned, for a query (counted to
 *                   the end, kept or not); rows changed, for INSERT, UPDATE,
 *                   DELETE (also with RETURNING)
 *   rows_truncated  true when rows were left out: past max_rows, or past
 *                   CAIRN_DB_OUTPUT_MAX bytes, measured about as JSON
 *                   would write the rows (rows are kept whole, in order)
 *   max_rows, output_cap_bytes  the caps that applied
 *
 * Values: integers and floats are numbers (an integer a double cannot hold
 * exactly, e.g. a large bigint, is a decimal string; NaN and infinities are
 * the strings "NaN", "Infinity", "-Infinity"); postgres booleans are
 * booleans (SQLite has none: 0 and 1); NULL is null; postgres json and jsonb
 * are parsed JSON; postgres numeric is a number when the nearest double
 * prints back as the same decimal (1.50, 0.1), else its decimal string;
 * bytea and BLOB are base64 strings (RFC 4648, with padding); everything
 * else (text, dates, uuid, arrays...) is PostgreSQL's text form as a string.
 * PostgreSQL talks UTF-8 with us whatever the connection string says.
 *
 * Failure kinds:
 *   schema     a bad `with` (also: a NUL byte in a postgres text parameter)
 *   connect    cannot reach or open the database: a bad connection string,
 *              refused or timed-out connection, missing sqlite file, a file
 *              that is not a database, a postgres database that does not
 *              exist; or the connection broke while the statement ran
 *   auth       the server refused the credentials (SQLSTATE class 28, or a
 *              password it asked for was not given)
 *   sql        the statement failed: the message carries the server's text
 *              and, for postgres, the SQLSTATE
 *   busy       the sqlite file stayed locked CAIRN_DB_SQLITE_BUSY_MS
 *   timeout    the step deadline or `timeout` passed (the query is
 *              cancelled on the server)
 *   cancelled  a stop was asked (the query is cancelled on the server)
 *
 * Limits (db_int.h): CAIRN_DB_MAX_ROWS, CAIRN_DB_OUTPUT_MAX,
 * CAIRN_DB_MAX_PARAMS, CAIRN_DB_CONNECT_TIMEOUT_MS, CAIRN_DB_SQLITE_BUSY_MS.
 *
 * The drivers live in db_sqlite.c and db_pg.c; this file reads `with`, keeps
 * the capped result, and builds the output on the orchestrator thread.
 */
#include "actions/db_int.h"
#include "common/json.h"
#include "actions/with.h"
#include "common/mem.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_CELL_OVERHEAD 4             /* quotes, colon, comma around a key */
#define DB_SCALAR_SIZE 24              /* room counted for a number, bool or null */
#define DB_EXACT_INT_MAX 9007199254740992LL   /* 2^53: doubles hold every integer up to it */

static const cairn_field_sig db_fields[] = {
    {"driver", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"dsn", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"query", CAIRN_FIELD_STRING, CAIRN_FIELD_REQUIRED},
    {"params", CAIRN_FIELD_ARRAY, 0},
    {"timeout", CAIRN_FIELD_DURATION, 0},
    {"max_rows", CAIRN_FIELD_INTEGER, 0},
    {NULL, 0, 0},
};

/* A constant driver is one this build has (load time). */
static void db_check(cairn_wcheck *w) { cairn_wcheck_enum(w, "driver", "sqlite,postgres", 0); }

static const cairn_action_sig db_sig = {.name = "db", .fields = db_fields, .check = db_check};

/* ---- the job ------------------------------------------------------------ */

static void value_free(db_value *v) { free(v->s); }

void cairn__db_job_free(db_job *j) {
    if (j == NULL) return;
    free(j->dsn);
    free(j->query);
    for (int i = 0; i < j->nparams; i++) free(j->params[i].text);
    free(j->params);
    for (int i = 0; i < j->ncols; i++) free(j->columns[i]);
    free(j->columns);
    for (size_t i = 0; i < (size_t)j->kept_rows * (size_t)j->ncols; i++)
        value_free(&j->cells[i]);
    free(j->cells);
    free(j);
}

int cairn__db_fail(db_job *j, const char *kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    snprintf(j->fail.kind, sizeof j->fail.kind, "%s", kind);
    vsnprintf(j->fail.message, sizeof j->fail.message, fmt, ap);
    va_end(ap);
    j->failed = true;
    return -1;
}

int cairn__db_check_stop(db_job *j, const char *doing) {
    if (cairn_stop_requested(j->stop))
        return cairn__db_fail(j, "cancelled", "stop requested %s", doing);
    if (j->deadline_ms && cairn_now_ms() >= j->deadline_ms) {
        if (j->deadline_is_timeout)
            return cairn__db_fail(j, "timeout", "timeout of %lld ms reached %s",
                                  (long long)j->timeout_ms, doing);
        return cairn__db_fail(j, "timeout", "step deadline reached %s", doing);
    }
    return 0;
}

int cairn__db_wait_ms(const db_job *j) {
    int64_t left = CAIRN_DB_POLL_SLICE_MS;
    if (j->deadline_ms) {
        int64_t until = j->deadline_ms - cairn_now_ms();
        if (until < left) left = until < 0 ? 0 : until;
    }
    return (int)left;
}

/* ---- the capped result -------------------------------------------------- */

void cairn__db_set_columns(db_job *j, int ncols, const char *const *names) {
    j->ncols = ncols;
    j->columns = cairn_calloc((size_t)ncols + 1, sizeof *j->columns);
    for (int i = 0; i < ncols; i++) {
        j->columns[i] = cairn_strdup(names[i] ? names[i] : "");
        j->kept_bytes += strlen(j->columns[i]) + DB_CELL_OVERHEAD;
    }
}

bool cairn__db_want_row(db_job *j) {
    j->rows_seen++;
    if (j->rows_truncated) return false;
    if (j->kept_rows >= j->max_rows) {
        j->rows_truncated = true;
        return false;
    }
    return true;
}

static bool has_text(db_type t) {
    return t == DB_NUMERIC || t == DB_TEXT || t == DB_JSON || t == DB_BLOB;
}

/* Bytes the row takes in the output, roughly as JSON would write it. */
static size_t row_size(const db_job *j, const db_value *row) {
    size_t n = 2;
    for (int c = 0; c < j->ncols; c++) {
        n += strlen(j->columns[c]) + DB_CELL_OVERHEAD;
        n += has_text(row[c].type) ? row[c].len + 2 : DB_SCALAR_SIZE;
    }
    return n;
}

static void drop_row(const db_job *j, db_value *row) {
    for (int c = 0; c < j->ncols; c++) value_free(&row[c]);
}

void cairn__db_keep_row(db_job *j, db_value *row) {
    size_t size = row_size(j, row);
    if (size > CAIRN_DB_OUTPUT_MAX || j->kept_bytes + size > CAIRN_DB_OUTPUT_MAX) {
        j->rows_truncated = true;
        drop_row(j, row);
        return;
    }
    size_t need = (size_t)(j->kept_rows + 1) * (size_t)j->ncols;
    if (need > j->cap_cells) {
        j->cap_cells = need * 2;
        j->cells = cairn_realloc(j->cells, j->cap_cells * sizeof *j->cells);
    }
    memcpy(j->cells + (size_t)j->kept_rows * (size_t)j->ncols, row,
           (size_t)j->ncols * sizeof *row);
    j->kept_rows++;
    j->kept_bytes += size;
}

void cairn__db_blob(db_value *v, const void *data, size_t len) {
    v->type = DB_BLOB;
    v->len = 4 * ((len + 2) / 3);
    if (v->len > CAIRN_DB_OUTPUT_MAX) return;    /* too big to keep: size only */
    v->s = cairn_malloc(v->len + 1);
    EVP_EncodeBlock((unsigned char *)v->s, data, (int)len);
}

/* ---- reading `with` ----------------------------------------------------- */

/* with[name], or jv_invalid() when absent or null. */
static bool has_nul(jv s) {
    return strlen(jv_string_value(s)) != (size_t)jv_string_length_bytes(jv_copy(s));
}

/* A required string without NUL bytes, copied to *out. */
static int read_string(jv with, const char *name, char **out, cairn_fail *f) {
    jv v = cairn_with_get(with, name);
    int rc = 0;
    if (!jv_is_valid(v))
        rc = cairn_fail_set(f, "schema", "db: %s is required", name);
    else if (jv_get_kind(v) != JV_KIND_STRING)
        rc = cairn_fail_set(f, "schema", "db: %s must be a string, not %s", name,
                            jv_kind_name(jv_get_kind(v)));
    else if (has_nul(v) || jv_string_value(v)[0] == '\0')
        rc = cairn_fail_set(f, "schema", "db: %s must be a non-empty string without NUL bytes",
                            name);
    else
        *out = cairn_strdup(jv_string_value(v));
    jv_free(v);
    return rc;
}

static int read_driver(jv with, db_job *j, cairn_fail *f) {
    char *name = NULL;
    int rc = read_string(with, "driver", &name, f);
    if (rc == 0 && strcmp(name, "sqlite") == 0) j->driver = DB_DRIVER_SQLITE;
    else if (rc == 0 && strcmp(name, "postgres") == 0) j->driver = DB_DRIVER_POSTGRES;
    else if (rc == 0)
        rc = cairn_fail_set(f, "schema", "db: driver must be \"sqlite\" or \"postgres\", not \"%.64s\"",
                            name);
    free(name);
    return rc;
}

/* The shortest decimal that reads back as d (PostgreSQL parses it). */
static char *number_text(double d) {
    if (d == floor(d) && fabs(d) < 1e21) return cairn_sprintf("%.0f", d);
    for (int prec = 1; prec < 17; prec++) {
        char *s = cairn_sprintf("%.*g", prec, d);
        if (strtod(s, NULL) == d) return s;
        free(s);
    }
    return cairn_sprintf("%.17g", d);
}

/* One `params` entry into p (v borrowed). */
static int read_param(jv v, int i, db_driver driver, db_param *p, cairn_fail *f) {
    switch (jv_get_kind(v)) {
    case JV_KIND_NULL: p->type = DB_PARAM_NULL; return 0;
    case JV_KIND_TRUE:
    case JV_KIND_FALSE:
        p->type = DB_PARAM_BOOL;
        p->b = jv_get_kind(v) == JV_KIND_TRUE;
        p->text = cairn_strdup(p->b ? "true" : "false");
        break;
    case JV_KIND_NUMBER:
        p->type = DB_PARAM_NUMBER;
        p->d = jv_number_value(v);
        p->text = number_text(p->d);
        break;
    case JV_KIND_STRING:
        if (driver == DB_DRIVER_POSTGRES && has_nul(v))
            return cairn_fail_set(f, "schema", "db: params[%d]: PostgreSQL text cannot hold a NUL byte", i);
        p->type = DB_PARAM_TEXT;
        p->len = (size_t)jv_string_length_bytes(jv_copy(v));
        p->text = cairn_strndup(jv_string_value(v), p->len);
        return 0;
    default: {                         /* object or array: its JSON text */
        jv s = jv_dump_string(jv_copy(v), 0);
        p->type = DB_PARAM_TEXT;
        p->text = cairn_strdup(jv_string_value(s));
        jv_free(s);
        break;
    }
    }
    p->len = strlen(p->text);
    return 0;
}

static int read_params(jv with, db_job *j, cairn_fail *f) {
    jv ps = cairn_with_get(with, "params");
    int rc = 0;
    if (!jv_is_valid(ps)) return 0;
    if (jv_get_kind(ps) != JV_KIND_ARRAY)
        rc = cairn_fail_set(f, "schema", "db: params must be a list, not %s",
                            jv_kind_name(jv_get_kind(ps)));
    else if (jv_array_length(jv_copy(ps)) > CAIRN_DB_MAX_PARAMS)
        rc = cairn_fail_set(f, "schema", "db: params holds more than %d values", CAIRN_DB_MAX_PARAMS);
    int n = rc == 0 ? jv_array_length(jv_copy(ps)) : 0;
    j->params = cairn_calloc((size_t)n + 1, sizeof *j->params);
    for (int i = 0; rc == 0 && i < n; i++) {
        jv v = jv_array_get(jv_copy(ps), i);
        rc = read_param(v, i, j->driver, &j->params[i], f);
        j->nparams = i + 1;
        jv_free(v);
    }
    jv_free(ps);
    return rc;
}

static int read_max_rows(jv with, db_job *j, cairn_fail *f) {
    jv m = cairn_with_get(with, "max_rows");
    int rc = 0;
    j->max_rows = CAIRN_DB_MAX_ROWS;
    if (jv_is_valid(m)) {
        double d = jv_get_kind(m) == JV_KIND_NUMBER ? jv_number_value(m) : -1;
        if (!(d >= 0 && d <= CAIRN_DB_MAX_ROWS) || d != floor(d))   /* NaN too */
            rc = cairn_fail_set(f, "schema", "db: max_rows must be an integer from 0 to %d",
                                CAIRN_DB_MAX_ROWS);
        else
            j->max_rows = (int)d;
    }
    jv_free(m);
    return rc;
}

/* ---- building the output (orchestrator thread) -------------------------- */

/* Sign, significant digits (no leading or trailing zeros) and exponent E of
 * a plain decimal such as "-12.50e3", read as 0.DIGITS x 10^E, so that equal
 * values compare equal.  Returns false when s is not one. */
static bool decimal_canon(const char *s, char *digits, long *exp, bool *neg) {
    int n = 0, intdigits = 0, lead = 0;
    bool point = false;
    *neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            digits[n++] = *s;
            intdigits += !point;
        } else if (*s == '.' && !point) {
            point = true;
        } else {
            break;
        }
    }
    *exp = 0;
    if (n == 0) return false;
    if ((*s == 'e' || *s == 'E') && s[1] != '\0') *exp = strtol(s + 1, (char **)&s, 10);
    if (*s != '\0') return false;
    while (lead < n && digits[lead] == '0') lead++;
    memmove(digits, digits + lead, (size_t)(n - lead));
    n -= lead;
    while (n > 0 && digits[n - 1] == '0') n--;
    digits[n] = '\0';
    *exp = n ? *exp + intdigits - lead : 0;
    if (n == 0) *neg = false;
    return true;
}

/* Whether the decimal text s and the double d are the same decimal. */
static bool same_decimal(const char *s, double d) {
    char *shortest = number_text(d);
    size_t cap = strlen(s) + strlen(shortest) + 2;
    char *a = cairn_malloc(cap), *b = cairn_malloc(cap);
    long ea, eb;
    bool na, nb;
    bool same = decimal_canon(s, a, &ea, &na) && decimal_canon(shortest, b, &eb, &nb) &&
                strcmp(a, b) == 0 && ea == eb && na == nb;
    free(a);
    free(b);
    free(shortest);
    return same;
}

static jv real_jv(double d) {
    if (isnan(d)) return jv_string("NaN");
    if (isinf(d)) return jv_string(d > 0 ? "Infinity" : "-Infinity");
    return jv_number(d);
}

static jv numeric_jv(const db_value *v) {
    double d = strtod(v->s, NULL);
    if (isfinite(d) && same_decimal(v->s, d)) return jv_number(d);
    return jv_string(v->s);
}

static jv value_jv(const db_value *v) {
    switch (v->type) {
    case DB_NULL: return jv_null();
    case DB_BOOL: return jv_bool(v->b);
    case DB_INT:
        if (v->i >= -DB_EXACT_INT_MAX && v->i <= DB_EXACT_INT_MAX) return jv_number((double)v->i);
        return jv_string_fmt("%lld", (long long)v->i);
    case DB_REAL: return real_jv(v->d);
    case DB_NUMERIC: return numeric_jv(v);
    case DB_JSON: {
        jv parsed = cairn_json_parse(v->s, v->len);
        if (jv_is_valid(parsed)) return parsed;
        jv_free(parsed);
        return jv_string_sized(v->s, (int)v->len);
    }
    case DB_TEXT:
    case DB_BLOB: return jv_string_sized(v->s, (int)v->len);
    }
    return jv_null();
}

static jv rows_jv(const db_job *j) {
    jv rows = jv_array();
    for (int64_t r = 0; r < j->kept_rows; r++) {
        jv obj = jv_object();
        const db_value *row = j->cells + (size_t)r * (size_t)j->ncols;
        for (int c = 0; c < j->ncols; c++)
            obj = jv_object_set(obj, jv_string(j->columns[c]), value_jv(&row[c]));
        rows = jv_array_append(rows, obj);
    }
    return rows;
}

static jv output_jv(const db_job *j) {
    jv cols = jv_array();
    for (int c = 0; c < j->ncols; c++) cols = jv_array_append(cols, jv_string(j->columns[c]));
    jv out = jv_object();
    out = jv_object_set(out, jv_string("rows"), rows_jv(j));
    out = jv_object_set(out, jv_string("columns"), cols);
    out = jv_object_set(out, jv_string("row_count"), jv_number((double)j->row_count));
    out = jv_object_set(out, jv_string("rows_truncated"), jv_bool(j->rows_truncated));
    out = jv_object_set(out, jv_string("max_rows"), jv_number(j->max_rows));
    return jv_object_set(out, jv_string("output_cap_bytes"), jv_number(CAIRN_DB_OUTPUT_MAX));
}

/* ---- the three phases --------------------------------------------------- */

static int db_prepare(jv with, const cairn_attempt_info *info, void **job, cairn_fail *f) {
    (void)info;
    if (jv_get_kind(with) != JV_KIND_OBJECT)
        return cairn_fail_set(f, "schema", "db: with must be a map");
    db_job *j = cairn_calloc(1, sizeof *j);
    if (cairn_with_keys(with, &db_sig, f) || read_driver(with, j, f) || read_string(with, "dsn", &j->dsn, f) ||
        read_string(with, "query", &j->query, f) || read_params(with, j, f) ||
        cairn_with_duration(with, "timeout", &j->timeout_ms, f) || read_max_rows(with, j, f)) {
        cairn__db_job_free(j);
        return -1;
    }
    *job = j;
    return 0;
}

static void db_execute(void *job, const cairn_attempt_info *info) {
    db_job *j = job;
    j->stop = info->stop;
    j->deadline_ms = info->deadline_ms;
    if (j->timeout_ms) {
        int64_t t = cairn_now_ms() + j->timeout_ms;
        if (j->deadline_ms == 0 || t < j->deadline_ms) {
            j->deadline_ms = t;
            j->deadline_is_timeout = true;
        }
    }
    if (cairn__db_check_stop(j, "before the start") != 0) return;
    if (j->driver == DB_DRIVER_SQLITE) cairn__db_sqlite_run(j);
    else cairn__db_pg_run(j);
}

static int db_finish(void *job, jv *output, cairn_fail *f) {
    db_job *j = job;
    int rc = 0;
    if (j->failed) {
        *f = j->fail;
        rc = -1;
    } else {
        *output = output_jv(j);
    }
    cairn__db_job_free(j);
    return rc;
}

static void db_discard(void *job) { cairn__db_job_free(job); }

const cairn_action cairn_action_db = {
    .sig = &db_sig,
    .flags = 0,
    .prepare = db_prepare,
    .execute = db_execute,
    .finish = db_finish,
    .discard = db_discard,
};
