/* test_glob.c: glob.c against Redis's stringmatchlen cases (stars, ?,
 * classes, ranges, negation, escapes, nocase, NUL bytes), a hostile pattern,
 * and a random comparison with a plain recursive matcher, which checks the
 * one-star backtracking.  Random runs print their seed; SEED=n repeats one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/glob.h"

static int m(const char *pat, const char *s) { return glob_match(pat, strlen(pat), s, strlen(s), 0); }
static int mi(const char *pat, const char *s) { return glob_match(pat, strlen(pat), s, strlen(s), 1); }

static void test_literal_and_star(void **state)
{
    assert_true(m("", ""));
    assert_false(m("", "a"));
    assert_true(m("hello", "hello"));
    assert_false(m("hello", "hell"));
    assert_false(m("hell", "hello"));
    assert_true(m("*", "anything"));
    /* Redis's stringmatchlen says no here (its loop never runs on an empty
     * string); an empty key matching "*" is the glob meaning and what
     * KEYS * shows anyway through its fast path. */
    assert_true(m("*", ""));
    assert_true(m("**", ""));
    assert_true(m("a*", "a"));
    assert_true(m("a*", "abc"));
    assert_false(m("a*", "ba"));
    assert_true(m("*a", "bba"));
    assert_false(m("*a", "ab"));
    assert_true(m("a*b", "ab"));
    assert_true(m("a*b", "axxb"));
    assert_false(m("a*b", "axxc"));
    assert_true(m("a*b*c", "abbbc"));
    assert_true(m("a*b*c", "aXbYbZc"));
    assert_false(m("a*b*c", "aXbYbZ"));
    assert_true(m("**a**", "xa"));
    assert_true(m("*ab", "aab")); /* the star must give back what it took */
    assert_true(m("h*llo", "hllo"));
    assert_true(m("h*llo", "heeeello"));
    assert_true(m("user:*:name", "user:1000:name"));
    assert_false(m("user:*:name", "user:1000:age"));
}

static void test_question(void **state)
{
    assert_false(m("?", ""));
    assert_true(m("?", "a"));
    assert_false(m("?", "ab"));
    assert_true(m("h?llo", "hello"));
    assert_true(m("h?llo", "hallo"));
    assert_false(m("h?llo", "hllo"));
    assert_true(m("??*", "ab"));
    assert_false(m("??*", "a"));
    assert_true(m("*?", "a"));
    assert_false(m("a*?", "a"));
}

static void test_classes(void **state)
{
    assert_true(m("h[ae]llo", "hello"));
    assert_true(m("h[ae]llo", "hallo"));
    assert_false(m("h[ae]llo", "hillo"));
    assert_true(m("h[^e]llo", "hallo"));
    assert_true(m("h[^e]llo", "hbllo"));
    assert_false(m("h[^e]llo", "hello"));
    assert_true(m("h[a-b]llo", "hallo"));
    assert_true(m("h[a-b]llo", "hbllo"));
    assert_false(m("h[a-b]llo", "hcllo"));
    assert_true(m("[b-a]", "a")); /* reversed ranges are swapped, as Redis */
    assert_true(m("[b-a]", "b"));
    assert_false(m("[b-a]", "c"));
    assert_true(m("[^a-c]", "d"));
    assert_false(m("[^a-c]", "b"));
    assert_true(m("[a-cx-z]", "y"));
    assert_false(m("[a-cx-z]", "m"));
    assert_true(m("[0-9]*", "7abc"));
    assert_false(m("[]", "a"));   /* an empty class matches nothing */
    assert_false(m("[]a]", "]a"));
    assert_true(m("[abc", "a"));  /* unterminated: the class runs to the end */
    assert_false(m("[abc", "ab"));
    assert_false(m("[", "["));
    assert_true(m("[^", "x"));
    /* '-' before ']' is a plain '-' here; Redis takes "a-]" as a range up to
     * ']' and then reads past the class, which nobody relies on. */
    assert_true(m("[a-]", "-"));
    assert_true(m("[a-]", "a"));
    assert_false(m("[a-]", "b"));
    assert_true(m("[-a]", "-"));
}

static void test_escapes(void **state)
{
    assert_true(m("h\\*llo", "h*llo"));
    assert_false(m("h\\*llo", "hello"));
    assert_true(m("\\?", "?"));
    assert_false(m("\\?", "a"));
    assert_true(m("\\[a]", "[a]"));
    assert_true(m("\\\\", "\\"));
    assert_true(m("\\a", "a"));
    assert_true(m("a\\", "a\\")); /* a trailing backslash is itself */
    assert_true(m("[\\]]", "]"));
    assert_true(m("[\\-]", "-"));
    assert_false(m("[\\-]", "\\"));
    assert_true(m("[\\^a]", "^"));
    assert_true(m("[a\\", "\\")); /* unterminated class ending in a backslash */
    assert_true(m("*\\*", "abc*"));
    assert_false(m("*\\*", "abc"));
}

static void test_nocase(void **state)
{
    assert_true(mi("HELLO", "hello"));
    assert_false(m("HELLO", "hello"));
    assert_true(mi("h*O", "HellO"));
    assert_true(mi("[A-Z]", "q"));
    assert_true(mi("[a-z]", "Q"));
    assert_false(m("[A-Z]", "q"));
    assert_true(mi("[^a]", "B"));
    assert_false(mi("[^a]", "A"));
    assert_true(mi("[abc]", "B"));
    assert_true(mi("maxmemory*", "MaxMemory-Policy"));
}

static void test_binary(void **state)
{
    assert_true(glob_match("a\0b", 3, "a\0b", 3, 0));
    assert_false(glob_match("a\0b", 3, "a\0c", 3, 0));
    assert_false(glob_match("a\0b", 3, "a", 1, 0));
    assert_true(glob_match("a?b", 3, "a\0b", 3, 0));
    assert_true(glob_match("*\0*", 3, "x\0y", 3, 0));
    assert_false(glob_match("*\0*", 3, "xy", 2, 0));
    assert_true(glob_match("[\0]", 3, "\0", 1, 0));
    assert_true(glob_match("[^\0]", 4, "x", 1, 0));
    assert_true(glob_match("*", 1, "\0\0\0", 3, 0));
    assert_true(m("[\x80-\xff]", "\xc3"));   /* bytes are unsigned */
    assert_false(m("[\x80-\xff]", "\x7f"));
    assert_true(m("\xc3\xa9*", "\xc3\xa9t\xc3\xa9"));
}

static void test_hostile(void **state)
{
    static char s[10001];
    memset(s, 'a', 10000);
    s[10000] = '\0';
    /* Exponential for a naive backtracker; must simply return. */
    assert_false(m("a*a*a*a*a*a*a*a*b", s));
    assert_true(m("a*a*a*a*a*a*a*a*", s));
    assert_true(m("*a*a*a*a*a*a*a*a", s));
    static char p[2001];
    for (int i = 0; i < 1000; i++)
        p[2 * i] = '*', p[2 * i + 1] = 'a';
    p[2000] = '\0';
    assert_true(m(p, s));
    p[1999] = 'b';
    assert_false(m(p, s));
}

/* ---- random comparison with a simple recursive matcher ---- */

static int eq(unsigned char a, unsigned char b, int nocase)
{
    return nocase ? tolower(a) == tolower(b) : a == b;
}

/* The class at p[0] == '[': first every member, then the test. */
static int ref_class(const char *p, size_t pl, unsigned char c, int nocase, size_t *adv)
{
    unsigned char set[256] = {0};
    size_t i = 1;
    int neg = i < pl && p[i] == '^';
    i += neg;
    for (; i < pl && p[i] != ']'; i++) {
        unsigned char a = (unsigned char)p[i];
        if (a == '\\' && i + 1 < pl) {
            a = (unsigned char)p[++i];
            for (int x = 0; x < 256; x++)
                set[x] |= eq((unsigned char)x, a, nocase);
        } else if (i + 2 < pl && p[i + 1] == '-' && p[i + 2] != ']') {
            int lo = nocase ? tolower(a) : a, hi = nocase ? tolower((unsigned char)p[i + 2]) : (unsigned char)p[i + 2];
            if (lo > hi)
                lo ^= hi, hi ^= lo, lo ^= hi;
            for (int x = 0; x < 256; x++) {
                int f = nocase ? tolower(x) : x;
                set[x] |= f >= lo && f <= hi;
            }
            i += 2;
        } else {
            for (int x = 0; x < 256; x++)
                set[x] |= eq((unsigned char)x, a, nocase);
        }
    }
    *adv = i < pl ? i + 1 : pl;
    return set[c] ^ neg;
}

static int ref(const char *p, size_t pl, const char *s, size_t sl, int nocase)
{
    if (pl == 0)
        return sl == 0;
    if (p[0] == '*') {
        while (pl > 1 && p[1] == '*')
            p++, pl--;
        for (size_t k = 0; k <= sl; k++)
            if (ref(p + 1, pl - 1, s + k, sl - k, nocase))
                return 1;
        return 0;
    }
    if (sl == 0)
        return 0;
    size_t adv = 1;
    int ok;
    if (p[0] == '?')
        ok = 1;
    else if (p[0] == '[')
        ok = ref_class(p, pl, (unsigned char)s[0], nocase, &adv);
    else if (p[0] == '\\' && pl >= 2)
        ok = eq((unsigned char)p[1], (unsigned char)s[0], nocase), adv = 2;
    else
        ok = eq((unsigned char)p[0], (unsigned char)s[0], nocase);
    return ok && ref(p + adv, pl - adv, s + 1, sl - 1, nocase);
}

static void test_random(void **state)
{
    static const char pchars[] = "ab*?[]^-\\A";
    static const char schars[] = "abAB-]^\\*";
    const char *env = getenv("SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("test_glob: SEED=%u\n", seed);
    srand(seed);
    char p[10], s[10];
    for (int iter = 0; iter < 200000; iter++) {
        size_t pl = (size_t)rand() % 9, sl = (size_t)rand() % 9;
        for (size_t i = 0; i < pl; i++)
            p[i] = pchars[rand() % (sizeof pchars - 1)];
        for (size_t i = 0; i < sl; i++)
            s[i] = rand() % 16 ? schars[rand() % (sizeof schars - 1)] : '\0';
        int nocase = rand() & 1;
        int want = ref(p, pl, s, sl, nocase), got = glob_match(p, pl, s, sl, nocase);
        if (want != got)
            fail_msg("pattern '%.*s' string '%.*s' nocase %d: got %d, want %d (SEED=%u)", (int)pl, p, (int)sl, s,
                     nocase, got, want, seed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_and_star), cmocka_unit_test(test_question), cmocka_unit_test(test_classes),
        cmocka_unit_test(test_escapes),          cmocka_unit_test(test_nocase),   cmocka_unit_test(test_binary),
        cmocka_unit_test(test_hostile),          cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
