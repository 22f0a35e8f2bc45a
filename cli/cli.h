/*
 * What the commands of the cultivate-ml CLI share: the options, the usage
 * text, failure messages, the blob store as the commands open it. One file
 * per command (cmd_*.c); cli_main.c holds the command table.
 */
#ifndef CML_CLI_H
#define CML_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "azure/blob_store.h"
#include "base/cml_error.h"
#include "model/model.h"

#define EXIT_USAGE 2
#define MAX_PARAMS 32

extern const char *const cli_program;

typedef struct cli_args {
    const char *model, *data, *out, *job, *state_dir;
    const char *by;         /* evaluate: also report by the values of this column */
    const char *measure[4]; /* train: sets to score the new model on, never to fit */
    size_t n_measure;
    const char *non_questions; /* train: the question detector's negatives, or "none" */
    unsigned long long seed;
    long long folds, retain;
    bool json, csv, seed_set, folds_set;
    const char *conn, *container; /* blob store (upload, download, list, train --upload) */
    bool upload, latest;
    const char *params[MAX_PARAMS];
    size_t n_params;
    int first_operand;
} cli_args;

/* Parses the options shared by every command; returns 0 or EXIT_USAGE. */
int cli_parse_args(int argc, char **argv, cli_args *a);
void cli_usage(FILE *out);
/* Prints "cultivate-ml: what: error: reason" and returns EXIT_FAILURE. */
int cli_fail(const char *what, cml_err err, const cml_diag *diag);
/* $CML_DATA, else the bundled data set. */
const char *cli_default_data(void);

/* The connection string of the options or the environment (never printed), or NULL. */
const char *cli_blob_connection(const cli_args *a);
/* Opens the blob store named by the options and environment; *out owned by the caller. */
cml_err cli_blob_open(const cli_args *a, bool create, cml_blob_store **out, cml_diag *diag);
/* Exit status of a blob command's failure: a configuration error is a usage error. */
int cli_blob_fail(const char *what, cml_err err, const cml_diag *diag);

/* Scores m on the CSV at path (by the values of column by, when set) and prints it. */
int cli_evaluate_file(const cml_model *m, const char *path, const char *by, bool json);

/* The commands: exit status 0, 1 or 2. */
int cmd_train(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_upload(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_feedback(int argc, char **argv);
int cmd_state(int argc, char **argv);

#endif
