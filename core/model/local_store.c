#include "config.h"

#include "model/local_store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cml_alloc.h"
#include "model/model_file.h"

bool cml_version_valid(const char *v) {
    size_t n = 0;
    if (v == NULL || v[0] == '.' || v[0] == '\0')
        return false;
    for (; v[n]; n++) {
        char c = v[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    /* "latest" names the pointer file TYPE_latest.model: never a version. */
    return n < CML_VERSION_MAX && strcmp(v, "latest") != 0;
}

void cml_local_store_path(const char *dir, const char *type, const char *version, char *buf,
                          size_t cap) {
    snprintf(buf, cap, "%s/%s_%s.model", dir, type, version);
}

cml_err cml_local_store_latest(const char *dir, const char *type, char version[CML_VERSION_MAX]) {
    char link[4096], target[512];
    snprintf(link, sizeof link, "%s/%s_latest.model", dir, type);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0)
        return CML_ERR_NOT_FOUND;
    target[n] = '\0';
    size_t tl = strlen(type);
    const char *base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
    size_t bl = strlen(base);
    if (bl <= tl + 7 || strncmp(base, type, tl) != 0 || base[tl] != '_' ||
        strcmp(base + bl - 6, ".model") != 0)
        return CML_ERR_NOT_FOUND;
    size_t vl = bl - tl - 1 - 6;
    if (vl >= CML_VERSION_MAX)
        return CML_ERR_NOT_FOUND;
    memcpy(version, base + tl + 1, vl);
    version[vl] = '\0';
    return cml_version_valid(version) ? CML_OK : CML_ERR_NOT_FOUND;
}

static int cmp_desc(const void *a, const void *b) { return -strcmp(a, b); }

cml_err cml_local_store_list(const char *dir, const char *type, char (**out)[CML_VERSION_MAX],
                             size_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? CML_OK : CML_ERR_IO;
    size_t cap = 0, tl = strlen(type);
    cml_err err = CML_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t nl = strlen(name);
        if (nl <= tl + 7 || strncmp(name, type, tl) != 0 || name[tl] != '_' ||
            strcmp(name + nl - 6, ".model") != 0)
            continue;
        char v[CML_VERSION_MAX];
        size_t vl = nl - tl - 7;
        if (vl >= CML_VERSION_MAX)
            continue;
        memcpy(v, name + tl + 1, vl);
        v[vl] = '\0';
        if (strcmp(v, "latest") == 0 || !cml_version_valid(v))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char(*g)[CML_VERSION_MAX] = cml_realloc_array(*out, cap, CML_VERSION_MAX);
            if (g == NULL) {
                err = CML_ERR_NOMEM;
                break;
            }
            *out = g;
        }
        memcpy((*out)[(*n)++], v, CML_VERSION_MAX);
    }
    closedir(d);
    if (err != CML_OK) {
        cml_free(*out);
        *out = NULL;
        *n = 0;
        return err;
    }
    if (*n > 1)
        qsort(*out, *n, CML_VERSION_MAX, cmp_desc);
    return CML_OK;
}

cml_err cml_local_store_point_latest(const char *dir, const char *type, const char *version,
                                     cml_diag *diag) {
    char link[4096], tmp[4096], target[256];
    snprintf(link, sizeof link, "%s/%s_latest.model", dir, type);
    snprintf(tmp, sizeof tmp, "%s/.%s_latest.model.tmp.%ld", dir, type, (long)getpid());
    snprintf(target, sizeof target, "%s_%s.model", type, version);
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        unlink(tmp);
        return cml_diag_set(diag, CML_ERR_IO, "cannot update %s: %s", link, strerror(errno));
    }
    return CML_OK;
}

cml_err cml_local_store_save(const char *dir, cml_model *m, bool make_latest, cml_diag *diag) {
    char path[4096];
    const char *type = cml_model_type_name(m->type);
    if (!cml_version_valid(m->version))
        return cml_diag_set(diag, CML_ERR_INVALID, "model version '%s' is not valid", m->version);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cml_diag_set(diag, CML_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    cml_local_store_path(dir, type, m->version, path, sizeof path);
    cml_err err = cml_model_save(m, path, diag);
    if (err == CML_OK && make_latest)
        err = cml_local_store_point_latest(dir, type, m->version, diag);
    return err;
}

cml_err cml_local_store_remove(const char *dir, const char *type, const char *version) {
    char path[4096];
    if (!cml_version_valid(version))
        return CML_ERR_INVALID;
    cml_local_store_path(dir, type, version, path, sizeof path);
    return unlink(path) == 0 || errno == ENOENT ? CML_OK : CML_ERR_IO;
}
