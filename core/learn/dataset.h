/* Labelled texts in memory, and the RFC 4180 CSV reader and writer for them. */
#ifndef CML_DATASET_H
#define CML_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/cml_error.h"

/* Distinct labels a data set may hold: what a model can (CML_MAX_LABELS in learn/member.h). */
#define CML_DATASET_MAX_LABELS 16

typedef struct cml_dataset {
    size_t n;             /* rows */
    char **texts;         /* n NUL-terminated UTF-8 strings, owned */
    int *labels;          /* n indices into label_names */
    size_t n_labels;      /* distinct labels, >= 1 */
    char **label_names;   /* sorted by strcmp, owned */
    size_t *source_lines; /* n line numbers in the source file (1 = header), owned */
    char **groups;        /* n values of the options' group column, owned; NULL without one */
    size_t cap;
} cml_dataset;

/* Checks of the reader; the defaults suit training. */
typedef struct cml_csv_options {
    size_t min_labels;        /* reject a file with fewer distinct labels (training wants 2) */
    size_t min_rows;          /* reject a file with fewer rows */
    size_t max_text_bytes;    /* reject longer texts; 0 = no limit */
    const char *group_column; /* keep this column's values in groups (reports by kind); or NULL */
} cml_csv_options;

#define CML_CSV_OPTIONS_TRAINING                                                                   \
    { .min_labels = 2, .min_rows = 1, .max_text_bytes = 0 }

/*
 * Parses a whole CSV held in memory: UTF-8 with or without BOM, LF or CRLF,
 * quoted fields with commas, quotes and newlines; a header naming `text` and
 * `label` (any case, any order; other columns ignored). Labels are trimmed
 * and upper-cased. On success *out is a new dataset the caller frees with
 * cml_dataset_free; on failure *out is NULL and diag names the line.
 */
cml_err cml_csv_parse(const char *buf, size_t len, const cml_csv_options *opts, cml_dataset **out,
                      cml_diag *diag);

/* Reads and parses a file; same ownership as cml_csv_parse. */
cml_err cml_csv_read_file(const char *path, const cml_csv_options *opts, cml_dataset **out,
                          cml_diag *diag);

/* Writes `text,label` rows with RFC 4180 quoting. */
cml_err cml_csv_write(FILE *fp, const cml_dataset *ds);

/* An empty dataset to fill with cml_dataset_add; caller frees. NULL on OOM. */
cml_dataset *cml_dataset_new(void);
/* Copies text and label (trimmed, upper-cased) into ds; CML_ERR_DATA (ds unchanged) when
 * the label would be one more than CML_DATASET_MAX_LABELS. */
cml_err cml_dataset_add(cml_dataset *ds, const char *text, const char *label, size_t line);
/* A new dataset holding rows idx[0..n) of src, same label set; caller frees. */
cml_dataset *cml_dataset_subset(const cml_dataset *src, const size_t *idx, size_t n);
/* Index of a label name (binary search), or -1. */
int cml_dataset_label_index(const cml_dataset *ds, const char *label);
/* Accepts NULL. */
void cml_dataset_free(cml_dataset *ds);

#endif
