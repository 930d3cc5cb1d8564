/* num.h: exact conversions between numbers and their decimal text, with Redis's
 * rules: no leading '+', no spaces, no leading zeros, fits in int64.  Used for
 * command arguments and stored strings; the wire parser has its own. */
#ifndef BASE_NUM_H
#define BASE_NUM_H

#include <stddef.h>
#include <stdint.h>

/* 0 and *out set when s[0..n) is a canonical int64, else -1 (out untouched). */
int num_parse_i64(const char *s, size_t n, int64_t *out);
/* Same for a non-negative integer that fits uint64. */
int num_parse_u64(const char *s, size_t n, uint64_t *out);
/* Parses a double as strtold would (inf allowed, "nan" and spaces refused). */
int num_parse_double(const char *s, size_t n, long double *out);
/* Writes v in decimal to dst (at least 21 bytes); returns the length. */
size_t num_fmt_i64(char *dst, int64_t v);
/* Redis's %.17Lg style for INCRBYFLOAT: shortest exact form, no exponent,
 * trailing zeros dropped.  dst holds at least 5120 bytes... in practice 64 is
 * enough for humane values; longer ones are refused with -1. */
int num_fmt_ldouble(char *dst, size_t cap, long double v);
/* Shortest round-trip form of a double ("%.17g" trimmed), "inf", "-inf". */
size_t num_fmt_double(char *dst, size_t cap, double v);
/* Memory sizes as redis.conf writes them: 100, 1k, 1kb, 2mb, 3gb (k = 1000,
 * kb = 1024). */
int num_parse_memory(const char *s, int64_t *out);

#endif
