/* `cultivate-ml download`: fetch a verified model from the blob store. */
#include "config.h"

#include "cli.h"
#include "model/prediction_json.h"

int cmd_download(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_blob_store *bs = NULL;
    cml_blob_sync_result r = {0};
    cml_model_type type;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    int nops = argc - a.first_operand;
    if (nops < 1 || nops > 2 || cml_model_type_parse(argv[a.first_operand], &type) != CML_OK) {
        fprintf(stderr, "%s download: needs TYPE (classic or ensemble) and an optional VERSION\n",
                cli_program);
        return EXIT_USAGE;
    }
    const char *version = nops == 2 ? argv[a.first_operand + 1] : NULL;
    if (version != NULL && !cml_version_valid(version)) {
        fprintf(stderr, "%s download: '%s' is not a valid version\n", cli_program, version);
        return EXIT_USAGE;
    }
    const char *out = a.out ? a.out : ".";
    cml_err err = cli_blob_open(&a, false, &bs, &diag);
    if (err != CML_OK)
        return cli_blob_fail("cannot open the blob store", err, &diag);
    if (version != NULL)
        err = cml_blob_store_fetch_version(bs, type, version, out, false, &r, &diag);
    else
        err = cml_blob_store_ensure_local(bs, type, out, NULL, &r, &diag);
    if (err != CML_OK) {
        rc = cli_fail("download failed", err, &diag);
        goto done;
    }
    if (r.status == CML_BLOB_SYNC_NO_MODEL) {
        fprintf(stderr, "%s: the blob store has no %s model (no %s/%s)\n", cli_program,
                cml_model_type_name(type), cml_blob_store_container(bs),
                cml_blob_store_pointer(bs, type));
        rc = EXIT_FAILURE;
        goto done;
    }
    if (a.json) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "model_type", json_object_new_string(cml_model_type_name(type)));
        json_object_object_add(j, "version", json_object_new_string(r.version));
        json_object_object_add(j, "path", json_object_new_string(r.path));
        json_object_object_add(j, "sha256", json_object_new_string(r.sha256));
        json_object_object_add(j, "size_bytes", json_object_new_int64((int64_t)r.bytes));
        json_object_object_add(j, "status",
                               json_object_new_string(cml_blob_sync_status_name(r.status)));
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        printf("%s %s (%llu bytes, sha256 %s)\n",
               r.status == CML_BLOB_SYNC_DOWNLOADED ? "downloaded" : "already present:", r.path,
               (unsigned long long)r.bytes, r.sha256);
    }
    rc = EXIT_SUCCESS;
done:
    cml_blob_sync_result_release(&r);
    cml_blob_store_free(bs);
    return rc;
}
