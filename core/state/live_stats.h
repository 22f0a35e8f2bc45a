/*
 * Storage of the live comparison of the model types: shadow-scoring counts per pair of
 * versions (answering, shadow) and the scores of every version on the feedback items.
 *
 * Shadow counts are first added to a memory map shared by the worker processes (lock-free
 * atomic adds, one slot per pair), then moved to the shared state's SQLite by
 * cml_live_flush, which any worker may run: it takes each pending count with an atomic
 * exchange, so a count is written once whichever process flushes it. The map is a file in
 * the state directory, so counts not yet flushed survive a worker's restart too.
 */
#ifndef CML_LIVE_STATS_H
#define CML_LIVE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cml_error.h"
#include "state/shared_state.h"

#define CML_LIVE_LABELS 4
#define CML_LIVE_LABEL_CHARS 16

/* One side of a pair: who answered, or who scored in the shadow. */
typedef struct cml_live_side {
    char model_type[16]; /* "" on the shadow side: answered, not shadow-scored */
    char version[40];
    size_t n_labels;
    char labels[CML_LIVE_LABELS][CML_LIVE_LABEL_CHARS];
    uint64_t label_n[CML_LIVE_LABELS]; /* answers per label */
    double confidence_sum;
} cml_live_side;

/* Counts of one pair of versions on one day (or over several, once merged). */
typedef struct cml_live_pair {
    char day[11]; /* YYYY-MM-DD (UTC) */
    cml_live_side answering, shadow;
    uint64_t requests, agreements;
    int64_t first_at; /* when the first count was stored (Unix seconds), 0 when unknown */
} cml_live_pair;

/* One shadow-scored (or, with shadow NULL, only answered) request. */
typedef struct cml_live_obs {
    const char *answering_type, *answering_version;
    const char *const *answering_labels;
    size_t answering_n_labels;
    int answering_label;
    double answering_confidence;
    const char *shadow_type, *shadow_version; /* NULL: not shadow-scored */
    const char *const *shadow_labels;
    size_t shadow_n_labels;
    int shadow_label;
    double shadow_confidence;
} cml_live_obs;

/* Maps (creating) the shared counts at path; once per process, before threads start. */
cml_err cml_live_open(const char *path, cml_diag *diag);
void cml_live_close(void);

/* Adds one observation to the shared counts (never blocks; a full table drops it, counted). */
void cml_live_count(const cml_live_obs *o);
/* Observations dropped because the table of pairs was full. */
uint64_t cml_live_dropped(void);
/* Counts a sampled answer the service could not shadow-score (its queue was full). */
void cml_live_skipped(void);
uint64_t cml_live_skipped_total(void);

/* Moves every pending count into st's daily rows (the day of the flush); on failure they stay
 * pending. */
cml_err cml_live_flush(cml_state *st);

/*
 * The daily rows of day >= from_day ("" for all), oldest first, with the counts still pending
 * in the map added to today's rows when with_pending. *out is owned by the caller (cml_free).
 */
cml_err cml_live_rows(cml_state *st, const char *from_day, bool with_pending, cml_live_pair **out,
                      size_t *n);

/* Adds src's counts to dst (labels matched by name); dst keeps its key. */
void cml_live_pair_add(cml_live_pair *dst, const cml_live_pair *src);

/* The UTC day of t as YYYY-MM-DD. */
void cml_live_day(int64_t t, char out[11]);

/* --- feedback scored by every version -------------------------------------------------- */

/* A stored feedback item a version has not scored yet. */
typedef struct cml_feedback_item {
    int64_t id, created_at;
    char *text; /* owned */
    char correct_class[CML_LIVE_LABEL_CHARS * 2];
} cml_feedback_item;

/* Records version's prediction for feedback item id (a second score of the same is ignored). */
cml_err cml_state_add_feedback_score(cml_state *st, int64_t id, const char *model_type,
                                     const char *version, const char *predicted);

/* Up to limit items of id > after_id not yet scored by the version, oldest first; *out owned
 * (cml_feedback_items_free). */
cml_err cml_state_feedback_unscored(cml_state *st, const char *model_type, const char *version,
                                    int64_t after_id, size_t limit, cml_feedback_item **out,
                                    size_t *n);
void cml_feedback_items_free(cml_feedback_item *items, size_t n);

/*
 * The version's scores as a confusion matrix over labels (rows the item's correct class,
 * columns the version's prediction; n_labels x n_labels, filled by the caller's array), only
 * items created on day when day is not NULL. Items of other labels are not counted.
 */
cml_err cml_state_feedback_confusion(cml_state *st, const char *model_type, const char *version,
                                     const char *day, const char *const *labels, size_t n_labels,
                                     size_t *confusion);

/* A day's feedback scores of one version: items scored and how many were right. */
typedef struct cml_feedback_day {
    char day[11], model_type[16], version[40];
    int64_t n, correct;
} cml_feedback_day;

/* Per day (>= from_day) and version, oldest first; *out owned (cml_free). */
cml_err cml_state_feedback_days(cml_state *st, const char *from_day, cml_feedback_day **out,
                                size_t *n);

/* The earliest shadow count or scored feedback item (Unix seconds), 0 when none. */
int64_t cml_live_since(cml_state *st);

#endif
