/* `cultivate-ml info`: describe a model file. */
#include "config.h"

#include "cli.h"
#include "model/model_file.h"
#include "model/prediction_json.h"

int cmd_info(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.first_operand != argc - 1) {
        fprintf(stderr, "%s info: needs exactly one model FILE\n", cli_program);
        return EXIT_USAGE;
    }
    const char *path = argv[a.first_operand];
    cml_err err = cml_model_load(path, &m, &diag);
    if (err != CML_OK)
        return cli_fail(path, err, &diag);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "model_type", json_object_new_string(cml_model_type_name(m->type)));
    json_object_object_add(o, "version", json_object_new_string(m->version));
    json_object_object_add(o, "created_at", json_object_new_int64(m->created_at));
    json_object_object_add(o, "data_sha256", json_object_new_string(m->data_sha256));
    json_object_object_add(o, "file_sha256", json_object_new_string(m->file_sha256));
    json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t)m->file_bytes));
    json_object_object_add(o, "n_train", json_object_new_int64(m->n_train));
    json_object_object_add(o, "n_test", json_object_new_int64(m->n_test));
    json_object_object_add(o, "features",
                           json_object_new_int64((int64_t)cml_featurizer_n_cols(m->features)));
    json_object_object_add(o, "voting", json_object_new_string(cml_model_voting(m)));
    json_object *labels = json_object_new_array(), *members = json_object_new_array();
    for (size_t c = 0; c < m->n_labels; c++)
        json_object_array_add(labels, json_object_new_string(m->labels[c]));
    for (size_t k = 0; k < m->n_members; k++) {
        json_object *mo = json_object_new_object();
        json_object_object_add(mo, "name", json_object_new_string(m->members[k].ops->name));
        if (m->combination == CML_COMBINE_STACKING)
            json_object_object_add(mo, "stacker_coef", json_object_new_double(m->stacker.coef[k]));
        else
            json_object_object_add(mo, "weight", json_object_new_double(m->members[k].weight));
        json_object_array_add(members, mo);
    }
    json_object_object_add(o, "utterance_combiner", json_object_new_boolean(m->utterance_fitted));
    json_object_object_add(o, "labels", labels);
    json_object_object_add(o, "members", members);
    json_object *metrics = m->metrics_json ? json_tokener_parse(m->metrics_json) : NULL;
    json_object *hold = NULL;
    if (metrics)
        json_object_object_get_ex(metrics, "holdout", &hold);
    if (a.json) {
        json_object_object_add(o, "metrics", json_object_get(metrics));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    } else {
        printf("%s model %s\n", cml_model_type_name(m->type), m->version);
        printf("  file        %s (%zu bytes)\n  sha256      %s\n", path, m->file_bytes,
               m->file_sha256);
        printf("  trained on  %u rows (data sha256 %.16s...), %u held out\n", m->n_train,
               m->data_sha256, m->n_test);
        printf("  features    %zu columns\n  voting      %s\n  members    ",
               cml_featurizer_n_cols(m->features), cml_model_voting(m));
        for (size_t k = 0; k < m->n_members; k++)
            printf(m->combination == CML_COMBINE_STACKING ? " %s(%+.2f)" : " %s(%.2f)",
                   m->members[k].ops->name,
                   m->combination == CML_COMBINE_STACKING ? m->stacker.coef[k]
                                                          : m->members[k].weight);
        printf("\n  utterance   %s\n", m->utterance_fitted
                                           ? "fitted combiner over the questions of a text"
                                           : "whole text only");
        json_object *v;
        if (hold && json_object_object_get_ex(hold, "f1_macro", &v))
            printf("  held-out    macro F1 %.4f", json_object_get_double(v));
        if (hold && json_object_object_get_ex(hold, "accuracy", &v))
            printf(", accuracy %.4f\n", json_object_get_double(v));
    }
    json_object_put(metrics);
    json_object_put(o);
    cml_model_release(m);
    return rc;
}
