/* `cultivate-ml evaluate`: score a model file on a labelled CSV, overall or by group. */
#include "config.h"

#include <string.h>

#include "base/cml_alloc.h"
#include "cli.h"
#include "learn/trainer.h"
#include "model/model_file.h"
#include "model/prediction_json.h"

static void print_evaluation(const cml_model *m, const cml_metrics *met) {
    printf("  accuracy %.4f  macro F1 %.4f  MCC %.4f  ROC AUC %.4f  log loss %.4f\n", met->accuracy,
           met->f1_macro, met->mcc, met->roc_auc, met->log_loss);
    printf("  %-8s %9s %9s %9s %8s\n", "label", "precision", "recall", "f1", "support");
    for (size_t c = 0; c < met->n_labels; c++)
        printf("  %-8s %9.4f %9.4f %9.4f %8zu\n", m->labels[c], met->per_class[c].precision,
               met->per_class[c].recall, met->per_class[c].f1, met->per_class[c].support);
    printf("  confusion (rows actual, columns predicted):\n");
    for (size_t c = 0; c < met->n_labels; c++) {
        printf("  %-8s", m->labels[c]);
        for (size_t k = 0; k < met->n_labels; k++)
            printf(" %6zu", met->confusion[c * met->n_labels + k]);
        printf("\n");
    }
}

/* Metrics of the rows of ds whose group is value; into *out (caller releases). */
static cml_err evaluate_group(const cml_model *m, const cml_dataset *ds, const char *value,
                              cml_metrics *out, cml_diag *diag) {
    size_t *idx = cml_malloc(ds->n * sizeof(size_t)), n = 0;
    if (idx == NULL)
        return CML_ERR_NOMEM;
    for (size_t i = 0; i < ds->n; i++)
        if (strcmp(ds->groups[i], value) == 0)
            idx[n++] = i;
    cml_dataset *sub = cml_dataset_subset(ds, idx, n);
    cml_free(idx);
    if (sub == NULL)
        return CML_ERR_NOMEM;
    cml_err err = cml_model_evaluate(m, sub, out, diag);
    cml_dataset_free(sub);
    return err;
}

/* Scores m on the CSV at path (by the values of column by, when set) and prints it. */
int cli_evaluate_file(const cml_model *m, const char *path, const char *by, bool json) {
    cml_diag diag = {{0}};
    cml_dataset *ds = NULL;
    cml_metrics met = {0};
    json_object *out = NULL, *groups = NULL;
    int rc;
    cml_csv_options opts = {.min_labels = 1, .min_rows = 1, .group_column = by};
    cml_err err = cml_csv_read_file(path, &opts, &ds, &diag);
    if (err != CML_OK)
        return cli_fail(path, err, &diag);
    if ((err = cml_model_evaluate(m, ds, &met, &diag)) != CML_OK) {
        rc = cli_fail("evaluation failed", err, &diag);
        goto done;
    }
    if (json) {
        char *j = cml_metrics_to_json(&met, m->labels);
        out = j ? json_tokener_parse(j) : NULL;
        cml_free(j);
        if (out == NULL) {
            rc = cli_fail("evaluation failed", CML_ERR_NOMEM, NULL);
            goto done;
        }
        if (by != NULL)
            json_object_object_add(out, "by", groups = json_object_new_object());
    } else {
        printf("%s model %s on %zu rows of %s\n", cml_model_type_name(m->type), m->version, met.n,
               path);
        print_evaluation(m, &met);
    }
    /* By group, in the order the values first appear. */
    for (size_t i = 0; by != NULL && i < ds->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(ds->groups[j], ds->groups[i]) == 0;
        if (seen)
            continue;
        cml_metrics g = {0};
        if ((err = evaluate_group(m, ds, ds->groups[i], &g, &diag)) != CML_OK) {
            rc = cli_fail("evaluation failed", err, &diag);
            goto done;
        }
        if (json) {
            char *j = cml_metrics_to_json(&g, m->labels);
            json_object_object_add(groups, ds->groups[i], j ? json_tokener_parse(j) : NULL);
            cml_free(j);
        } else {
            printf("%s=%s: %zu rows\n", by, ds->groups[i], g.n);
            print_evaluation(m, &g);
        }
        cml_eval_release(&g);
    }
    if (json)
        puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
    rc = EXIT_SUCCESS;
done:
    json_object_put(out);
    cml_eval_release(&met);
    cml_dataset_free(ds);
    return rc;
}

int cmd_evaluate(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL || a.data == NULL || a.first_operand < argc) {
        fprintf(stderr, "%s evaluate: needs --model FILE and --data FILE\n", cli_program);
        return EXIT_USAGE;
    }
    cml_err err = cml_model_load(a.model, &m, &diag);
    if (err != CML_OK)
        return cli_fail(a.model, err, &diag);
    rc = cli_evaluate_file(m, a.data, a.by, a.json);
    cml_model_release(m);
    return rc;
}
