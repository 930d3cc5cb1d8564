/* test_cmdtable.c: the command table as cmdtable.c builds it: subcommands
 * linked to their containers with ids after the commands', requests resolved
 * as Redis 7's lookupCommand(), documentation merged from docs.def. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "server_int.h"

static struct eng_str S(const char *s) { return (struct eng_str){s, strlen(s)}; }

static void test_ids_cover_subcommands(void **state)
{
    int n, nids = cmd_id_count(), seen_subs = 0;
    const struct cmd_def *t = cmd_table(&n);
    char *used = test_calloc((size_t)nids, 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(t[i].id, i);
        assert_string_equal(t[i].fullname, t[i].name);
        assert_null(t[i].parent);
        for (int j = 0; j < t[i].nsubs; j++) {
            const struct cmd_def *s = &t[i].subs[j];
            assert_true(s->id >= n && s->id < nids);
            assert_false(used[s->id]);
            used[s->id] = 1;
            assert_ptr_equal(s->parent, &t[i]);
            assert_ptr_equal(s->group, t[i].group);
            assert_non_null(s->fn); /* NULL in the row: the container's */
            assert_int_equal(strncmp(s->fullname, t[i].name, strlen(t[i].name)), 0);
            assert_int_equal(s->fullname[strlen(t[i].name)], '|');
            seen_subs++;
        }
    }
    assert_true(seen_subs > 40);
    test_free(used);
}

static void test_resolve(void **state)
{
    const struct cmd_def *container, *c;
    struct eng_str get[] = {S("Config"), S("GET"), S("maxmemory")};
    c = cmd_resolve(3, get, &container);
    assert_non_null(c);
    assert_string_equal(c->fullname, "config|get");
    assert_null(container);
    assert_ptr_equal(c->fn, cmd_lookup("config", 6)->fn);

    struct eng_str foo[] = {S("object"), S("foo"), S("k")};
    assert_null(cmd_resolve(3, foo, &container));
    assert_non_null(container);
    assert_string_equal(container->name, "object");

    struct eng_str alone[] = {S("command")}; /* a container alone runs as itself */
    c = cmd_resolve(1, alone, &container);
    assert_non_null(c);
    assert_string_equal(c->fullname, "command");

    struct eng_str plain[] = {S("get"), S("k")}; /* argv[1] of a plain command is no subcommand */
    c = cmd_resolve(2, plain, &container);
    assert_string_equal(c->fullname, "get");

    struct eng_str none[] = {S("nosuch"), S("x")};
    assert_null(cmd_resolve(2, none, &container));
    assert_null(container);
}

static void test_lookup_full(void **state)
{
    const struct cmd_def *c = cmd_lookup_full("CLIENT|No-Evict", 15);
    assert_non_null(c);
    assert_string_equal(c->fullname, "client|no-evict");
    assert_int_equal(c->arity, 3);
    assert_null(cmd_lookup_full("client|nosuch", 13));
    assert_null(cmd_lookup_full("nosuch|list", 11));
}

static void test_docs_merged(void **state)
{
    const struct cmd_def *get = cmd_lookup("get", 3), *set = cmd_lookup("set", 3);
    assert_string_equal(get->summary, "Get the value of a key");
    assert_string_equal(get->since, "1.0.0");
    assert_string_equal(get->complexity, "O(1)");
    assert_int_equal(get->nhistory, 0);
    assert_int_equal(set->nhistory, 4);
    assert_string_equal(set->history[0].since, "2.6.12");
    const struct cmd_def *getset = cmd_lookup("getset", 6);
    assert_int_equal(getset->doc_flags, CMD_DOC_DEPRECATED);
    assert_string_equal(getset->deprecated_since, "6.2.0");
    const struct cmd_def *cget = cmd_lookup_full("config|get", 10);
    assert_string_equal(cget->summary, "Get the values of configuration parameters");
    assert_int_equal(cget->nhistory, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_cover_subcommands),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_lookup_full),
        cmocka_unit_test(test_docs_merged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
