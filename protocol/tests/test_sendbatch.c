/* test_sendbatch.c: many sockets' sends in one io_uring submission
 * (protocol/sendbatch.c), on socket pairs: every byte reported sent arrives
 * and nothing else, answers come in the order of the adds, a full batch
 * refuses the next add, a socket whose buffer is full gets a short count or
 * -EAGAIN as send(2) would, a closed peer -EPIPE without a SIGPIPE.  Where
 * the kernel refuses io_uring (sendbatch_new gives NULL) each test says so
 * and checks only that. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sendbatch.h"

#define NS 8

struct answer {
    int order;
    ssize_t res;
};
static struct answer answers[NS];
static int nanswers;

static void on_done(void *ud, ssize_t res)
{
    struct answer *a = ud;
    a->order = nanswers++;
    a->res = res;
}

static void pairs(int sv[][2], int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
        fcntl(sv[i][0], F_SETFL, fcntl(sv[i][0], F_GETFL) | O_NONBLOCK);
        fcntl(sv[i][1], F_SETFL, fcntl(sv[i][1], F_GETFL) | O_NONBLOCK);
    }
}

static void unpair(int sv[][2], int n)
{
    for (int i = 0; i < n; i++) {
        if (sv[i][0] >= 0)
            close(sv[i][0]);
        if (sv[i][1] >= 0)
            close(sv[i][1]);
    }
}

static struct sendbatch *batch_or_skip(unsigned depth)
{
    struct sendbatch *b = sendbatch_new(depth);
    if (!b)
        print_message("io_uring is not available here: callers send one by one\n");
    return b;
}

/* A batch of depth sends and n socket pairs; NULL (and no sockets) when
 * io_uring is not available. */
static struct sendbatch *setup(unsigned depth, int sv[][2], int n)
{
    struct sendbatch *b = batch_or_skip(depth);
    if (b)
        pairs(sv, n);
    nanswers = 0;
    return b;
}

static void teardown(struct sendbatch *b, int sv[][2], int n)
{
    unpair(sv, n);
    sendbatch_free(b);
}

static void every_byte_arrives_in_order(void **state)
{
    (void)state;
    int sv[NS][2];
    struct sendbatch *b = setup(NS, sv, NS);
    if (!b)
        return;
    char msg[NS][32];
    for (int i = 0; i < NS; i++) {
        snprintf(msg[i], sizeof msg[i], "+reply %d\r\n", i);
        assert_int_equal(sendbatch_add(b, sv[i][0], msg[i], strlen(msg[i]), &answers[i]), 0);
    }
    assert_int_equal(sendbatch_len(b), NS);
    uint64_t batches0, sends0, batches1, sends1;
    sendbatch_counts(&batches0, &sends0);
    sendbatch_run(b, on_done);
    sendbatch_counts(&batches1, &sends1); /* INFO's io_uring_batches, io_uring_batched_sends */
    assert_int_equal(batches1 - batches0, 1);
    assert_int_equal(sends1 - sends0, NS);
    assert_int_equal(nanswers, NS);
    assert_int_equal(sendbatch_len(b), 0);
    for (int i = 0; i < NS; i++) {
        assert_int_equal(answers[i].order, i);
        assert_int_equal(answers[i].res, (ssize_t)strlen(msg[i]));
        char got[64];
        ssize_t n = read(sv[i][1], got, sizeof got);
        assert_int_equal(n, (ssize_t)strlen(msg[i]));
        assert_memory_equal(got, msg[i], (size_t)n);
    }
    /* the batch is used again, turn after turn */
    nanswers = 0;
    assert_int_equal(sendbatch_add(b, sv[3][0], "again", 5, &answers[0]), 0);
    sendbatch_run(b, on_done);
    assert_int_equal(nanswers, 1);
    assert_int_equal(answers[0].res, 5);
    char got[8];
    assert_int_equal(read(sv[3][1], got, sizeof got), 5);
    assert_false(sendbatch_broken(b));
    teardown(b, sv, NS);
}

static void a_full_batch_refuses_more(void **state)
{
    (void)state;
    int sv[3][2];
    struct sendbatch *b = setup(2, sv, 3);
    if (!b)
        return;
    assert_int_equal(sendbatch_add(b, sv[0][0], "a", 1, &answers[0]), 0);
    assert_int_equal(sendbatch_add(b, sv[1][0], "b", 1, &answers[1]), 0);
    assert_int_equal(sendbatch_add(b, sv[2][0], "c", 1, &answers[2]), -1);
    sendbatch_run(b, on_done);
    assert_int_equal(nanswers, 2);
    char got[4];
    assert_int_equal(read(sv[2][1], got, sizeof got), -1); /* "c" never went */
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(sendbatch_add(b, sv[2][0], "c", 1, &answers[2]), 0);
    sendbatch_run(b, on_done);
    assert_int_equal(answers[2].res, 1);
    assert_int_equal(read(sv[2][1], got, sizeof got), 1);
    teardown(b, sv, 3);
}

/* A socket whose buffer is full takes part or nothing, at once: the count
 * is exactly what the peer can read. */
static void a_full_socket_takes_what_it_can(void **state)
{
    (void)state;
    int sv[2][2];
    struct sendbatch *b = setup(4, sv, 2);
    if (!b)
        return;
    size_t big = 8u << 20;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (char)(i * 7);
    assert_int_equal(sendbatch_add(b, sv[0][0], p, big, &answers[0]), 0);
    assert_int_equal(sendbatch_add(b, sv[1][0], "small", 5, &answers[1]), 0);
    sendbatch_run(b, on_done);
    assert_int_equal(nanswers, 2);
    assert_true(answers[0].res > 0 && (size_t)answers[0].res < big);
    assert_int_equal(answers[1].res, 5);
    /* the buffer is full now: another send gets -EAGAIN, not a wait */
    assert_int_equal(sendbatch_add(b, sv[0][0], p, big, &answers[2]), 0);
    sendbatch_run(b, on_done);
    assert_int_equal(answers[2].res, -EAGAIN);
    size_t got = 0;
    char *r = malloc(big);
    for (;;) {
        ssize_t n = read(sv[0][1], r + got, big - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    assert_int_equal(got, (size_t)answers[0].res);
    assert_memory_equal(r, p, got);
    free(r);
    free(p);
    teardown(b, sv, 2);
}

static void a_closed_peer_is_an_error_not_a_signal(void **state)
{
    (void)state;
    int sv[2][2];
    struct sendbatch *b = setup(4, sv, 2);
    if (!b)
        return;
    close(sv[0][1]);
    sv[0][1] = -1;
    assert_int_equal(sendbatch_add(b, sv[0][0], "lost", 4, &answers[0]), 0);
    assert_int_equal(sendbatch_add(b, sv[1][0], "kept", 4, &answers[1]), 0);
    sendbatch_run(b, on_done); /* a SIGPIPE would end the test here */
    assert_int_equal(answers[0].res, -EPIPE);
    assert_int_equal(answers[1].res, 4);
    teardown(b, sv, 2);
}

static void an_empty_run_does_nothing(void **state)
{
    (void)state;
    struct sendbatch *b = batch_or_skip(4);
    if (!b)
        return;
    nanswers = 0;
    sendbatch_run(b, on_done);
    assert_int_equal(nanswers, 0);
    sendbatch_free(b);
    sendbatch_free(NULL);
}

/* The batch a loop turn uses: none for one socket, the same one turn after
 * turn, none while io-uring is off, back when it is on again. */
static void the_turns_batch(void **state)
{
    (void)state;
    struct sendbatch *slot = NULL;
    int refused = 0;
    assert_null(sendbatch_for_turn(&slot, &refused, 0));
    assert_null(slot); /* a turn with one socket makes none */
    struct sendbatch *b = sendbatch_for_turn(&slot, &refused, 1);
    if (!b) {
        assert_true(refused);
        assert_string_equal(sendbatch_state(), "unavailable");
        print_message("io_uring is not available here: callers send one by one\n");
        assert_null(sendbatch_for_turn(&slot, &refused, 1)); /* and it is not asked again */
        return;
    }
    assert_ptr_equal(b, slot);
    assert_ptr_equal(sendbatch_for_turn(&slot, &refused, 1), b);
    assert_string_equal(sendbatch_state(), "on");
    sendbatch_enable(0);
    assert_false(sendbatch_enabled());
    assert_string_equal(sendbatch_state(), "off");
    assert_null(sendbatch_for_turn(&slot, &refused, 1));
    assert_null(sendbatch_new(4));
    sendbatch_enable(1);
    assert_ptr_equal(sendbatch_for_turn(&slot, &refused, 1), b);
    assert_false(refused);
    sendbatch_free(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_byte_arrives_in_order),
        cmocka_unit_test(a_full_batch_refuses_more),
        cmocka_unit_test(a_full_socket_takes_what_it_can),
        cmocka_unit_test(a_closed_peer_is_an_error_not_a_signal),
        cmocka_unit_test(an_empty_run_does_nothing),
        cmocka_unit_test(the_turns_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
