/*
 * cultivate-ml: train, evaluate, inspect and use models from the command line.
 * Exit status: 0 success, 1 failure (bad data, unreadable model, ...), 2 usage error.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The commands, by name; each parses its own options and returns the exit status. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"train", cmd_train},       {"evaluate", cmd_evaluate}, {"classify", cmd_classify},
    {"analyze", cmd_analyze},   {"info", cmd_info},         {"upload", cmd_upload},
    {"download", cmd_download}, {"list", cmd_list},         {"feedback", cmd_feedback},
    {"state", cmd_state},
};

int main(int argc, char **argv) {
    /* XGBoost's OpenMP threads spin while idle by default: on a busy two-core server that
       slows training (and whatever serves beside it) many times over. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    if (argc < 2) {
        cli_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        cli_usage(stdout);
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("%s %s\n", cli_program, PACKAGE_VERSION);
        return EXIT_SUCCESS;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s'\n", cli_program, cmd);
    cli_usage(stderr);
    return EXIT_USAGE;
}
