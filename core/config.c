/* config.c - the configuration table and its YAML loader (see config.h).
 * libyaml's event parser walks the document; mapping keys are joined with
 * dots into table keys. The table is the only place that knows a key's
 * type, default and bounds; flags go through rw_config_set and the same
 * table. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "buf.h"
#include "timeutil.h"

typedef enum { T_STRING, T_INT, T_BYTES, T_DURATION, T_LABELS } ctype;

typedef struct ckey {
    const char *key;
    ctype type;
    size_t off;
    const char *def;
    int64_t min, max;
    int reloadable;
    const char *help;
} ckey;

#define OFF(f) offsetof(rw_config, f)
#define BIG INT64_MAX

static const ckey keys[] = {
    {"listen", T_STRING, OFF(listen), RW_DEFAULT_LISTEN, 0, 0, 0, "HOST:PORT to serve HTTP on"},
    {"data_dir", T_STRING, OFF(data_dir), RW_DEFAULT_DATA, 0, 0, 0, "data directory"},
    {"shards", T_INT, OFF(shards), "0", 0, 1024, 0, "number of shards (0 = CPUs); fixed per data dir"},
    {"retention", T_DURATION, OFF(retention_ms), "15d", 0, BIG, 0,
     "keep data this long before the newest sample (0 = forever)"},
    {"external_labels", T_LABELS, OFF(external_labels), NULL, 0, 0, 1,
     "labels added to /federate and remote-read output"},
    {"ingest.tenant_header", T_STRING, OFF(tenant_header), "X-Scope-OrgID", 0, 0, 1,
     "HTTP header naming the tenant (THANOS-TENANT is also read)"},
    {"ingest.tenant_label", T_STRING, OFF(tenant_label), "tenant_id", 0, 0, 1,
     "label that carries the tenant; empty = no tenant label"},
    {"ingest.default_tenant", T_STRING, OFF(default_tenant), "", 0, 0, 1,
     "tenant of requests without the header; empty = no tenant label for them"},
    {"ingest.max_future", T_DURATION, OFF(max_future_ms), "10m", 0, BIG, 1,
     "samples further ahead of the clock are rejected (0 = no limit); a far-future "
     "sample would move the retention window and drop real data"},
    {"ingest.max_body_bytes", T_BYTES, OFF(max_body_bytes), "32MiB", 1024, BIG, 1,
     "largest compressed request body (413 above)"},
    {"ingest.max_decoded_bytes", T_BYTES, OFF(max_decoded_bytes), "128MiB", 1024, BIG, 1,
     "largest decompressed request body"},
    {"ingest.max_inflight_bytes", T_BYTES, OFF(max_inflight_bytes), "512MiB", 64 * 1024, BIG, 1,
     "decoded bytes of write requests being processed at once; 503 + Retry-After above"},
    {"ingest.max_series_per_request", T_INT, OFF(max_series_per_request), "100000", 1, BIG, 1,
     "series per write request"},
    {"ingest.max_labels_per_series", T_INT, OFF(max_labels_per_series), "128", 1, RW_LABELS_MAX, 1,
     "labels per series"},
    {"ingest.max_label_name_length", T_INT, OFF(max_label_name_len), "1024", 1, 1 << 20, 1,
     "bytes per label name"},
    {"ingest.max_label_value_length", T_INT, OFF(max_label_value_len), "4096", 1, 1 << 24, 1,
     "bytes per label value"},
    {"query.lookback_delta", T_DURATION, OFF(lookback_ms), "5m", 1, BIG, 0,
     "how far back an instant vector selector looks"},
    {"query.timeout", T_DURATION, OFF(query_timeout_ms), "2m", 1, BIG, 0, "query timeout"},
    {"query.max_samples", T_INT, OFF(query_max_samples), "50000000", 1, BIG, 0,
     "samples a query may load at once"},
    {"query.default_subquery_step", T_DURATION, OFF(subquery_step_ms), "1m", 1, BIG, 0,
     "step of subqueries written without one"},
    {"query.remote_read_max_samples", T_INT, OFF(remote_read_max_samples), "50000000", 1, BIG, 0,
     "samples one remote-read request may return"},
    {"store.max_series", T_INT, OFF(max_series), "10000000", 0, BIG, 0,
     "series the store may hold (0 = unlimited); new series beyond it are rejected, 400"},
    {"store.checkpoint_interval", T_DURATION, OFF(checkpoint_interval_ms), "5m", 1000, BIG, 0,
     "how often retention runs"},
    {"store.checkpoint_size", T_BYTES, OFF(checkpoint_bytes), "16MiB", 1 << 20, BIG, 0,
     "everything in memory is flushed into blocks when the WAL grows past this; bounds the "
     "replay after a crash (raised to 4 WAL segments when those are larger)"},
    {"store.wal_segment_size", T_BYTES, OFF(wal_segment_bytes), "4MiB", 64 << 10, 1LL << 30, 0,
     "size of a WAL segment file, the unit the WAL is deleted in (raised to 16 bytes per "
     "series)"},
    {"store.out_of_order_window", T_DURATION, OFF(ooo_window_ms), "0", 0, BIG, 0,
     "samples up to this far behind their series' newest are accepted out of order (0 = off)"},
    {"store.busy_timeout", T_DURATION, OFF(busy_timeout_ms), "10s", 1, BIG, 0,
     "SQLite busy timeout before a write answers 503"},
    {"store.max_pending_bytes", T_BYTES, OFF(max_pending_bytes), "64MiB", 1 << 20, BIG, 0,
     "unsynced WAL bytes per shard before writes answer 503"},
    {"http.max_connections", T_INT, OFF(max_connections), "1024", 1, 1 << 20, 0,
     "concurrent HTTP connections"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const ckey *find_key(const char *k)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].key, k) == 0)
            return &keys[i];
    return NULL;
}

static rw_rc parse_bytes(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno)
        return RW_BADREQ;
    while (*end == ' ')
        end++;
    static const struct { const char *u; double m; } units[] = {
        {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"KiB", 1024.0},
        {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"K", 1024.0}, {"M", 1048576.0},
        {"G", 1073741824.0},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].u) == 0) {
            double r = v * units[i].m;
            if (r < 0 || r > 9.2e18)
                return RW_BADREQ;
            *out = (int64_t)r;
            return RW_OK;
        }
    return RW_BADREQ;
}

static void free_labels(rw_config *c)
{
    for (size_t i = 0; i < c->nexternal; i++) {
        free((char *)c->external_labels[i].name);
        free((char *)c->external_labels[i].value);
    }
    free(c->external_labels);
    c->external_labels = NULL;
    c->nexternal = 0;
}

static rw_rc set_value(rw_config *c, const ckey *k, const char *value, rw_err *err)
{
    void *field = (char *)c + k->off;
    int64_t v = 0;
    rw_rc rc = RW_OK;
    switch (k->type) {
    case T_STRING: {
        char *d = strdup(value);
        if (!d)
            return rw_err_set(err, RW_NOMEM, "out of memory");
        free(*(char **)field);
        *(char **)field = d;
        return RW_OK;
    }
    case T_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(value, &end, 10);
        if (!*value || *end || errno)
            return rw_err_set(err, RW_BADREQ, "%s: \"%s\" is not an integer", k->key, value);
        v = x;
        break;
    }
    case T_BYTES:
        if (parse_bytes(value, &v) != RW_OK)
            return rw_err_set(err, RW_BADREQ, "%s: \"%s\" is not a size (e.g. 32MiB)", k->key,
                              value);
        break;
    case T_DURATION:
        if (strcmp(value, "0") == 0)
            v = 0;
        else if ((rc = rw_parse_duration(value, strlen(value), &v, NULL)) != RW_OK)
            return rw_err_set(err, RW_BADREQ, "%s: \"%s\" is not a duration (e.g. 15d, 5m)",
                              k->key, value);
        break;
    case T_LABELS:
        return rw_err_set(err, RW_BADREQ, "%s: expected a map of label names to values", k->key);
    }
    if (v < k->min || v > k->max)
        return rw_err_set(err, RW_BADREQ, "%s: %s is out of range [%lld, %lld]", k->key, value,
                          (long long)k->min, (long long)k->max);
    *(int64_t *)field = v;
    return RW_OK;
}

void rw_config_defaults(rw_config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].def)
            set_value(c, &keys[i], keys[i].def, NULL);
}

void rw_config_free(rw_config *c)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].type == T_STRING) {
            char **f = (char **)((char *)c + keys[i].off);
            free(*f);
            *f = NULL;
        }
    free_labels(c);
}

rw_rc rw_config_set(rw_config *c, const char *key, const char *value, rw_err *err)
{
    const ckey *k = find_key(key);
    if (!k)
        return rw_err_set(err, RW_BADREQ, "unknown configuration key \"%s\"", key);
    return set_value(c, k, value, err);
}

/* ---- YAML ---- */

typedef struct yctx {
    yaml_parser_t p;
    rw_config *c;
    rw_err *err;
    const char *path;
} yctx;

static rw_rc next(yctx *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->p, ev))
        return rw_err_set(y->err, RW_BADREQ, "%s:%zu:%zu: YAML error: %s", y->path,
                          y->p.problem_mark.line + 1, y->p.problem_mark.column + 1,
                          y->p.problem ? y->p.problem : "invalid document");
    return RW_OK;
}

static rw_rc load_labels(yctx *y, const char *key, size_t line)
{
    yaml_event_t ev;
    rw_rc rc;
    if ((rc = next(y, &ev)) != RW_OK)
        return rc;
    if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0) {
        yaml_event_delete(&ev);
        free_labels(y->c);
        return RW_OK; /* "external_labels:" with nothing */
    }
    if (ev.type != YAML_MAPPING_START_EVENT) {
        yaml_event_delete(&ev);
        return rw_err_set(y->err, RW_BADREQ, "%s:%zu: %s: expected a map of label names to values",
                          y->path, line, key);
    }
    yaml_event_delete(&ev);
    free_labels(y->c);
    for (;;) {
        if ((rc = next(y, &ev)) != RW_OK)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            return rw_err_set(y->err, RW_BADREQ, "%s:%zu: %s: label names must be strings",
                              y->path, line, key);
        }
        char *name = strdup((char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if ((rc = next(y, &ev)) != RW_OK) {
            free(name);
            return rc;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            free(name);
            return rw_err_set(y->err, RW_BADREQ, "%s:%zu: %s: label values must be strings",
                              y->path, line, key);
        }
        char *value = strdup((char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (!rw_label_name_legacy(name, strlen(name)) || !*value) {
            rw_err_set(y->err, RW_BADREQ, "%s:%zu: %s: invalid label %s=\"%s\"", y->path, line,
                       key, name, value);
            free(name);
            free(value);
            return RW_BADREQ;
        }
        rw_label *nl = realloc(y->c->external_labels, (y->c->nexternal + 1) * sizeof *nl);
        if (!nl) {
            free(name);
            free(value);
            return rw_err_set(y->err, RW_NOMEM, "out of memory");
        }
        y->c->external_labels = nl;
        nl[y->c->nexternal].name = name;
        nl[y->c->nexternal].value = value;
        y->c->nexternal++;
    }
    rw_labels_sort(y->c->external_labels, y->c->nexternal);
    for (size_t i = 1; i < y->c->nexternal; i++)
        if (strcmp(y->c->external_labels[i].name, y->c->external_labels[i - 1].name) == 0)
            return rw_err_set(y->err, RW_BADREQ, "%s: %s: duplicate label %s", y->path, key,
                              y->c->external_labels[i].name);
    return RW_OK;
}

static rw_rc load_map(yctx *y, const char *prefix)
{
    yaml_event_t ev;
    rw_rc rc;
    for (;;) {
        if ((rc = next(y, &ev)) != RW_OK)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return RW_OK;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            size_t line = ev.start_mark.line + 1;
            yaml_event_delete(&ev);
            return rw_err_set(y->err, RW_BADREQ, "%s:%zu: expected a key", y->path, line);
        }
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "",
                 (char *)ev.data.scalar.value);
        size_t line = ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        const ckey *k = find_key(key);
        if (k && k->type == T_LABELS) {
            if ((rc = load_labels(y, key, line)) != RW_OK)
                return rc;
            continue;
        }
        if ((rc = next(y, &ev)) != RW_OK)
            return rc;
        if (ev.type == YAML_MAPPING_START_EVENT) {
            yaml_event_delete(&ev);
            int section = 0;
            size_t kl = strlen(key);
            for (size_t i = 0; i < NKEYS; i++)
                if (strncmp(keys[i].key, key, kl) == 0 && keys[i].key[kl] == '.')
                    section = 1;
            if (!section)
                return rw_err_set(y->err, RW_BADREQ, "%s:%zu: unknown configuration section \"%s\"",
                                  y->path, line, key);
            if ((rc = load_map(y, key)) != RW_OK)
                return rc;
            continue;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            return rw_err_set(y->err, RW_BADREQ, "%s:%zu: %s: expected a single value", y->path,
                              line, key);
        }
        if (!k) {
            yaml_event_delete(&ev);
            return rw_err_set(y->err, RW_BADREQ, "%s:%zu: unknown configuration key \"%s\"",
                              y->path, line, key);
        }
        rc = set_value(y->c, k, (char *)ev.data.scalar.value, y->err);
        yaml_event_delete(&ev);
        if (rc != RW_OK) {
            rw_err_prefix(y->err, "%s:%zu", y->path, line);
            return rc;
        }
    }
}

rw_rc rw_config_load_file(rw_config *c, const char *path, rw_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rw_err_set(err, RW_BADREQ, "cannot open config file %s: %s", path, strerror(errno));
    yctx y = {.c = c, .err = err, .path = path};
    yaml_parser_initialize(&y.p);
    yaml_parser_set_input_file(&y.p, f);
    yaml_event_t ev;
    rw_rc rc = RW_OK;
    int done = 0;
    while (!done && rc == RW_OK) {
        if ((rc = next(&y, &ev)) != RW_OK)
            break;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_MAPPING_START_EVENT:
            rc = load_map(&y, "");
            break;
        case YAML_SCALAR_EVENT:
            if (ev.data.scalar.length)
                rc = rw_err_set(err, RW_BADREQ, "%s: the top level must be a map of keys", path);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = rw_err_set(err, RW_BADREQ, "%s: the top level must be a map of keys", path);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&y.p);
    fclose(f);
    return rc;
}

const char *rw_config_unreloadable_change(const rw_config *a, const rw_config *b)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const ckey *k = &keys[i];
        if (k->reloadable)
            continue;
        const void *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;
        if (k->type == T_STRING) {
            const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
            if (strcmp(sa ? sa : "", sb ? sb : "") != 0)
                return k->key;
        } else if (k->type != T_LABELS && *(const int64_t *)fa != *(const int64_t *)fb) {
            return k->key;
        }
    }
    return NULL;
}

void rw_config_dump(const rw_config *c, rw_buf *out)
{
    const char *section = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const ckey *k = &keys[i];
        const char *dot = strchr(k->key, '.');
        const char *name = k->key;
        int indent = 0;
        if (dot) {
            size_t sl = (size_t)(dot - k->key);
            if (strncmp(section, k->key, sl) != 0 || section[sl] != '.') {
                rw_buf_printf(out, "%.*s:\n", (int)sl, k->key);
            }
            section = k->key;
            name = dot + 1;
            indent = 2;
        } else {
            section = "";
        }
        const void *f = (const char *)c + k->off;
        rw_buf_printf(out, "%*s%s: ", indent, "", name);
        switch (k->type) {
        case T_STRING: rw_buf_printf(out, "\"%s\"\n", *(char *const *)f ? *(char *const *)f : ""); break;
        case T_INT:
        case T_BYTES: rw_buf_printf(out, "%lld\n", (long long)*(const int64_t *)f); break;
        case T_DURATION: {
            char d[64];
            rw_format_duration(*(const int64_t *)f, d, sizeof d);
            rw_buf_printf(out, "%s\n", d);
            break;
        }
        case T_LABELS:
            if (!c->nexternal)
                rw_buf_puts(out, "{}\n");
            else {
                rw_buf_puts(out, "\n");
                for (size_t j = 0; j < c->nexternal; j++)
                    rw_buf_printf(out, "%*s  %s: \"%s\"\n", indent, "", c->external_labels[j].name,
                                  c->external_labels[j].value);
            }
            break;
        }
    }
}
