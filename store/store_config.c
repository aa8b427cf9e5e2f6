/* store_config.c - the `store:` section of the configuration: the rows that
 * describe rw_store_opts (store.h), with every default of the storage layer.
 * rw_store_open gives a zero field its default from here, so embedders and
 * tests that fill only the directory get the same store as the binary. None
 * of these keys can change on reload: they shape files on disk or threads
 * started at open. */
#include <stddef.h>
#include "core/cfg.h"
#include "store.h"

#define OFF(f) offsetof(rw_store_opts, f)
#define BIG 9.2e18

static const rw_cfg_key keys[] = {
    {"data_dir", RW_CFG_PATH, OFF(dir), "./data", 0, 0, 0, "data directory (--data)", NULL, NULL},
    {"shards", RW_CFG_INT, OFF(nshards), "0", 0, 1024, 0,
     "number of shards (0 = CPUs); fixed per data directory (--shards)", NULL, NULL},
    {"retention", RW_CFG_DURATION, OFF(retention_ms), "15d", 0, BIG, 0,
     "keep data this long before the newest sample (0 = forever) (--retention)", NULL, NULL},
    {"max_series", RW_CFG_INT, OFF(max_series), "10000000", 0, BIG, 0,
     "series the store may hold (0 = unlimited); new series beyond it are rejected, 400", NULL,
     NULL},
    {"max_metadata", RW_CFG_INT, OFF(max_metadata), "100000", 0, BIG, 0,
     "metric families with metadata (type, help, unit) kept (0 = unlimited); entries for new "
     "families beyond it are refused, 400",
     NULL, NULL},
    {"checkpoint_interval", RW_CFG_DURATION, OFF(checkpoint_interval_ms), "5m", 1000, BIG, 0,
     "how often retention runs", NULL, NULL},
    {"checkpoint_size", RW_CFG_BYTES, OFF(checkpoint_bytes), "8MiB", 64 << 10, BIG, 0,
     "a checkpoint (every shard's head snapshot, then the WAL before it deleted) when the WAL "
     "grows past this; bounds the replay after a crash (raised to one WAL segment, and to a "
     "quarter of the last snapshots' size, when those are larger)", NULL, NULL},
    {"wal_segment_size", RW_CFG_BYTES, OFF(wal_segment_bytes), "4MiB", 64 << 10, 1LL << 30, 0,
     "size of a WAL segment file, the unit the WAL is deleted in (raised to 8 bytes per "
     "series)", NULL, NULL},
    {"out_of_order_window", RW_CFG_DURATION, OFF(ooo_window_ms), "0", 0, BIG, 0,
     "samples up to this far behind their series' newest are accepted out of order (0 = off)",
     NULL, NULL},
    {"busy_timeout", RW_CFG_DURATION, OFF(busy_timeout_ms), "10s", 1, BIG, 0,
     "SQLite busy timeout of flushes and retention (they retry later)", NULL, NULL},
    {"read_cache_size", RW_CFG_BYTES, OFF(read_cache_bytes), "16MiB", 1 << 20, BIG, 0,
     "SQLite page cache of the query connections, all shards together (at least 2 MiB a "
     "shard): a warm query reads its parts from it instead of one system call a page",
     NULL, NULL},
    {"max_pending_bytes", RW_CFG_BYTES, OFF(max_pending_bytes), "64MiB", 1 << 20, BIG, 0,
     "WAL entries per shard not yet committed (storage failing or slow) before writes answer "
     "503", NULL, NULL},
};

const rw_cfg_table rw_store_config_table = RW_CFG_TABLE("store", rw_store_opts, keys, NULL, NULL);
