/* sink_file.c: the local file store.  A snapshot is one file, its frames one
 * after the other (H, C..., T), named <base>.<id> in the directory, e.g.
 * obentchi.snap.20261125T191245123Z-9f3a01bc; ids sort by time.
 *
 * Writing: to <base>.<id>.tmp, then fsync of the file, rename to the final
 * name, fsync of the directory.  A crash at any moment leaves either no new
 * file or a complete one, and the older snapshots untouched; a .tmp left by
 * a crash is removed by the next prune.  The directory is opened once per
 * snapshot (openat/renameat), so CONFIG SET dir in the middle changes
 * nothing for it.
 *
 * Not for: checking what is read (restore.c does). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "snap_int.h"

struct file_store {
    struct snap_store base;
    char *dir, *prefix; /* prefix: "<base>." */
    int dfd, fd;        /* while writing */
    char final[560], tmp[600];
};

static int fail(struct file_store *f, const char *what, const char *name)
{
    int err = errno;
    snprintf(f->base.err, sizeof f->base.err, "%s %.300s: %s", what, name, strerror(err));
    return -err ? -err : -EIO;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        c += w, n -= (size_t)w;
    }
    return 0;
}

static int open_dir(struct file_store *f)
{
    return open(f->dir ? f->dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int file_begin(struct snap_store *s, const struct snap_meta *m, const void *frame, size_t n)
{
    struct file_store *f = (struct file_store *)s;
    snprintf(f->final, sizeof f->final, "%s%s", f->prefix, m->id);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp", f->final);
    f->dfd = open_dir(f);
    if (f->dfd < 0)
        return fail(f, "open directory", f->dir ? f->dir : ".");
    f->fd = openat(f->dfd, f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0)
        return fail(f, "create", f->tmp);
    if (write_all(f->fd, frame, n) < 0)
        return fail(f, "write", f->tmp);
    return 0;
}

static int file_chunk(struct snap_store *s, uint32_t seq, uint64_t checksum, uint32_t raw_len, const void *frame,
                      size_t n)
{
    struct file_store *f = (struct file_store *)s;
    return write_all(f->fd, frame, n) < 0 ? fail(f, "write", f->tmp) : 0;
}

static int file_commit(struct snap_store *s, const struct snap_meta *m, const void *frame, size_t n)
{
    struct file_store *f = (struct file_store *)s;
    if (write_all(f->fd, frame, n) < 0)
        return fail(f, "write", f->tmp);
    if (fsync(f->fd) < 0)
        return fail(f, "fsync", f->tmp);
    close(f->fd);
    f->fd = -1;
    if (renameat(f->dfd, f->tmp, f->dfd, f->final) < 0)
        return fail(f, "rename", f->tmp);
    if (fsync(f->dfd) < 0)
        return fail(f, "fsync directory of", f->final);
    close(f->dfd);
    f->dfd = -1;
    return 0;
}

static void file_abort(struct snap_store *s)
{
    struct file_store *f = (struct file_store *)s;
    if (f->fd >= 0) {
        close(f->fd);
        unlinkat(f->dfd, f->tmp, 0);
    }
    if (f->dfd >= 0)
        close(f->dfd);
    f->fd = f->dfd = -1;
}

/* ---- listing -------------------------------------------------------------------- */

static int by_name_desc(const void *a, const void *b)
{
    return strcmp(((const struct snap_entry *)b)->id, ((const struct snap_entry *)a)->id);
}

/* Complete snapshots (newest first) and, when tmp is given, the names of
 * leftover .tmp files. */
static int scan_dir(struct file_store *f, struct snap_list *out, struct snap_list *tmp)
{
    int dfd = open_dir(f);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return fail(f, "open directory", f->dir ? f->dir : ".");
    }
    size_t plen = strlen(f->prefix);
    struct dirent *de;
    int cap = 0, tcap = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, f->prefix, plen) != 0)
            continue;
        const char *rest = de->d_name + plen;
        size_t rl = strlen(rest);
        int is_tmp = rl > 4 && !strcmp(rest + rl - 4, ".tmp");
        char id[SNAP_ID_MAX];
        snprintf(id, sizeof id, "%.*s", (int)(is_tmp ? rl - 4 : rl), rest);
        if (!snap_id_valid(id))
            continue;
        struct snap_list *l = is_tmp ? tmp : out;
        int *c = is_tmp ? &tcap : &cap;
        if (!l)
            continue;
        if (l->n == *c) {
            *c = *c ? 2 * *c : 16;
            l->v = xrealloc(l->v, sizeof *l->v * (size_t)*c);
        }
        struct snap_entry *e = &l->v[l->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", id);
        snprintf(e->name, sizeof e->name, "%s", de->d_name);
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, 0) == 0)
            e->size = (uint64_t)st.st_size;
    }
    closedir(d);
    if (out && out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, by_name_desc);
    return 0;
}

static int file_list(struct snap_store *s, struct snap_list *out)
{
    return scan_dir((struct file_store *)s, out, NULL);
}

static int file_prune(struct snap_store *s, int keep)
{
    struct file_store *f = (struct file_store *)s;
    struct snap_list done = {0}, tmp = {0};
    int rc = scan_dir(f, &done, &tmp);
    int dfd = rc == 0 ? open_dir(f) : -1;
    for (int i = keep; dfd >= 0 && i < done.n; i++)
        if (unlinkat(dfd, done.v[i].name, 0) < 0 && errno != ENOENT)
            rc = fail(f, "remove", done.v[i].name);
    for (int i = 0; dfd >= 0 && i < tmp.n; i++)
        unlinkat(dfd, tmp.v[i].name, 0); /* a crashed snapshot's leftovers */
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    snap_list_release(&done);
    snap_list_release(&tmp);
    return rc;
}

static int file_read(struct snap_store *s, const struct snap_entry *e, snap_frame_fn *fn, void *ud)
{
    struct file_store *f = (struct file_store *)s;
    int dfd = open_dir(f);
    int fd = dfd >= 0 ? openat(dfd, e->name, O_RDONLY | O_CLOEXEC) : -1;
    if (dfd >= 0)
        close(dfd);
    /* An unreadable file is skipped like a corrupt one: retrying would not
     * help, and the previous snapshot may be fine. */
    if (fd < 0) {
        fail(f, "open", e->name);
        return ERR_CORRUPT;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct buf b = BUF_INIT;
    int rc = 0;
    for (;;) {
        /* the header first, then as many bytes as it says follow */
        size_t need = SNAP_HDR, total;
        struct snap_frame fr;
        const char *why = NULL;
        buf_reset(&b);
        int prc = ERR_AGAIN;
        while (prc == ERR_AGAIN) {
            buf_grow(&b, need - b.len);
            ssize_t got = read(fd, b.p + b.len, need - b.len);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                fail(f, "read", e->name);
                rc = ERR_CORRUPT;
                goto out;
            }
            if (got == 0)
                break;
            b.len += (size_t)got;
            if (b.len < need)
                continue;
            prc = snap_frame_parse(b.p, b.len, &fr, &total, &why);
            if (prc == ERR_AGAIN)
                need = total;
        }
        if (b.len == 0)
            break; /* end of file between frames */
        /* a torn or damaged frame: handed over as it is, the checker says why */
        rc = fn(ud, b.p, b.len);
        if (rc || prc != 0)
            break;
    }
out:
    buf_release(&b);
    close(fd);
    return rc;
}

static void file_close(struct snap_store *s)
{
    struct file_store *f = (struct file_store *)s;
    file_abort(s);
    xfree(f->dir);
    xfree(f->prefix);
    xfree(f);
}

static const struct snap_store_ops file_ops = {
    .name = "file",
    .begin = file_begin,
    .chunk = file_chunk,
    .commit = file_commit,
    .abort = file_abort,
    .prune = file_prune,
    .list = file_list,
    .read = file_read,
    .close = file_close,
};

struct snap_store *snap_file_open(const char *dir, const char *base)
{
    struct file_store *f = xcalloc(1, sizeof *f);
    f->base.ops = &file_ops;
    f->dir = dir && *dir ? xstrdup(dir) : NULL;
    size_t n = strlen(base);
    f->prefix = xmalloc(n + 2);
    memcpy(f->prefix, base, n);
    memcpy(f->prefix + n, ".", 2);
    f->fd = f->dfd = -1;
    return &f->base;
}
