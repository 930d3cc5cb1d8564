/* cron.h: schedule expressions and their due times, for the scheduler
 * (sched.c) and the operator API (api.c).  Pure functions: no loop, no
 * engine, no global state; any thread.
 *
 * Expressions.  Standard five-field cron, "minute hour day-of-month month
 * day-of-week", each field a comma list of `*`, `N`, `N-M`, with an optional
 * `/step` (a star with /15, `1-30/2`, `5/10` = 5-max/10); months jan..dec and days
 * sun..sat by name, day of week 0..7 (0 and 7 are Sunday).  When both day
 * fields are restricted a day matches either (Vixie cron's rule); otherwise
 * both.  Macros @hourly, @daily (@midnight), @weekly, @monthly, @yearly
 * (@annually).  Besides cron: "every N s" (also "every Ns", "every N m",
 * "every N h"): due at every multiple of N seconds since the epoch, so every
 * node computes the same instants.
 *
 * Time zones.  Cron fields are read in the schedule's zone.  The zone is a
 * TZif file from the tz database (/usr/share/zoneinfo, or $TZDIR) parsed by
 * cron_tz_load(): transitions, then the file's POSIX TZ footer for instants
 * past the last one.  We do not use localtime_r() with setenv("TZ"): TZ is
 * process-global, and changing it under the RESP workers and the snapshot
 * thread (which log times) is a data race; a parsed zone is a plain value.
 *
 * Daylight-saving changes follow Vixie cron / cronie: a job at a fixed time
 * (minute and hour fields both not starting with '*') whose local time is
 * skipped (spring forward) runs at the instant of the change, and one whose
 * local time happens twice (fall back) runs once, at the first.  A job with
 * a wildcard minute or hour follows the actual clock: nothing in the skipped
 * hour, both passes of the repeated hour. */
#ifndef BOT_CRON_H
#define BOT_CRON_H

#include <stddef.h>
#include <stdint.h>

struct cron_spec {
    uint64_t minutes;      /* bit m for minute m (0..59) */
    uint32_t hours;        /* bit h (0..23) */
    uint32_t mdays;        /* bit d (1..31) */
    uint16_t months;       /* bit m (1..12) */
    uint8_t wdays;         /* bit d (0..6, Sunday = 0) */
    unsigned dom_star : 1; /* day-of-month field starts with '*' */
    unsigned dow_star : 1;
    unsigned fixed : 1;    /* minute and hour fields without '*': DST rules above */
    int64_t every_s;       /* > 0: "every N s" (the cron fields are unused) */
};

/* Parses text into *out.  0, or -1 with a message in err naming the field. */
int cron_parse(const char *text, struct cron_spec *out, char *err, size_t errlen);

struct cron_tz;

/* Loads a zone by tz database name ("UTC", "Europe/Berlin").  Returns a new
 * zone (free with cron_tz_free), or NULL with a message in err. */
struct cron_tz *cron_tz_load(const char *name, char *err, size_t errlen);
void cron_tz_free(struct cron_tz *tz);
const char *cron_tz_name(const struct cron_tz *tz);
/* Seconds east of UTC at instant t (Unix seconds). */
int cron_tz_offset(const struct cron_tz *tz, int64_t t);

/* The first due instant (Unix seconds) strictly after `after`, in zone tz
 * (NULL = UTC); -1 when none comes within ten years (e.g. "0 0 30 2 *"). */
int64_t cron_next(const struct cron_spec *s, const struct cron_tz *tz, int64_t after);
/* The latest due instant in (after, now], or -1 when none: what a scheduler
 * that slept through several ticks fires, once. */
int64_t cron_latest(const struct cron_spec *s, const struct cron_tz *tz, int64_t after, int64_t now);

#endif
