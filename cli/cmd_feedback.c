/*
 * `cultivate-ml feedback export|counts`: the educators' corrections stored by
 * the feedback routes, as a text,label CSV ready for training, or counted per
 * label. Reads the service's shared state (STATE_DIR or --state-dir; DATABASE_URL or
 * STATE_DATABASE_URL when the fleet keeps it in PostgreSQL).
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "base/cml_alloc.h"

typedef struct export_ctx {
    cml_dataset *ds;
    cml_err err;
} export_ctx;

static void add_row(void *ctx, const char *text, const char *label) {
    export_ctx *e = ctx;
    if (e->err == CML_OK)
        e->err = cml_dataset_add(e->ds, text, label, 0);
}

int cmd_feedback(int argc, char **argv) {
    static const struct option opts[] = {{"state-dir", required_argument, NULL, 'S'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *state_dir = getenv("STATE_DIR"), *out_path = NULL;
    int c, rc = EXIT_FAILURE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "S:o:h", opts, NULL)) != -1) {
        if (c == 'S')
            state_dir = optarg;
        else if (c == 'o')
            out_path = optarg;
        else {
            fprintf(c == 'h' ? stdout : stderr,
                    "Usage: cultivate-ml feedback export [--state-dir DIR] [--out FILE]\n"
                    "       cultivate-ml feedback counts [--state-dir DIR]\n");
            return c == 'h' ? EXIT_SUCCESS : 2;
        }
    }
    if (optind != argc - 1 || (strcmp(argv[optind], "export") && strcmp(argv[optind], "counts"))) {
        fprintf(stderr, "cultivate-ml feedback: say export or counts\n");
        return 2;
    }
    if (state_dir == NULL || *state_dir == '\0')
        state_dir = CML_LOCALSTATEDIR "/lib/cultivate-ml";
    cml_state *st = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_state_open(state_dir, cml_state_url_from_env(), &st, &d);
    if (err != CML_OK) {
        fprintf(stderr, "cultivate-ml feedback: %s\n", d.msg);
        return EXIT_FAILURE;
    }
    if (!strcmp(argv[optind], "counts")) {
        char *json = NULL;
        if (cml_state_feedback_counts(st, &json) == CML_OK) {
            puts(json);
            rc = EXIT_SUCCESS;
        }
        cml_free(json);
    } else {
        export_ctx e = {.ds = cml_dataset_new(), .err = CML_OK};
        FILE *out = out_path ? fopen(out_path, "w") : stdout;
        if (e.ds && out && cml_state_each_feedback(st, add_row, &e) == CML_OK && e.err == CML_OK &&
            cml_csv_write(out, e.ds) == CML_OK) {
            rc = EXIT_SUCCESS;
            fprintf(stderr, "cultivate-ml feedback: %zu corrections exported\n", e.ds->n);
        } else {
            fprintf(stderr, "cultivate-ml feedback: export failed\n");
        }
        if (out && out != stdout && fclose(out) != 0)
            rc = EXIT_FAILURE;
        cml_dataset_free(e.ds);
    }
    cml_state_close(st);
    return rc;
}
