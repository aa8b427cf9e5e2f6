/* app.h - rwgate as a running service: the wiring of store, write path,
 * query engine and API, and the operational endpoints (/-/ready, /-/healthy,
 * /-/reload, /metrics). main.c owns the process (flags, signals); tests can
 * run an app in-process. */
#ifndef RW_APP_H
#define RW_APP_H

#include "cmd/config.h"
#include "core/err.h"

typedef struct rw_app rw_app;

/* A configuration override from the command line: key of the config table
 * and its value as text. Overrides win over the file, at start and reload. */
typedef struct rw_app_flag {
    const char *key;
    const char *value;
} rw_app_flag;

/* Loads the configuration (embedded defaults, then config_path when not
 * NULL, then the flags), opens the store (recovering it), starts serving. */
rw_app *rw_app_start(const char *config_path, const rw_app_flag *flags, size_t nflags,
                     rw_err *err);
/* The same loading, without starting: for `rwgate check config`. */
rw_rc rw_app_load_config(const char *config_path, const rw_app_flag *flags, size_t nflags,
                         rw_config *out, rw_err *err);
int rw_app_port(const rw_app *app);
/* Re-reads the config file and applies what may change at run time without
 * a gap in ingestion; keys that cannot change at run time make it fail and
 * the old configuration stays. */
rw_rc rw_app_reload(rw_app *app, rw_err *err);
/* Stops accepting, finishes in-flight requests, persists, frees. */
void rw_app_stop(rw_app *app);

#endif
