/*
 * Process helpers for the integration clients (test_service.c, test_training.c): whether a
 * process has finished dying, and which processes a parent has. Linux /proc only.
 */
#ifndef CML_TEST_PROCESS_WATCH_H
#define CML_TEST_PROCESS_WATCH_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/*
 * True when every thread of pid has exited (the process is a zombie of one thread, or gone).
 * The leader turns zombie as soon as its own thread ends, while a sibling thread may still be
 * on its way out; such a thread can still take a connection off a shared listening socket (and
 * drop it), so the leader's state alone does not say the process is gone. Nor does a listing of
 * /proc/PID/task, which can come back empty while the group exits. The thread count in
 * /proc/PID/status falls as each thread is released and stays 1 for a zombie.
 */
static inline bool process_gone(long pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    char state = '\0';
    long threads = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "State:", 6) == 0)
            sscanf(line + 6, " %c", &state);
        else if (strncmp(line, "Threads:", 8) == 0)
            threads = atol(line + 8);
    }
    fclose(f);
    if (state == '\0') /* released while we read */
        return true;
    return (state == 'Z' || state == 'X') && threads <= 1;
}

/* The parent of a live (not zombie) process, or -1. */
static inline long parent_of(long pid) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t len = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[len] = '\0';
    const char *p = strrchr(line, ')');
    char state;
    long ppid;
    if (p == NULL || sscanf(p + 1, " %c %ld", &state, &ppid) != 2 || state == 'Z')
        return -1;
    return ppid;
}

/* Live children of parent, at most cap of them, into out; returns how many. */
static inline int children_of(long parent, pid_t *out, int cap) {
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < cap)
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && parent_of(atol(e->d_name)) == parent)
            out[n++] = (pid_t)atol(e->d_name);
    if (d != NULL)
        closedir(d);
    return n;
}

#endif
