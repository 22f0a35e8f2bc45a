/*
 * `cultivate-ml state migrate|check`: the shared state's schema by hand. The service migrates
 * it at start; these let an operator do it before a rolling upgrade, or see where it stands.
 * The database is the configuration's (database_url / DATABASE_URL / STATE_DATABASE_URL,
 * else SQLite in state_dir); its password is never printed.
 * Exit status: 0 current (after migrate), 1 pending migrations or an unreachable database.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ops/service_config.h"
#include "state/shared_state.h"

int cmd_state(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = CML_SYSCONFDIR "/cultivate-ml.conf";
    bool explicit_config = false;
    int c, rc = EXIT_FAILURE;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            config_path = optarg;
            explicit_config = true;
        } else {
            fprintf(c == 'h' ? stdout : stderr,
                    "Usage: cultivate-ml state migrate|check [--config FILE]\n"
                    "  migrate  apply the pending schema migrations\n"
                    "  check    say whether the schema is current (exit 1 when not)\n");
            return c == 'h' ? EXIT_SUCCESS : EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (strcmp(argv[optind], "migrate") && strcmp(argv[optind], "check"))) {
        fprintf(stderr, "%s state: say migrate or check\n", cli_program);
        return EXIT_USAGE;
    }
    bool apply = !strcmp(argv[optind], "migrate");
    cml_config cfg;
    cml_diag d = {{0}};
    if (cml_config_load(&cfg, config_path, !explicit_config, &d) != CML_OK) {
        fprintf(stderr, "%s state: %s\n", cli_program, d.msg);
        return EXIT_FAILURE;
    }
    char where[1024];
    cml_state_masked_url(cfg.database_url, where, sizeof where);
    if (where[0] == '\0')
        snprintf(where, sizeof where, "%s/state.sqlite3", cfg.state_dir);
    cml_state *st = NULL;
    int current = 0, latest = 0;
    /* With PostgreSQL, the service's state directory need not exist where this runs. */
    cml_err err =
        cml_state_open(cfg.database_url[0] ? NULL : cfg.state_dir, cfg.database_url, &st, &d);
    if (err == CML_OK)
        err = cml_state_migrate(st, apply, &current, &latest, &d);
    if (err != CML_OK) {
        fprintf(stderr, "%s state: %s: %s\n", cli_program, where,
                d.msg[0] ? d.msg : cml_strerror(err));
    } else {
        printf("%s (%s): schema version %d of %d: %s\n", where, cml_state_backend_name(st), current,
               latest, current >= latest ? "current" : "migrations pending");
        rc = current >= latest ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    cml_state_close(st);
    cml_config_release(&cfg);
    return rc;
}
