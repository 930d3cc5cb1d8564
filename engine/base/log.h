/* log.h: one line per event, with time, level and fields, to stderr or a file.
 *
 *   log_info("listening", "addr=%s port=%d", addr, port);
 *
 * writes (logfmt, the default)
 *   time=2026-11-25T18:40:00.123Z level=info msg="listening" addr=127.0.0.1 port=6379
 * or with log-format json
 *   {"time":"...","level":"info","msg":"listening","fields":"addr=127.0.0.1 port=6379"}
 *
 * Thread safe: each line is formatted into a buffer and written with one
 * write(2).  Never pass secrets as fields. */
#ifndef BASE_LOG_H
#define BASE_LOG_H

enum log_level { LOG_DEBUG, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING };
enum log_format { LOG_FMT_LOGFMT, LOG_FMT_JSON };

/* path NULL or "" = stderr.  Returns 0 or -errno. */
int log_open(const char *path);
void log_set_level(enum log_level lvl);
void log_set_format(enum log_format fmt);
enum log_level log_get_level(void);
/* Redis's names: debug, verbose, notice, warning.  -1 when unknown. */
int log_level_parse(const char *name);

void log_write(enum log_level lvl, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_verbose(msg, ...) log_write(LOG_VERBOSE, msg, __VA_ARGS__)
#define log_info(msg, ...) log_write(LOG_NOTICE, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARNING, msg, __VA_ARGS__)

#endif
