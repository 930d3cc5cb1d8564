/* err.h: the project's error codes, generated from one X-macro list so that the
 * enum, the names and the messages can never drift apart (libuv's UV_ERRNO_MAP).
 *
 * Convention (libuv): functions return 0 on success and a negative value on
 * failure.  System errors are returned as -errno; project errors as ERR_xxx,
 * which are all below -4096 so they never collide with an errno value. */
#ifndef BASE_ERR_H
#define BASE_ERR_H

#define ERR_MAP(X)                                                          \
    X(NOMEM, "out of memory")                                               \
    X(AGAIN, "need more input")                                             \
    X(PROTO, "protocol error")                                              \
    X(WRONGTYPE, "Operation against a key holding the wrong kind of value") \
    X(NOTINT, "value is not an integer or out of range")                    \
    X(NOTFLOAT, "value is not a valid float")                               \
    X(OVERFLOW, "increment or decrement would overflow")                    \
    X(NOKEY, "no such key")                                                 \
    X(EXISTS, "already exists")                                             \
    X(RANGE, "value out of range")                                          \
    X(TOOBIG, "string exceeds maximum allowed size")                        \
    X(SYNTAX, "syntax error")                                               \
    X(OOM, "command not allowed when used memory > 'maxmemory'.")           \
    X(NAN, "increment would produce NaN or Infinity")                       \
    X(CONFIG, "invalid configuration")                                      \
    X(LIMIT, "limit exceeded")                                              \
    X(CORRUPT, "corrupt data")

enum err_code {
    ERR__BASE = -5000,
#define ERR_ENUM(name, msg) ERR_##name,
    ERR_MAP(ERR_ENUM)
#undef ERR_ENUM
    ERR__END
};

/* Name ("NOMEM") and message of a project code or of a -errno value. */
const char *err_name(int code);
const char *err_msg(int code);

#endif
