/* http_config.c - the `http:` section of the configuration: the rows that
 * describe rw_http_config (http.h), with the HTTP server's defaults. None
 * reloads: they shape the listening socket and its threads. */
#include <stddef.h>
#include "cfg.h"
#include "http.h"

#define OFF(f) offsetof(rw_http_config, f)

static const rw_cfg_key keys[] = {
    {"listen", RW_CFG_STRING, OFF(listen), "127.0.0.1:9201", 0, 0, 0,
     "HOST:PORT to serve HTTP on; 0.0.0.0:9201 serves other hosts (--listen)", NULL, NULL},
    {"max_connections", RW_CFG_INT, OFF(max_connections), "1024", 1, 1 << 20, 0,
     "concurrent HTTP connections", NULL, NULL},
    {"idle_timeout", RW_CFG_DURATION, OFF(idle_timeout_ms), "2m", 1000, 86400000, 0,
     "an idle keep-alive connection is closed after this", NULL, NULL},
};

const rw_cfg_table rw_http_config_table = RW_CFG_TABLE("http", rw_http_config, keys, NULL, NULL);
