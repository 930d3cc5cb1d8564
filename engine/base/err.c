/* err.c: names and messages for err.h's codes. */
#include "err.h"

#include <string.h>

#define ERR_NAME(name, msg) #name,
#define ERR_MSG(name, msg) msg,
static const char *const names[] = {ERR_MAP(ERR_NAME)};
static const char *const msgs[] = {ERR_MAP(ERR_MSG)};

static int in_map(int code) { return code > ERR__BASE && code < ERR__END; }

const char *err_name(int code)
{
    return in_map(code) ? names[code - ERR__BASE - 1] : "ERRNO";
}

const char *err_msg(int code)
{
    if (in_map(code))
        return msgs[code - ERR__BASE - 1];
    return strerror(code < 0 ? -code : code);
}
