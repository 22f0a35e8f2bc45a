/*
 * The PostgreSQL backend of the shared state, for a fleet (libpq). One connection per
 * process, used under the state's lock; it reconnects by itself (at most once a second)
 * when the server went away, outside a transaction only, so a transaction never spans two
 * connections. Statements are sent with their parameters as text (PQexecParams), the
 * placeholders of the shared SQL (`?`, `?N`) rewritten to `$N`.
 */
#include "config.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cml_alloc.h"
#include "state/state_db.h"

#define PG_MAX_PARAMS 16
#define PG_RETRY_S 1
/* The channel of the selection's generation (state_notify). */
#define PG_CHANNEL "cultivate_ml_state"

struct state_db {
    PGconn *conn;
    char *conninfo; /* owned; holds the password, never logged */
    time_t last_attempt;
    bool in_transaction;
    /* The last call failed because the connection broke (a restart of the server): the
     * failure is an outage even when the reconnect that follows succeeds. */
    bool lost;
    char err[256];
};

struct state_stmt {
    state_stmt_head head;
    state_db *db;
    char *sql; /* with $N placeholders */
    int n_params;
    char *values[PG_MAX_PARAMS];
    Oid types[PG_MAX_PARAMS];
    PGresult *res;
    int row, rows; /* row: the current one, -1 before the first step */
    bool ran, failed;
};

/* libpq's message without its trailing newline (it names host and user, never a password). */
static void pg_set_error(state_db *d, const char *msg) {
    d->lost = d->lost || (d->conn != NULL && PQstatus(d->conn) != CONNECTION_OK);
    snprintf(d->err, sizeof d->err, "%s", msg && *msg ? msg : "PostgreSQL error");
    size_t n = strlen(d->err);
    while (n > 0 && (d->err[n - 1] == '\n' || d->err[n - 1] == ' '))
        d->err[--n] = '\0';
    for (char *p = d->err; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

/* A connection with our defaults; the connection string's own settings win (they come last). */
static PGconn *pg_connect(const char *conninfo) {
    const char *const keys[] = {
        "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *const values[] = {"3", "cultivate-ml", "5", "2", "2", "10000", conninfo, NULL};
    return PQconnectdbParams(keys, values, 1);
}

/* True when d has a working connection, reconnecting when it may. */
static bool pg_usable(state_db *d) {
    if (d->conn && PQstatus(d->conn) == CONNECTION_OK)
        return true;
    if (d->in_transaction)
        return false;
    time_t now = time(NULL);
    if (d->conn && now - d->last_attempt < PG_RETRY_S)
        return false;
    d->last_attempt = now;
    PQfinish(d->conn);
    d->conn = pg_connect(d->conninfo);
    if (d->conn && PQstatus(d->conn) == CONNECTION_OK) {
        PQclear(PQexec(d->conn, "SET client_min_messages = warning"));
        return true;
    }
    pg_set_error(d, d->conn ? PQerrorMessage(d->conn) : "out of memory");
    return false;
}

static cml_err pg_open(const char *conninfo, state_db **out, cml_diag *diag) {
    *out = NULL;
    state_db *d = cml_calloc(1, sizeof(*d));
    if (d == NULL || (d->conninfo = cml_strdup(conninfo)) == NULL) {
        cml_free(d);
        return CML_ERR_NOMEM;
    }
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    if (opts == NULL) {
        /* libpq quotes the token it refused, which may be part of the password: drop it. */
        char why[256];
        size_t o = 0;
        bool quoted = false;
        for (const char *p = msg ? msg : "out of memory"; *p && o + 4 < sizeof why; p++) {
            if (*p == '"') {
                if (!quoted)
                    o += (size_t)snprintf(why + o, sizeof why - o, "\"...\"");
                quoted = !quoted;
            } else if (!quoted && *p != '\n') {
                why[o++] = *p;
            }
        }
        why[o] = '\0';
        cml_err err =
            cml_diag_set(diag, CML_ERR_CONFIG, "database_url: not a connection string: %s", why);
        PQfreemem(msg);
        cml_free(d->conninfo);
        cml_free(d);
        return err;
    }
    PQconninfoFree(opts);
    /* Unreachable at start is not fatal: the service serves from its models and retries. */
    pg_usable(d);
    *out = d;
    return CML_OK;
}

static void pg_close(state_db *d) {
    if (d == NULL)
        return;
    PQfinish(d->conn);
    if (d->conninfo)
        explicit_bzero(d->conninfo, strlen(d->conninfo));
    cml_free(d->conninfo);
    cml_free(d);
}

/* The shared SQL with `?` and `?N` as `$N` (outside string literals); the largest N in *n.
 * NULL when a parameter number is out of range (then *n is PG_MAX_PARAMS + 1). */
static char *pg_rewrite(const char *sql, int *n) {
    /* Each `?` (one byte) grows to at most "$NN" with N <= PG_MAX_PARAMS < 100. */
    size_t cap = strlen(sql) * 3 + 1, o = 0;
    char *out = cml_malloc(cap);
    int next = 0;
    bool quoted = false;
    *n = 0;
    if (out == NULL)
        return NULL;
    for (const char *p = sql; *p; p++) {
        if (*p == '\'')
            quoted = !quoted;
        if (quoted || *p != '?') {
            out[o++] = *p;
            continue;
        }
        long k = next + 1;
        if (p[1] >= '0' && p[1] <= '9') {
            char *end;
            k = strtol(p + 1, &end, 10);
            p = end - 1;
        }
        if (k < 1 || k > PG_MAX_PARAMS) {
            *n = PG_MAX_PARAMS + 1;
            cml_free(out);
            return NULL;
        }
        if (k > next)
            next = (int)k;
        if (k > *n)
            *n = (int)k;
        o += (size_t)snprintf(out + o, cap - o, "$%ld", k);
    }
    out[o] = '\0';
    return out;
}

static state_stmt *pg_prepare(state_db *d, const char *sql) {
    if (!pg_usable(d))
        return NULL;
    state_stmt *s = cml_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->head.drv = &state_driver_postgres;
    s->db = d;
    s->row = -1;
    s->sql = pg_rewrite(sql, &s->n_params);
    if (s->sql == NULL || s->n_params > PG_MAX_PARAMS) {
        pg_set_error(d, "statement has too many parameters");
        cml_free(s->sql);
        cml_free(s);
        return NULL;
    }
    return s;
}

static void pg_bind(state_stmt *s, int i, const char *text, Oid type) {
    if (i < 1 || i > s->n_params)
        return;
    cml_free(s->values[i - 1]);
    s->values[i - 1] = text ? cml_strdup(text) : NULL;
    if (text && s->values[i - 1] == NULL)
        s->failed = true;
    s->types[i - 1] = type;
}

/* The type OIDs of PostgreSQL's catalogue (pg_type.h is not in libpq-dev). */
enum { PG_INT8OID = 20, PG_TEXTOID = 25, PG_FLOAT8OID = 701 };

/* v NULL: a NULL of type text. */
static void pg_bind_text(state_stmt *s, int i, const char *v) { pg_bind(s, i, v, PG_TEXTOID); }
static void pg_bind_int64(state_stmt *s, int i, int64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    pg_bind(s, i, buf, PG_INT8OID);
}
static void pg_bind_double(state_stmt *s, int i, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    pg_bind(s, i, buf, PG_FLOAT8OID);
}
/* Untyped: the server infers it from where the parameter is used. */
static void pg_bind_null(state_stmt *s, int i) { pg_bind(s, i, NULL, 0); }

static state_step_result pg_step(state_stmt *s) {
    if (!s->ran) {
        s->ran = true;
        if (s->failed)
            return STATE_FAILED;
        s->res = PQexecParams(s->db->conn, s->sql, s->n_params, s->types,
                              (const char *const *)s->values, NULL, NULL, 0);
        ExecStatusType t = PQresultStatus(s->res);
        if (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK) {
            pg_set_error(s->db, PQresultErrorMessage(s->res));
            s->failed = true;
            return STATE_FAILED;
        }
        s->rows = PQntuples(s->res);
    }
    if (s->failed)
        return STATE_FAILED;
    if (s->row + 1 < s->rows) {
        s->row++;
        return STATE_ROW;
    }
    s->row = s->rows;
    return STATE_DONE;
}

static bool pg_in_row(state_stmt *s, int col) {
    return s->res && s->row >= 0 && s->row < s->rows && col < PQnfields(s->res);
}
static bool pg_col_null(state_stmt *s, int col) {
    return !pg_in_row(s, col) || PQgetisnull(s->res, s->row, col);
}
static const char *pg_col_text(state_stmt *s, int col) {
    return pg_col_null(s, col) ? NULL : PQgetvalue(s->res, s->row, col);
}
static int64_t pg_col_int64(state_stmt *s, int col) {
    const char *t = pg_col_text(s, col);
    return t ? strtoll(t, NULL, 10) : 0;
}
static double pg_col_double(state_stmt *s, int col) {
    const char *t = pg_col_text(s, col);
    return t ? strtod(t, NULL) : 0.0;
}
static int64_t pg_changes(state_stmt *s) {
    const char *t = s->res ? PQcmdTuples(s->res) : "";
    return *t ? strtoll(t, NULL, 10) : 0;
}

static void pg_finalize(state_stmt *s) {
    if (s == NULL)
        return;
    PQclear(s->res);
    for (int i = 0; i < PG_MAX_PARAMS; i++)
        cml_free(s->values[i]);
    cml_free(s->sql);
    cml_free(s);
}

static cml_err pg_exec(state_db *d, const char *sql) {
    bool ending = !strcmp(sql, "COMMIT") || !strcmp(sql, "ROLLBACK");
    if (!pg_usable(d)) {
        if (ending)
            d->in_transaction = false; /* the server ended it with the connection */
        return CML_ERR_IO;
    }
    PGresult *r = PQexec(d->conn, sql);
    ExecStatusType t = PQresultStatus(r);
    cml_err err = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK ? CML_OK : CML_ERR_IO;
    if (err != CML_OK)
        pg_set_error(d, PQresultErrorMessage(r));
    PQclear(r);
    if (ending)
        d->in_transaction = false;
    return err;
}

/* The whole fleet's writers queue on one advisory lock, as SQLite's BEGIN IMMEDIATE does. */
static cml_err pg_begin_exclusive(state_db *d) {
    if (pg_exec(d, "BEGIN") != CML_OK)
        return CML_ERR_IO;
    d->in_transaction = true;
    if (pg_exec(d, "SELECT pg_advisory_xact_lock(7135007)") != CML_OK) {
        pg_exec(d, "ROLLBACK");
        return CML_ERR_IO;
    }
    return CML_OK;
}

static const char *pg_errmsg(state_db *d) { return d->err[0] ? d->err : "no error"; }

static bool pg_reachable(state_db *d) {
    bool lost = d->lost;
    d->lost = false;
    return pg_usable(d) && !lost;
}

static cml_err pg_notify(state_db *d, uint64_t generation) {
    char payload[24];
    snprintf(payload, sizeof payload, "%llu", (unsigned long long)generation);
    const char *v[1] = {payload};
    if (!pg_usable(d))
        return CML_ERR_IO;
    PGresult *r =
        PQexecParams(d->conn, "SELECT pg_notify('" PG_CHANNEL "', $1)", 1, NULL, v, NULL, NULL, 0);
    cml_err err = PQresultStatus(r) == PGRES_TUPLES_OK ? CML_OK : CML_ERR_IO;
    if (err != CML_OK)
        pg_set_error(d, PQresultErrorMessage(r));
    PQclear(r);
    return err;
}

/* --- the watcher: LISTEN on its own connection -------------------------------------------- */

struct state_watch {
    char *conninfo;
    void (*changed)(void *ctx, uint64_t generation);
    void *ctx;
    _Atomic bool stop;
    pthread_t thread;
};

/* The stored generation, read after each (re)connect: a change made while this process was
 * not listening is not missed. */
static void watch_catch_up(struct state_watch *w, PGconn *c) {
    PGresult *r = PQexec(c, "SELECT generation FROM selection WHERE id = 1");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        w->changed(w->ctx, strtoull(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
}

static void *watch_main(void *arg) {
    struct state_watch *w = arg;
    PGconn *c = NULL;
    while (!atomic_load(&w->stop)) {
        if (c == NULL || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = pg_connect(w->conninfo);
            PGresult *r =
                c && PQstatus(c) == CONNECTION_OK ? PQexec(c, "LISTEN " PG_CHANNEL) : NULL;
            bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (!ok) {
                PQfinish(c);
                c = NULL;
                for (int i = 0; i < 10 && !atomic_load(&w->stop); i++)
                    nanosleep(&(struct timespec){0, 100000000}, NULL);
                continue;
            }
            watch_catch_up(w, c);
        }
        struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
        int rc = poll(&p, 1, 200);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && !PQconsumeInput(c))
            continue; /* the connection broke: reconnect above */
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            w->changed(w->ctx, strtoull(n->extra, NULL, 10));
            PQfreemem(n);
        }
    }
    PQfinish(c);
    return NULL;
}

static state_watch *pg_watch_start(const char *conninfo,
                                   void (*changed)(void *ctx, uint64_t generation), void *ctx) {
    struct state_watch *w = cml_calloc(1, sizeof(*w));
    if (w == NULL || (w->conninfo = cml_strdup(conninfo)) == NULL) {
        cml_free(w);
        return NULL;
    }
    w->changed = changed;
    w->ctx = ctx;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        cml_free(w->conninfo);
        cml_free(w);
        return NULL;
    }
    return w;
}

static void pg_watch_stop(state_watch *w) {
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    explicit_bzero(w->conninfo, strlen(w->conninfo));
    cml_free(w->conninfo);
    cml_free(w);
}

const state_driver state_driver_postgres = {
    .name = "postgresql",
    .dialect = {.day_of_epoch = "to_char(to_timestamp(%s) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"},
    .open = pg_open,
    .close = pg_close,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .col_null = pg_col_null,
    .col_text = pg_col_text,
    .col_int64 = pg_col_int64,
    .col_double = pg_col_double,
    .changes = pg_changes,
    .finalize = pg_finalize,
    .exec = pg_exec,
    .begin_exclusive = pg_begin_exclusive,
    .errmsg = pg_errmsg,
    .reachable = pg_reachable,
    .notify = pg_notify,
    .watch_start = pg_watch_start,
    .watch_stop = pg_watch_stop,
};
