/*
 * Worker supervision: `cultivate-ml-fcgi --workers N` under `spawn-fcgi -n`
 * holds the listening socket spawn-fcgi made, starts N workers (fork and
 * exec of this program, sharing the socket), starts a new one when a worker
 * dies, and passes SIGTERM on for a clean stop. spawn-fcgi -F N alone starts
 * N workers but never replaces a dead one.
 */
#ifndef CML_SUPERVISOR_H
#define CML_SUPERVISOR_H

/* Runs until SIGTERM/SIGINT; returns the exit status. argv is this program's own. */
int supervise(int workers, int argc, char **argv);

#endif
