/* glob.c: see glob.h.  Backtracking is bounded by remembering only the last
 * star (the classic two-pointer algorithm), so hostile patterns such as
 * "a*a*a*a*b" stay linear-ish instead of exponential. */
#include "glob.h"

#include <ctype.h>

static int fold(int c, int nocase) { return nocase ? tolower(c) : c; }

/* Matches one class "[...]" at pat (pat[0] == '['); sets *adv to its length. */
static int class_match(const char *pat, size_t plen, int c, int nocase, size_t *adv)
{
    size_t i = 1;
    int neg = 0, match = 0;
    if (i < plen && pat[i] == '^')
        neg = 1, i++;
    while (i < plen && pat[i] != ']') {
        if (pat[i] == '\\' && i + 1 < plen) {
            i++;
            if (fold((unsigned char)pat[i], nocase) == fold(c, nocase))
                match = 1;
        } else if (i + 2 < plen && pat[i + 1] == '-' && pat[i + 2] != ']') {
            int lo = fold((unsigned char)pat[i], nocase), hi = fold((unsigned char)pat[i + 2], nocase);
            int x = fold(c, nocase);
            if (lo > hi) {
                int t = lo;
                lo = hi, hi = t;
            }
            if (x >= lo && x <= hi)
                match = 1;
            i += 2;
        } else if (fold((unsigned char)pat[i], nocase) == fold(c, nocase)) {
            match = 1;
        }
        i++;
    }
    *adv = i < plen ? i + 1 : i; /* an unterminated class runs to the end, as in Redis */
    return neg ? !match : match;
}

int glob_match(const char *pat, size_t plen, const char *s, size_t slen, int nocase)
{
    size_t p = 0, i = 0, star_p = (size_t)-1, star_i = 0;
    while (i < slen) {
        if (p < plen) {
            size_t adv = 1;
            int ok = 0;
            switch (pat[p]) {
            case '*':
                while (p < plen && pat[p] == '*')
                    p++;
                if (p == plen)
                    return 1;
                star_p = p, star_i = i;
                continue;
            case '?':
                ok = 1;
                break;
            case '[':
                ok = class_match(pat + p, plen - p, (unsigned char)s[i], nocase, &adv);
                break;
            case '\\':
                if (p + 1 < plen)
                    p++;
                /* fall through */
            default:
                ok = fold((unsigned char)pat[p], nocase) == fold((unsigned char)s[i], nocase);
            }
            if (ok) {
                p += adv, i++;
                continue;
            }
        }
        if (star_p == (size_t)-1)
            return 0;
        p = star_p, i = ++star_i;
    }
    while (p < plen && pat[p] == '*')
        p++;
    return p == plen;
}
