/* test_snap_store.c: a whole snapshot through fork (snapshot_fork.c) into
 * the file store (sink_file.c) and back (restore.c): content, the keep-N
 * pruning and removal of a crashed snapshot's .tmp, a torn newest file and a
 * damaged chunk each skipped for the previous snapshot, and a store that
 * refuses a chunk in the middle (the child is stopped, nothing is left for
 * readers).  The same round trip against MongoDB runs when MONGO_URI names
 * one (the integration suite covers it otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "hash.h"
#include "list.h"
#include "snap_int.h"

static char dir[256];
static struct eng *A, *B;

static struct eng *engine(void)
{
    struct eng_config cfg = {.nshards = 4, .ndb = 4};
    return eng_new(&cfg);
}

static void fill(struct eng *e, int n)
{
    for (int i = 0; i < n; i++) {
        char k[32], v[64];
        struct eng_ctx c;
        eng_ctx_init(&c, e, i % 4);
        snprintf(k, sizeof k, "key:%d", i);
        struct eng_str key = {k, strlen(k)};
        eng_lock_keys(&c, &key, 1);
        snprintf(v, sizeof v, "value-%d-%d", i, i * 31);
        if (i % 3 == 0) {
            struct eng_str fv[4] = {{"name", 4}, {v, strlen(v)}, {"n", 1}, {k, strlen(k)}};
            int64_t added;
            assert_int_equal(eng_hset(&c, k, strlen(k), fv, 2, &added), 0);
        } else if (i % 7 == 0) {
            struct eng_str el[2] = {{v, strlen(v)}, {k, strlen(k)}};
            int64_t len;
            assert_int_equal(eng_list_push(&c, k, strlen(k), ENG_LIST_TAIL, 0, el, 2, &len), 0);
        } else {
            assert_int_equal(eng_set(&c, k, strlen(k), v, strlen(v), 0, i % 5 ? 0 : clock_wall_ms() + 3600000,
                                     NULL, NULL),
                             1);
        }
        eng_unlock(&c);
    }
}

static uint64_t keys(struct eng *e)
{
    uint64_t n = 0;
    for (int db = 0; db < 4; db++)
        n += eng_dbsize(e, db);
    return n;
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/test-snap-store-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(dir));
    A = engine();
    B = engine();
    return 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (de->d_name[0] != '.')
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    eng_free(A);
    eng_free(B);
    return 0;
}

static int count_files(const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (!strncmp(de->d_name, "obentchi.snap.", 14) && l > sl && !strcmp(de->d_name + l - sl, suffix))
            n++;
    }
    closedir(d);
    return n;
}

static int restore(struct snap_store *st, struct eng *e, struct snap_restore_result *res)
{
    struct snap_restore_ctl ctl = {0};
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    eng_lock_all(&c);
    eng_flush(&c, -1);
    eng_unlock(&c);
    return snap_restore(st, e, &ctl, res);
}

static void take(struct snap_store *st, struct snap_meta *m)
{
    char err[600];
    int rc = snap_take(A, st, 4096, m, err, sizeof err);
    if (rc < 0)
        fail_msg("snapshot failed: %s", err);
}

static void test_round_trip_and_keep(void **state)
{
    fill(A, 3000);
    struct snap_store *st = snap_file_open(dir, "obentchi.snap");
    struct snap_meta m[5];
    for (int i = 0; i < 5; i++) {
        take(st, &m[i]);
        assert_int_equal(m[i].counts.keys, 3000);
        assert_true(m[i].chunks > 5);
    }
    assert_int_equal(count_files(""), 5);
    /* a crashed snapshot's leftover goes with the next prune */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/obentchi.snap.20200101T000000000Z-00000000.tmp", dir);
    close(open(tmp, O_CREAT | O_WRONLY, 0644));
    assert_int_equal(count_files(".tmp"), 1);
    assert_int_equal(st->ops->prune(st, 3), 0);
    assert_int_equal(count_files(""), 3);
    assert_int_equal(count_files(".tmp"), 0);
    struct snap_list l = {0};
    assert_int_equal(st->ops->list(st, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0].id, m[4].id); /* newest first */
    assert_string_equal(l.v[2].id, m[2].id);
    snap_list_release(&l);

    struct snap_restore_result res;
    assert_int_equal(restore(st, B, &res), 1);
    assert_string_equal(res.meta.id, m[4].id);
    assert_int_equal(res.keys_loaded, 3000);
    assert_int_equal(res.skipped, 0);
    assert_int_equal(keys(B), 3000);
    struct eng_ctx c;
    eng_ctx_init(&c, B, 3);
    struct eng_str k = {"key:2999", 8};
    eng_lock_keys(&c, &k, 1);
    struct eng_val v;
    assert_int_equal(eng_get(&c, "key:2999", 8, &v), 0);
    assert_int_equal(v.n, strlen("value-2999-92969"));
    assert_memory_equal(v.p, "value-2999-92969", v.n);
    eng_unlock(&c);
    st->ops->close(st);
}

/* Flips a byte in the middle of the file of snapshot id, or cuts it. */
static void damage(const char *id, int cut)
{
    char p[600];
    snprintf(p, sizeof p, "%s/obentchi.snap.%s", dir, id);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    if (cut) {
        assert_int_equal(truncate(p, sb.st_size * 2 / 3), 0);
        return;
    }
    int fd = open(p, O_RDWR);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, sb.st_size / 2), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, sb.st_size / 2), 1);
    close(fd);
}

static void test_fallback(void **state)
{
    fill(A, 1000);
    struct snap_store *st = snap_file_open(dir, "obentchi.snap");
    struct snap_meta m1, m2, m3;
    take(st, &m1);
    fill(A, 1500); /* 500 more keys */
    take(st, &m2);
    take(st, &m3);
    damage(m3.id, 1); /* torn: as if written without the tmp+rename dance */
    damage(m2.id, 0);
    struct snap_restore_result res;
    log_set_level(LOG_WARNING + 1); /* the skips are expected */
    assert_int_equal(restore(st, B, &res), 1);
    log_set_level(LOG_NOTICE);
    assert_int_equal(res.skipped, 2);
    assert_string_equal(res.meta.id, m1.id);
    assert_int_equal(keys(B), 1000);
    /* all damaged: nothing usable, the engine is left empty */
    damage(m1.id, 0);
    log_set_level(LOG_WARNING + 1);
    assert_int_equal(restore(st, B, &res), 0);
    log_set_level(LOG_NOTICE);
    assert_int_equal(res.skipped, 3);
    assert_int_equal(keys(B), 0);
    st->ops->close(st);
}

/* A store that refuses the third chunk, as a MongoDB going away would. */
static int refusing_chunk(struct snap_store *s, uint32_t seq, uint64_t sum, uint32_t raw, const void *f, size_t n);
static const struct snap_store_ops *file_ops;
static struct snap_store_ops refusing_ops;
static int aborted;

static int refusing_chunk(struct snap_store *s, uint32_t seq, uint64_t sum, uint32_t raw, const void *f, size_t n)
{
    if (seq == 2) {
        snprintf(s->err, sizeof s->err, "refused");
        return -EIO;
    }
    return file_ops->chunk(s, seq, sum, raw, f, n);
}

static void refusing_abort(struct snap_store *s)
{
    aborted++;
    file_ops->abort(s);
}

static void test_store_refuses(void **state)
{
    fill(A, 3000);
    struct snap_store *st = snap_file_open(dir, "obentchi.snap");
    file_ops = st->ops;
    refusing_ops = *st->ops;
    refusing_ops.chunk = refusing_chunk;
    refusing_ops.abort = refusing_abort;
    st->ops = &refusing_ops;
    struct snap_meta m;
    char err[600];
    assert_int_equal(snap_take(A, st, 4096, &m, err, sizeof err), -1);
    assert_string_equal(err, "refused");
    assert_int_equal(aborted, 1);
    assert_int_equal(count_files(""), 0);
    assert_int_equal(count_files(".tmp"), 0);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* the child was reaped */
    assert_int_equal(errno, ECHILD);
    st->ops = file_ops;
    st->ops->close(st);
}

static void test_mongo(void **state)
{
    const char *uri = getenv("MONGO_URI");
    if (!uri || !*uri)
        skip();
    char err[512], coll[64];
    snprintf(coll, sizeof coll, "unit%d", (int)getpid());
    struct snap_store *st = snap_mongo_open(uri, "obentchi_test", coll, "1", err, sizeof err);
    assert_non_null(st);
    fill(A, 2000);
    struct snap_meta m[4];
    for (int i = 0; i < 4; i++)
        take(st, &m[i]);
    assert_int_equal(st->ops->prune(st, 2), 0);
    struct snap_list l = {0};
    assert_int_equal(st->ops->list(st, &l), 0);
    assert_int_equal(l.n, 2);
    snap_list_release(&l);
    assert_int_equal(snap_mongo_damage_chunk(st, m[3].id, 1), 0);
    struct snap_restore_result res;
    log_set_level(LOG_WARNING + 1);
    assert_int_equal(restore(st, B, &res), 1);
    log_set_level(LOG_NOTICE);
    assert_int_equal(res.skipped, 1);
    assert_string_equal(res.meta.id, m[2].id);
    assert_int_equal(keys(B), 2000);
    assert_int_equal(st->ops->prune(st, 0), 0);
    st->ops->close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_keep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mongo, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
