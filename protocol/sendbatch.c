/* sendbatch.c: see sendbatch.h.  io_uring through Debian's liburing: one
 * IORING_OP_SEND per socket, submitted and waited for in one
 * io_uring_enter.  MSG_DONTWAIT makes a send that would block complete at
 * once with -EAGAIN instead of waiting on the socket, so every completion
 * is there when the call returns. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

#include "base/alloc.h"
#include "base/log.h"
#include "sendbatch.h"

static _Atomic int enabled = 1, unavailable;
static _Atomic uint64_t nbatches, nsends;

void sendbatch_enable(int on) { enabled = on; }
int sendbatch_enabled(void) { return enabled; }
const char *sendbatch_state(void) { return !enabled ? "off" : unavailable ? "unavailable" : "on"; }

void sendbatch_counts(uint64_t *batches, uint64_t *sends)
{
    *batches = atomic_load_explicit(&nbatches, memory_order_relaxed);
    *sends = atomic_load_explicit(&nsends, memory_order_relaxed);
}

struct sendbatch *sendbatch_for_turn(struct sendbatch **slot, int *refused, int many)
{
    if (!many || !enabled)
        return NULL;
    if (!*slot && !*refused) {
        *slot = sendbatch_new(SENDBATCH_DEPTH);
        *refused = !*slot;
    }
    return *slot && !sendbatch_broken(*slot) ? *slot : NULL;
}

#ifdef HAVE_LIBURING
#include <liburing.h>

struct sendbatch {
    struct io_uring ring;
    unsigned depth, n;
    int broken;
    void **ud;
    ssize_t *res;
};

struct sendbatch *sendbatch_new(unsigned depth)
{
    if (!enabled)
        return NULL;
    struct sendbatch *b = xcalloc(1, sizeof *b);
    /* one thread submits and reaps: tell the kernel, where it knows how */
    int rc = io_uring_queue_init(depth, &b->ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN);
    if (rc == -EINVAL)
        rc = io_uring_queue_init(depth, &b->ring, 0);
    if (rc < 0) {
        if (!atomic_exchange(&unavailable, 1))
            log_info("io_uring is not available: replies go out one send each", "error=\"%s\"", strerror(-rc));
        xfree(b);
        return NULL;
    }
    b->depth = depth;
    b->ud = xcalloc(depth, sizeof *b->ud);
    b->res = xcalloc(depth, sizeof *b->res);
    return b;
}

void sendbatch_free(struct sendbatch *b)
{
    if (!b)
        return;
    io_uring_queue_exit(&b->ring);
    xfree(b->ud);
    xfree(b->res);
    xfree(b);
}

unsigned sendbatch_len(const struct sendbatch *b) { return b->n; }
int sendbatch_broken(const struct sendbatch *b) { return b->broken; }

int sendbatch_add(struct sendbatch *b, int fd, const void *p, size_t len, void *ud)
{
    if (b->broken || b->n == b->depth)
        return -1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    if (!sqe)
        return -1;
    io_uring_prep_send(sqe, fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, b->n);
    b->ud[b->n] = ud;
    b->res[b->n] = -EAGAIN; /* what a send the kernel never took answers */
    b->n++;
    return 0;
}

void sendbatch_run(struct sendbatch *b, sendbatch_done_fn *done)
{
    unsigned n = b->n, got = 0;
    if (!n)
        return;
    int rc;
    do
        rc = io_uring_submit_and_wait(&b->ring, n);
    while (rc == -EINTR);
    if (rc < 0 || (unsigned)rc < n) {
        /* io_uring itself failed: what it took completes below; what it did
         * not take stays unsent (-EAGAIN), and the ring is not used again */
        b->broken = 1;
        n = rc < 0 ? 0 : (unsigned)rc;
    }
    while (got < n) {
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe(&b->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc < 0) { /* cannot happen with sends taken; stop waiting */
            b->broken = 1;
            break;
        }
        uint64_t i = io_uring_cqe_get_data64(cqe);
        if (i < b->n)
            b->res[i] = cqe->res;
        io_uring_cqe_seen(&b->ring, cqe);
        got++;
    }
    unsigned all = b->n;
    b->n = 0;
    atomic_fetch_add_explicit(&nbatches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&nsends, all, memory_order_relaxed);
    for (unsigned i = 0; i < all; i++)
        done(b->ud[i], b->res[i]);
}

#else /* built without liburing: callers write one socket at a time */

struct sendbatch *sendbatch_new(unsigned depth)
{
    (void)depth;
    if (enabled && !atomic_exchange(&unavailable, 1))
        log_info("io_uring is not available: replies go out one send each", "error=\"%s\"",
                 "built without liburing");
    return NULL;
}
void sendbatch_free(struct sendbatch *b) { (void)b; }
unsigned sendbatch_len(const struct sendbatch *b) { (void)b; return 0; }
int sendbatch_broken(const struct sendbatch *b) { (void)b; return 1; }
int sendbatch_add(struct sendbatch *b, int fd, const void *p, size_t len, void *ud)
{
    (void)b, (void)fd, (void)p, (void)len, (void)ud;
    return -1;
}
void sendbatch_run(struct sendbatch *b, sendbatch_done_fn *done) { (void)b, (void)done; }

#endif
