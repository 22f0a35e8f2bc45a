/* Jobs run by forked workers (base/fork_jobs.c). */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "base/fork_jobs.h"

typedef struct squares {
    long *out; /* shared */
    size_t fail_at, kill_at;
    int progress_calls;
    size_t last_done;
    pid_t parent;
} squares;

static cml_err square_job(void *ctx, size_t job, cml_diag *diag) {
    squares *s = ctx;
    if (job == s->fail_at)
        return cml_diag_set(diag, CML_ERR_DATA, "job %zu refused", job);
    if (job == s->kill_at && getpid() != s->parent)
        raise(SIGKILL);
    s->out[job] = (long)(job * job);
    return CML_OK;
}

static void count_progress(void *ctx, size_t done) {
    squares *s = ctx;
    ck_assert_uint_ge(done, s->last_done); /* never goes back */
    s->last_done = done;
    s->progress_calls++;
}

static squares make(size_t n) {
    squares s = {.fail_at = SIZE_MAX, .kill_at = SIZE_MAX, .parent = getpid()};
    s.out = cml_shared_alloc(n * sizeof(long));
    ck_assert_ptr_nonnull(s.out);
    return s;
}

/* Every job's result reaches the caller, whether the jobs ran in children or in the caller. */
START_TEST(test_results_come_back) {
    for (size_t workers = 1; workers <= 3; workers++) {
        squares s = make(40);
        cml_diag d = {{0}};
        ck_assert_int_eq(cml_fork_jobs(40, workers, square_job, NULL, count_progress, &s, &d),
                         CML_OK);
        for (size_t j = 0; j < 40; j++)
            ck_assert_int_eq(s.out[j], (long)(j * j));
        ck_assert_uint_eq(s.last_done, 40);
        ck_assert_int_gt(s.progress_calls, 0);
        cml_shared_free(s.out, 40 * sizeof(long));
    }
}
END_TEST

/* A failing job's error and message reach the caller from a child. */
START_TEST(test_failure_reported) {
    squares s = make(20);
    s.fail_at = 7;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_fork_jobs(20, 2, square_job, NULL, NULL, &s, &d), CML_ERR_DATA);
    ck_assert_str_eq(d.msg, "job 7 refused");
    cml_shared_free(s.out, 20 * sizeof(long));
}
END_TEST

/* A worker killed mid-way fails the run, naming the signal, instead of a silent gap. */
START_TEST(test_dead_worker_reported) {
    squares s = make(20);
    s.kill_at = 3;
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_fork_jobs(20, 2, square_job, NULL, NULL, &s, &d), CML_ERR_TRAIN);
    ck_assert_ptr_nonnull(strstr(d.msg, "signal 9"));
    cml_shared_free(s.out, 20 * sizeof(long));
}
END_TEST

START_TEST(test_no_jobs) {
    cml_diag d = {{0}};
    ck_assert_int_eq(cml_fork_jobs(0, 4, square_job, NULL, NULL, NULL, &d), CML_OK);
    cml_shared_free(NULL, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("fork_jobs");
    TCase *tc = tcase_create("fork_jobs");
    tcase_add_test(tc, test_results_come_back);
    tcase_add_test(tc, test_failure_reported);
    tcase_add_test(tc, test_dead_worker_reported);
    tcase_add_test(tc, test_no_jobs);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
