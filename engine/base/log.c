/* log.c: see log.h. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static enum log_level level = LOG_NOTICE;
static enum log_format format = LOG_FMT_LOGFMT;
/* getpid() is a system call (glibc caches nothing): taken once, and again
 * in a forked child (the fork snapshot writer logs too). */
static _Atomic int log_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static void pid_forget(void) { atomic_store_explicit(&log_pid, 0, memory_order_relaxed); }
static void pid_hook(void) { pthread_atfork(NULL, NULL, pid_forget); }
static int my_pid(void)
{
    pthread_once(&pid_once, pid_hook);
    int pid = atomic_load_explicit(&log_pid, memory_order_relaxed);
    if (!pid) {
        pid = (int)getpid();
        atomic_store_explicit(&log_pid, pid, memory_order_relaxed);
    }
    return pid;
}
static const char *const level_names[] = {"debug", "verbose", "info", "warning"};
static const char *const conf_names[] = {"debug", "verbose", "notice", "warning"};

int log_open(const char *path)
{
    if (!path || !*path) {
        log_fd = 2;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void log_set_level(enum log_level lvl) { level = lvl; }
void log_set_format(enum log_format fmt) { format = fmt; }
enum log_level log_get_level(void) { return level; }

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(name, conf_names[i]))
            return i;
    return -1;
}

/* Appends s to out as a JSON string body (no quotes), escaping as needed. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out[o++] = '\\', out[o++] = (char)c;
        else if (c < 0x20)
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

void log_write(enum log_level lvl, const char *msg, const char *fields_fmt, ...)
{
    if (lvl < level)
        return;
    char fields[1536], line[4096], ts[40], emsg[512], efields[2048];
    va_list ap;
    va_start(ap, fields_fmt);
    vsnprintf(fields, sizeof fields, fields_fmt, ap);
    va_end(ap);

    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof ts - tl, ".%03ldZ", now.tv_nsec / 1000000);

    int n;
    json_escape(emsg, sizeof emsg, msg);
    if (format == LOG_FMT_JSON) {
        json_escape(efields, sizeof efields, fields);
        n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"pid\":%d,\"msg\":\"%s\"%s%s%s}\n", ts,
                     level_names[lvl], my_pid(), emsg, *fields ? ",\"fields\":\"" : "", efields,
                     *fields ? "\"" : "");
    } else {
        n = snprintf(line, sizeof line, "time=%s level=%s pid=%d msg=\"%s\"%s%s\n", ts, level_names[lvl],
                     my_pid(), emsg, *fields ? " " : "", fields);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;
}
