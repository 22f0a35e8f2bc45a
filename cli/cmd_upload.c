/* `cultivate-ml upload`: put a model file in the blob store (and point latest at it). */
#include "config.h"

#include "cli.h"
#include "model/prediction_json.h"

int cmd_upload(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_blob_store *bs = NULL;
    cml_blob_publish_result r = {0};
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.first_operand != argc - 1) {
        fprintf(stderr, "%s upload: needs exactly one model FILE\n", cli_program);
        return EXIT_USAGE;
    }
    const char *path = argv[a.first_operand];
    cml_err err = cli_blob_open(&a, true, &bs, &diag);
    if (err != CML_OK)
        return cli_blob_fail("cannot open the blob store", err, &diag);
    if (a.latest)
        err = cml_blob_store_publish(bs, path, NULL, &r, &diag);
    else
        err = cml_blob_store_upload_version(bs, path, &r, &diag);
    if (err == CML_OK && a.latest)
        err = cml_blob_store_follow_latest(bs, r.type, &diag);
    if (err != CML_OK) {
        rc = cli_fail(path, err, &diag);
        goto done;
    }
    char name[128];
    cml_blob_store_version_name(r.type, r.version, name, sizeof name);
    if (a.json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "container",
                               json_object_new_string(cml_blob_store_container(bs)));
        json_object_object_add(j, "blob", json_object_new_string(name));
        json_object_object_add(j, "model_type",
                               json_object_new_string(cml_model_type_name(r.type)));
        json_object_object_add(j, "version", json_object_new_string(r.version));
        json_object_object_add(j, "sha256", json_object_new_string(r.sha256));
        json_object_object_add(j, "size_bytes", json_object_new_int64((int64_t)r.bytes));
        json_object_object_add(j, "existed", json_object_new_boolean(r.version_existed));
        json_object_object_add(j, "latest", json_object_new_boolean(r.pointer_moved));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        printf("%s %s/%s (%llu bytes, sha256 %s)\n",
               r.version_existed ? "already stored:" : "uploaded", cml_blob_store_container(bs),
               name, (unsigned long long)r.bytes, r.sha256);
        if (r.pointer_moved)
            printf("%s names %s\n", cml_blob_store_pointer(bs, r.type), r.version);
    }
    rc = EXIT_SUCCESS;
done:
    cml_blob_store_free(bs);
    return rc;
}
