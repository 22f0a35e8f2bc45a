#include "config.h"

#include "learn/dataset.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/cml_alloc.h"
#include "base/utf8.h"
#include "learn/member.h"

_Static_assert(CML_DATASET_MAX_LABELS == CML_MAX_LABELS, "a data set holds what a model can");

cml_dataset *cml_dataset_new(void) { return cml_calloc(1, sizeof(cml_dataset)); }

void cml_dataset_free(cml_dataset *ds) {
    if (ds == NULL)
        return;
    for (size_t i = 0; i < ds->n; i++)
        cml_free(ds->texts[i]);
    for (size_t i = 0; i < ds->n_labels; i++)
        cml_free(ds->label_names[i]);
    cml_free(ds->texts);
    cml_free(ds->labels);
    cml_free(ds->label_names);
    cml_free(ds->source_lines);
    for (size_t i = 0; ds->groups != NULL && i < ds->n; i++)
        cml_free(ds->groups[i]);
    cml_free(ds->groups);
    cml_free(ds);
}

/* Trimmed, upper-cased copy; caller frees. */
static char *normalise_label(const char *label) {
    while (*label && isspace((unsigned char)*label))
        label++;
    size_t len = strlen(label);
    while (len > 0 && isspace((unsigned char)label[len - 1]))
        len--;
    char *out = cml_strndup(label, len);
    if (out != NULL)
        for (char *p = out; *p; p++)
            *p = (char)toupper((unsigned char)*p);
    return out;
}

/* Index of label in the sorted label set (binary search), or where it would go (-1 - pos). */
static long find_label(const cml_dataset *ds, const char *label) {
    size_t lo = 0, hi = ds->n_labels;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ds->label_names[mid], label);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1 - (long)lo;
}

int cml_dataset_label_index(const cml_dataset *ds, const char *label) {
    long i = find_label(ds, label);
    return i >= 0 ? (int)i : -1;
}

/*
 * Index of label in the sorted label set, inserting it (and renumbering rows) if new. A set
 * holds at most CML_DATASET_MAX_LABELS labels, so a row costs a binary search over at most 16
 * names and rows are renumbered at most 16 times: reading is linear in the rows, whatever the
 * data. Returns -1 on OOM (owned_label freed) and -2 when the label would be one too many.
 */
static int intern_label(cml_dataset *ds, char *owned_label) {
    long found = find_label(ds, owned_label);
    if (found >= 0) {
        cml_free(owned_label);
        return (int)found;
    }
    if (ds->n_labels >= CML_DATASET_MAX_LABELS) {
        cml_free(owned_label);
        return -2;
    }
    size_t pos = (size_t)(-1 - found);
    char **names = cml_realloc_array(ds->label_names, ds->n_labels + 1, sizeof(char *));
    if (names == NULL) {
        cml_free(owned_label);
        return -1;
    }
    ds->label_names = names;
    memmove(names + pos + 1, names + pos, (ds->n_labels - pos) * sizeof(char *));
    names[pos] = owned_label;
    ds->n_labels++;
    if (pos + 1 < ds->n_labels)
        for (size_t i = 0; i < ds->n; i++)
            if (ds->labels[i] >= (int)pos)
                ds->labels[i]++;
    return (int)pos;
}

static cml_err dataset_reserve(cml_dataset *ds, size_t want) {
    if (want <= ds->cap)
        return CML_OK;
    size_t cap = ds->cap ? ds->cap * 2 : 256;
    while (cap < want)
        cap *= 2;
    char **t = cml_realloc_array(ds->texts, cap, sizeof(char *));
    if (t == NULL)
        return CML_ERR_NOMEM;
    ds->texts = t;
    int *l = cml_realloc_array(ds->labels, cap, sizeof(int));
    if (l == NULL)
        return CML_ERR_NOMEM;
    ds->labels = l;
    size_t *s = cml_realloc_array(ds->source_lines, cap, sizeof(size_t));
    if (s == NULL)
        return CML_ERR_NOMEM;
    ds->source_lines = s;
    ds->cap = cap;
    return CML_OK;
}

cml_err cml_dataset_add(cml_dataset *ds, const char *text, const char *label, size_t line) {
    if (ds == NULL || text == NULL || label == NULL)
        return CML_ERR_INVALID;
    if (dataset_reserve(ds, ds->n + 1) != CML_OK)
        return CML_ERR_NOMEM;
    char *t = cml_strdup(text);
    char *l = normalise_label(label);
    if (t == NULL || l == NULL) {
        cml_free(t);
        cml_free(l);
        return CML_ERR_NOMEM;
    }
    int idx = intern_label(ds, l);
    if (idx < 0) {
        cml_free(t);
        return idx == -2 ? CML_ERR_DATA : CML_ERR_NOMEM;
    }
    ds->texts[ds->n] = t;
    ds->labels[ds->n] = idx;
    ds->source_lines[ds->n] = line;
    ds->n++;
    return CML_OK;
}

cml_dataset *cml_dataset_subset(const cml_dataset *src, const size_t *idx, size_t n) {
    cml_dataset *ds = cml_dataset_new();
    if (ds == NULL)
        return NULL;
    /* Same label set as the source, even if a label has no row in the subset. */
    ds->label_names = cml_calloc(src->n_labels, sizeof(char *));
    if (ds->label_names == NULL)
        goto fail;
    for (size_t i = 0; i < src->n_labels; i++) {
        ds->label_names[i] = cml_strdup(src->label_names[i]);
        if (ds->label_names[i] == NULL)
            goto fail;
        ds->n_labels++;
    }
    if (dataset_reserve(ds, n) != CML_OK)
        goto fail;
    if (src->groups != NULL && (ds->groups = cml_calloc(n ? n : 1, sizeof(char *))) == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        ds->texts[i] = cml_strdup(src->texts[idx[i]]);
        if (ds->texts[i] == NULL)
            goto fail;
        ds->labels[i] = src->labels[idx[i]];
        ds->source_lines[i] = src->source_lines[idx[i]];
        ds->n++;
        if (src->groups != NULL && (ds->groups[i] = cml_strdup(src->groups[idx[i]])) == NULL)
            goto fail;
    }
    return ds;
fail:
    cml_dataset_free(ds);
    return NULL;
}

/* --- RFC 4180 reader ---------------------------------------------------- */

typedef struct csv_field {
    char *buf;
    size_t len, cap;
} csv_field;

typedef struct csv_record {
    csv_field *fields;
    size_t n, cap;
} csv_record;

static cml_err field_push(csv_field *f, char c) {
    if (f->len + 1 >= f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        char *b = cml_realloc(f->buf, cap);
        if (b == NULL)
            return CML_ERR_NOMEM;
        f->buf = b;
        f->cap = cap;
    }
    f->buf[f->len++] = c;
    f->buf[f->len] = '\0';
    return CML_OK;
}

static cml_err record_next_field(csv_record *r) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        csv_field *f = cml_realloc_array(r->fields, cap, sizeof(csv_field));
        if (f == NULL)
            return CML_ERR_NOMEM;
        memset(f + r->cap, 0, (cap - r->cap) * sizeof(csv_field));
        r->fields = f;
        r->cap = cap;
    }
    csv_field *f = &r->fields[r->n++];
    if (f->buf == NULL && field_push(f, '\0') != CML_OK)
        return CML_ERR_NOMEM;
    f->len = 0;
    f->buf[0] = '\0';
    return CML_OK;
}

static void record_free(csv_record *r) {
    for (size_t i = 0; i < r->cap; i++)
        cml_free(r->fields[i].buf);
    cml_free(r->fields);
}

/*
 * Reads one record starting at *pos. Returns CML_OK with r filled, or
 * CML_ERR_NOT_FOUND at end of input. *line counts newlines consumed.
 */
static cml_err read_record(const char *buf, size_t len, size_t *pos, size_t *line, csv_record *r,
                           cml_diag *diag) {
    size_t i = *pos;
    if (i >= len)
        return CML_ERR_NOT_FOUND;
    r->n = 0;
    cml_err err = record_next_field(r);
    if (err != CML_OK)
        return err;
    for (;;) {
        csv_field *f = &r->fields[r->n - 1];
        if (i < len && buf[i] == '"' && f->len == 0) {
            /* Quoted field: runs to the closing quote; "" is one quote. */
            size_t quote_line = *line;
            i++;
            for (;;) {
                if (i >= len)
                    return cml_diag_set(diag, CML_ERR_CSV, "line %zu: quoted field is never closed",
                                        quote_line);
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') {
                        if ((err = field_push(f, '"')) != CML_OK)
                            return err;
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (buf[i] == '\n')
                    (*line)++;
                if ((err = field_push(f, buf[i])) != CML_OK)
                    return err;
                i++;
            }
            if (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r')
                return cml_diag_set(diag, CML_ERR_CSV,
                                    "line %zu: unexpected character after a closing quote", *line);
        }
        /* Unquoted part of the field. */
        while (i < len && buf[i] != ',' && buf[i] != '\n' && buf[i] != '\r') {
            if (buf[i] == '"')
                return cml_diag_set(diag, CML_ERR_CSV,
                                    "line %zu: a quote inside an unquoted field (quote the "
                                    "whole field and double the quote)",
                                    *line);
            if ((err = field_push(f, buf[i])) != CML_OK)
                return err;
            i++;
        }
        if (i >= len)
            break;
        if (buf[i] == ',') {
            i++;
            if ((err = record_next_field(r)) != CML_OK)
                return err;
            continue;
        }
        /* End of record: LF, CRLF or a lone CR. */
        if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
            i++;
        i++;
        (*line)++;
        break;
    }
    *pos = i;
    return CML_OK;
}

static bool record_is_blank(const csv_record *r) { return r->n == 1 && r->fields[0].len == 0; }

static bool is_blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

static bool name_equals(const char *field, const char *name) {
    while (*field && isspace((unsigned char)*field))
        field++;
    size_t n = strlen(name);
    if (strncasecmp(field, name, n) != 0)
        return false;
    for (field += n; *field; field++)
        if (!isspace((unsigned char)*field))
            return false;
    return true;
}

cml_err cml_csv_parse(const char *buf, size_t len, const cml_csv_options *opts, cml_dataset **out,
                      cml_diag *diag) {
    static const cml_csv_options defaults = CML_CSV_OPTIONS_TRAINING;
    cml_err err = CML_OK;
    csv_record rec = {0};
    cml_dataset *ds = NULL;
    size_t pos = 0, line = 1;
    long text_col = -1, label_col = -1, group_col = -1;
    size_t n_cols = 0, groups_cap = 0;
    char **groups = NULL;

    if (out == NULL || (buf == NULL && len > 0))
        return CML_ERR_INVALID;
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    if (memchr(buf, '\0', len) != NULL) {
        err = cml_diag_set(diag, CML_ERR_CSV, "the data holds NUL bytes: not a text CSV file");
        goto done;
    }

    /* Header, skipping leading blank lines. */
    do {
        err = read_record(buf, len, &pos, &line, &rec, diag);
        if (err == CML_ERR_NOT_FOUND) {
            err =
                cml_diag_set(diag, CML_ERR_CSV, "the CSV is empty: expected a header `text,label`");
            goto done;
        }
        if (err != CML_OK)
            goto done;
        if (!record_is_blank(&rec))
            break;
    } while (1);
    n_cols = rec.n;
    for (size_t c = 0; c < rec.n; c++) {
        if (!cml_utf8_valid(rec.fields[c].buf, rec.fields[c].len)) {
            err = cml_diag_set(diag, CML_ERR_UTF8, "line %zu: header is not valid UTF-8", line - 1);
            goto done;
        }
        if (name_equals(rec.fields[c].buf, "text") && text_col < 0)
            text_col = (long)c;
        else if (name_equals(rec.fields[c].buf, "label") && label_col < 0)
            label_col = (long)c;
        else if (opts->group_column != NULL && group_col < 0 &&
                 name_equals(rec.fields[c].buf, opts->group_column))
            group_col = (long)c;
    }
    if (opts->group_column != NULL && group_col < 0) {
        err = cml_diag_set(diag, CML_ERR_CSV, "line 1: header has no `%s` column",
                           opts->group_column);
        goto done;
    }
    if (text_col < 0 || label_col < 0) {
        err = cml_diag_set(diag, CML_ERR_CSV, "line 1: header has no `%s` column",
                           text_col < 0 ? "text" : "label");
        goto done;
    }

    ds = cml_dataset_new();
    if (ds == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (;;) {
        size_t rec_line = line;
        err = read_record(buf, len, &pos, &line, &rec, diag);
        if (err == CML_ERR_NOT_FOUND) {
            err = CML_OK;
            break;
        }
        if (err != CML_OK)
            goto done;
        if (record_is_blank(&rec))
            continue;
        if (rec.n != n_cols) {
            err = cml_diag_set(diag, CML_ERR_CSV,
                               "line %zu: expected %zu fields as in the header, found %zu",
                               rec_line, n_cols, rec.n);
            goto done;
        }
        const csv_field *text = &rec.fields[text_col];
        const csv_field *label = &rec.fields[label_col];
        if (!cml_utf8_valid(text->buf, text->len) || !cml_utf8_valid(label->buf, label->len)) {
            err = cml_diag_set(diag, CML_ERR_UTF8, "line %zu: not valid UTF-8", rec_line);
            goto done;
        }
        if (is_blank(text->buf)) {
            err = cml_diag_set(diag, CML_ERR_CSV, "line %zu: empty text", rec_line);
            goto done;
        }
        if (is_blank(label->buf)) {
            err = cml_diag_set(diag, CML_ERR_CSV, "line %zu: empty label", rec_line);
            goto done;
        }
        if (opts->max_text_bytes > 0 && text->len > opts->max_text_bytes) {
            err = cml_diag_set(diag, CML_ERR_CSV, "line %zu: text longer than %zu bytes", rec_line,
                               opts->max_text_bytes);
            goto done;
        }
        if ((err = cml_dataset_add(ds, text->buf, label->buf, rec_line)) != CML_OK) {
            if (err == CML_ERR_DATA)
                cml_diag_set(diag, err, "line %zu: a %dth distinct label: at most %d are supported",
                             rec_line, CML_DATASET_MAX_LABELS + 1, CML_DATASET_MAX_LABELS);
            goto done;
        }
        if (group_col >= 0) {
            if (ds->n > groups_cap) {
                size_t cap = groups_cap ? groups_cap * 2 : 256;
                char **g = cml_realloc_array(groups, cap, sizeof(char *));
                if (g == NULL) {
                    err = CML_ERR_NOMEM;
                    goto done;
                }
                groups = g, groups_cap = cap;
            }
            groups[ds->n - 1] = NULL;
            const csv_field *gf = &rec.fields[group_col];
            if (!cml_utf8_valid(gf->buf, gf->len)) {
                err = cml_diag_set(diag, CML_ERR_UTF8, "line %zu: not valid UTF-8", rec_line);
                goto done;
            }
            if ((groups[ds->n - 1] = cml_strdup(gf->buf)) == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
        }
    }
    if (group_col >= 0) {
        ds->groups = groups != NULL ? groups : cml_calloc(1, sizeof(char *));
        groups = NULL, groups_cap = 0;
        if (ds->groups == NULL) {
            err = CML_ERR_NOMEM;
            goto done;
        }
    }
    if (ds->n < opts->min_rows) {
        err = cml_diag_set(diag, CML_ERR_DATA, "%zu data rows: at least %zu are needed", ds->n,
                           opts->min_rows);
        goto done;
    }
    if (ds->n_labels < opts->min_labels) {
        err = cml_diag_set(diag, CML_ERR_DATA,
                           "%zu distinct label%s (%s): at least %zu are needed to train",
                           ds->n_labels, ds->n_labels == 1 ? "" : "s",
                           ds->n_labels ? ds->label_names[0] : "none", opts->min_labels);
        goto done;
    }
    *out = ds;
    ds = NULL;
done:
    for (size_t i = 0; groups != NULL && ds != NULL && i < ds->n; i++)
        cml_free(groups[i]);
    cml_free(groups);
    record_free(&rec);
    cml_dataset_free(ds);
    return err;
}

cml_err cml_csv_read_file(const char *path, const cml_csv_options *opts, cml_dataset **out,
                          cml_diag *diag) {
    cml_err err = CML_OK;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return cml_diag_set(diag, errno == ENOENT ? CML_ERR_NOT_FOUND : CML_ERR_IO, "%s: %s", path,
                            strerror(errno));
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            char *b = cml_realloc(buf, cap);
            if (b == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            buf = b;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp))
                err = cml_diag_set(diag, CML_ERR_IO, "%s: read error", path);
            break;
        }
    }
    if (err == CML_OK)
        err = cml_csv_parse(buf, len, opts, out, diag);
done:
    fclose(fp);
    cml_free(buf);
    return err;
}

static cml_err write_field(FILE *fp, const char *s) {
    if (strpbrk(s, ",\"\r\n") == NULL)
        return fputs(s, fp) < 0 ? CML_ERR_IO : CML_OK;
    if (fputc('"', fp) == EOF)
        return CML_ERR_IO;
    for (; *s; s++) {
        if (*s == '"' && fputc('"', fp) == EOF)
            return CML_ERR_IO;
        if (fputc(*s, fp) == EOF)
            return CML_ERR_IO;
    }
    return fputc('"', fp) == EOF ? CML_ERR_IO : CML_OK;
}

cml_err cml_csv_write(FILE *fp, const cml_dataset *ds) {
    if (fp == NULL || ds == NULL)
        return CML_ERR_INVALID;
    if (fputs("text,label\n", fp) < 0)
        return CML_ERR_IO;
    for (size_t i = 0; i < ds->n; i++) {
        if (write_field(fp, ds->texts[i]) != CML_OK || fputc(',', fp) == EOF ||
            write_field(fp, ds->label_names[ds->labels[i]]) != CML_OK || fputc('\n', fp) == EOF)
            return CML_ERR_IO;
    }
    return CML_OK;
}
