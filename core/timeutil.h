/* timeutil.h - clocks and the time/duration syntaxes of Prometheus. Times are
 * int64 milliseconds since the epoch throughout rwgate. */
#ifndef RW_TIMEUTIL_H
#define RW_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

int64_t rw_now_ms(void);
/* Monotonic clock in nanoseconds, for measuring durations. */
int64_t rw_mono_ns(void);

/* Prometheus duration: one or more <number><unit> with units y w d h m s ms
 * in that order ("1h30m", "90s", "2w"); no sign, no fractions. */
rw_rc rw_parse_duration(const char *s, size_t n, int64_t *ms, rw_err *err);
/* Formats like Prometheus ("1h30m", "0s"). */
void rw_format_duration(int64_t ms, char *out, size_t cap);

/* API time parameter: float seconds since the epoch or RFC 3339. */
rw_rc rw_parse_api_time(const char *s, int64_t *ms, rw_err *err);
/* API duration parameter (step, timeout, lookback): a Prometheus duration or
 * float seconds. */
rw_rc rw_parse_api_duration(const char *s, int64_t *ms, rw_err *err);

#endif
