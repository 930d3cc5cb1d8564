/* snapshot_fork.c: the point in time.  The snapshot thread locks every shard
 * (so no command is half done), fork()s, and unlocks: clients wait only for
 * the fork itself, which copies page tables, not data.  The child owns a
 * copy-on-write copy of the whole engine frozen at that instant and walks it
 * with the engine's cursor (engine/snapshot.h), cutting the record stream
 * into chunks, lz4-compressing and checksumming each (snap_format.c), and
 * streams the frames down a pipe to the parent's snapshot thread, which
 * hands them to a store.
 *
 * Memory: a page is copied only when one side writes it while the child
 * lives: the parent's writes to the keyspace (about 4 KiB per page first
 * touched), and the child's own buffers and the pages its reads dirty (LRU
 * clocks of the keys walked through the types' read API).  The child samples
 * its Private_Dirty (that extra memory) into a page it shares with the
 * parent, for INFO's current_cow_size and rdb_last_cow_size.
 *
 * The child keeps only stdin/out/err and the pipe (as fd 3): client sockets
 * and listeners close in it at once, so that closing a connection in the
 * parent really closes it.  It dies with its parent (PR_SET_PDEATHSIG), and
 * never logs, allocates through libuv or talks to MongoDB.
 *
 * Not for: where the frames go (the stores), when (snapshot.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "snapshot.h"
#include "snap_int.h"

#define CHILD_FD 3
#define COW_SAMPLE_US 200000

uint64_t snap_private_dirty(pid_t pid)
{
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    const char *p = strstr(text, "Private_Dirty:");
    unsigned long long kb = 0;
    if (p && sscanf(p + 14, "%llu", &kb) == 1)
        return kb * 1024;
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w, n -= (size_t)w;
    }
    return 0;
}

/* The child's whole life: frames down CHILD_FD, then _exit. */
struct child {
    struct snap_meta *m;
    struct snap_progress *prog;
    struct buf raw, out;
    XXH3_state_t digest;
    int64_t last_sample_us;
};

static void sample(struct child *ch, int force)
{
    int64_t now = clock_mono_us();
    if (!force && now - ch->last_sample_us < COW_SAMPLE_US)
        return;
    ch->last_sample_us = now;
    atomic_store(&ch->prog->cow_bytes, snap_private_dirty(getpid()));
}

static void emit_chunk(struct child *ch, const char *p, size_t n)
{
    buf_reset(&ch->out);
    uint64_t sum = snap_frame_build(&ch->out, SNAP_K_CHUNK, ch->m->chunks++, p, n, 1);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(sum >> (8 * i));
    XXH3_64bits_update(&ch->digest, le, sizeof le);
    ch->m->raw_bytes += n;
    ch->m->stored_bytes += ch->out.len;
    if (write_all(CHILD_FD, ch->out.p, ch->out.len) < 0)
        _exit(2); /* the parent gave up */
}

static void emit_meta(struct child *ch, int kind)
{
    struct buf payload = BUF_INIT;
    if (kind == SNAP_K_HEADER)
        snap_meta_header(ch->m, &payload);
    else
        snap_meta_trailer(ch->m, &payload);
    buf_reset(&ch->out);
    snap_frame_build(&ch->out, kind, kind == SNAP_K_HEADER ? 0 : ch->m->chunks, payload.p, payload.len, 0);
    buf_release(&payload);
    if (write_all(CHILD_FD, ch->out.p, ch->out.len) < 0)
        _exit(2);
}

static void child_main(struct eng_ctx *c, struct snap_meta *m, size_t chunk, int fd, pid_t parent,
                       struct snap_progress *prog)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(3);
    if (fd != CHILD_FD && dup2(fd, CHILD_FD) < 0)
        _exit(4);
    close_range(CHILD_FD + 1, ~0U, 0);
    /* Below the workers: on a busy machine the clients' latency comes
     * first, the snapshot takes longer. */
    setpriority(PRIO_PROCESS, 0, 10);

    struct child ch = {.m = m, .prog = prog};
    int64_t t0 = clock_mono_us();
    XXH3_64bits_reset(&ch.digest);
    emit_meta(&ch, SNAP_K_HEADER);
    struct eng_snap_writer w;
    eng_snap_writer_init(&w, c, 0);
    int more = 1;
    while (more) {
        more = eng_snap_write(&w, &ch.raw, chunk);
        size_t off = 0;
        while (ch.raw.len - off >= chunk || (!more && off < ch.raw.len)) {
            size_t n = ch.raw.len - off < chunk ? ch.raw.len - off : chunk;
            emit_chunk(&ch, ch.raw.p + off, n);
            off += n;
        }
        buf_consume(&ch.raw, off);
        atomic_store(&prog->keys_done, w.counts.keys);
        sample(&ch, 0);
    }
    m->counts = w.counts;
    m->digest = XXH3_64bits_digest(&ch.digest);
    m->duration_ms = (clock_mono_us() - t0) / 1000;
    emit_meta(&ch, SNAP_K_TRAILER);
    sample(&ch, 1);
    _exit(0);
}

int snap_fork_start(struct eng *e, struct snap_meta *m, size_t chunk_size, uint64_t (*offset_fn)(void *),
                    void *offset_ud, struct snap_child *out)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    fcntl(fds[0], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups; the default 64 KiB works too */
    struct snap_progress *prog =
        mmap(NULL, sizeof *prog, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (prog == MAP_FAILED) {
        int err = errno;
        close(fds[0]), close(fds[1]);
        return -err;
    }
    memset(prog, 0, sizeof *prog);
    uint64_t dirty = eng_dirty(e);
    pid_t parent = getpid();
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    int64_t t0 = clock_mono_us();
    eng_lock_all(&c);
    m->created_ms = c.now_ms;
    m->repl_offset = offset_fn ? offset_fn(offset_ud) : 0;
    uint64_t total = eng_snap_key_total(&c);
    eng_set_snapshot_child(e, 1); /* until snap_child_wait(): reads copy no page */
    pid_t pid = fork();
    if (pid == 0)
        child_main(&c, m, chunk_size, fds[1], parent, prog);
    int err = errno;
    if (pid < 0)
        eng_set_snapshot_child(e, 0);
    eng_unlock(&c);
    int64_t fork_us = clock_mono_us() - t0;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        munmap(prog, sizeof *prog);
        return -err;
    }
    *out = (struct snap_child){.e = e, .pid = pid, .fd = fds[0], .progress = prog, .fork_us = fork_us,
                               .keys_total = total, .dirty_before = dirty};
    return 0;
}

int snap_child_wait(struct snap_child *c, int kill_it, char *err, size_t errlen)
{
    if (kill_it)
        kill(c->pid, SIGKILL);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(c->pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    c->cpu_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + (int64_t)ru.ru_stime.tv_sec * 1000000 +
                ru.ru_stime.tv_usec;
    eng_set_snapshot_child(c->e, 0);
    if (kill_it)
        snprintf(err, errlen, "snapshot child stopped");
    else if (WIFSIGNALED(status))
        snprintf(err, errlen, "snapshot child killed by signal %d", WTERMSIG(status));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        snprintf(err, errlen, "snapshot child exited with status %d", WEXITSTATUS(status));
    else
        return 0;
    return -1;
}

/* ---- from the pipe to a store ------------------------------------------------------------ */

static int pump_fail(struct snap_pump *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pump_fail(struct snap_pump *p, const char *fmt, ...)
{
    if (!p->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int pump_frame(struct snap_pump *p, const struct snap_frame *f, const void *frame, size_t n)
{
    struct snap_store *st = p->st;
    if (!p->began) {
        if (f->kind != SNAP_K_HEADER)
            return pump_fail(p, "child sent no header");
        if (st->ops->begin(st, p->meta, frame, n) < 0)
            return pump_fail(p, "%s", st->err);
        p->began = 1;
        return 0;
    }
    if (f->kind == SNAP_K_CHUNK) {
        if (f->seq != p->meta->chunks || p->got_trailer)
            return pump_fail(p, "child sent chunk %u out of order", f->seq);
        if (st->ops->chunk(st, f->seq, f->checksum, f->raw_len, frame, n) < 0)
            return pump_fail(p, "%s", st->err);
        p->meta->chunks++;
        p->meta->stored_bytes += n;
        if (p->on_chunk)
            p->on_chunk(p->ud);
        return 0;
    }
    struct buf raw = BUF_INIT;
    int ok = f->kind == SNAP_K_TRAILER && !p->got_trailer && snap_frame_raw(f, &raw) == 0 &&
             snap_meta_parse(&p->trailer, raw.p, raw.len, 1) == 0 && p->trailer.chunks == p->meta->chunks &&
             !strcmp(p->trailer.id, p->meta->id);
    buf_release(&raw);
    if (!ok)
        return pump_fail(p, "child sent a bad trailer");
    p->trailer.created_ms = p->meta->created_ms;
    p->trailer.stored_bytes = p->meta->stored_bytes;
    buf_append(&p->tframe, frame, n);
    p->got_trailer = 1;
    return 0;
}

int snap_pump_run(struct snap_pump *p, int fd)
{
    struct buf *in = &p->in;
    for (;;) {
        struct snap_frame f;
        size_t need;
        const char *why = "bad frame";
        int rc = snap_frame_parse(in->p, in->len, &f, &need, &why);
        if (rc == 0) {
            if (pump_frame(p, &f, in->p, need) < 0)
                return -1;
            buf_consume(in, need);
            continue;
        }
        if (rc != ERR_AGAIN)
            return pump_fail(p, "child sent a %s", why);
        /* exactly what the frame still needs: no bytes of the next one */
        buf_grow(in, need - in->len);
        ssize_t got = read(fd, in->p + in->len, need - in->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return pump_fail(p, "reading from the child: %s", strerror(errno));
        if (got == 0) {
            if (in->len)
                return pump_fail(p, "child stopped in the middle of a frame");
            return p->got_trailer ? 0 : pump_fail(p, "child stopped before its trailer");
        }
        in->len += (size_t)got;
    }
}

void snap_pump_release(struct snap_pump *p)
{
    buf_release(&p->in);
    buf_release(&p->tframe);
}

int snap_take(struct eng *e, struct snap_store *st, size_t chunk_size, struct snap_meta *m, char *err, size_t errlen)
{
    struct snap_child ch;
    memset(m, 0, sizeof *m);
    snap_make_id(m->id, clock_wall_ms());
    int rc = snap_fork_start(e, m, chunk_size, NULL, NULL, &ch);
    if (rc < 0) {
        snprintf(err, errlen, "fork: %s", strerror(-rc));
        return -1;
    }
    struct snap_pump p = {.st = st, .meta = m};
    rc = snap_pump_run(&p, ch.fd);
    if (snap_child_wait(&ch, rc < 0, err, errlen) < 0 || rc < 0) {
        if (rc < 0)
            snprintf(err, errlen, "%s", p.err);
        if (p.began)
            st->ops->abort(st);
        rc = -1;
    } else if (st->ops->commit(st, &p.trailer, p.tframe.p, p.tframe.len) < 0) {
        snprintf(err, errlen, "%s", st->err);
        rc = -1;
    } else {
        uint64_t chunks = m->chunks, stored = m->stored_bytes;
        *m = p.trailer;
        m->chunks = (uint32_t)chunks;
        m->stored_bytes = stored;
    }
    snap_pump_release(&p);
    snap_child_release(&ch);
    return rc;
}

void snap_child_release(struct snap_child *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->progress)
        munmap(c->progress, sizeof *c->progress);
    c->fd = -1;
    c->progress = NULL;
}
