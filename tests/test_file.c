/* Output safety of src/core/file.c: the atomic writer never replaces a FIFO or a folder, never writes through a
 * link planted at its temporary name, and leaves no temporary file; ptq_check_output refuses an output that is
 * one of the inputs (same inode by any name), a folder, a FIFO, or one whose folder is missing or unwritable. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "testutil.h"

static char path_buf[8][4300];
static const char *tmp_path(int slot, const char *name) {
    snprintf(path_buf[slot], sizeof path_buf[slot], "%s/%s", tu_tmpdir(), name);
    return path_buf[slot];
}

static int is_fifo(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0 && S_ISFIFO(st.st_mode);
}

static int exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

static char *slurp(const char *p) {
    char *d = NULL;
    ptq_error e;
    return ptq_read_file(p, &d, NULL, &e) == PTQ_OK ? d : NULL;
}

/* Writes text to path with the atomic writer; returns the status. */
static ptq_status atomic_put(const char *path, const char *text, ptq_error *e) {
    ptq_atomic_file af;
    ptq_status s = ptq_atomic_open(&af, path, e);
    if (s != PTQ_OK) return s;
    s = ptq_atomic_write(&af, text, strlen(text), e);
    if (s != PTQ_OK) {
        ptq_atomic_abort(&af);
        return s;
    }
    return ptq_atomic_commit(&af, e);
}

static void test_atomic_refuses_special(void) {
    ptq_error e;
    char tmp[4400];
    const char *fifo = tmp_path(0, "fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(atomic_put(fifo, "x", &e) != PTQ_OK);
    CHECK_MSG(strstr(e.msg, "FIFO") && strstr(e.msg, "fifo"), "%s", e.msg);
    CHECK(is_fifo(fifo));
    CHECK(ptq_atomic_tmp_name(fifo, tmp, sizeof tmp) && !exists(tmp));

    const char *dir = tmp_path(1, "adir");
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(atomic_put(dir, "x", &e) != PTQ_OK);
    CHECK_MSG(strstr(e.msg, "folder"), "%s", e.msg);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));

    /* a FIFO that appears at the destination after open is still not replaced at commit */
    const char *late = tmp_path(2, "late");
    ptq_atomic_file af;
    CHECK(ptq_atomic_open(&af, late, &e) == PTQ_OK);
    CHECK(ptq_atomic_write(&af, "abc", 3, &e) == PTQ_OK);
    CHECK(mkfifo(late, 0600) == 0);
    CHECK(ptq_atomic_commit(&af, &e) != PTQ_OK);
    CHECK(is_fifo(late));
    CHECK(ptq_atomic_tmp_name(late, tmp, sizeof tmp) && !exists(tmp));
}

static void test_atomic_no_follow(void) {
    ptq_error e;
    char tmp[4400];
    const char *victim = tmp_path(0, "victim.txt"), *out = tmp_path(1, "out.txt");
    CHECK(tu_write_file(victim, "precious", 8) == 0);
    CHECK(ptq_atomic_tmp_name(out, tmp, sizeof tmp));
    CHECK(strstr(tmp, ".ptq-tmp.") != NULL);
    CHECK(symlink(victim, tmp) == 0); /* planted at the temporary name */
    CHECK_MSG(atomic_put(out, "new", &e) == PTQ_OK, "%s", e.msg);
    char *v = slurp(victim), *o = slurp(out);
    CHECK(v && strcmp(v, "precious") == 0);
    CHECK(o && strcmp(o, "new") == 0);
    CHECK(!exists(tmp));
    free(v);
    free(o);
    /* a regular file is replaced, and abort leaves nothing */
    CHECK(atomic_put(out, "newer", &e) == PTQ_OK);
    o = slurp(out);
    CHECK(o && strcmp(o, "newer") == 0);
    free(o);
    ptq_atomic_file af;
    CHECK(ptq_atomic_open(&af, out, &e) == PTQ_OK);
    CHECK(exists(tmp));
    ptq_atomic_abort(&af);
    CHECK(!exists(tmp));
}

static void test_check_output(void) {
    ptq_error e;
    const char *model = tmp_path(0, "model.bin"), *calib = tmp_path(1, "calib.txt");
    CHECK(tu_write_file(model, "weights", 7) == 0);
    CHECK(tu_write_file(calib, "text", 4) == 0);
    const char *inputs[] = {model, "/no/such/input", calib};
    CHECK_MSG(ptq_check_output("-o", tmp_path(2, "new.ptq"), inputs, 3, &e) == PTQ_OK, "%s", e.msg);

    /* the same file by its name, another spelling, a symlink and a hard link */
    char spelled[4400];
    snprintf(spelled, sizeof spelled, "%s/./sub/../model.bin", tu_tmpdir());
    CHECK(mkdir(tmp_path(3, "sub"), 0700) == 0);
    const char *sym = tmp_path(4, "link.ptq"), *hard = tmp_path(5, "hard.ptq");
    CHECK(symlink(model, sym) == 0);
    CHECK(link(calib, hard) == 0);
    const char *same[] = {model, spelled, sym};
    for (int i = 0; i < 3; i++) {
        CHECK(ptq_check_output("-o", same[i], inputs, 3, &e) != PTQ_OK);
        CHECK_MSG(strstr(e.msg, "is the input") && strstr(e.msg, model), "%s", e.msg);
    }
    CHECK(ptq_check_output("--report", hard, inputs, 3, &e) != PTQ_OK);
    CHECK_MSG(strstr(e.msg, "--report") && strstr(e.msg, calib), "%s", e.msg);

    /* a folder, a FIFO, a device, a missing folder, a file used as a folder */
    CHECK(ptq_check_output("-o", tu_tmpdir(), inputs, 3, &e) != PTQ_OK && strstr(e.msg, "is a folder"));
    const char *fifo = tmp_path(6, "out.fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(ptq_check_output("-o", fifo, inputs, 3, &e) != PTQ_OK && strstr(e.msg, "FIFO"));
    CHECK(ptq_check_output("-o", "/dev/null", inputs, 3, &e) != PTQ_OK && strstr(e.msg, "a device"));
    const char *missing = tmp_path(7, "no-dir/out.ptq");
    CHECK(ptq_check_output("-o", missing, inputs, 3, &e) != PTQ_OK);
    CHECK_MSG(strstr(e.msg, "does not exist") && strstr(e.msg, "no-dir"), "%s", e.msg);
    char under_file[4400];
    snprintf(under_file, sizeof under_file, "%s/x.ptq", calib);
    CHECK(ptq_check_output("-o", under_file, inputs, 3, &e) != PTQ_OK);
    CHECK(ptq_check_output("-o", "", inputs, 3, &e) != PTQ_OK);
    CHECK(ptq_check_output("-o", tmp_path(7, "new-dir/"), inputs, 3, &e) != PTQ_OK && strstr(e.msg, "names a folder"));

    /* an unwritable folder (root writes anywhere, so only checked for other users) */
    if (geteuid() != 0) {
        const char *ro = tmp_path(3, "ro");
        CHECK(mkdir(ro, 0500) == 0);
        char in_ro[4400];
        snprintf(in_ro, sizeof in_ro, "%s/out.ptq", ro);
        CHECK(ptq_check_output("-o", in_ro, inputs, 3, &e) != PTQ_OK);
        CHECK_MSG(strstr(e.msg, "not writable"), "%s", e.msg);
    }

    /* two outputs naming one file */
    char other[4400];
    snprintf(other, sizeof other, "%s/sub/../new.ptq", tu_tmpdir());
    CHECK(ptq_same_path(tmp_path(2, "new.ptq"), other));
    CHECK(!ptq_same_path(tmp_path(2, "new.ptq"), tmp_path(6, "new2.ptq")));
    CHECK(ptq_same_path(model, spelled));
}

int main(void) {
    test_atomic_refuses_special();
    test_atomic_no_follow();
    test_check_output();
    return tu_done("test_file");
}
