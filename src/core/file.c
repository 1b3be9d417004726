/* madvise(MADV_DONTNEED) for ptq_mmap_drop: glibc treats posix_madvise(POSIX_MADV_DONTNEED) as a no-op */
#define _DEFAULT_SOURCE
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

/* "a folder", "a device", ...: what a non-regular file is, for messages. */
static const char *kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

/* The folder part of path ("." when it has none), without trailing slashes. 0 when it does not fit. */
static int dir_part(const char *path, char *dir, size_t size) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--; /* "out/" names the entry "out" */
    while (n > 0 && path[n - 1] != '/') n--;
    while (n > 1 && path[n - 1] == '/') n--;
    if (n == 0) return snprintf(dir, size, ".") < (int)size;
    if (n >= size) return 0;
    memcpy(dir, path, n);
    dir[n] = 0;
    return 1;
}

ptq_status ptq_check_output(const char *what, const char *path, const char *const *inputs, int n, ptq_error *err) {
    if (!path || !*path) return ptq_fail(err, PTQ_ERR_ARG, "%s: the output path is empty", what);
    if (path[strlen(path) - 1] == '/')
        return ptq_fail(err, PTQ_ERR_ARG, "%s %s: names a folder; give the name of a file to write", what, path);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return ptq_fail(err, PTQ_ERR_ARG, "%s %s: is a folder; give the name of a file to write", what, path);
        if (!S_ISREG(st.st_mode))
            return ptq_fail(err, PTQ_ERR_ARG, "%s %s: is %s; ptq only replaces regular files", what, path,
                            kind_of(st.st_mode));
        for (int i = 0; i < n; i++) {
            struct stat in;
            if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == st.st_dev && in.st_ino == st.st_ino)
                return ptq_fail(err, PTQ_ERR_ARG, "%s %s: is the input %s (the same file); ptq never overwrites its inputs",
                                what, path, inputs[i]);
        }
    } else if (errno != ENOENT) {
        return ptq_fail(err, PTQ_ERR_IO, "%s %s: %s", what, path, strerror(errno));
    }
    char dir[4096];
    if (!dir_part(path, dir, sizeof dir)) return ptq_fail(err, PTQ_ERR_ARG, "%s: the output path is too long", what);
    if (stat(dir, &st) != 0)
        return ptq_fail(err, PTQ_ERR_IO, "%s %s: the folder %s does not exist", what, path, dir);
    if (!S_ISDIR(st.st_mode)) return ptq_fail(err, PTQ_ERR_IO, "%s %s: %s is not a folder", what, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return ptq_fail(err, PTQ_ERR_IO, "%s %s: the folder %s is not writable (%s)", what, path, dir, strerror(errno));
    return PTQ_OK;
}

int ptq_same_path(const char *a, const char *b) {
    struct stat x, y;
    if (stat(a, &x) == 0 && stat(b, &y) == 0) return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
    /* not both there yet: the same name in the same folder */
    char da[4096], db[4096];
    const char *na = strrchr(a, '/'), *nb = strrchr(b, '/');
    na = na ? na + 1 : a;
    nb = nb ? nb + 1 : b;
    if (!dir_part(a, da, sizeof da) || !dir_part(b, db, sizeof db) || stat(da, &x) != 0 || stat(db, &y) != 0)
        return strcmp(a, b) == 0;
    return x.st_dev == y.st_dev && x.st_ino == y.st_ino && strcmp(na, nb) == 0;
}

int ptq_atomic_tmp_name(const char *path, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s.ptq-tmp.%ld", path, (long)getpid());
    return n > 0 && (size_t)n < size;
}

/* Refuses to replace a folder, device, FIFO or socket at path (a missing path or a regular file is fine). */
static ptq_status check_replaceable(const char *path, ptq_error *err) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return ptq_fail(err, PTQ_ERR_IO, "%s: is %s; ptq only replaces regular files", path, kind_of(st.st_mode));
    return PTQ_OK;
}

ptq_status ptq_atomic_open(ptq_atomic_file *af, const char *path, ptq_error *err) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path || !ptq_atomic_tmp_name(path, af->tmp, sizeof af->tmp)) {
        af->tmp[0] = 0;
        return ptq_fail(err, PTQ_ERR_ARG, "%s: output path too long", path);
    }
    strcpy(af->path, path);
    ptq_status s = check_replaceable(path, err);
    /* O_EXCL: never write through a link or into someone else's file at the temporary name */
    int fd = s == PTQ_OK ? open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666) : -1;
    if (fd < 0 && s == PTQ_OK && errno == EEXIST) { /* left by a killed run that had the same pid */
        unlink(af->tmp);
        fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    }
    if (fd < 0 && s == PTQ_OK) s = ptq_fail(err, PTQ_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (s == PTQ_OK && !(af->f = fdopen(fd, "wb"))) {
        s = ptq_fail(err, PTQ_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(af->tmp);
    }
    if (s != PTQ_OK) af->tmp[0] = 0; /* nothing for abort to remove */
    return s;
}

ptq_status ptq_atomic_write(ptq_atomic_file *af, const void *data, size_t size, ptq_error *err) {
    if (size && fwrite(data, 1, size, af->f) != size)
        return ptq_fail(err, PTQ_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    return PTQ_OK;
}

ptq_status ptq_atomic_finish(ptq_atomic_file *af, ptq_error *err) {
    if (!af->f) return PTQ_OK;
    int e = 0;
    if (ferror(af->f) || fflush(af->f) != 0 || fsync(fileno(af->f)) != 0) e = errno ? errno : EIO;
    if (fclose(af->f) != 0 && !e) e = errno;
    af->f = NULL;
    if (e) {
        unlink(af->tmp);
        af->tmp[0] = 0;
        return ptq_fail(err, PTQ_ERR_IO, "%s: write failed: %s", af->path, strerror(e));
    }
    return PTQ_OK;
}

ptq_status ptq_atomic_commit(ptq_atomic_file *af, ptq_error *err) {
    PTQ_TRY(ptq_atomic_finish(af, err));
    /* checked again at the last moment: something else may have appeared at path since open */
    ptq_status s = check_replaceable(af->path, err);
    if (s == PTQ_OK && rename(af->tmp, af->path) != 0)
        s = ptq_fail(err, PTQ_ERR_IO, "%s: cannot rename into place: %s", af->path, strerror(errno));
    if (s != PTQ_OK) unlink(af->tmp);
    af->tmp[0] = 0;
    return s;
}

void ptq_atomic_abort(ptq_atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    if (af->tmp[0]) unlink(af->tmp);
    af->tmp[0] = 0;
}

ptq_status ptq_spill_open(const char *near, int *fd, ptq_error *err) {
    char tmp[4200];
    int n = snprintf(tmp, sizeof tmp, "%s.ptq-spill.%ld", near, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) return ptq_fail(err, PTQ_ERR_ARG, "%s: output path too long", near);
    *fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (*fd < 0 && errno == EEXIST) { /* left by a killed run that had the same pid */
        unlink(tmp);
        *fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (*fd < 0) return ptq_fail(err, PTQ_ERR_IO, "%s: cannot create a scratch file beside it: %s", near, strerror(errno));
    unlink(tmp); /* the data lives while fd is open */
    return PTQ_OK;
}

ptq_status ptq_spill_write(int fd, const char *what, const void *data, size_t size, ptq_error *err) {
    const char *p = data;
    while (size) {
        ssize_t k = write(fd, p, size);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return ptq_fail(err, PTQ_ERR_IO, "%s: writing its scratch file failed: %s", what, strerror(errno));
        p += k;
        size -= (size_t)k;
    }
    return PTQ_OK;
}

ptq_status ptq_spill_read(int fd, const char *what, uint64_t off, void *data, size_t size, ptq_error *err) {
    char *p = data;
    while (size) {
        ssize_t k = pread(fd, p, size, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return ptq_fail(err, PTQ_ERR_IO, "%s: reading its scratch file failed: %s", what,
                                    k < 0 ? strerror(errno) : "unexpected end");
        p += k;
        off += (uint64_t)k;
        size -= (size_t)k;
    }
    return PTQ_OK;
}

void ptq_mmap_drop(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p || !n) return;
    uintptr_t a = (uintptr_t)p, b = a + n;
    a = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1); /* whole pages inside the range only */
    b &= ~((uintptr_t)page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}
