/* clean.h - ingest-time cleaning, internal to the write path: the cluster
 * inventory (standard labels), the HA-pair tracker, the kubelet-endpoint
 * node table, per-tenant limits and per-source status. Each piece is a
 * module of its own with a handle; the write path's stages (ingest.c) call
 * them once per request with its decoded batch. State that must outlive a
 * reload (elections, node tables, token buckets, source statistics) lives
 * in the handles, which are kept across reloads and reconfigured; what a
 * reload replaces wholesale (the inventory) is immutable and swapped. */
#ifndef RW_INGEST_CLEAN_H
#define RW_INGEST_CLEAN_H

#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/labels.h"
#include "core/metrics.h"
#include "store/store.h"

/* ---- cluster inventory (inventory.c) ----
 *
 * A YAML file `clusters: {NAME: {region, product, scenario, size, <any
 * label>..., override: bool}}` loaded (and re-loaded on reload) into an
 * immutable lookup table. Every series of a listed cluster gets the
 * cluster's labels; a label the sender set wins unless the entry says
 * override: true. A series of an unlisted cluster gets scenario="unknown"
 * (unless it has a scenario). */

typedef struct rw_inventory rw_inventory;
typedef struct rw_inventory_entry rw_inventory_entry;

rw_inventory *rw_inventory_load(const char *path, rw_err *err);
rw_inventory *rw_inventory_parse(const char *yaml, size_t len, const char *name, rw_err *err);
void rw_inventory_free(rw_inventory *inv);
size_t rw_inventory_size(const rw_inventory *inv);
const char *rw_inventory_path(const rw_inventory *inv);
/* The entry of a cluster, NULL when unlisted. */
const rw_inventory_entry *rw_inventory_find(const rw_inventory *inv, const char *cluster,
                                            size_t len);
/* The entry's labels (sorted) and override flag. */
const rw_label *rw_inventory_entry_labels(const rw_inventory_entry *e, size_t *n, int *override);
/* Applies e (NULL: unlisted, scenario="unknown") to the sorted set in[];
 * out is in[] itself when nothing changes, else a new sorted array in a.
 * RW_NOMEM when the arena is exhausted. */
rw_rc rw_inventory_apply(const rw_inventory_entry *e, rw_arena *a, const rw_label *in,
                         size_t nin, rw_labels *out);

/* ---- HA-pair dedup (ha.c) ----
 *
 * Per (tenant, cluster) one replica is elected; samples of the others are
 * dropped (the sender gets a 2xx: it must not retry them). The election
 * fails over when a standby sends a sample newer than the elected replica's
 * newest accepted sample plus failover_timeout: sample time, not arrival
 * time, so a sender that catches up on a backlog cannot take over while the
 * elected replica is current. Time is partitioned at a failover: the old
 * replica's samples up to the failover point are still taken (its in-flight
 * data), the new one's from then on; per series the store skips any sample
 * not newer than what it holds (RW_APPEND skip_old), so a failover never
 * stores a sample twice nor moves a counter backwards. */

typedef struct rw_ha rw_ha;

typedef struct rw_ha_opts {
    const char *state_path;      /* elections persisted here (atomically); NULL = none */
    int64_t failover_timeout_ms; /* default 30 s */
    size_t max_clusters;         /* tracked (tenant, cluster) pairs; default 100000 */
    rw_metrics *metrics;         /* may be NULL */
} rw_ha_opts;

#define RW_HA_DEFAULT_FAILOVER_MS 30000
#define RW_HA_DEFAULT_MAX_CLUSTERS 100000

/* Loads persisted elections (a missing file is an empty table; a corrupt
 * one is an error naming the line). */
rw_ha *rw_ha_open(const rw_ha_opts *o, rw_err *err);
/* Persists, frees. */
void rw_ha_close(rw_ha *ha);
void rw_ha_reconfigure(rw_ha *ha, int64_t failover_timeout_ms, size_t max_clusters);
/* Writes the elections when they changed since the last write (temporary
 * file, fsync, rename). Called periodically and at close. */
rw_rc rw_ha_persist(rw_ha *ha, rw_err *err);

/* What happened to one series' samples. */
typedef struct rw_ha_verdict {
    size_t kept;       /* samples[0..kept) are the accepted ones, in order */
    size_t dropped;    /* from a replica that is not elected for their time */
    int failover;      /* this series' samples caused a failover */
    int untracked;     /* the table is full: passed through undeduplicated */
} rw_ha_verdict;

/* Judges the samples of one series from `replica` of (tenant, cluster):
 * compacts samples[] to the accepted ones. Thread-safe. */
void rw_ha_judge(rw_ha *ha, const char *tenant, const char *cluster, const char *replica,
                 rw_sample *samples, size_t n, rw_ha_verdict *v);

/* The elected replica of (tenant, cluster), copied into buf; 0 when none. */
int rw_ha_elected(rw_ha *ha, const char *tenant, const char *cluster, char *buf, size_t cap);

/* One tracked pair, for the status API. */
typedef struct rw_ha_info {
    const char *tenant, *cluster, *elected, *previous;
    int64_t newest_ms;       /* newest sample time accepted from the elected replica */
    int64_t since_ms;        /* sample time the elected replica took over at */
    uint64_t accepted, deduplicated, failovers;
} rw_ha_info;
/* Calls fn for every tracked pair under the table's lock (fn must not call
 * back into the tracker). */
void rw_ha_each(rw_ha *ha, void (*fn)(void *ctx, const rw_ha_info *info), void *ctx);

#endif
