/* Live comparison storage (state/live_stats.c): shadow counts through the shared map and the
   daily rows, their aggregation, and feedback scores per version. */
#include "config.h"

#include <math.h>
#include <time.h>

#include "base/cml_alloc.h"
#include "state/live_stats.h"
#include "state_fixture.h"

static const char *const classic_labels[] = {"OEQ", "CEQ"};
static const char *const ensemble_labels[] = {"CEQ", "OEQ"}; /* another order on purpose */

static char live_path[256];

static void open_live(void) {
    cml_diag d = {{0}};
    mkdir(state_dir, 0755);
    snprintf(live_path, sizeof live_path, "%s/live_counts", state_dir);
    ck_assert_msg(cml_live_open(live_path, &d) == CML_OK, "%s", d.msg);
}

/* classic v1 answered label a (conf ca); ensemble v2 in the shadow gave label b (conf cb). */
static void obs(int a, double ca, int b, double cb, bool shadow) {
    cml_live_obs o = {.answering_type = "classic",
                      .answering_version = "v1",
                      .answering_labels = classic_labels,
                      .answering_n_labels = 2,
                      .answering_label = a,
                      .answering_confidence = ca};
    if (shadow) {
        o.shadow_type = "ensemble";
        o.shadow_version = "v2";
        o.shadow_labels = ensemble_labels;
        o.shadow_n_labels = 2;
        o.shadow_label = b;
        o.shadow_confidence = cb;
    }
    cml_live_count(&o);
}

static const cml_live_pair *find(const cml_live_pair *rows, size_t n, const char *shadow_type) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].shadow.model_type, shadow_type) == 0)
            return &rows[i];
    return NULL;
}

static uint64_t label_n(const cml_live_side *s, const char *label) {
    for (size_t i = 0; i < s->n_labels; i++)
        if (strcmp(s->labels[i], label) == 0)
            return s->label_n[i];
    return 0;
}

START_TEST(test_counts_flush_and_restart) {
    cml_state *st = open_state();
    open_live();
    /* OEQ/OEQ agree (ensemble index 1 is OEQ), OEQ/CEQ differ, CEQ/CEQ agree; one unshadowed. */
    obs(0, 0.9, 1, 0.8, true);
    obs(0, 0.7, 0, 0.6, true);
    obs(1, 0.5, 0, 0.4, true);
    obs(1, 0.6, 0, 0, false);
    cml_live_pair *rows = NULL;
    size_t n = 0;
    ck_assert_int_eq(cml_live_rows(st, "", false, &rows, &n), CML_OK);
    ck_assert_uint_eq(n, 0); /* nothing flushed yet */
    cml_free(rows);
    ck_assert_int_eq(cml_live_rows(st, "", true, &rows, &n), CML_OK);
    ck_assert_uint_eq(n, 2);
    const cml_live_pair *p = find(rows, n, "ensemble");
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->requests, 3);
    ck_assert_uint_eq(p->agreements, 2);
    ck_assert_uint_eq(label_n(&p->answering, "OEQ"), 2);
    ck_assert_uint_eq(label_n(&p->shadow, "CEQ"), 2);
    ck_assert_double_eq_tol(p->answering.confidence_sum, 2.1, 1e-6);
    ck_assert_double_eq_tol(p->shadow.confidence_sum, 1.8, 1e-6);
    ck_assert_uint_eq(find(rows, n, "")->requests, 1);
    cml_free(rows);

    ck_assert_int_eq(cml_live_flush(st), CML_OK);
    ck_assert_int_eq(query_int("SELECT SUM(requests) FROM shadow_daily"), 4);
    /* Flushed counts are no longer pending: read with the map, they are not counted twice. */
    ck_assert_int_eq(cml_live_rows(st, "", true, &rows, &n), CML_OK);
    ck_assert_uint_eq(find(rows, n, "ensemble")->requests, 3);
    cml_free(rows);

    /* Counts not yet flushed survive a restart of the process (the map is a file). */
    obs(0, 1.0, 1, 1.0, true);
    cml_live_close();
    cml_state_close(st);
    st = open_state();
    open_live();
    ck_assert_int_eq(cml_live_flush(st), CML_OK);
    ck_assert_int_eq(cml_live_rows(st, "", false, &rows, &n), CML_OK);
    p = find(rows, n, "ensemble");
    ck_assert_uint_eq(p->requests, 4);
    ck_assert_uint_eq(p->agreements, 3);
    ck_assert_uint_eq(label_n(&p->answering, "OEQ"), 3);
    ck_assert_double_eq_tol(p->answering.confidence_sum, 3.1, 1e-6);
    ck_assert(p->first_at > 0);
    char today[11];
    cml_live_day((int64_t)time(NULL), today);
    ck_assert_str_eq(p->day, today);
    cml_free(rows);
    /* A later day excludes today's rows. */
    ck_assert_int_eq(cml_live_rows(st, "9999-01-01", true, &rows, &n), CML_OK);
    ck_assert_uint_eq(n, 0);
    cml_free(rows);
    ck_assert(cml_live_since(st) > 0);
    cml_live_close();
    cml_state_close(st);
}
END_TEST

START_TEST(test_pair_add_merges_labels_by_name) {
    cml_live_pair a = {0}, b = {0};
    a.requests = 2;
    a.answering.n_labels = 1;
    snprintf(a.answering.labels[0], sizeof a.answering.labels[0], "OEQ");
    a.answering.label_n[0] = 2;
    b.requests = 3;
    b.agreements = 1;
    b.first_at = 5;
    b.answering.n_labels = 2;
    snprintf(b.answering.labels[0], sizeof b.answering.labels[0], "CEQ");
    snprintf(b.answering.labels[1], sizeof b.answering.labels[1], "OEQ");
    b.answering.label_n[0] = 1;
    b.answering.label_n[1] = 2;
    cml_live_pair_add(&a, &b);
    ck_assert_uint_eq(a.requests, 5);
    ck_assert_uint_eq(a.agreements, 1);
    ck_assert_int_eq(a.first_at, 5);
    ck_assert_uint_eq(label_n(&a.answering, "OEQ"), 4);
    ck_assert_uint_eq(label_n(&a.answering, "CEQ"), 1);
}
END_TEST

START_TEST(test_feedback_scores) {
    cml_state *st = open_state();
    int64_t ids[4], total;
    const char *texts[] = {"what happened", "is it red", "why", "more?"};
    const char *truth[] = {"OEQ", "CEQ", "OEQ", "CEQ"};
    for (int i = 0; i < 4; i++) {
        cml_feedback fb = {.text = texts[i],
                           .correct_class = truth[i],
                           .confidence = NAN,
                           .model_type = "classic",
                           .model_version = "v1"};
        ck_assert_int_eq(cml_state_add_feedback(st, &fb, &ids[i], &total), CML_OK);
    }
    ck_assert_int_eq(query_int("SELECT COUNT(*) FROM feedback WHERE model_version = 'v1'"), 4);
    /* v1 scores the first three: OEQ right, CEQ predicted OEQ, OEQ right. */
    ck_assert_int_eq(cml_state_add_feedback_score(st, ids[0], "classic", "v1", "OEQ"), CML_OK);
    ck_assert_int_eq(cml_state_add_feedback_score(st, ids[1], "classic", "v1", "OEQ"), CML_OK);
    ck_assert_int_eq(cml_state_add_feedback_score(st, ids[2], "classic", "v1", "OEQ"), CML_OK);
    /* A second score of the same item and version is ignored. */
    ck_assert_int_eq(cml_state_add_feedback_score(st, ids[2], "classic", "v1", "CEQ"), CML_OK);
    cml_feedback_item *items = NULL;
    size_t n = 0;
    ck_assert_int_eq(cml_state_feedback_unscored(st, "classic", "v1", 0, 10, &items, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(items[0].id, ids[3]);
    ck_assert_str_eq(items[0].text, "more?");
    ck_assert_str_eq(items[0].correct_class, "CEQ");
    cml_feedback_items_free(items, n);
    /* Another version has scored none; the limit and after_id page through them. */
    ck_assert_int_eq(cml_state_feedback_unscored(st, "classic", "v2", ids[0], 2, &items, &n),
                     CML_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(items[0].id, ids[1]);
    cml_feedback_items_free(items, n);
    size_t conf[4];
    ck_assert_int_eq(
        cml_state_feedback_confusion(st, "classic", "v1", NULL, classic_labels, 2, conf), CML_OK);
    ck_assert_uint_eq(conf[0], 2); /* OEQ -> OEQ */
    ck_assert_uint_eq(conf[1], 0);
    ck_assert_uint_eq(conf[2], 1); /* CEQ -> OEQ */
    ck_assert_uint_eq(conf[3], 0);
    cml_feedback_day *days = NULL;
    ck_assert_int_eq(cml_state_feedback_days(st, "", &days, &n), CML_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(days[0].n, 3);
    ck_assert_int_eq(days[0].correct, 2);
    ck_assert_str_eq(days[0].version, "v1");
    cml_free(days);
    cml_state_close(st);
}
END_TEST

int main(void) {
    Suite *s = suite_create("live_stats");
    TCase *tc = tcase_create("live_stats");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_counts_flush_and_restart);
    tcase_add_test(tc, test_pair_add_merges_labels_by_name);
    tcase_add_test(tc, test_feedback_scores);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
