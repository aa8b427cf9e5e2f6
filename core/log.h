/* log.h - line-oriented logging to stderr in logfmt:
 *   ts=2026-11-24T01:02:03.456Z level=info msg="shard 0 opened" */
#ifndef RW_LOG_H
#define RW_LOG_H

typedef enum { RW_LOG_DEBUG, RW_LOG_INFO, RW_LOG_WARN, RW_LOG_ERROR } rw_log_level;

void rw_log(rw_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define rw_info(...) rw_log(RW_LOG_INFO, __VA_ARGS__)
#define rw_warn(...) rw_log(RW_LOG_WARN, __VA_ARGS__)
#define rw_error(...) rw_log(RW_LOG_ERROR, __VA_ARGS__)

#endif
