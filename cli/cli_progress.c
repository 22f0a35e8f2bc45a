#include "config.h"

#include "cli_progress.h"

#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 30

void cli_progress_init(cli_progress *p, FILE *out) {
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->tty = isatty(fileno(out));
    p->last_percent = -1;
}

void cli_progress_update(void *ctx, double fraction, const char *step) {
    cli_progress *p = ctx;
    int percent = (int)(fraction * 100.0 + 0.5);
    if (percent < 0)
        percent = 0;
    if (percent > 100)
        percent = 100;
    if (p->tty) {
        int filled = percent * BAR_WIDTH / 100;
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)filled);
        memset(bar + filled, '.', (size_t)(BAR_WIDTH - filled));
        bar[BAR_WIDTH] = '\0';
        fprintf(p->out, "\r[%s] %3d%%  %-40.40s", bar, percent, step);
        fflush(p->out);
    } else if (strcmp(step, p->last_step) != 0) {
        /* One line per step, so logs stay readable. */
        fprintf(p->out, "progress %3d%% %s\n", percent, step);
    }
    p->last_percent = percent;
    snprintf(p->last_step, sizeof p->last_step, "%s", step);
}

void cli_progress_finish(cli_progress *p) {
    if (p->tty && p->last_percent >= 0)
        fputc('\n', p->out);
}
