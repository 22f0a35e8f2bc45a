/* `cultivate-ml list`: the model versions in the blob store. */
#include "config.h"

#include "base/cml_alloc.h"
#include "cli.h"
#include "model/prediction_json.h"

int cmd_list(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_blob_store *bs = NULL;
    cml_model_type only = 0;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    int nops = argc - a.first_operand;
    if (nops > 1 || (nops == 1 && cml_model_type_parse(argv[a.first_operand], &only) != CML_OK)) {
        fprintf(stderr, "%s list: takes at most one TYPE (classic or ensemble)\n", cli_program);
        return EXIT_USAGE;
    }
    cml_err err = cli_blob_open(&a, false, &bs, &diag);
    if (err != CML_OK)
        return cli_blob_fail("cannot open the blob store", err, &diag);
    json_object *j = json_object_new_object(), *models = json_object_new_array(),
                *latest = json_object_new_object();
    size_t total = 0;
    rc = EXIT_SUCCESS;
    for (cml_model_type t = CML_MODEL_CLASSIC; t < CML_MODEL__COUNT && rc == EXIT_SUCCESS; t++) {
        if (only != 0 && t != only)
            continue;
        cml_blob_version *v = NULL;
        size_t n = 0;
        char cur[CML_VERSION_MAX];
        const char *tn = cml_model_type_name(t);
        err = cml_blob_store_list_versions(bs, t, true, &v, &n, cur, &diag);
        if (err != CML_OK) {
            rc = cli_fail(err == CML_ERR_NOT_FOUND ? "no such container"
                                                   : "cannot list the blob store",
                          err, &diag);
            break;
        }
        json_object_object_add(latest, tn, cur[0] ? json_object_new_string(cur) : NULL);
        for (size_t i = 0; i < n; i++) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "model_type", json_object_new_string(tn));
            json_object_object_add(o, "version", json_object_new_string(v[i].version));
            json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t)v[i].bytes));
            json_object_object_add(o, "sha256", json_object_new_string(v[i].sha256));
            json_object_object_add(o, "last_modified", json_object_new_string(v[i].last_modified));
            json_object_object_add(o, "latest", json_object_new_boolean(v[i].latest));
            json_object_array_add(models, o);
            if (!a.json)
                printf("%-8s %-20s %10llu  %s%s\n", tn, v[i].version,
                       (unsigned long long)v[i].bytes, v[i].sha256[0] ? v[i].sha256 : "-",
                       v[i].latest ? "  latest" : "");
        }
        total += n;
        cml_free(v);
    }
    json_object_object_add(j, "container", json_object_new_string(cml_blob_store_container(bs)));
    json_object_object_add(j, "latest", latest);
    json_object_object_add(j, "models", models);
    if (rc == EXIT_SUCCESS && a.json)
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    else if (rc == EXIT_SUCCESS && total == 0)
        fprintf(stderr, "%s: no models in container %s\n", cli_program,
                cml_blob_store_container(bs));
    json_object_put(j);
    cml_blob_store_free(bs);
    return rc;
}
