/* Shadow counts (shared map, then the shared state's daily rows) and feedback scores per version.
 */
#include "config.h"

#include "state/live_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/cml_alloc.h"
#include "state/state_internal.h"

#define MAGIC 0x434d4c4c49564532ull /* "CMLLIVE2" */
#define SLOTS 256
#define KEY_CHARS 160

typedef struct slot {
    _Atomic uint32_t state; /* 0 empty, 1 being claimed, 2 ready */
    char key[KEY_CHARS];    /* a_type \t a_version \t s_type \t s_version */
    uint32_t n_a, n_s;
    char labels_a[CML_LIVE_LABELS][CML_LIVE_LABEL_CHARS];
    char labels_s[CML_LIVE_LABELS][CML_LIVE_LABEL_CHARS];
    /* Pending: counted, not yet flushed. Confidences in millionths. */
    _Atomic uint64_t requests, agreements, conf_a, conf_s;
    _Atomic uint64_t n_label_a[CML_LIVE_LABELS], n_label_s[CML_LIVE_LABELS];
} slot;

typedef struct live_shm {
    uint64_t magic;
    _Atomic uint64_t dropped, skipped;
    slot slots[SLOTS];
} live_shm;

static live_shm *L;

cml_err cml_live_open(const char *path, cml_diag *diag) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cml_diag_set(diag, CML_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    /* One process sizes and stamps the map; the others wait on the lock. */
    flock(fd, LOCK_EX);
    cml_err err = CML_OK;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size != (off_t)sizeof(live_shm) &&
        (ftruncate(fd, 0) != 0 || ftruncate(fd, sizeof(live_shm)) != 0)) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot size %s", path);
    } else {
        void *p = mmap(NULL, sizeof(live_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            err = cml_diag_set(diag, CML_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        } else {
            if (L)
                munmap(L, sizeof(live_shm));
            L = p;
            if (L->magic != MAGIC) {
                memset(L, 0, sizeof(live_shm));
                L->magic = MAGIC;
            }
        }
    }
    flock(fd, LOCK_UN);
    close(fd);
    return err;
}

void cml_live_close(void) {
    if (L)
        munmap(L, sizeof(live_shm));
    L = NULL;
}

uint64_t cml_live_dropped(void) { return L ? atomic_load(&L->dropped) : 0; }

void cml_live_skipped(void) {
    if (L)
        atomic_fetch_add_explicit(&L->skipped, 1, memory_order_relaxed);
}

uint64_t cml_live_skipped_total(void) { return L ? atomic_load(&L->skipped) : 0; }

static void copy_labels(char dst[][CML_LIVE_LABEL_CHARS], uint32_t *n, const char *const *src,
                        size_t n_src) {
    *n = (uint32_t)(n_src < CML_LIVE_LABELS ? n_src : CML_LIVE_LABELS);
    for (uint32_t i = 0; i < *n; i++)
        snprintf(dst[i], CML_LIVE_LABEL_CHARS, "%s", src[i]);
}

/* Finds or claims the slot of o's pair; NULL when the table is full. */
static slot *claim(const cml_live_obs *o) {
    char key[KEY_CHARS];
    int len =
        snprintf(key, sizeof key, "%s\t%s\t%s\t%s", o->answering_type, o->answering_version,
                 o->shadow_type ? o->shadow_type : "", o->shadow_version ? o->shadow_version : "");
    if (len < 0 || (size_t)len >= sizeof key)
        return NULL;
    size_t start = (size_t)XXH3_64bits(key, (size_t)len) % SLOTS;
    for (size_t probe = 0; probe < SLOTS; probe++) {
        slot *s = &L->slots[(start + probe) % SLOTS];
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == 0) {
            uint32_t expect = 0;
            if (atomic_compare_exchange_strong(&s->state, &expect, 1)) {
                memcpy(s->key, key, (size_t)len + 1);
                copy_labels(s->labels_a, &s->n_a, o->answering_labels, o->answering_n_labels);
                copy_labels(s->labels_s, &s->n_s, o->shadow_labels,
                            o->shadow_type ? o->shadow_n_labels : 0);
                atomic_store_explicit(&s->state, 2, memory_order_release);
                return s;
            }
            st = expect;
        }
        for (int spin = 0; st == 1 && spin < 100000; spin++)
            st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == 2 && strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

static uint64_t millionths(double c) { return c > 0 ? (uint64_t)(c * 1e6 + 0.5) : 0; }

void cml_live_count(const cml_live_obs *o) {
    if (L == NULL)
        return;
    slot *s = claim(o);
    if (s == NULL) {
        atomic_fetch_add_explicit(&L->dropped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->conf_a, millionths(o->answering_confidence),
                              memory_order_relaxed);
    if (o->answering_label >= 0 && (uint32_t)o->answering_label < s->n_a)
        atomic_fetch_add_explicit(&s->n_label_a[o->answering_label], 1, memory_order_relaxed);
    if (o->shadow_type == NULL)
        return;
    atomic_fetch_add_explicit(&s->conf_s, millionths(o->shadow_confidence), memory_order_relaxed);
    if (o->shadow_label >= 0 && (uint32_t)o->shadow_label < s->n_s)
        atomic_fetch_add_explicit(&s->n_label_s[o->shadow_label], 1, memory_order_relaxed);
    /* Agreement is on the label's name: the two types may order their labels differently. */
    if (o->answering_label >= 0 && o->shadow_label >= 0 &&
        (size_t)o->answering_label < o->answering_n_labels &&
        (size_t)o->shadow_label < o->shadow_n_labels &&
        strcmp(o->answering_labels[o->answering_label], o->shadow_labels[o->shadow_label]) == 0)
        atomic_fetch_add_explicit(&s->agreements, 1, memory_order_relaxed);
}

void cml_live_day(int64_t t, char out[11]) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Splits a slot's key into the pair's four names. */
static void key_fields(const char *key, cml_live_pair *p) {
    char copy[KEY_CHARS], *f[4] = {copy, NULL, NULL, NULL};
    snprintf(copy, sizeof copy, "%s", key);
    for (int i = 1; i < 4; i++) {
        char *tab = f[i - 1] ? strchr(f[i - 1], '\t') : NULL;
        if (tab) {
            *tab = '\0';
            f[i] = tab + 1;
        }
    }
    char *dst[4] = {p->answering.model_type, p->answering.version, p->shadow.model_type,
                    p->shadow.version};
    size_t cap[4] = {sizeof p->answering.model_type, sizeof p->answering.version,
                     sizeof p->shadow.model_type, sizeof p->shadow.version};
    for (int i = 0; i < 4; i++) {
        size_t len = f[i] ? strnlen(f[i], cap[i] - 1) : 0;
        memcpy(dst[i], f[i] ? f[i] : "", len);
        dst[i][len] = '\0';
    }
}

/* Takes (exchange with 0) or reads a slot's pending counts into *p. */
static void slot_counts(slot *s, bool take, cml_live_pair *p) {
#define GET(x) (take ? atomic_exchange(&(x), 0) : atomic_load(&(x)))
    memset(p, 0, sizeof(*p));
    key_fields(s->key, p);
    p->requests = GET(s->requests);
    p->agreements = GET(s->agreements);
    p->answering.confidence_sum = (double)GET(s->conf_a) / 1e6;
    p->shadow.confidence_sum = (double)GET(s->conf_s) / 1e6;
    p->answering.n_labels = s->n_a;
    p->shadow.n_labels = s->n_s;
    for (uint32_t i = 0; i < CML_LIVE_LABELS; i++) {
        memcpy(p->answering.labels[i], s->labels_a[i], CML_LIVE_LABEL_CHARS);
        memcpy(p->shadow.labels[i], s->labels_s[i], CML_LIVE_LABEL_CHARS);
        p->answering.label_n[i] = GET(s->n_label_a[i]);
        p->shadow.label_n[i] = GET(s->n_label_s[i]);
    }
#undef GET
}

/* Gives counts taken from a slot back to it (the flush failed). */
static void slot_restore(slot *s, const cml_live_pair *p) {
    atomic_fetch_add(&s->requests, p->requests);
    atomic_fetch_add(&s->agreements, p->agreements);
    atomic_fetch_add(&s->conf_a, millionths(p->answering.confidence_sum));
    atomic_fetch_add(&s->conf_s, millionths(p->shadow.confidence_sum));
    for (uint32_t i = 0; i < CML_LIVE_LABELS; i++) {
        atomic_fetch_add(&s->n_label_a[i], p->answering.label_n[i]);
        atomic_fetch_add(&s->n_label_s[i], p->shadow.label_n[i]);
    }
}

static void side_add(cml_live_side *dst, const cml_live_side *src) {
    dst->confidence_sum += src->confidence_sum;
    for (size_t i = 0; i < src->n_labels; i++) {
        size_t j = 0;
        while (j < dst->n_labels && strcmp(dst->labels[j], src->labels[i]) != 0)
            j++;
        if (j == dst->n_labels) {
            if (j == CML_LIVE_LABELS)
                continue;
            memcpy(dst->labels[j], src->labels[i], CML_LIVE_LABEL_CHARS);
            dst->label_n[j] = 0;
            dst->n_labels++;
        }
        dst->label_n[j] += src->label_n[i];
    }
}

void cml_live_pair_add(cml_live_pair *dst, const cml_live_pair *src) {
    dst->requests += src->requests;
    dst->agreements += src->agreements;
    if (src->first_at && (!dst->first_at || src->first_at < dst->first_at))
        dst->first_at = src->first_at;
    side_add(&dst->answering, &src->answering);
    side_add(&dst->shadow, &src->shadow);
}

static char *labels_json(const cml_live_side *s) {
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < s->n_labels; i++)
        json_object_object_add(o, s->labels[i], json_object_new_int64((int64_t)s->label_n[i]));
    char *text = cml_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static void labels_parse(const char *text, cml_live_side *s) {
    json_object *o = text ? json_tokener_parse(text) : NULL;
    s->n_labels = 0;
    if (o && json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v) {
            if (s->n_labels == CML_LIVE_LABELS)
                break;
            snprintf(s->labels[s->n_labels], CML_LIVE_LABEL_CHARS, "%s", k);
            s->label_n[s->n_labels++] = (uint64_t)json_object_get_int64(v);
        }
    }
    json_object_put(o);
}

/* Reads the current row (columns in the order of ROW_COLUMNS) into *p. */
#define ROW_COLUMNS                                                                                \
    "day, a_type, a_version, s_type, s_version, requests, agreements, a_labels, s_labels,"         \
    " a_conf, s_conf, first_at"
static void row_read(state_stmt *s, cml_live_pair *p) {
    memset(p, 0, sizeof(*p));
    state_copy_col(p->day, sizeof p->day, s, 0);
    state_copy_col(p->answering.model_type, sizeof p->answering.model_type, s, 1);
    state_copy_col(p->answering.version, sizeof p->answering.version, s, 2);
    state_copy_col(p->shadow.model_type, sizeof p->shadow.model_type, s, 3);
    state_copy_col(p->shadow.version, sizeof p->shadow.version, s, 4);
    p->requests = (uint64_t)state_col_int64(s, 5);
    p->agreements = (uint64_t)state_col_int64(s, 6);
    labels_parse(state_col_text(s, 7), &p->answering);
    labels_parse(state_col_text(s, 8), &p->shadow);
    p->answering.confidence_sum = state_col_double(s, 9);
    p->shadow.confidence_sum = state_col_double(s, 10);
    p->first_at = state_col_int64(s, 11);
}

/* Binds a row's key (day and the pair's four names) to parameters 1 to 5. */
static void bind_key(state_stmt *s, const char *day, const cml_live_pair *p) {
    const char *v[5] = {day, p->answering.model_type, p->answering.version, p->shadow.model_type,
                        p->shadow.version};
    for (int i = 0; i < 5; i++)
        state_bind_text(s, i + 1, v[i]);
}

/* Adds p to its stored row of day (st->lock held, inside a transaction). */
static bool store_pair(cml_state *st, const char *day, const cml_live_pair *p) {
    cml_live_pair row;
    bool ok = false;
    char *la = NULL, *ls = NULL;
    state_stmt *q = state_prep(st, "SELECT " ROW_COLUMNS " FROM shadow_daily WHERE day = ? AND"
                                   " a_type = ? AND a_version = ? AND s_type = ? AND"
                                   " s_version = ?");
    state_stmt *w = state_prep(
        st, "INSERT INTO shadow_daily (" ROW_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (day, a_type, a_version, s_type, s_version) DO UPDATE SET"
            " requests = excluded.requests, agreements = excluded.agreements,"
            " a_labels = excluded.a_labels, s_labels = excluded.s_labels,"
            " a_conf = excluded.a_conf, s_conf = excluded.s_conf, first_at = excluded.first_at");
    if (q == NULL || w == NULL)
        goto done;
    bind_key(q, day, p);
    state_step_result rc = state_step(q);
    if (rc == STATE_ROW) {
        row_read(q, &row);
    } else if (rc == STATE_DONE) {
        row = *p;
        memset(&row.answering, 0, sizeof row.answering);
        memset(&row.shadow, 0, sizeof row.shadow);
        row.requests = row.agreements = 0;
        row.first_at = (int64_t)time(NULL);
    } else {
        goto done;
    }
    cml_live_pair_add(&row, p);
    la = labels_json(&row.answering);
    ls = labels_json(&row.shadow);
    if (la == NULL || ls == NULL)
        goto done;
    bind_key(w, day, p);
    state_bind_int64(w, 6, (int64_t)row.requests);
    state_bind_int64(w, 7, (int64_t)row.agreements);
    state_bind_text(w, 8, la);
    state_bind_text(w, 9, ls);
    state_bind_double(w, 10, row.answering.confidence_sum);
    state_bind_double(w, 11, row.shadow.confidence_sum);
    state_bind_int64(w, 12, row.first_at);
    ok = state_step(w) == STATE_DONE;
done:
    state_finalize(q);
    state_finalize(w);
    cml_free(la);
    cml_free(ls);
    return ok;
}

cml_err cml_live_flush(cml_state *st) {
    if (L == NULL)
        return CML_OK;
    cml_live_pair *taken = cml_calloc(SLOTS, sizeof(cml_live_pair));
    if (taken == NULL)
        return CML_ERR_NOMEM;
    bool had[SLOTS] = {false}, ok = true;
    char day[11];
    cml_live_day((int64_t)time(NULL), day);
    pthread_mutex_lock(&st->lock);
    /* Counts are taken inside the write transaction, so a failed one can give them back. */
    ok = state_begin(st) == CML_OK;
    for (size_t i = 0; ok && i < SLOTS; i++) {
        slot *s = &L->slots[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != 2 ||
            atomic_load(&s->requests) == 0)
            continue;
        slot_counts(s, true, &taken[i]);
        had[i] = true;
        ok = store_pair(st, day, &taken[i]);
    }
    if (ok)
        ok = state_commit(st) == CML_OK;
    if (!ok) {
        state_rollback(st);
        for (size_t i = 0; i < SLOTS; i++)
            if (had[i])
                slot_restore(&L->slots[i], &taken[i]);
    }
    pthread_mutex_unlock(&st->lock);
    cml_free(taken);
    return ok ? CML_OK : state_failure(st);
}

/* Appends p to *rows, merging it into a row of the same day and pair. */
static bool rows_merge(cml_live_pair **rows, size_t *n, size_t *cap, const cml_live_pair *p) {
    for (size_t i = 0; i < *n; i++) {
        cml_live_pair *r = &(*rows)[i];
        if (!strcmp(r->day, p->day) && !strcmp(r->answering.model_type, p->answering.model_type) &&
            !strcmp(r->answering.version, p->answering.version) &&
            !strcmp(r->shadow.model_type, p->shadow.model_type) &&
            !strcmp(r->shadow.version, p->shadow.version)) {
            cml_live_pair_add(r, p);
            return true;
        }
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        cml_live_pair *g = cml_realloc_array(*rows, nc, sizeof(cml_live_pair));
        if (g == NULL)
            return false;
        *rows = g;
        *cap = nc;
    }
    (*rows)[(*n)++] = *p;
    return true;
}

cml_err cml_live_rows(cml_state *st, const char *from_day, bool with_pending, cml_live_pair **out,
                      size_t *n) {
    cml_err err = CML_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "SELECT " ROW_COLUMNS " FROM shadow_daily WHERE day >= ?"
                                   " ORDER BY day, a_type, a_version, s_type, s_version");
    if (s == NULL) {
        err = state_failure(st);
    } else {
        state_bind_text(s, 1, from_day ? from_day : "");
        state_step_result rc = STATE_DONE;
        while (err == CML_OK && (rc = state_step(s)) == STATE_ROW) {
            cml_live_pair p;
            row_read(s, &p);
            if (!rows_merge(out, n, &cap, &p))
                err = CML_ERR_NOMEM;
        }
        if (err == CML_OK && rc != STATE_DONE)
            err = state_failure(st);
    }
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    char today[11];
    cml_live_day((int64_t)time(NULL), today);
    for (size_t i = 0; err == CML_OK && with_pending && L && i < SLOTS; i++) {
        slot *sl = &L->slots[i];
        if (atomic_load_explicit(&sl->state, memory_order_acquire) != 2 ||
            atomic_load(&sl->requests) == 0)
            continue;
        cml_live_pair p;
        slot_counts(sl, false, &p);
        memcpy(p.day, today, sizeof p.day);
        if (!rows_merge(out, n, &cap, &p))
            err = CML_ERR_NOMEM;
    }
    if (err != CML_OK) {
        cml_free(*out);
        *out = NULL;
        *n = 0;
    }
    return err;
}

/* --- feedback scores ------------------------------------------------------------------- */

cml_err cml_state_add_feedback_score(cml_state *st, int64_t id, const char *model_type,
                                     const char *version, const char *predicted) {
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(st, "INSERT INTO feedback_scores (feedback_id, model_type,"
                                   " version, predicted_class, scored_at) VALUES (?, ?, ?, ?, ?)"
                                   " ON CONFLICT DO NOTHING");
    if (s) {
        state_bind_int64(s, 1, id);
        state_bind_text(s, 2, model_type);
        state_bind_text(s, 3, version);
        state_bind_text(s, 4, predicted);
        state_bind_int64(s, 5, (int64_t)time(NULL));
    }
    return state_finish_write(st, s);
}

void cml_feedback_items_free(cml_feedback_item *items, size_t n) {
    for (size_t i = 0; items && i < n; i++)
        cml_free(items[i].text);
    cml_free(items);
}

cml_err cml_state_feedback_unscored(cml_state *st, const char *model_type, const char *version,
                                    int64_t after_id, size_t limit, cml_feedback_item **out,
                                    size_t *n) {
    cml_err err = CML_OK;
    *n = 0;
    *out = limit ? cml_calloc(limit, sizeof(cml_feedback_item)) : NULL;
    if (limit && *out == NULL)
        return CML_ERR_NOMEM;
    pthread_mutex_lock(&st->lock);
    state_stmt *s = state_prep(
        st, "SELECT f.id, f.created_at, f.text, f.correct_class FROM feedback f WHERE f.id > ?"
            " AND NOT EXISTS (SELECT 1 FROM feedback_scores c WHERE c.feedback_id = f.id AND"
            " c.model_type = ? AND c.version = ?) ORDER BY f.id LIMIT ?");
    if (s == NULL) {
        err = state_failure(st);
    } else {
        state_bind_int64(s, 1, after_id);
        state_bind_text(s, 2, model_type);
        state_bind_text(s, 3, version);
        state_bind_int64(s, 4, (int64_t)limit);
        state_step_result rc = STATE_DONE;
        while (err == CML_OK && *n < limit && (rc = state_step(s)) == STATE_ROW) {
            cml_feedback_item *it = &(*out)[*n];
            it->id = state_col_int64(s, 0);
            it->created_at = state_col_int64(s, 1);
            it->text = cml_strdup(state_col_text(s, 2));
            state_copy_col(it->correct_class, sizeof it->correct_class, s, 3);
            if (it->text == NULL)
                err = CML_ERR_NOMEM;
            else
                (*n)++;
        }
        if (err == CML_OK && *n < limit && rc != STATE_DONE)
            err = state_failure(st);
    }
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (err != CML_OK) {
        cml_feedback_items_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return err;
}

static int label_index(const char *const *labels, size_t n, const char *l) {
    for (size_t i = 0; l && i < n; i++)
        if (strcmp(labels[i], l) == 0)
            return (int)i;
    return -1;
}

cml_err cml_state_feedback_confusion(cml_state *st, const char *model_type, const char *version,
                                     const char *day, const char *const *labels, size_t n_labels,
                                     size_t *confusion) {
    cml_err err = CML_OK;
    memset(confusion, 0, n_labels * n_labels * sizeof(size_t));
    pthread_mutex_lock(&st->lock);
    char sql[512], created_day[128];
    state_day_expr(st, "f.created_at", created_day, sizeof created_day);
    snprintf(sql, sizeof sql,
             "SELECT f.correct_class, c.predicted_class, COUNT(*) FROM feedback_scores c"
             " JOIN feedback f ON f.id = c.feedback_id WHERE c.model_type = ?1 AND c.version = ?2"
             " AND (?3 IS NULL OR %s = ?3) GROUP BY 1, 2",
             created_day);
    state_stmt *s = state_prep(st, sql);
    if (s == NULL) {
        err = state_failure(st);
    } else {
        state_bind_text(s, 1, model_type);
        state_bind_text(s, 2, version);
        state_bind_text(s, 3, day);
        state_step_result rc = STATE_DONE;
        while ((rc = state_step(s)) == STATE_ROW) {
            int a = label_index(labels, n_labels, state_col_text(s, 0));
            int p = label_index(labels, n_labels, state_col_text(s, 1));
            if (a >= 0 && p >= 0)
                confusion[(size_t)a * n_labels + (size_t)p] += (size_t)state_col_int64(s, 2);
        }
        if (rc != STATE_DONE)
            err = state_failure(st);
    }
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return err;
}

cml_err cml_state_feedback_days(cml_state *st, const char *from_day, cml_feedback_day **out,
                                size_t *n) {
    cml_err err = CML_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->lock);
    char sql[640], created_day[128];
    state_day_expr(st, "f.created_at", created_day, sizeof created_day);
    snprintf(sql, sizeof sql,
             "SELECT %s, c.model_type, c.version, COUNT(*), SUM(CASE WHEN c.predicted_class ="
             " f.correct_class THEN 1 ELSE 0 END) FROM feedback_scores c JOIN feedback f"
             " ON f.id = c.feedback_id WHERE %s >= ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
             created_day, created_day);
    state_stmt *s = state_prep(st, sql);
    if (s == NULL) {
        err = state_failure(st);
    } else {
        state_bind_text(s, 1, from_day ? from_day : "");
        state_step_result rc = STATE_DONE;
        while (err == CML_OK && (rc = state_step(s)) == STATE_ROW) {
            if (*n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                cml_feedback_day *g = cml_realloc_array(*out, nc, sizeof(cml_feedback_day));
                if (g == NULL) {
                    err = CML_ERR_NOMEM;
                    break;
                }
                *out = g;
                cap = nc;
            }
            cml_feedback_day *d = &(*out)[(*n)++];
            state_copy_col(d->day, sizeof d->day, s, 0);
            state_copy_col(d->model_type, sizeof d->model_type, s, 1);
            state_copy_col(d->version, sizeof d->version, s, 2);
            d->n = state_col_int64(s, 3);
            d->correct = state_col_int64(s, 4);
        }
        if (err == CML_OK && rc != STATE_DONE)
            err = state_failure(st);
    }
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    if (err != CML_OK) {
        cml_free(*out);
        *out = NULL;
        *n = 0;
    }
    return err;
}

int64_t cml_live_since(cml_state *st) {
    int64_t since = 0;
    pthread_mutex_lock(&st->lock);
    state_stmt *s =
        state_prep(st, "SELECT MIN(t) FROM (SELECT MIN(first_at) AS t FROM shadow_daily UNION ALL"
                       " SELECT MIN(f.created_at) FROM feedback f JOIN feedback_scores c ON"
                       " c.feedback_id = f.id) AS u");
    if (s && state_step(s) == STATE_ROW)
        since = state_col_int64(s, 0);
    state_finalize(s);
    pthread_mutex_unlock(&st->lock);
    return since;
}
