/* Shared helpers of the Check unit tests. */
#ifndef CML_UNIT_H
#define CML_UNIT_H

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "learn/dataset.h"

/* The bundled corpus (make check sets CML_TEST_DATA). */
static inline const char *unit_data_path(void) {
    const char *p = getenv("CML_TEST_DATA");
    return p && *p ? p : "data/questions.csv";
}

/* The first n rows of the bundled corpus (all when n is 0); caller frees. */
static inline cml_dataset *unit_corpus(size_t n) {
    cml_dataset *all = NULL;
    cml_diag diag;
    if (cml_csv_read_file(unit_data_path(), NULL, &all, &diag) != CML_OK)
        return NULL;
    if (n == 0 || n >= all->n)
        return all;
    size_t *idx = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    cml_dataset *sub = cml_dataset_subset(all, idx, n);
    free(idx);
    cml_dataset_free(all);
    return sub;
}

/* True under memory checkers (CML_TEST_LIGHT=1): train on slices, skip quality bars. */
static inline bool unit_light(void) {
    const char *v = getenv("CML_TEST_LIGHT");
    return v && *v && strcmp(v, "0") != 0;
}

/* Runs one suite; exit status for main(). */
static inline int unit_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
