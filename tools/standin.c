/* standin.c: see standin.h. */
#include "standin.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "http.h"

int standin_parse(int argc, char **argv, const char *name, const char *secret_opt, const char *secret_default,
                  struct standin_args *a)
{
    *a = (struct standin_args){0, "127.0.0.1", secret_default};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            goto usage;
        if (!strcmp(argv[i], "--port")) {
            char *end;
            a->port = strtol(argv[++i], &end, 10);
            if (*end || a->port < 1 || a->port > 65535)
                goto usage;
        } else if (!strcmp(argv[i], "--bind")) {
            a->bind = argv[++i];
        } else if (!strcmp(argv[i], secret_opt)) {
            a->secret = argv[++i];
        } else {
            goto usage;
        }
    }
    if (a->port)
        return 0;
usage:
    fprintf(stderr, "usage: %s --port N [--bind ADDR] [%s VALUE]\n", name, secret_opt);
    return 2;
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

int standin_serve(const char *name, const struct standin_args *a, void (*routes)(struct http_server *srv))
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct http_config cfg = {.port = a->port,
                              .bind = (char *)a->bind,
                              .max_body = 1 << 20,
                              .max_header = 65536,
                              .idle_timeout = 300,
                              .max_conns = 10000};
    char err[256];
    struct http_server *srv = http_server_new(loop, &cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "%s: %s\n", name, err);
        return 1;
    }
    routes(srv);
    uv_signal_t term, intr;
    uv_signal_init(loop, &term);
    uv_signal_init(loop, &intr);
    uv_signal_start(&term, on_signal, SIGTERM);
    uv_signal_start(&intr, on_signal, SIGINT);
    printf("%s: listening on %s:%ld\n", name, a->bind, a->port);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    http_server_close(srv);
    uv_close((uv_handle_t *)&term, NULL);
    uv_close((uv_handle_t *)&intr, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    http_server_free(srv);
    uv_loop_close(loop);
    return 0;
}
