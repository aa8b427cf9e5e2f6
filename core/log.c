/* log.c - logfmt lines on stderr (see log.h). One fprintf per line so that
 * lines from concurrent threads do not interleave. Debug lines are printed
 * only when RWGATE_DEBUG is set in the environment (read per call; cheap);
 * RWGATE_LOG_LEVEL=warn|error hides the levels below (command-line tools
 * such as `rwgate test rules` set it so their report stays readable). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void rw_log(rw_log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (lvl == RW_LOG_DEBUG && !getenv("RWGATE_DEBUG"))
        return;
    const char *min = getenv("RWGATE_LOG_LEVEL");
    if (min && ((lvl < RW_LOG_WARN && strcmp(min, "warn") == 0) ||
                (lvl < RW_LOG_ERROR && strcmp(min, "error") == 0)))
        return;
    char msg[1024], esc[2100], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t j = 0;
    for (size_t i = 0; msg[i] && j + 2 < sizeof esc; i++) {
        if (msg[i] == '"' || msg[i] == '\\')
            esc[j++] = '\\';
        esc[j++] = msg[i] == '\n' ? ' ' : msg[i];
    }
    esc[j] = '\0';
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03ldZ", now.tv_nsec / 1000000);
    fprintf(stderr, "ts=%s level=%s msg=\"%s\"\n", ts, names[lvl], esc);
}
