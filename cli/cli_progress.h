/* Training progress for the CLI: a redrawn bar on a terminal, plain lines otherwise. */
#ifndef CML_CLI_PROGRESS_H
#define CML_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct cli_progress {
    FILE *out;
    bool tty;
    int last_percent;
    char last_step[64];
} cli_progress;

void cli_progress_init(cli_progress *p, FILE *out);
/* A cml_progress_fn: ctx is a cli_progress. */
void cli_progress_update(void *ctx, double fraction, const char *step);
void cli_progress_finish(cli_progress *p);

#endif
