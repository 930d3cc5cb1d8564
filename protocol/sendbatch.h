/* sendbatch.h: the answers of many sockets handed to the kernel in one
 * system call.
 *
 * A loop that served many connections in one turn writes all their answers
 * at the end of the turn.  Sent one send(2) at a time, each send that wakes
 * a peer asleep on that socket may give it this CPU at once (a socket's
 * wake-up is synchronous: the peer is queued here, and it preempts us on
 * the way out of the call), so a turn with N answers can cost 2N context
 * switches, and the peer wakes N times for one answer each.  Submitted
 * together through io_uring, the sends run inside one system call: the
 * peers still wake, but we are preempted once at most, on the way out, and
 * a peer finds all its answers there when it runs.
 *
 * Every send is non-blocking (MSG_DONTWAIT, MSG_NOSIGNAL): what the kernel
 * does not take comes back as a short count or -EAGAIN, exactly as send(2)
 * answers, for the caller's usual way with the rest.  Where io_uring cannot
 * be had (a kernel without it, a seccomp profile forbidding it as Docker's
 * default does, io_uring_disabled, a build without liburing) sendbatch_new
 * returns NULL and the caller writes one socket at a time.
 *
 * One batch belongs to one thread. */
#ifndef OBENTCHI_SENDBATCH_H
#define OBENTCHI_SENDBATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sendbatch;

/* sends per batch made by sendbatch_for_turn: a fuller turn runs it more
 * than once */
#define SENDBATCH_DEPTH 256

/* res: bytes sent (possibly fewer than asked), or -errno (-EAGAIN: none) */
typedef void sendbatch_done_fn(void *ud, ssize_t res);

/* io-uring no: sendbatch_new gives NULL, sendbatch_enabled 0, and callers
 * go back to one send each from their next loop turn (any thread). */
void sendbatch_enable(int on);
int sendbatch_enabled(void);

/* For INFO: "on", "off" (io-uring no) or "unavailable" (a ring was
 * refused); batches run and the sends they carried, process-wide. */
const char *sendbatch_state(void);
void sendbatch_counts(uint64_t *batches, uint64_t *sends);

/* A batch of at most depth sends; NULL when io_uring is not available or
 * not enabled. */
struct sendbatch *sendbatch_new(unsigned depth);
void sendbatch_free(struct sendbatch *b);

/* The batch a loop turn with many (non-zero) sockets to write uses: *slot,
 * made at the first such turn; NULL when the turn has one socket only, or
 * io_uring is off, refused (*refused is then set, and it is not asked
 * again) or broken: the caller then writes one send each. */
struct sendbatch *sendbatch_for_turn(struct sendbatch **slot, int *refused, int many);

/* Queues a send of len bytes at p on fd; 0, or -1 when the batch is full
 * (run it, then add again).  p must stay valid until sendbatch_run. */
int sendbatch_add(struct sendbatch *b, int fd, const void *p, size_t len, void *ud);

/* Number of sends queued. */
unsigned sendbatch_len(const struct sendbatch *b);

/* Sends everything queued in one system call, then calls done(ud, res) for
 * each, in the order they were added; the batch is empty afterwards.  After
 * an error of io_uring itself (not of a send), the sends it did not take
 * are answered -EAGAIN, and the batch refuses new ones (sendbatch_add
 * returns -1 and sendbatch_broken says so): the caller goes on without it. */
void sendbatch_run(struct sendbatch *b, sendbatch_done_fn *done);
int sendbatch_broken(const struct sendbatch *b);

#endif
