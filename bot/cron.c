/* cron.c: cron expressions, TZif zones and due-time computation (cron.h).
 *
 * Due times are found in two steps: a search over naive local wall-clock
 * minutes (broken down with gmtime_r/timegm, which touch no global zone)
 * that skips whole months, days and hours that cannot match; then each
 * local candidate is mapped to the UTC instants that show it in the zone
 * (none in a spring-forward gap, two in a fall-back overlap) and the DST
 * rules of cron.h pick among them.  Zones are read from TZif files
 * (RFC 8536) and their POSIX TZ footer; not for leap-second ("right/")
 * zones, which are refused. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/alloc.h"
#include "cron.h"

/* ---- parsing ----------------------------------------------------------- */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field_def {
    const char *what;
    int lo, hi;
    const char *const *names; /* names[i] stands for name_base + i */
    int nnames, name_base;
};

static const struct field_def fields[5] = {
    {"minute", 0, 59, NULL, 0, 0},
    {"hour", 0, 23, NULL, 0, 0},
    {"day of month", 1, 31, NULL, 0, 0},
    {"month", 1, 12, month_names, 12, 1},
    {"day of week", 0, 7, day_names, 7, 0},
};

/* A number or a name at *p; advances *p.  0 or -1. */
static int parse_value(const struct field_def *f, const char **p, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v < 1000)
            v = v * 10 + (*s++ - '0');
        *p = s;
        *out = (int)v;
        return 0;
    }
    for (int i = 0; i < f->nnames; i++)
        if (!strncasecmp(s, f->names[i], 3) && !isalpha((unsigned char)s[3])) {
            *p = s + 3;
            *out = f->name_base + i;
            return 0;
        }
    return -1;
}

/* One field (text up to the end of the NUL-terminated token) into bits. */
static int parse_field(const struct field_def *f, const char *tok, uint64_t *bits, char *err, size_t errlen)
{
    uint64_t b = 0;
    const char *p = tok;
    for (;;) {
        int lo = f->lo, hi = f->hi, step = 1;
        if (*p == '*') {
            p++;
        } else {
            if (parse_value(f, &p, &lo) < 0)
                goto bad;
            hi = lo;
            if (*p == '-') {
                p++;
                if (parse_value(f, &p, &hi) < 0)
                    goto bad;
            } else if (*p == '/') {
                hi = f->hi; /* "5/10": from 5 to the end */
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p) || parse_value(f, &p, &step) < 0 || step < 1)
                goto bad;
            if (step > f->hi) {
                snprintf(err, errlen, "%s field '%s': step must be 1..%d", f->what, tok, f->hi);
                return -1;
            }
        }
        if (lo < f->lo || hi > f->hi || lo > hi) {
            snprintf(err, errlen, "%s field '%s': values must be %d..%d, low to high", f->what, tok, f->lo, f->hi);
            return -1;
        }
        for (int v = lo; v <= hi; v += step)
            b |= 1ULL << v;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p)
            goto bad;
        break;
    }
    *bits = b;
    return 0;
bad:
    snprintf(err, errlen, "%s field '%s' is not valid", f->what, tok);
    return -1;
}

static int parse_every(const char *s, struct cron_spec *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    int64_t unit = 0;
    if (!*end || !strcasecmp(end, "s") || !strcasecmp(end, "sec") || !strcasecmp(end, "seconds"))
        unit = 1;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "min") || !strcasecmp(end, "minutes"))
        unit = 60;
    else if (!strcasecmp(end, "h") || !strcasecmp(end, "hours"))
        unit = 3600;
    if (end == s || errno || n < 1 || !unit || n > 366LL * 86400 / unit) {
        snprintf(err, errlen, "'every %s': expected 'every N s' with N from 1 to %d seconds", s, 366 * 86400);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->every_s = n * unit;
    return 0;
}

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int cron_parse(const char *text, struct cron_spec *out, char *err, size_t errlen)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (!strncasecmp(text, "every", 5) && (text[5] == ' ' || isdigit((unsigned char)text[5])))
        return parse_every(text + 5 + (text[5] == ' '), out, err, errlen);
    if (*text == '@') {
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (!strcasecmp(text, macros[i].name))
                return cron_parse(macros[i].expr, out, err, errlen);
        snprintf(err, errlen, "unknown macro '%s'", text);
        return -1;
    }
    char tok[5][64];
    int n = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, " \t");
        if (n == 5 || len >= sizeof tok[0]) {
            snprintf(err, errlen, "'%s': a cron expression has five fields", text);
            return -1;
        }
        memcpy(tok[n], p, len);
        tok[n++][len] = '\0';
        p += len;
    }
    if (n != 5) {
        snprintf(err, errlen, "'%s': a cron expression has five fields (minute hour day month weekday)", text);
        return -1;
    }
    uint64_t bits[5];
    for (int i = 0; i < 5; i++)
        if (parse_field(&fields[i], tok[i], &bits[i], err, errlen) < 0)
            return -1;
    struct cron_spec s = {0};
    s.minutes = bits[0];
    s.hours = (uint32_t)bits[1];
    s.mdays = (uint32_t)bits[2];
    s.months = (uint16_t)bits[3];
    s.wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday */
    s.dom_star = tok[2][0] == '*';
    s.dow_star = tok[4][0] == '*';
    s.fixed = tok[0][0] != '*' && tok[1][0] != '*';
    *out = s;
    return 0;
}

/* ---- zones --------------------------------------------------------------- */

/* A POSIX TZ rule date: Jn (julian, no Feb 29), n (0-based, with it) or
 * Mm.w.d; secs = local time of day of the change. */
struct tz_date {
    char kind; /* 'J', 'D', 'M' */
    int n, m, w, d;
    int32_t secs;
};

struct cron_tz {
    char name[64];
    int64_t *trans;    /* transition instants, ascending */
    uint8_t *idx;      /* type of each transition */
    int32_t *types;    /* utoff of each type */
    int ntrans, ntypes;
    /* footer rule (for instants past the last transition) */
    int has_rule, has_dst;
    int32_t std_off, dst_off;
    struct tz_date start, end;
};

static int64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    if (n == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

/* POSIX TZ string pieces: name, offset, date. */
static const char *tzs_name(const char *p)
{
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q ? q + 1 : NULL;
    }
    const char *s = p;
    while (isalpha((unsigned char)*p))
        p++;
    return p - s >= 3 ? p : NULL;
}

static const char *tzs_time(const char *p, int32_t *secs)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p))
        return NULL;
    int32_t v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i && *p != ':')
            break;
        if (i)
            p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p))
            v[i] = v[i] * 10 + (*p++ - '0');
    }
    *secs = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    return p;
}

static const char *tzs_num(const char *p, int *out)
{
    if (!isdigit((unsigned char)*p))
        return NULL;
    int v = 0;
    while (isdigit((unsigned char)*p))
        v = v * 10 + (*p++ - '0');
    *out = v;
    return p;
}

static const char *tzs_date(const char *p, struct tz_date *d)
{
    memset(d, 0, sizeof *d);
    d->secs = 7200;
    if (*p == 'J') {
        d->kind = 'J';
        p = tzs_num(p + 1, &d->n);
    } else if (*p == 'M') {
        d->kind = 'M';
        if (!(p = tzs_num(p + 1, &d->m)) || *p++ != '.' || !(p = tzs_num(p, &d->w)) || *p++ != '.' ||
            !(p = tzs_num(p, &d->d)))
            return NULL;
    } else {
        d->kind = 'D';
        p = tzs_num(p, &d->n);
    }
    if (p && *p == '/')
        p = tzs_time(p + 1, &d->secs);
    return p;
}

static int parse_footer(struct cron_tz *tz, const char *s)
{
    const char *p = tzs_name(s);
    int32_t off;
    if (!p || !(p = tzs_time(p, &off)))
        return -1;
    tz->std_off = -off; /* POSIX offsets are west of Greenwich */
    tz->has_rule = 1;
    if (!*p)
        return 0;
    if (!(p = tzs_name(p)))
        return -1;
    tz->has_dst = 1;
    tz->dst_off = tz->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = tzs_time(p, &off)))
            return -1;
        tz->dst_off = -off;
    }
    if (!*p) /* no rule: POSIX's default is the US rule */
        p = ",M3.2.0,M11.1.0";
    if (*p++ != ',' || !(p = tzs_date(p, &tz->start)) || *p++ != ',' || !(p = tzs_date(p, &tz->end)))
        return -1;
    return *p ? -1 : 0;
}

static int load_fail(struct cron_tz *tz, char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "time zone '%s': %s", tz->name, why);
    cron_tz_free(tz);
    return -1;
}

/* Reads the TZif data (version 2+: the 64-bit block and the footer). */
static int parse_tzif(struct cron_tz *tz, const unsigned char *d, size_t n, char *err, size_t errlen)
{
    if (n < 44 || memcmp(d, "TZif", 4))
        return load_fail(tz, err, errlen, "not a TZif file");
    int version = d[4];
    int64_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = be(d + 20 + 4 * i, 4);
    /* c: isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
    size_t v1 = (size_t)(c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0]);
    int tsize = 4;
    const unsigned char *h = d;
    if (version >= '2') {
        if (44 + v1 + 44 > n)
            return load_fail(tz, err, errlen, "truncated");
        h = d + 44 + v1;
        for (int i = 0; i < 6; i++)
            c[i] = be(h + 20 + 4 * i, 4);
        tsize = 8;
    }
    if (c[2])
        return load_fail(tz, err, errlen, "leap-second zones are not supported");
    if (c[4] < 1 || c[4] > 255 || c[3] < 0 || c[3] > 100000)
        return load_fail(tz, err, errlen, "bad counts");
    size_t body = (size_t)(c[3] * (tsize + 1) + c[4] * 6 + c[5] + c[1] + c[0]);
    const unsigned char *p = h + 44;
    if ((size_t)(p - d) + body > n)
        return load_fail(tz, err, errlen, "truncated");
    tz->ntrans = (int)c[3];
    tz->ntypes = (int)c[4];
    tz->trans = xmalloc(sizeof *tz->trans * (size_t)(tz->ntrans + 1));
    tz->idx = xmalloc((size_t)tz->ntrans + 1);
    tz->types = xmalloc(sizeof *tz->types * (size_t)tz->ntypes);
    for (int i = 0; i < tz->ntrans; i++, p += tsize)
        tz->trans[i] = be(p, tsize);
    for (int i = 0; i < tz->ntrans; i++, p++) {
        if (*p >= tz->ntypes)
            return load_fail(tz, err, errlen, "bad transition type");
        tz->idx[i] = *p;
    }
    for (int i = 0; i < tz->ntypes; i++, p += 6)
        tz->types[i] = (int32_t)be(p, 4);
    p += c[5] + c[1] + c[0];
    if (version >= '2' && (size_t)(p - d) < n && *p == '\n') {
        const char *f = (const char *)p + 1;
        const char *e = memchr(f, '\n', n - (size_t)(p + 1 - d));
        if (e && e > f) {
            char foot[128];
            size_t fl = (size_t)(e - f) < sizeof foot - 1 ? (size_t)(e - f) : sizeof foot - 1;
            memcpy(foot, f, fl);
            foot[fl] = '\0';
            if (parse_footer(tz, foot) < 0)
                return load_fail(tz, err, errlen, "cannot read its TZ rule");
        }
    }
    return 0;
}

struct cron_tz *cron_tz_load(const char *name, char *err, size_t errlen)
{
    struct cron_tz *tz = xcalloc(1, sizeof *tz);
    snprintf(tz->name, sizeof tz->name, "%s", name ? name : "");
    if (!name || !*name || strlen(name) >= sizeof tz->name || name[0] == '/' || strstr(name, "..")) {
        load_fail(tz, err, errlen, "not a time zone name (e.g. UTC, Europe/Berlin)");
        return NULL;
    }
    if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC") || !strcmp(name, "GMT")) {
        tz->has_rule = 1; /* no transitions, offset 0 */
        return tz;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        load_fail(tz, err, errlen, "unknown (not in the tz database)");
        return NULL;
    }
    unsigned char *d = xmalloc(1 << 20);
    size_t n = fread(d, 1, 1 << 20, f);
    fclose(f);
    int rc = parse_tzif(tz, d, n, err, errlen);
    xfree(d);
    return rc < 0 ? NULL : tz;
}

void cron_tz_free(struct cron_tz *tz)
{
    if (!tz)
        return;
    xfree(tz->trans);
    xfree(tz->idx);
    xfree(tz->types);
    xfree(tz);
}

const char *cron_tz_name(const struct cron_tz *tz) { return tz ? tz->name : "UTC"; }

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int64_t days_from_civil(int64_t y, int m, int d)
{
    struct tm tm = {.tm_year = (int)(y - 1900), .tm_mon = m - 1, .tm_mday = d};
    return (int64_t)timegm(&tm) / 86400;
}

/* The instant (UTC) when rule date r happens in year y, local offset off. */
static int64_t rule_instant(const struct tz_date *r, int64_t y, int32_t off)
{
    int64_t day;
    if (r->kind == 'J')
        day = days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60);
    else if (r->kind == 'D')
        day = days_from_civil(y, 1, 1) + r->n;
    else {
        int64_t first = days_from_civil(y, r->m, 1);
        int wd_first = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        day = first + (r->d - wd_first + 7) % 7 + (int64_t)(r->w - 1) * 7;
        int64_t next = r->m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, r->m + 1, 1);
        while (day >= next)
            day -= 7;
    }
    return day * 86400 + r->secs - off;
}

static int rule_offset(const struct cron_tz *tz, int64_t t)
{
    if (!tz->has_dst)
        return tz->std_off;
    time_t lt = (time_t)(t + tz->std_off);
    struct tm tm;
    gmtime_r(&lt, &tm);
    int64_t y = tm.tm_year + 1900;
    int64_t s = rule_instant(&tz->start, y, tz->std_off), e = rule_instant(&tz->end, y, tz->dst_off);
    int dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return dst ? tz->dst_off : tz->std_off;
}

int cron_tz_offset(const struct cron_tz *tz, int64_t t)
{
    if (!tz)
        return 0;
    if (tz->ntrans == 0 || t < tz->trans[0])
        return tz->ntypes ? tz->types[0] : rule_offset(tz, t);
    if (t >= tz->trans[tz->ntrans - 1] && tz->has_rule)
        return rule_offset(tz, t);
    int lo = 0, hi = tz->ntrans - 1; /* the last transition <= t */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return tz->types[tz->idx[lo]];
}

/* ---- due times ------------------------------------------------------------- */

static int day_matches(const struct cron_spec *s, const struct tm *tm)
{
    int dom = (s->mdays >> tm->tm_mday) & 1, dow = (s->wdays >> tm->tm_wday) & 1;
    if (!s->dom_star && !s->dow_star)
        return dom || dow;
    return dom && dow;
}

/* The first naive local time >= l (minute-aligned) whose fields match, or
 * -1 past `limit`. */
static int64_t next_local(const struct cron_spec *s, int64_t l, int64_t limit)
{
    int64_t r = ((l % 60) + 60) % 60;
    if (r)
        l += 60 - r;
    time_t tt = (time_t)l;
    struct tm tm;
    gmtime_r(&tt, &tm);
    tm.tm_sec = 0;
    for (int guard = 0; guard < 200000; guard++) {
        int64_t now = (int64_t)timegm(&tm); /* normalises tm */
        if (now > limit)
            return -1;
        if (!((s->months >> (tm.tm_mon + 1)) & 1)) {
            tm.tm_mon++, tm.tm_mday = 1, tm.tm_hour = 0, tm.tm_min = 0;
        } else if (!day_matches(s, &tm)) {
            tm.tm_mday++, tm.tm_hour = 0, tm.tm_min = 0;
        } else if (!((s->hours >> tm.tm_hour) & 1)) {
            tm.tm_hour++, tm.tm_min = 0;
        } else if (!((s->minutes >> tm.tm_min) & 1)) {
            tm.tm_min++;
        } else {
            return now;
        }
    }
    return -1;
}

/* The first instant t > lo... with offset(t) != o_before, in (lo, hi]. */
static int64_t find_change(const struct cron_tz *tz, int64_t lo, int64_t hi, int o_before)
{
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cron_tz_offset(tz, mid) == o_before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* The instants showing local time l, by the rules of cron.h, into out
 * (ascending); returns how many (0..2). */
static int resolve(const struct cron_spec *s, const struct cron_tz *tz, int64_t l, int64_t out[2])
{
    int cand[3] = {cron_tz_offset(tz, l - 86400), cron_tz_offset(tz, l), cron_tz_offset(tz, l + 86400)};
    int n = 0;
    for (int i = 0; i < 3; i++) {
        int64_t t = l - cand[i];
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= out[j] == t;
        if (!dup && n < 2 && cron_tz_offset(tz, t) == cand[i])
            out[n++] = t;
    }
    if (n == 2 && out[0] > out[1]) {
        int64_t x = out[0];
        out[0] = out[1], out[1] = x;
    }
    if (!s->fixed)
        return n;
    if (n == 2) /* repeated local time: the first pass only */
        return 1;
    if (n == 0 && cand[2] > cand[0]) { /* skipped: at the change */
        out[0] = find_change(tz, l - cand[2], l - cand[0], cand[0]);
        return 1;
    }
    return n;
}

int64_t cron_next(const struct cron_spec *s, const struct cron_tz *tz, int64_t after)
{
    if (s->every_s > 0) {
        int64_t q = after / s->every_s - (after % s->every_s < 0);
        return (q + 1) * s->every_s;
    }
    int off_a = cron_tz_offset(tz, after);
    int64_t limit = after + 10LL * 366 * 86400;
    int64_t best = -1;
    /* Start 3 h early: near a fall-back change a later instant may show an
     * earlier local time. */
    int64_t l = next_local(s, after + off_a - 3 * 3600, limit);
    while (l >= 0) {
        if (best >= 0) {
            int hi = cron_tz_offset(tz, best);
            hi = hi > off_a ? hi : off_a;
            if (l - hi > best)
                break;
        }
        int64_t t[2];
        int n = resolve(s, tz, l, t);
        for (int i = 0; i < n; i++)
            if (t[i] > after && (best < 0 || t[i] < best))
                best = t[i];
        l = next_local(s, l + 60, limit);
    }
    return best;
}

int64_t cron_latest(const struct cron_spec *s, const struct cron_tz *tz, int64_t after, int64_t now)
{
    if (s->every_s > 0) {
        int64_t d = now / s->every_s * s->every_s - (now % s->every_s < 0 ? s->every_s : 0);
        return d > after ? d : -1;
    }
    /* Look back over growing windows so that a minutely job that slept a
     * year does not walk every minute of it. */
    static const int64_t windows[] = {60, 3600, 86400, 32 * 86400, 367 * 86400, 0};
    for (int i = 0;; i++) {
        int64_t from = windows[i] && now - windows[i] > after ? now - windows[i] : after;
        int64_t d = cron_next(s, tz, from);
        if (d >= 0 && d <= now) {
            for (int64_t n2; (n2 = cron_next(s, tz, d)) >= 0 && n2 <= now;)
                d = n2;
            return d;
        }
        if (from == after)
            return -1;
    }
}
