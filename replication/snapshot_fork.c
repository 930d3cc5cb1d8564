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
 * never logs, allocates through libuv or talks to MongoDB.  (The versioned
 * walk, snapshot-method versioned, runs the same producer on a thread of the
 * server instead: that one may log.)
 *
 * Not for: where the frames go (the stores), when (snapshot.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
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
    int fd;            /* where frames go */
    int is_thread;     /* the versioned walk: no Private_Dirty to sample, errors return */
    _Atomic int *cancel;
};

static void sample(struct child *ch, int force)
{
    if (ch->is_thread) /* no copy-on-write: the records saved ahead of the walk are the extra memory */
        return;
    int64_t now = clock_mono_us();
    if (!force && now - ch->last_sample_us < COW_SAMPLE_US)
        return;
    ch->last_sample_us = now;
    atomic_store(&ch->prog->cow_bytes, snap_private_dirty(getpid()));
}

static int emit_chunk(struct child *ch, const char *p, size_t n)
{
    buf_reset(&ch->out);
    uint64_t sum = snap_frame_build(&ch->out, SNAP_K_CHUNK, ch->m->chunks++, p, n, 1);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(sum >> (8 * i));
    XXH3_64bits_update(&ch->digest, le, sizeof le);
    ch->m->raw_bytes += n;
    ch->m->stored_bytes += ch->out.len;
    if (ch->cancel && atomic_load(ch->cancel))
        return -1;
    return write_all(ch->fd, ch->out.p, ch->out.len); /* -1: the reader gave up */
}

static int emit_meta(struct child *ch, int kind)
{
    struct buf payload = BUF_INIT;
    if (kind == SNAP_K_HEADER)
        snap_meta_header(ch->m, &payload);
    else
        snap_meta_trailer(ch->m, &payload);
    buf_reset(&ch->out);
    snap_frame_build(&ch->out, kind, kind == SNAP_K_HEADER ? 0 : ch->m->chunks, payload.p, payload.len, 0);
    buf_release(&payload);
    return write_all(ch->fd, ch->out.p, ch->out.len);
}

/* Where the records come from: a frozen engine (the fork()ed child's
 * eng_snap_writer) or the versioned walk. */
struct source {
    struct eng_snap_writer *w;
    struct eng_vsnap *v;
};

static int source_next(struct source *src, struct buf *raw, size_t budget)
{
    return src->w ? eng_snap_write(src->w, raw, budget) : eng_vsnap_write(src->v, raw, budget);
}

static const struct eng_snap_counts *source_counts(struct source *src)
{
    return src->w ? &src->w->counts : eng_vsnap_counts(src->v);
}

/* Header, chunks, trailer to ch->fd.  0, or -1 when writing failed or the
 * writer was cancelled. */
static int produce(struct child *ch, struct source *src, size_t chunk)
{
    int64_t t0 = clock_mono_us();
    XXH3_64bits_reset(&ch->digest);
    if (emit_meta(ch, SNAP_K_HEADER) < 0)
        return -1;
    int more = 1;
    while (more) {
        more = source_next(src, &ch->raw, chunk);
        size_t off = 0;
        while (ch->raw.len - off >= chunk || (!more && off < ch->raw.len)) {
            size_t n = ch->raw.len - off < chunk ? ch->raw.len - off : chunk;
            if (emit_chunk(ch, ch->raw.p + off, n) < 0)
                return -1;
            off += n;
        }
        buf_consume(&ch->raw, off);
        atomic_store(&ch->prog->keys_done, source_counts(src)->keys);
        if (src->v)
            atomic_store(&ch->prog->cow_bytes, eng_vsnap_extra_bytes(src->v));
        sample(ch, 0);
    }
    ch->m->counts = *source_counts(src);
    ch->m->digest = XXH3_64bits_digest(&ch->digest);
    ch->m->duration_ms = (clock_mono_us() - t0) / 1000;
    if (emit_meta(ch, SNAP_K_TRAILER) < 0)
        return -1;
    sample(ch, 1);
    return 0;
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

    struct child ch = {.m = m, .prog = prog, .fd = CHILD_FD};
    struct eng_snap_writer w;
    eng_snap_writer_init(&w, c, 0);
    struct source src = {.w = &w};
    _exit(produce(&ch, &src, chunk) < 0 ? 2 : 0);
}

/* ---- the versioned walk's thread ------------------------------------------------------- */

struct snap_thread {
    pthread_t tid;
    _Atomic pid_t ktid; /* the kernel's id of the thread, once it runs */
    int64_t start_us;
    int raised;         /* moved from SCHED_IDLE to nice 15 (thread_tick) */
    struct eng_vsnap *v;
    struct snap_meta m; /* its own: the pump counts chunks in the caller's */
    size_t chunk;
    int fd;             /* write end of the pipe */
    struct snap_progress *prog;
    _Atomic int cancel;
    int status;
    int64_t cpu_us;
};

#define WALK_IDLE_US (10 * 1000000)

/* From the thread that reads the frames, now and then: a walk still at idle
 * priority after WALK_IDLE_US gets nice 15, which guarantees it a share of a
 * busy core (it cannot do that itself: starved, it does not run). */
static void thread_tick(struct snap_thread *t)
{
    pid_t k = atomic_load(&t->ktid);
    if (t->raised || !k || clock_mono_us() - t->start_us < WALK_IDLE_US)
        return;
    t->raised = 1;
    struct sched_param sp = {0};
    if (sched_setscheduler(k, SCHED_OTHER, &sp) == 0) {
        setpriority(PRIO_PROCESS, (id_t)k, 15);
        log_info("snapshot walk raised to nice 15", "reason=\"no idle core for %d s\" keys_done=%llu",
                 WALK_IDLE_US / 1000000, (unsigned long long)atomic_load(&t->prog->keys_done));
    }
}

void snap_child_tick(struct snap_child *c)
{
    if (c && c->thread)
        thread_tick(c->thread);
}

static void *thread_main(void *arg)
{
    struct snap_thread *t = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE); /* a reader that went away is an EPIPE, not a signal */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* SCHED_IDLE: the walk runs only on a core nobody else wants, and any
     * client thread that wakes takes the core from it at once (at nice 15 it
     * took its weighted share: GET p99 during snapshots was 8x the p99
     * without, now about 1x; tools/bench-snapshot).  On cores kept busy it
     * would never finish: thread_tick() moves it to nice 15 after
     * WALK_IDLE_US.  Where SCHED_IDLE is refused, nice 15 from the start. */
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
        setpriority(PRIO_PROCESS, (id_t)gettid(), 15);
    atomic_store(&t->ktid, gettid());
    struct child ch = {.m = &t->m, .prog = t->prog, .fd = t->fd, .is_thread = 1, .cancel = &t->cancel};
    struct source src = {.v = t->v};
    t->status = produce(&ch, &src, t->chunk);
    buf_release(&ch.raw);
    buf_release(&ch.out);
    close(t->fd);
    t->fd = -1;
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        t->cpu_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    return NULL;
}

_Atomic int snap_method = SNAP_VERSIONED;

struct vs_instant {
    struct snap_meta *m;
    uint64_t (*offset_fn)(void *);
    void *offset_ud;
};

static void vs_at_instant(void *ud)
{
    struct vs_instant *x = ud;
    x->m->created_ms = clock_wall_ms();
    x->m->repl_offset = x->offset_fn ? x->offset_fn(x->offset_ud) : 0;
}

/* The versioned point in time: 0, ERR_EXISTS when one runs already (the
 * caller forks instead), or -errno. */
static int thread_start(struct eng *e, struct snap_meta *m, size_t chunk_size, uint64_t (*offset_fn)(void *),
                        void *offset_ud, struct snap_progress *prog, int fds[2], struct snap_child *out)
{
    uint64_t dirty = eng_dirty(e), total = 0;
    struct vs_instant at = {m, offset_fn, offset_ud};
    struct eng_vsnap *v;
    int64_t t0 = clock_mono_us();
    int rc = eng_vsnap_begin(e, 0, vs_at_instant, &at, &total, &v);
    int64_t pause_us = clock_mono_us() - t0;
    if (rc < 0)
        return rc;
    struct snap_thread *t = xcalloc(1, sizeof *t);
    t->v = v;
    t->m = *m;
    t->chunk = chunk_size;
    t->fd = fds[1];
    t->prog = prog;
    t->start_us = clock_mono_us();
    if ((rc = pthread_create(&t->tid, NULL, thread_main, t)) != 0) {
        eng_vsnap_free(v);
        xfree(t);
        return -rc;
    }
    *out = (struct snap_child){.e = e, .pid = 0, .thread = t, .fd = fds[0], .progress = prog, .fork_us = pause_us,
                               .keys_total = total, .dirty_before = dirty};
    return 0;
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
    if (atomic_load(&snap_method) == SNAP_VERSIONED) {
        int rc = thread_start(e, m, chunk_size, offset_fn, offset_ud, prog, fds, out);
        if (rc == 0)
            return 0;
        if (rc != ERR_EXISTS) {
            close(fds[0]), close(fds[1]);
            munmap(prog, sizeof *prog);
            return rc;
        }
        /* a versioned walk runs already: this one forks */
    }
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
    *out = (struct snap_child){.e = e, .pid = pid, .thread = NULL, .fd = fds[0], .progress = prog, .fork_us = fork_us,
                               .keys_total = total, .dirty_before = dirty};
    return 0;
}

void snap_child_cancel(struct snap_child *c)
{
    if (c->thread)
        atomic_store(&c->thread->cancel, 1);
    else if (c->pid > 0)
        kill(c->pid, SIGKILL);
}

static int thread_wait(struct snap_child *c, int kill_it, char *err, size_t errlen)
{
    struct snap_thread *t = c->thread;
    if (kill_it) {
        atomic_store(&t->cancel, 1);
        /* a thread blocked writing to a full pipe: drain it (the caller
         * gives fd = -1 when it closed the read end, which fails the write) */
        if (c->fd >= 0) {
            char sink[65536];
            while (read(c->fd, sink, sizeof sink) > 0)
                ;
        }
    }
    pthread_join(t->tid, NULL);
    c->cpu_us = t->cpu_us;
    int status = t->status;
    int cancelled = atomic_load(&t->cancel);
    eng_vsnap_free(t->v);
    xfree(t);
    c->thread = NULL;
    if (cancelled)
        snprintf(err, errlen, "snapshot writer stopped");
    else if (status < 0)
        snprintf(err, errlen, "snapshot writer failed: its reader went away");
    else
        return 0;
    return -1;
}

int snap_child_wait(struct snap_child *c, int kill_it, char *err, size_t errlen)
{
    if (c->thread)
        return thread_wait(c, kill_it, err, errlen);
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
        /* wait a second at a time, ticking the producer */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 1000);
        snap_child_tick(p->child);
        if (ready == 0 || (ready < 0 && errno == EINTR))
            continue;
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
    struct snap_pump p = {.st = st, .meta = m, .child = &ch};
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
