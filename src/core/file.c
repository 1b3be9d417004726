#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

ptq_status ptq_mmap_open(const char *path, ptq_mmap *out, ptq_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ptq_fail(err, PTQ_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return ptq_fail(err, PTQ_ERR_FORMAT, "%s: file is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    out->data = p;
    out->size = (size_t)st.st_size;
    return PTQ_OK;
}

void ptq_mmap_close(ptq_mmap *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

ptq_status ptq_read_file(const char *path, char **data, size_t *size, ptq_error *err) {
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ptq_fail(err, PTQ_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return ptq_fail(err, PTQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return ptq_fail(err, PTQ_ERR_IO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    if (size) *size = n;
    return PTQ_OK;
}

int ptq_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ptq_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

ptq_status ptq_atomic_open(ptq_atomic_file *af, const char *path, ptq_error *err) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return ptq_fail(err, PTQ_ERR_ARG, "output path too long");
    strcpy(af->path, path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return PTQ_OK;
}

ptq_status ptq_atomic_write(ptq_atomic_file *af, const void *data, size_t size, ptq_error *err) {
    if (size && fwrite(data, 1, size, af->f) != size)
        return ptq_fail(err, PTQ_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    return PTQ_OK;
}

ptq_status ptq_atomic_commit(ptq_atomic_file *af, ptq_error *err) {
    int bad = fflush(af->f) != 0 || fsync(fileno(af->f)) != 0;
    bad |= fclose(af->f) != 0;
    af->f = NULL;
    if (bad) {
        unlink(af->tmp);
        return ptq_fail(err, PTQ_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    }
    if (rename(af->tmp, af->path) != 0) {
        int e = errno;
        unlink(af->tmp);
        return ptq_fail(err, PTQ_ERR_IO, "%s: cannot rename into place: %s", af->path, strerror(e));
    }
    return PTQ_OK;
}

void ptq_atomic_abort(ptq_atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    if (af->tmp[0]) unlink(af->tmp);
}
