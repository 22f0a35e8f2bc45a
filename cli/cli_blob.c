/* The blob store as the commands open it (options, environment) and their failures. */
#include "config.h"

#include <curl/curl.h>
#include <string.h>

#include "cli.h"
#include "model/prediction_json.h"

/* The connection string (never printed), or NULL. */
const char *cli_blob_connection(const cli_args *a) {
    const char *c = a->conn ? a->conn : getenv("AZURE_STORAGE_CONNECTION_STRING");
    return c && *c ? c : NULL;
}
/* The client's retries and failures; the store's own lines repeat what the command prints. */
static void blob_log_stderr(void *ctx, const char *line) {
    (void)ctx;
    if (strncmp(line, "blob store: ", 12) != 0)
        fprintf(stderr, "%s: %s\n", cli_program, line);
}
static const char *env_or_null(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}
/* Opens the blob store named by the options and environment; *out owned by the caller. */
cml_err cli_blob_open(const cli_args *a, bool create, cml_blob_store **out, cml_diag *diag) {
    static bool curl_ready;
    cml_blob_store_options o;
    *out = NULL;
    cml_blob_store_options_init(&o);
    o.connection_string = cli_blob_connection(a);
    if (o.connection_string == NULL)
        return cml_diag_set(diag, CML_ERR_CONFIG,
                            "no connection string: set AZURE_STORAGE_CONNECTION_STRING or use "
                            "--connection-string");
    o.container = a->container ? a->container : env_or_null("AZURE_STORAGE_CONTAINER");
    o.ensemble_pointer = env_or_null("ENSEMBLE_LATEST_BLOB");
    o.classic_pointer = env_or_null("CLASSIC_LATEST_BLOB");
    o.create_container = create;
    o.client.ca_path = env_or_null("AZURE_CA_PATH");
    o.client.log = blob_log_stderr;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return cml_diag_set(diag, CML_ERR_INTERNAL, "curl_global_init failed");
        curl_ready = true;
        atexit(curl_global_cleanup);
    }
    return cml_blob_store_open(&o, out, diag);
}
/* Exit status of a blob command's failure: a configuration error is a usage error. */
int cli_blob_fail(const char *what, cml_err err, const cml_diag *diag) {
    cli_fail(what, err, diag);
    return err == CML_ERR_CONFIG ? EXIT_USAGE : EXIT_FAILURE;
}
