/* free_port.h: a loopback TCP port nobody listens on right now, for unit
 * tests that start a listener (the HTTP server, the HTTP client's peers) or
 * need a port that refuses connections.  Header-only: tests of any module
 * include it as "base/tests/free_port.h". */
#ifndef OBENTCHI_BASE_TESTS_FREE_PORT_H
#define OBENTCHI_BASE_TESTS_FREE_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

#endif
