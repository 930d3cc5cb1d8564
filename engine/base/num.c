/* num.c: see num.h. */
#include "num.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int num_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -1;
    if (n > 1 && s[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int num_parse_i64(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return -1;
    int neg = s[0] == '-';
    uint64_t v;
    if (neg && (n == 1 || s[1] == '0'))
        return -1;
    if (num_parse_u64(s + neg, n - neg, &v) < 0)
        return -1;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)v;
    }
    return 0;
}

int num_parse_double(const char *s, size_t n, long double *out)
{
    char tmp[512];
    if (n == 0 || n >= sizeof tmp || isspace((unsigned char)s[0]))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long double v = strtold(tmp, &end);
    /* As Redis's string2ld: the whole input is the number (a NUL inside it
     * must not end it early), and a result that overflowed to infinity or
     * underflowed to zero is refused; "inf" written as such is no ERANGE. */
    if (end != tmp + n || isnan(v) || (errno == ERANGE && (isinf(v) || v == 0)))
        return -1;
    *out = v;
    return 0;
}

size_t num_fmt_i64(char *dst, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        dst[len++] = '-';
    while (n)
        dst[len++] = tmp[--n];
    dst[len] = '\0';
    return len;
}

int num_fmt_ldouble(char *dst, size_t cap, long double v)
{
    if (isinf(v) || isnan(v))
        return -1;
    int n = snprintf(dst, cap, "%.17Lf", v);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    if (strchr(dst, '.')) {
        while (n > 0 && dst[n - 1] == '0')
            n--;
        if (n > 0 && dst[n - 1] == '.')
            n--;
        dst[n] = '\0';
    }
    if (n == 2 && dst[0] == '-' && dst[1] == '0')
        dst[0] = '0', dst[1] = '\0', n = 1;
    return n;
}

size_t num_fmt_double(char *dst, size_t cap, double v)
{
    if (isinf(v))
        return (size_t)snprintf(dst, cap, "%s", v > 0 ? "inf" : "-inf");
    /* Shortest representation that reads back exactly, as Redis 7 does. */
    for (int prec = 1; prec <= 17; prec++) {
        int n = snprintf(dst, cap, "%.*g", prec, v);
        if (strtod(dst, NULL) != v)
            continue;
        /* Those digits, in the notation %.17g would choose: 30 is "30",
         * not "3e+01" (%g goes exponential once the exponent reaches the
         * precision). */
        char e[40];
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        int exp10 = atoi(strchr(e, 'e') + 1);
        if (exp10 >= prec && exp10 < 17)
            n = snprintf(dst, cap, "%.*g", exp10 + 1, v);
        return (size_t)n;
    }
    return (size_t)snprintf(dst, cap, "%.17g", v);
}

int num_parse_memory(const char *s, int64_t *out)
{
    size_t n = strlen(s), digits = 0;
    int64_t mul = 1;
    while (digits < n && (isdigit((unsigned char)s[digits]) || (digits == 0 && s[0] == '-')))
        digits++;
    const char *u = s + digits;
    if (!*u)
        mul = 1;
    else if (!strcasecmp(u, "b"))
        mul = 1;
    else if (!strcasecmp(u, "k"))
        mul = 1000;
    else if (!strcasecmp(u, "kb"))
        mul = 1024;
    else if (!strcasecmp(u, "m"))
        mul = 1000 * 1000;
    else if (!strcasecmp(u, "mb"))
        mul = 1024 * 1024;
    else if (!strcasecmp(u, "g"))
        mul = 1000LL * 1000 * 1000;
    else if (!strcasecmp(u, "gb"))
        mul = 1024LL * 1024 * 1024;
    else
        return -1;
    int64_t v;
    if (num_parse_i64(s, digits, &v) < 0)
        return -1;
    if (v != 0 && (v > INT64_MAX / mul || v < INT64_MIN / mul))
        return -1;
    *out = v * mul;
    return 0;
}
