/* assets.h - the web UI's files as the build compiled them in (internal to
 * the ui layer): ui/embed.c writes the table into the build directory,
 * ui.c serves it. Sorted by path. */
#ifndef RW_UI_ASSETS_H
#define RW_UI_ASSETS_H

#include <stddef.h>

typedef struct rw_ui_asset {
    const char *path;         /* below /ui/a/<build hash>/, e.g. "js/app.js" */
    const char *content_type;
    const char *hash;         /* 16 hex digits of XXH3-64 over the bytes served */
    const unsigned char *gz;  /* gzip member (deterministic) */
    size_t ngz;
    size_t nraw;              /* length once decompressed */
} rw_ui_asset;

extern const rw_ui_asset rw_ui_assets[];
extern const size_t rw_ui_nassets;
extern const char rw_ui_build_hash[];

#endif
