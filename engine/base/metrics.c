/* metrics.c: Prometheus text exposition helpers and fixed-bucket histograms
 * (metrics.h).  Only formatting: no registry, no locking. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void metrics_family(struct buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s ", name);
    /* HELP text escapes backslash and newline */
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            buf_puts(out, "\\\\");
        else if (*p == '\n')
            buf_puts(out, "\\n");
        else
            buf_putc(out, *p);
    }
    buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void escape_value(struct buf *out, const char *v)
{
    for (; *v; v++) {
        switch (*v) {
        case '\\': buf_puts(out, "\\\\"); break;
        case '"': buf_puts(out, "\\\""); break;
        case '\n': buf_puts(out, "\\n"); break;
        default: buf_putc(out, *v);
        }
    }
}

/* name{a="x",b="y"[,extra_name="extra_value"]} */
static void write_name(struct buf *out, const char *name, const char *const *labels, const char *extra_name,
                       const char *extra_value)
{
    buf_puts(out, name);
    int n = 0;
    for (int i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        buf_putc(out, n++ ? ',' : '{');
        buf_puts(out, labels[i]);
        buf_puts(out, "=\"");
        escape_value(out, labels[i + 1]);
        buf_putc(out, '"');
    }
    if (extra_name) {
        buf_putc(out, n++ ? ',' : '{');
        buf_puts(out, extra_name);
        buf_puts(out, "=\"");
        escape_value(out, extra_value);
        buf_putc(out, '"');
    }
    if (n)
        buf_putc(out, '}');
}

static void write_double(struct buf *out, double v)
{
    if (isnan(v))
        buf_puts(out, "NaN");
    else if (isinf(v))
        buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 1e15)
        buf_printf(out, "%lld", (long long)v);
    else { /* the shortest of %.15g and %.17g that reads back the same */
        char t[40];
        snprintf(t, sizeof t, "%.15g", v);
        if (strtod(t, NULL) != v)
            snprintf(t, sizeof t, "%.17g", v);
        buf_puts(out, t);
    }
}

void metrics_sample(struct buf *out, const char *name, const char *const *labels, double value)
{
    write_name(out, name, labels, NULL, NULL);
    buf_putc(out, ' ');
    write_double(out, value);
    buf_putc(out, '\n');
}

void metrics_sample_int(struct buf *out, const char *name, const char *const *labels, int64_t value)
{
    write_name(out, name, labels, NULL, NULL);
    buf_printf(out, " %lld\n", (long long)value);
}

void metrics_hist_init(struct metrics_hist *h, const double *bounds, int nb)
{
    memset(h, 0, sizeof *h);
    if (nb > METRICS_MAX_BUCKETS)
        nb = METRICS_MAX_BUCKETS;
    h->nb = nb;
    memcpy(h->bounds, bounds, sizeof *bounds * (size_t)nb);
}

void metrics_hist_init_latency(struct metrics_hist *h)
{
    static const double b[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                               0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    metrics_hist_init(h, b, (int)(sizeof b / sizeof b[0]));
}

static int bucket_of(const struct metrics_hist *h, double v)
{
    int lo = 0, hi = h->nb; /* first bound >= v, or nb (+Inf) */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
    h->counts[bucket_of(h, v)]++;
    h->sum += v;
    h->count++;
}

void metrics_hist_observe_atomic(struct metrics_hist *h, double v)
{
    __atomic_fetch_add(&h->counts[bucket_of(h, v)], 1, __ATOMIC_RELAXED);
    /* the sum: a compare-and-swap loop on the double's bits */
    double old, want;
    __atomic_load(&h->sum, &old, __ATOMIC_RELAXED);
    do {
        want = old + v;
    } while (!__atomic_compare_exchange(&h->sum, &old, &want, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

void metrics_hist_write(struct buf *out, const char *name, const char *const *labels, const struct metrics_hist *h)
{
    size_t nlen = strlen(name);
    char bucket[256], le[32];
    snprintf(bucket, sizeof bucket, "%.*s_bucket", (int)(nlen > 200 ? 200 : nlen), name);
    uint64_t cum = 0;
    for (int i = 0; i <= h->nb; i++) {
        cum += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
        if (i < h->nb)
            snprintf(le, sizeof le, "%g", h->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        write_name(out, bucket, labels, "le", le);
        buf_printf(out, " %llu\n", (unsigned long long)cum);
    }
    /* _count is the +Inf bucket, so a racy scrape stays consistent */
    char sname[256];
    snprintf(sname, sizeof sname, "%.*s_sum", (int)(nlen > 200 ? 200 : nlen), name);
    double sum;
    __atomic_load(&h->sum, &sum, __ATOMIC_RELAXED);
    metrics_sample(out, sname, labels, sum);
    snprintf(sname, sizeof sname, "%.*s_count", (int)(nlen > 200 ? 200 : nlen), name);
    write_name(out, sname, labels, NULL, NULL);
    buf_printf(out, " %llu\n", (unsigned long long)cum);
}
