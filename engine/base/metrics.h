/* metrics.h: Prometheus text exposition (version 0.0.4) helpers and a
 * fixed-bucket histogram.  No registry: each module writes its own families
 * into the scrape through a collector (bot/app.h: app_add_collector) or the
 * server's INFO-backed collector; these helpers keep the format right
 * (# HELP and # TYPE before a family's samples, label values escaped,
 * cumulative buckets ending in +Inf, then _sum and _count).
 *
 * Histograms: observe from one thread (the owner's) or with atomics as noted;
 * a scrape reads them racily, which Prometheus tolerates. */
#ifndef BASE_METRICS_H
#define BASE_METRICS_H

#include <stdint.h>

#include "buf.h"

/* "# HELP name help\n# TYPE name type\n"; type: counter, gauge, histogram. */
void metrics_family(struct buf *out, const char *name, const char *type, const char *help);
/* One sample: name{labels} value.  labels: NULL, or alternating names and
 * values terminated by NULL ("method", "GET", "status", "200", NULL); values
 * are escaped (backslash, quote, newline). */
void metrics_sample(struct buf *out, const char *name, const char *const *labels, double value);
void metrics_sample_int(struct buf *out, const char *name, const char *const *labels, int64_t value);

#define METRICS_MAX_BUCKETS 16
struct metrics_hist {
    int nb;
    double bounds[METRICS_MAX_BUCKETS];   /* upper bounds, ascending */
    uint64_t counts[METRICS_MAX_BUCKETS + 1]; /* per bucket (not cumulative); last = +Inf */
    double sum;
    uint64_t count;
};
/* Latency buckets in seconds: 0.0001 .. 10. */
void metrics_hist_init_latency(struct metrics_hist *h);
void metrics_hist_init(struct metrics_hist *h, const double *bounds, int nb);
void metrics_hist_observe(struct metrics_hist *h, double v);
/* Thread-safe observe (relaxed atomics) for histograms fed by several threads. */
void metrics_hist_observe_atomic(struct metrics_hist *h, double v);
/* Writes name_bucket{labels,le=...}, name_sum, name_count (no HELP/TYPE). */
void metrics_hist_write(struct buf *out, const char *name, const char *const *labels, const struct metrics_hist *h);

#endif
