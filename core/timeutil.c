/* timeutil.c - clocks and Prometheus time/duration parsing (see timeutil.h). */
#define _GNU_SOURCE
#include "timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t rw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rw_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const struct {
    const char *unit;
    int64_t ms;
} units[] = {
    {"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}, {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},            {"m", 60LL * 1000},            {"s", 1000},
    {"ms", 1},
};
#define NUNITS (sizeof units / sizeof units[0])

rw_rc rw_parse_duration(const char *s, size_t n, int64_t *ms, rw_err *err)
{
    size_t i = 0;
    int last = -1;
    int64_t total = 0;
    if (n == 0)
        return rw_err_set(err, RW_BADREQ, "empty duration string");
    while (i < n) {
        if (!isdigit((unsigned char)s[i]))
            return rw_err_set(err, RW_BADREQ, "not a valid duration string: \"%.*s\"", (int)n, s);
        int64_t v = 0;
        while (i < n && isdigit((unsigned char)s[i])) {
            int d = s[i++] - '0';
            if (v > (INT64_MAX - d) / 10)
                return rw_err_set(err, RW_BADREQ, "duration out of range: \"%.*s\"", (int)n, s);
            v = v * 10 + d;
        }
        int u = -1;
        /* longest unit first: "ms" before "m" */
        if (i + 1 < n && s[i] == 'm' && s[i + 1] == 's')
            u = 6;
        else if (i < n)
            for (int k = 0; k < 6; k++)
                if (s[i] == units[k].unit[0]) {
                    u = k;
                    break;
                }
        if (u < 0 || u <= last)
            return rw_err_set(err, RW_BADREQ, "not a valid duration string: \"%.*s\"", (int)n, s);
        i += strlen(units[u].unit);
        last = u;
        if (v > INT64_MAX / units[u].ms || total > INT64_MAX - v * units[u].ms)
            return rw_err_set(err, RW_BADREQ, "duration out of range: \"%.*s\"", (int)n, s);
        total += v * units[u].ms;
    }
    *ms = total;
    return RW_OK;
}

void rw_format_duration(int64_t ms, char *out, size_t cap)
{
    size_t len = 0;
    if (ms == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    if (ms < 0) {
        len += (size_t)snprintf(out, cap, "-");
        ms = -ms;
    }
    for (size_t k = 0; k < NUNITS && len < cap; k++) {
        int64_t v = ms / units[k].ms;
        if (v) {
            len += (size_t)snprintf(out + len, cap - len, "%lld%s", (long long)v, units[k].unit);
            ms -= v * units[k].ms;
        }
    }
}

rw_rc rw_parse_api_time(const char *s, int64_t *ms, rw_err *err)
{
    char *end;
    errno = 0;
    double f = strtod(s, &end);
    if (*s && *end == '\0' && errno == 0 && isfinite(f)) {
        if (f > 9.2e15 || f < -9.2e15)
            return rw_err_set(err, RW_BADREQ, "cannot parse \"%.64s\" to a valid timestamp", s);
        *ms = (int64_t)llround(f * 1000.0);
        return RW_OK;
    }
    /* RFC 3339: 2006-01-02T15:04:05[.frac](Z|+hh:mm) */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return rw_err_set(err, RW_BADREQ, "cannot parse \"%.64s\" to a valid timestamp", s);
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        int64_t scale = 100;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                frac_ms += (*p - '0') * scale;
            scale /= 10;
            digits++;
            p++;
        }
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return rw_err_set(err, RW_BADREQ, "cannot parse \"%.64s\" to a valid timestamp", s);
        off = sign * (hh * 3600 + mm * 60);
        p += 6;
    } else {
        return rw_err_set(err, RW_BADREQ, "cannot parse \"%.64s\" to a valid timestamp", s);
    }
    if (*p)
        return rw_err_set(err, RW_BADREQ, "cannot parse \"%.64s\" to a valid timestamp", s);
    int64_t secs = (int64_t)timegm(&tm) - off;
    *ms = secs * 1000 + frac_ms;
    return RW_OK;
}

rw_rc rw_parse_api_duration(const char *s, int64_t *ms, rw_err *err)
{
    char *end;
    errno = 0;
    double f = strtod(s, &end);
    if (*s && *end == '\0' && errno == 0) {
        if (!isfinite(f) || f > 9.2e15 || f < -9.2e15)
            return rw_err_set(err, RW_BADREQ, "cannot parse \"%.64s\" to a valid duration. It overflows int64", s);
        *ms = (int64_t)llround(f * 1000.0);
        return RW_OK;
    }
    if (rw_parse_duration(s, strlen(s), ms, NULL) == RW_OK)
        return RW_OK;
    return rw_err_set(err, RW_BADREQ, "cannot parse \"%.64s\" to a valid duration", s);
}
