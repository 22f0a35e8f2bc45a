#include "config.h"

#include "base/file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cml_alloc.h"

cml_err cml_write_file_atomic(const char *path, const void *data, size_t len, cml_diag *diag) {
    cml_err err = CML_OK;
    size_t plen = strlen(path);
    char *tmp = cml_malloc(plen + 40), *dir_copy = cml_strdup(path);
    int fd = -1;
    if (tmp == NULL || dir_copy == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    /* Unique per writer; the pid in the name lets a supervisor clean up after a killed one. */
    snprintf(tmp, plen + 40, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644) != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = cml_diag_set(diag, CML_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            goto done;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot fsync %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        err = cml_diag_set(diag, CML_ERR_IO, "cannot close %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        err = cml_diag_set(diag, CML_ERR_IO, "cannot rename to %s: %s", path, strerror(errno));
        goto done;
    }
    int dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
done:
    if (fd >= 0)
        close(fd);
    if (err != CML_OK && tmp != NULL)
        unlink(tmp);
    cml_free(tmp);
    cml_free(dir_copy);
    return err;
}

cml_err cml_read_file(const char *path, size_t max, uint8_t **buf, size_t *len, cml_diag *diag) {
    cml_err err = CML_OK;
    uint8_t *data = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *buf = NULL;
    *len = 0;
    if (fd < 0)
        return cml_diag_set(diag, errno == ENOENT ? CML_ERR_NOT_FOUND : CML_ERR_IO,
                            "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = cml_diag_set(diag, CML_ERR_IO, "%s is not a regular file", path);
        goto done;
    }
    if ((size_t)st.st_size > max) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "%s is larger than %zu bytes", path, max);
        goto done;
    }
    size_t want = (size_t)st.st_size, got = 0;
    data = cml_malloc(want ? want : 1);
    if (data == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    while (got < want) {
        ssize_t r = read(fd, data + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = cml_diag_set(diag, CML_ERR_IO, "cannot read %s", path);
            goto done;
        }
        got += (size_t)r;
    }
    *buf = data;
    *len = got;
    data = NULL;
done:
    close(fd);
    cml_free(data);
    return err;
}

char *cml_path_beside(const char *path, const char *name, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    snprintf(buf, cap, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, name);
    return buf;
}
