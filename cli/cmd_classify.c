/* `cultivate-ml classify`: classify texts given as arguments or on standard input. */
#include "config.h"

#include <string.h>

#include "cli.h"
#include "model/model_file.h"
#include "model/prediction_json.h"

static int classify_one(const cml_model *m, cml_feature_scratch *s, const char *text, bool json) {
    cml_prediction p;
    cml_err err = cml_model_predict(m, s, text, strlen(text), &p);
    if (err != CML_OK)
        return cli_fail("classification failed", err, NULL);
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "text", json_object_new_string(text));
        json_object_object_add(o, "classification", json_object_new_string(m->labels[p.label]));
        json_object_object_add(o, "confidence", json_object_new_double(p.confidence));
        json_object *probs = json_object_new_object();
        for (size_t c = 0; c < m->n_labels; c++)
            json_object_object_add(probs, m->labels[c], json_object_new_double(p.probs[c]));
        json_object_object_add(o, "probabilities", probs);
        json_object *questions = cml_prediction_questions_json(m, &p, text);
        if (questions != NULL)
            json_object_object_add(o, "questions", questions);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        printf("%s\t%.4f\t%s\n", m->labels[p.label], p.confidence, text);
    }
    return EXIT_SUCCESS;
}

int cmd_classify(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL) {
        fprintf(stderr, "%s classify: needs --model FILE\n", cli_program);
        return EXIT_USAGE;
    }
    cml_err err = cml_model_load(a.model, &m, &diag);
    if (err != CML_OK)
        return cli_fail(a.model, err, &diag);
    cml_feature_scratch *s = cml_feature_scratch_new();
    if (s == NULL) {
        cml_model_release(m);
        return cli_fail("classify", CML_ERR_NOMEM, NULL);
    }
    rc = EXIT_SUCCESS;
    if (a.first_operand < argc) {
        for (int i = a.first_operand; i < argc && rc == EXIT_SUCCESS; i++)
            rc = classify_one(m, s, argv[i], a.json);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc == EXIT_SUCCESS && (n = getline(&line, &cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
            if (n > 0)
                rc = classify_one(m, s, line, a.json);
        }
        free(line);
    }
    cml_feature_scratch_free(s);
    cml_model_release(m);
    return rc;
}
