/* ui.h - the built-in web UI at /ui/: the module that serves the HTML, CSS,
 * ES modules and dashboards that the build compiled into the binary
 * (ui/embed.c). It adds its routes to the HTTP route registry with the read
 * permission, so with authentication on the browser uses the API's
 * credentials. Built with -DRWGATE_UI=OFF, the routes answer 404 saying so. */
#ifndef RW_UI_H
#define RW_UI_H

#include "core/err.h"
#include "core/http.h"

typedef struct rw_ui rw_ui;

rw_ui *rw_ui_new(rw_err *err);
void rw_ui_free(rw_ui *ui);
/* Adds the routes "/", "/ui", "/ui/" and below, "/favicon.ico". */
rw_rc rw_ui_routes(rw_ui *ui, rw_routes *r, rw_err *err);
/* 1 when the UI is compiled in. */
int rw_ui_built(void);

#endif
