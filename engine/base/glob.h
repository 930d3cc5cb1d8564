/* glob.h: Redis's glob-style pattern matching (KEYS, SCAN MATCH, PSUBSCRIBE,
 * CONFIG GET).  Binary safe, which libc's fnmatch() is not: keys may hold NUL.
 * Supports * ? [abc] [^a-z] and backslash escapes, with Redis's semantics. */
#ifndef BASE_GLOB_H
#define BASE_GLOB_H

#include <stddef.h>

/* 1 when s[0..slen) matches pat[0..plen), else 0. */
int glob_match(const char *pat, size_t plen, const char *s, size_t slen, int nocase);

#endif
