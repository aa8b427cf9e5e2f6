/* notify_config.c - the `alerting:` section of the configuration: the rows
 * that describe rw_alerting_config (notify.h), in Prometheus' layout and
 * with its defaults and checks (the same refusals and messages as
 * prometheus/common's HTTP client config where rwgate has the key), plus
 * rwgate's notification_queue_capacity. tls_config is the core block
 * (core/tls_client.h), shared with rwgate's other HTTPS clients, so the
 * notifier also takes its min_version. Every row applies on reload:
 * rw_notifier_reconfigure() takes the new section and keeps the queue. */
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include "core/cfg.h"
#include "core/relabel.h"
#include "core/tls_client.h"
#include "notify.h"

#define R RW_CFG_RELOAD

/* ---- authorization / basic_auth (tls_config is core/tls_client.h's) ---- */

#define AUTH(f) offsetof(rw_am_authorization, f)
static const rw_cfg_key auth_keys[] = {
    {"type", RW_CFG_STRING, AUTH(type), "Bearer", 0, 0, R,
     "scheme of the Authorization header", NULL, NULL},
    {"credentials", RW_CFG_STRING, AUTH(credentials), NULL, 0, 0, R | RW_CFG_SECRET,
     "credentials of the Authorization header", NULL, NULL},
    {"credentials_file", RW_CFG_PATH, AUTH(credentials_file), NULL, 0, 0, R,
     "file holding the credentials, read at each request", NULL, NULL},
};

static rw_rc check_auth(void *obj, rw_err *err)
{
    const rw_am_authorization *a = obj;
    if (a->credentials[0] && a->credentials_file[0])
        return rw_err_set(err, RW_BADREQ,
                          "at most one of authorization credentials & credentials_file must be "
                          "configured");
    if (strcasecmp(a->type, "basic") == 0)
        return rw_err_set(err, RW_BADREQ,
                          "authorization type cannot be set to \"basic\", use \"basic_auth\" instead");
    if (!a->type[0])
        return rw_err_set(err, RW_BADREQ, "authorization type must not be empty");
    return RW_OK;
}

static const rw_cfg_table auth_table =
    RW_CFG_TABLE("authorization", rw_am_authorization, auth_keys, check_auth, NULL);

#define BASIC(f) offsetof(rw_am_basic_auth, f)
static const rw_cfg_key basic_keys[] = {
    {"username", RW_CFG_STRING, BASIC(username), NULL, 0, 0, R, "basic auth user", NULL, NULL},
    {"password", RW_CFG_STRING, BASIC(password), NULL, 0, 0, R | RW_CFG_SECRET,
     "basic auth password", NULL, NULL},
    {"password_file", RW_CFG_PATH, BASIC(password_file), NULL, 0, 0, R,
     "file holding the password, read at each request", NULL, NULL},
};

static rw_rc check_basic(void *obj, rw_err *err)
{
    const rw_am_basic_auth *b = obj;
    if (b->password[0] && b->password_file[0])
        return rw_err_set(err, RW_BADREQ,
                          "at most one of basic_auth password & password_file must be configured");
    return RW_OK;
}

static const rw_cfg_table basic_table =
    RW_CFG_TABLE("basic_auth", rw_am_basic_auth, basic_keys, check_basic, NULL);

/* ---- static_configs ---- */

#define SC(f) offsetof(rw_am_static_config, f)
static const rw_cfg_key static_keys[] = {
    {"targets", RW_CFG_STRINGS, SC(targets), NULL, 0, 0, R, "Alertmanagers as host:port", NULL,
     NULL},
    {"labels", RW_CFG_LABELS, SC(labels), NULL, 0, 0, R,
     "target labels (accepted for compatibility; not used)", NULL, NULL},
};

static rw_rc check_static(void *obj, rw_err *err)
{
    const rw_am_static_config *s = obj;
    for (size_t i = 0; i < s->targets.n; i++) {
        const char *t = s->targets.v[i];
        if (!t[0] || strstr(t, "://") || strchr(t, '/') || strpbrk(t, " \t?#@"))
            return rw_err_set(err, RW_BADREQ,
                              "target \"%s\": must be host:port (scheme and path_prefix are "
                              "separate keys)",
                              t);
    }
    return RW_OK;
}

static const rw_cfg_table static_table =
    RW_CFG_TABLE("static_config", rw_am_static_config, static_keys, check_static, NULL);

/* ---- one alertmanagers[] entry ---- */

static const char *const schemes[] = {"http", "https", NULL};

#define AM(f) offsetof(rw_am_config, f)
static const rw_cfg_key am_keys[] = {
    {"static_configs", RW_CFG_LIST, AM(static_configs), NULL, 0, 0, R,
     "lists of Alertmanager targets", &static_table, NULL},
    {"scheme", RW_CFG_ENUM, AM(scheme), "http", 0, 0, R, "http or https", NULL, schemes},
    {"path_prefix", RW_CFG_STRING, AM(path_prefix), "", 0, 0, R,
     "prefix of the Alertmanager's API path", NULL, NULL},
    {"timeout", RW_CFG_DURATION, AM(timeout_ms), "10s", 1, 3600000, R,
     "time allowed for one request", NULL, NULL},
    {"api_version", RW_CFG_STRING, AM(api_version), "v2", 0, 0, R, "only v2", NULL, NULL},
    {"authorization", RW_CFG_SECTION, AM(authorization), NULL, 0, 0, R,
     "Authorization header", &auth_table, NULL},
    {"basic_auth", RW_CFG_SECTION, AM(basic_auth), NULL, 0, 0, R, "HTTP basic authentication",
     &basic_table, NULL},
    {"tls_config", RW_CFG_SECTION, AM(tls_config), NULL, 0, 0, R, "TLS settings",
     &rw_tls_client_config_table, NULL},
};

static rw_rc check_am(void *obj, rw_err *err)
{
    const rw_am_config *a = obj;
    if (strcmp(a->api_version, "v1") == 0)
        return rw_err_set(err, RW_BADREQ,
                          "api_version: v1 is not supported (Alertmanager removed its v1 API in "
                          "0.27); use v2");
    if (strcmp(a->api_version, "v2") != 0)
        return rw_err_set(err, RW_BADREQ, "api_version: expected v2, got \"%s\"", a->api_version);
    if ((a->authorization.credentials[0] || a->authorization.credentials_file[0]) &&
        (a->basic_auth.username[0] || a->basic_auth.password[0] || a->basic_auth.password_file[0]))
        return rw_err_set(err, RW_BADREQ,
                          "at most one of basic_auth, oauth2 & authorization must be configured");
    if (a->path_prefix[0] && a->path_prefix[0] != '/')
        return rw_err_set(err, RW_BADREQ, "path_prefix \"%s\" must start with /", a->path_prefix);
    return RW_OK;
}

static const rw_cfg_table am_table = RW_CFG_TABLE("alertmanager", rw_am_config, am_keys, check_am, NULL);

/* ---- alerting: ---- */

#define AL(f) offsetof(rw_alerting_config, f)
static const rw_cfg_key alerting_keys[] = {
    {"alert_relabel_configs", RW_CFG_LIST, AL(alert_relabel_configs), NULL, 0, 0, R,
     "relabeling applied to every alert after external labels are attached",
     &rw_relabel_config_table, NULL},
    {"alertmanagers", RW_CFG_LIST, AL(alertmanagers), NULL, 0, 0, R,
     "Alertmanagers that receive every alert", &am_table, NULL},
    {"notification_queue_capacity", RW_CFG_INT, AL(queue_capacity), "10000", 1, 10000000, R,
     "alerts queued for Alertmanagers; the oldest is dropped beyond", NULL, NULL},
};

const rw_cfg_table rw_alerting_config_table =
    RW_CFG_TABLE("alerting", rw_alerting_config, alerting_keys, NULL, NULL);
