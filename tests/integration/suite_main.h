/*
 * The one main of the Check integration programs: `PROGRAM [SUITE...]` runs the named
 * suites (the first of the table when none is named). Each program defines its table.
 */
#ifndef CML_SUITE_MAIN_H
#define CML_SUITE_MAIN_H

#include <check.h>
#include <stddef.h>

typedef struct integration_suite {
    const char *name;
    Suite *(*make)(void);
} integration_suite;

/* Defined by each program: its name (for messages) and its suites, the default first. */
extern const char *const integration_program;
extern const integration_suite integration_suites[];
extern const size_t integration_n_suites;

#endif
