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

/* The state letter in a /proc stat file, or '\0' when it cannot be read (gone). */
static inline char proc_stat_state(const char *path) {
    char line[1024];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '\0';
    size_t len = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[len] = '\0';
    const char *p = strrchr(line, ')');
    return p != NULL && p[1] == ' ' ? p[2] : '\0';
}

/*
 * True when every thread of pid has exited. The leader turns zombie as soon as its own thread
 * ends, while a sibling thread may still be on its way out; such a thread can still take a
 * connection off a shared listening socket (and drop it), so the leader's state alone does
 * not say the process is gone.
 */
static inline bool process_gone(long pid) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return true;
    bool gone = true;
    struct dirent *e;
    while (gone && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/stat", pid, e->d_name);
        char state = proc_stat_state(path);
        gone = state == '\0' || state == 'Z' || state == 'X';
    }
    closedir(d);
    return gone;
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
