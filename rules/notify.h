/* notify.h - the Alertmanager client: sends the alerts that alerting rules
 * fire and resolve to every configured Alertmanager through its v2 API
 * (POST /api/v2/alerts), as Prometheus' notifier does.
 *
 * Configuration is the `alerting:` section of a Prometheus config:
 *
 *   alerting:
 *     alert_relabel_configs: [...]          # applied after external labels
 *     alertmanagers:
 *     - static_configs: [{targets: ["am1:9093", "am2:9093"]}]
 *       scheme: https                       # http (default) | https
 *       path_prefix: /am
 *       timeout: 10s
 *       api_version: v2                     # v1 is refused
 *       authorization: {type: Bearer, credentials: ..., credentials_file: ...}
 *       basic_auth: {username: ..., password: ..., password_file: ...}
 *       tls_config: {ca_file, cert_file, key_file, server_name, insecure_skip_verify,
 *                    min_version}            # core/tls_client.h; min_version TLS12 | TLS13
 *     notification_queue_capacity: 10000   # rwgate: Prometheus' flag of that name
 *
 * rw_notifier_send() copies the alerts (external labels attached, relabeled,
 * encoded once) into a bounded queue and returns at once; an alert that
 * alert_relabel_configs drop, or that ends with no labels, is not sent; one sender thread
 * delivers them in batches of at most 64 to each Alertmanager independently
 * (libcurl multi: a slow or dead Alertmanager delays no other and never the
 * caller). A failed batch is retried with exponential backoff (0.5 s up to
 * 30 s) until it is delivered; a 4xx answer other than 429 drops the batch
 * for that Alertmanager (retrying cannot help). When the queue is full the
 * oldest alert is dropped and counted. Alertmanagers deduplicate, and rules
 * resend active alerts, so redelivery is harmless; losing a resolution is
 * not, hence the retries (Prometheus drops a failed batch instead).
 *
 * Metrics: rwgate_notifications_sent_total{alertmanager},
 * rwgate_notifications_errors_total{alertmanager} (failed requests),
 * rwgate_notifications_latency_seconds{alertmanager},
 * rwgate_notifications_dropped_total, rwgate_notifications_queue_length,
 * rwgate_notifications_queue_capacity,
 * rwgate_notifications_alertmanagers_discovered. */
#ifndef RW_NOTIFY_H
#define RW_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include "core/cfg.h"
#include "core/err.h"
#include "core/labels.h"
#include "core/metrics.h"
#include "core/tls_client.h"

#define RW_NOTIFY_MAX_BATCH 64 /* alerts per request, as Prometheus */

/* ---- configuration (rows in notify_config.c) ---- */

typedef struct rw_am_authorization {
    char *type;             /* default "Bearer" */
    char *credentials;
    char *credentials_file; /* read at each request, trimmed */
} rw_am_authorization;

typedef struct rw_am_basic_auth {
    char *username;
    char *password;
    char *password_file;    /* read at each request, trimmed */
} rw_am_basic_auth;

typedef struct rw_am_static_config {
    rw_cfg_strings targets; /* host:port */
    rw_cfg_labels labels;   /* accepted as Prometheus does; unused */
} rw_am_static_config;

enum { RW_AM_HTTP, RW_AM_HTTPS };

typedef struct rw_am_config {
    rw_cfg_list static_configs; /* of rw_am_static_config */
    int scheme;                 /* RW_AM_HTTP | RW_AM_HTTPS */
    char *path_prefix;
    int64_t timeout_ms;
    char *api_version;          /* "v2" */
    rw_am_authorization authorization;
    rw_am_basic_auth basic_auth;
    rw_tls_client_config tls_config; /* core/tls_client.h */
} rw_am_config;

typedef struct rw_alerting_config {
    rw_cfg_list alert_relabel_configs; /* of rw_relabel_config (core/relabel.h) */
    rw_cfg_list alertmanagers;         /* of rw_am_config */
    int64_t queue_capacity;            /* notification_queue_capacity */
} rw_alerting_config;

/* The `alerting:` section's table; every row is reloadable. */
extern const rw_cfg_table rw_alerting_config_table;

/* ---- the notifier ---- */

typedef struct rw_alert_msg {
    const rw_label *labels; /* need not be sorted; empty values are dropped */
    size_t nlabels;
    const rw_label *annotations;
    size_t nannotations;
    int64_t starts_at_ms, ends_at_ms; /* 0: not sent */
    const char *generator_url;        /* NULL or "": not sent */
} rw_alert_msg;

typedef struct rw_notifier rw_notifier;

/* Starts the sender thread. cfg (and what it points to) must stay valid
 * until rw_notifier_reconfigure() with another config or rw_notifier_free()
 * returns; external labels are copied. m may be NULL. */
rw_notifier *rw_notifier_new(const rw_alerting_config *cfg, const rw_label *external_labels,
                             size_t nexternal, rw_metrics *m, rw_err *err);
/* Swaps in new settings, keeping the queue: an Alertmanager whose URL is
 * unchanged keeps its place in the queue and its backoff; a new one starts
 * with every alert still queued. */
rw_rc rw_notifier_reconfigure(rw_notifier *n, const rw_alerting_config *cfg,
                              const rw_label *external_labels, size_t nexternal, rw_err *err);
/* Copies and enqueues; never blocks on the network. */
void rw_notifier_send(rw_notifier *n, const rw_alert_msg *alerts, size_t n_alerts);
/* Delivers what it can within a short bound (RW_NOTIFY_FLUSH_MS), then stops. */
#define RW_NOTIFY_FLUSH_MS 3000
void rw_notifier_free(rw_notifier *n);

/* For tests and status pages: alerts waiting for the slowest Alertmanager,
 * alerts dropped so far, and alerts delivered to Alertmanager i. */
size_t rw_notifier_queue_length(rw_notifier *n);
uint64_t rw_notifier_dropped(rw_notifier *n);
uint64_t rw_notifier_sent(rw_notifier *n, size_t am);
size_t rw_notifier_alertmanagers(rw_notifier *n);

/* Encodes one alert as Alertmanager's v2 API expects it (labels merged with
 * external labels that the alert does not have, sorted; times in RFC 3339
 * with milliseconds) into out. Used by the sender; exposed for tests. */
rw_rc rw_notifier_encode(const rw_alert_msg *a, const rw_label *external, size_t nexternal,
                         rw_buf *out);

#endif
