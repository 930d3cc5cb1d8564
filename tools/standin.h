/* standin.h: what the benchmarks' C stand-ins (payout-standin, botapi-standin)
 * share: their command line, --port N [--bind ADDR] [--<secret> VALUE], and
 * an HTTP listener (protocol/http.c) on libuv's default loop, run until
 * SIGTERM or SIGINT. */
#ifndef TOOLS_STANDIN_H
#define TOOLS_STANDIN_H

struct http_server;

struct standin_args {
    long port;
    const char *bind;   /* default 127.0.0.1 */
    const char *secret; /* the value of the one extra option */
};

/* Parses argv into a; secret_opt names the extra option ("--key"), with
 * secret_default when absent.  0, or 2 (the exit status) after printing a
 * usage line. */
int standin_parse(int argc, char **argv, const char *name, const char *secret_opt, const char *secret_default,
                  struct standin_args *a);

/* Binds, lets routes() add the routes, prints "<name>: listening on
 * ADDR:PORT" (what a harness waits for), runs until a signal, and closes
 * the listener and the loop.  0, or 1 when it cannot bind. */
int standin_serve(const char *name, const struct standin_args *a, void (*routes)(struct http_server *srv));

#endif
