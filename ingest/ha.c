/* ha.c - the HA-pair tracker of the write path's HA dedup stage (see
 * clean.h for the rules). It keeps, per (tenant, cluster), the elected
 * replica, the newest sample time accepted from it, and the previous
 * replica with the sample time its ownership ended at; the stage asks it
 * about every series that carries the replica label.
 *
 * Why sample time: the Cortex/Mimir tracker fails over when the elected
 * replica has not been *heard from* for the timeout, so a replica that
 * catches up on a backlog after an outage flips the election and its old
 * samples land behind the other replica's newer ones (false counter resets,
 * mimir#12331); it also judges a request by its first series (mimir#15022).
 * Here every series is judged on its own samples' timestamps.
 *
 * Persistence: the table is written to state_path (one line per pair,
 * strings percent-encoded) through a temporary file, fsync and rename, by a
 * background thread every persist interval when something changed, and at
 * close; rw_ha_open reads it back, so a restart keeps the elections.
 *
 * Standby buffers: a standby's dropped samples newer than the elected
 * replica's newest are kept per series (up to SB_MAX samples, all buffers
 * together under buffer_bytes) and handed back when that standby takes
 * over, so the data has no hole of failover_timeout; a series not heard
 * from for a while leaves its buffer.
 *
 * Locking: one mutex guards the table; a judgement holds it for one series
 * (a few comparisons per sample). The persist thread copies the table under
 * the mutex and writes the copy without it. */
#include "clean.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "core/text.h"
#include "core/timeutil.h"

#define PERSIST_INTERVAL_MS 10000
/* a pair not heard from for this long (wall clock) is forgotten */
#define IDLE_FORGET_MS (24LL * 3600 * 1000)

/* A standby's samples of one series that the elected replica has not
 * covered yet (newer than its newest), kept for a failover. */
#define SB_MAX 16

typedef struct sb_series {
    uint64_t hash;
    struct sb_series *next;
    rw_label *labels;         /* one block: the array, the lengths, then the strings */
    uint32_t *lens;
    size_t nlabels, bytes;
    int64_t seen_ms;
    uint32_t n;
    rw_sample s[SB_MAX];
} sb_series;

typedef struct sb {           /* one standby replica's buffer */
    char *replica;
    sb_series **b;
    size_t nb, n;
    struct sb *next;
} sb;

typedef struct ha_entry {
    char *tenant, *cluster;   /* key */
    uint64_t hash;
    char *elected;            /* replica; NULL until the first sample */
    char *prev;               /* replica before the last failover, or NULL */
    int64_t newest;           /* newest sample time accepted from elected */
    int64_t prev_until;       /* prev's samples up to this time are still taken */
    int64_t since;            /* sample time elected took over at */
    int64_t seen_ms;          /* wall clock of the last judgement */
    uint64_t accepted, deduped, failovers;
    sb *standby;              /* buffers of the replicas that are not elected */
    struct ha_entry *next;
} ha_entry;

struct rw_ha {
    pthread_mutex_t mu;
    ha_entry **buckets;       /* chained hash table, power-of-two size */
    size_t nbuckets, n;
    int64_t timeout_ms;
    size_t max_clusters;
    int dirty;
    char *state_path;
    uint64_t untracked;       /* samples passed through because the table was full */
    size_t sb_bytes, sb_cap;  /* standby buffers: in use, allowed */
    uint64_t sb_full;         /* standby samples not buffered: no room */
    uint64_t sb_replayed;     /* buffered samples handed back at failovers */
    /* persist thread */
    pthread_t thr;
    int thr_started;
    pthread_cond_t cv;
    int stop;
};

static void sb_free(rw_ha *ha, sb *b)
{
    for (size_t i = 0; i < b->nb; i++)
        for (sb_series *x = b->b[i], *next; x; x = next) {
            next = x->next;
            ha->sb_bytes -= x->bytes;
            free(x);
        }
    free(b->b);
    free(b->replica);
    free(b);
}

static void entry_free_sb(rw_ha *ha, ha_entry *e)
{
    for (sb *b = e->standby, *next; b; b = next) {
        next = b->next;
        sb_free(ha, b);
    }
    e->standby = NULL;
}

static void entry_free(ha_entry *e)
{
    free(e->tenant);
    free(e->cluster);
    free(e->elected);
    free(e->prev);
    free(e);
}

static ha_entry *find(rw_ha *ha, const char *tenant, const char *cluster, uint64_t h)
{
    for (ha_entry *e = ha->buckets[h & (ha->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && !strcmp(e->cluster, cluster) && !strcmp(e->tenant, tenant))
            return e;
    return NULL;
}

static int grow(rw_ha *ha)
{
    size_t nb = ha->nbuckets * 2;
    ha_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < ha->nbuckets; i++)
        for (ha_entry *e = ha->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(ha->buckets);
    ha->buckets = b;
    ha->nbuckets = nb;
    return 0;
}

static ha_entry *insert(rw_ha *ha, const char *tenant, const char *cluster, uint64_t h)
{
    if (ha->n >= ha->max_clusters)
        return NULL;
    if (ha->n + 1 > ha->nbuckets && grow(ha) < 0)
        return NULL;
    ha_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->tenant = strdup(tenant)) || !(e->cluster = strdup(cluster))) {
        if (e)
            entry_free(e);
        return NULL;
    }
    e->hash = h;
    e->newest = e->prev_until = e->since = INT64_MIN;
    e->next = ha->buckets[h & (ha->nbuckets - 1)];
    ha->buckets[h & (ha->nbuckets - 1)] = e;
    ha->n++;
    return e;
}

static int set_str(char **dst, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        return -1;
    free(*dst);
    *dst = d;
    return 0;
}

/* ---- standby buffers ---- */

static int labels_eq(const sb_series *x, const rw_label *l, const uint32_t *lens, size_t n)
{
    if (x->nlabels != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (lens && (x->lens[2 * i] != lens[2 * i] || x->lens[2 * i + 1] != lens[2 * i + 1]))
            return 0;
        if (lens ? memcmp(x->labels[i].name, l[i].name, lens[2 * i]) ||
                       memcmp(x->labels[i].value, l[i].value, lens[2 * i + 1])
                 : strcmp(x->labels[i].name, l[i].name) || strcmp(x->labels[i].value, l[i].value))
            return 0;
    }
    return 1;
}

static sb *sb_get(ha_entry *e, const char *replica, int create)
{
    for (sb *b = e->standby; b; b = b->next)
        if (!strcmp(b->replica, replica))
            return b;
    if (!create)
        return NULL;
    sb *b = calloc(1, sizeof *b);
    if (!b || !(b->replica = strdup(replica)) || !(b->b = calloc(64, sizeof *b->b))) {
        if (b)
            free(b->replica);
        free(b);
        return NULL;
    }
    b->nb = 64;
    b->next = e->standby;
    e->standby = b;
    return b;
}

static sb_series *sb_series_get(rw_ha *ha, sb *b, const rw_label *l, const uint32_t *lens,
                                size_t n, uint64_t hash)
{
    for (sb_series *x = b->b[hash & (b->nb - 1)]; x; x = x->next)
        if (x->hash == hash && labels_eq(x, l, lens, n))
            return x;
    size_t bytes = sizeof(sb_series) + n * (sizeof(rw_label) + 2 * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        bytes += (lens ? lens[2 * i] + lens[2 * i + 1] : strlen(l[i].name) + strlen(l[i].value)) + 2;
    if (ha->sb_bytes + bytes > ha->sb_cap)
        return NULL;
    if (b->n + 1 > b->nb) {
        size_t nb = b->nb * 2;
        sb_series **nbk = calloc(nb, sizeof *nbk);
        if (!nbk)
            return NULL;
        for (size_t i = 0; i < b->nb; i++)
            for (sb_series *x = b->b[i], *next; x; x = next) {
                next = x->next;
                x->next = nbk[x->hash & (nb - 1)];
                nbk[x->hash & (nb - 1)] = x;
            }
        free(b->b);
        b->b = nbk;
        b->nb = nb;
    }
    sb_series *x = malloc(bytes);
    if (!x)
        return NULL;
    memset(x, 0, sizeof *x);
    x->hash = hash;
    x->bytes = bytes;
    x->nlabels = n;
    x->labels = (rw_label *)(x + 1);
    x->lens = (uint32_t *)(x->labels + n);
    char *p = (char *)(x->lens + 2 * n);
    for (size_t i = 0; i < n; i++) {
        size_t ln = (lens ? lens[2 * i] : strlen(l[i].name)) + 1;
        size_t lv = (lens ? lens[2 * i + 1] : strlen(l[i].value)) + 1;
        x->lens[2 * i] = (uint32_t)(ln - 1);
        x->lens[2 * i + 1] = (uint32_t)(lv - 1);
        memcpy(p, l[i].name, ln);
        x->labels[i].name = p;
        p += ln;
        memcpy(p, l[i].value, lv);
        x->labels[i].value = p;
        p += lv;
    }
    x->next = b->b[hash & (b->nb - 1)];
    b->b[hash & (b->nb - 1)] = x;
    b->n++;
    ha->sb_bytes += bytes;
    return x;
}

/* Keeps a dropped standby sample the elected replica has not covered. */
static void sb_keep(rw_ha *ha, ha_entry *e, sb **bp, sb_series **xp, const char *replica,
                    const rw_label *l, const uint32_t *lens, size_t n, rw_sample smp)
{
    if (!l || smp.t <= e->newest || !ha->sb_cap)
        return;
    if (!*xp) {
        uint64_t hash = lens ? rw_labels_hash_lens(l, lens, n) : rw_labels_hash(l, n);
        if (!*bp && !(*bp = sb_get(e, replica, 1))) {
            ha->sb_full++;
            return;
        }
        if (!(*xp = sb_series_get(ha, *bp, l, lens, n, hash))) {
            ha->sb_full++;
            return;
        }
    }
    sb_series *x = *xp;
    x->seen_ms = e->seen_ms;
    /* what the elected replica has covered meanwhile is of no use */
    uint32_t k = 0;
    for (uint32_t i = 0; i < x->n; i++)
        if (x->s[i].t > e->newest && x->s[i].t < smp.t)
            x->s[k++] = x->s[i];
    x->n = k;
    if (x->n == SB_MAX) {
        memmove(x->s, x->s + 1, (SB_MAX - 1) * sizeof *x->s);
        x->n--;
    }
    x->s[x->n++] = smp;
}

void rw_ha_backlog_free(rw_ha_backlog *b);

/* Detaches replica's buffer as a backlog of samples newer than `after`. */
static rw_ha_backlog *sb_take(rw_ha *ha, ha_entry *e, const char *replica, int64_t after)
{
    sb **pp = &e->standby;
    while (*pp && strcmp((*pp)->replica, replica))
        pp = &(*pp)->next;
    sb *b = *pp;
    if (!b)
        return NULL;
    *pp = b->next;
    rw_ha_backlog *bl = calloc(1, sizeof *bl);
    if (bl)
        bl->series = calloc(b->n ? b->n : 1, sizeof *bl->series);
    if (!bl || !bl->series) {
        free(bl);
        sb_free(ha, b);
        return NULL;
    }
    /* the nodes move to the backlog (freed by rw_ha_backlog_free): only
       their accounting leaves the buffer now */
    sb_series *keep = NULL;
    for (size_t i = 0; i < b->nb; i++)
        for (sb_series *x = b->b[i], *next; x; x = next) {
            next = x->next;
            ha->sb_bytes -= x->bytes;
            uint32_t k = 0;
            for (uint32_t j = 0; j < x->n; j++)
                if (x->s[j].t > after)
                    x->s[k++] = x->s[j];
            x->n = k;
            x->next = keep;
            keep = x;
            if (k) {
                bl->series[bl->n++] = (rw_ha_backlog_series){x->labels, x->nlabels, x->s, k};
                ha->sb_replayed += k;
            }
        }
    b->nb = 0;
    sb_free(ha, b);
    bl->priv = keep;
    if (!bl->n) {
        rw_ha_backlog_free(bl);
        return NULL;
    }
    return bl;
}

void rw_ha_backlog_free(rw_ha_backlog *b)
{
    if (!b)
        return;
    for (sb_series *x = b->priv, *next; x; x = next) {
        next = x->next;
        free(x);
    }
    free(b->series);
    free(b);
}

void rw_ha_begin(rw_ha *ha, rw_ha_session *s, const char *tenant)
{
    s->ha = ha;
    s->tenant = tenant ? tenant : "";
    s->cluster = NULL;
    s->entry = NULL;
    s->now_ms = rw_now_ms();
    pthread_mutex_lock(&ha->mu);
}

void rw_ha_end(rw_ha_session *s)
{
    pthread_mutex_unlock(&s->ha->mu);
    s->entry = NULL;
}

static void judge_locked(rw_ha *ha, ha_entry *e, const char *tenant, const char *cluster,
                         const char *replica, const rw_label *labels, const uint32_t *lens,
                         size_t nlabels, rw_sample *samples, size_t n, rw_ha_verdict *v);

void rw_ha_judge_in(rw_ha_session *s, const char *cluster, const char *replica,
                    const rw_label *labels, const uint32_t *lens, size_t nlabels,
                    rw_sample *samples, size_t n, rw_ha_verdict *v)
{
    rw_ha *ha = s->ha;
    memset(v, 0, sizeof *v);
    ha_entry *e = s->entry;
    /* the series of a request mostly share their cluster: one lookup */
    if (!e || strcmp(s->cluster, cluster)) {
        uint64_t h = rw_in_pair_hash(s->tenant, cluster);
        e = find(ha, s->tenant, cluster, h);
        if (!e)
            e = insert(ha, s->tenant, cluster, h);
        s->entry = e;
        s->cluster = cluster;
        if (e)
            e->seen_ms = s->now_ms;
    }
    if (!e) { /* table full (or no memory): never lose data, count it */
        ha->untracked += n;
        v->kept = n;
        v->untracked = 1;
        return;
    }
    judge_locked(ha, e, s->tenant, cluster, replica, labels, lens, nlabels, samples, n, v);
}

void rw_ha_judge(rw_ha *ha, const char *tenant, const char *cluster, const char *replica,
                 const rw_label *labels, size_t nlabels, rw_sample *samples, size_t n,
                 rw_ha_verdict *v)
{
    rw_ha_session s;
    rw_ha_begin(ha, &s, tenant);
    rw_ha_judge_in(&s, cluster, replica, labels, NULL, nlabels, samples, n, v);
    rw_ha_end(&s);
}

static void judge_locked(rw_ha *ha, ha_entry *e, const char *tenant, const char *cluster,
                         const char *replica, const rw_label *labels, const uint32_t *lens,
                         size_t nlabels, rw_sample *samples, size_t n, rw_ha_verdict *v)
{
    int is_elected = e->elected && !strcmp(e->elected, replica);
    int is_prev = !is_elected && e->prev && !strcmp(e->prev, replica);
    sb *buf = NULL;
    sb_series *bser = NULL;
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = samples[i].t;
        if (!e->elected) {
            if (set_str(&e->elected, replica) < 0) { /* no memory: pass through */
                samples[keep++] = samples[i];
                continue;
            }
            e->since = e->newest = t;
            is_elected = 1;
            ha->dirty = 1;
        } else if (is_elected) {
            if (t > e->newest)
                e->newest = t;
        } else if (is_prev && t <= e->prev_until) {
            /* the old replica's data from before the failover */
        } else if (t > e->newest && (uint64_t)t - (uint64_t)e->newest > (uint64_t)ha->timeout_ms) {
            /* the elected replica has nothing newer than t - timeout: fail over.
               Its samples up to t are still its own (in-flight data). */
            char *old = e->elected;
            int64_t old_newest = e->newest;
            e->elected = NULL;
            if (set_str(&e->elected, replica) < 0) {
                e->elected = old;
                v->dropped++;
                continue;
            }
            /* what this replica sent while the old one was still in charge
               and that the old one never covered: stored first, no gap */
            v->backlog = sb_take(ha, e, replica, old_newest);
            buf = NULL;
            bser = NULL;
            free(e->prev);
            e->prev = old;
            e->prev_until = t;
            e->since = e->newest = t;
            e->failovers++;
            v->failover = 1;
            is_elected = 1;
            is_prev = 0;
            ha->dirty = 1;
            rw_info("ha: tenant \"%s\" cluster \"%s\": replica \"%s\" takes over from \"%s\" at "
                    "sample time %lld (nothing newer from it than %lld)",
                    tenant, cluster, replica, old, (long long)t, (long long)old_newest);
        } else {
            v->dropped++;
            sb_keep(ha, e, &buf, &bser, replica, labels, lens, nlabels, samples[i]);
            continue;
        }
        samples[keep++] = samples[i];
    }
    e->accepted += keep;
    e->deduped += v->dropped;
    if (keep)
        ha->dirty = 1;
    v->kept = keep;
}

int rw_ha_elected(rw_ha *ha, const char *tenant, const char *cluster, char *buf, size_t cap)
{
    if (!tenant)
        tenant = "";
    int r = 0;
    pthread_mutex_lock(&ha->mu);
    ha_entry *e = find(ha, tenant, cluster, rw_in_pair_hash(tenant, cluster));
    if (e && e->elected) {
        snprintf(buf, cap, "%s", e->elected);
        r = 1;
    }
    pthread_mutex_unlock(&ha->mu);
    return r;
}

void rw_ha_each(rw_ha *ha, void (*fn)(void *ctx, const rw_ha_info *info), void *ctx)
{
    pthread_mutex_lock(&ha->mu);
    for (size_t i = 0; i < ha->nbuckets; i++)
        for (ha_entry *e = ha->buckets[i]; e; e = e->next) {
            rw_ha_info in = {e->tenant, e->cluster, e->elected ? e->elected : "",
                             e->prev ? e->prev : "", e->newest, e->since,
                             e->accepted, e->deduped, e->failovers};
            fn(ctx, &in);
        }
    pthread_mutex_unlock(&ha->mu);
}

void rw_ha_reconfigure(rw_ha *ha, int64_t failover_timeout_ms, size_t max_clusters,
                       size_t buffer_bytes)
{
    pthread_mutex_lock(&ha->mu);
    ha->timeout_ms = failover_timeout_ms > 0 ? failover_timeout_ms : RW_HA_DEFAULT_FAILOVER_MS;
    ha->max_clusters = max_clusters ? max_clusters : RW_HA_DEFAULT_MAX_CLUSTERS;
    ha->sb_cap = buffer_bytes;
    pthread_mutex_unlock(&ha->mu);
}

/* ---- persistence ---- */

/* strings as '.' + percent-encoding of bytes <= ' ', '%' and DEL, so every
 * field is one space-free token and "" is "." */
static void put_str(rw_buf *b, const char *s)
{
    rw_buf_putc(b, '.');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p <= ' ' || *p == '%' || *p == 0x7f)
            rw_buf_printf(b, "%%%02x", *p);
        else
            rw_buf_putc(b, (char)*p);
    }
}

/* decodes one token in place; NULL when malformed */
static char *get_str(char *tok)
{
    if (!tok || tok[0] != '.')
        return NULL;
    char *o = tok, *p = tok + 1;
    while (*p) {
        if (*p == '%') {
            int a = rw_hex_digit(p[1]), b = a >= 0 ? rw_hex_digit(p[2]) : -1;
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                return NULL;
            *o++ = (char)(a * 16 + b);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return tok;
}

static const char HEADER[] = "# rwgate HA elections v1: tenant cluster elected newest_ms previous "
                             "previous_until_ms since_ms failovers\n";

static void render(rw_ha *ha, rw_buf *b)
{
    rw_buf_puts(b, HEADER);
    for (size_t i = 0; i < ha->nbuckets; i++)
        for (ha_entry *e = ha->buckets[i]; e; e = e->next) {
            if (!e->elected)
                continue;
            put_str(b, e->tenant);
            rw_buf_putc(b, ' ');
            put_str(b, e->cluster);
            rw_buf_putc(b, ' ');
            put_str(b, e->elected);
            rw_buf_printf(b, " %lld ", (long long)e->newest);
            put_str(b, e->prev);
            rw_buf_printf(b, " %lld %lld %llu\n", (long long)e->prev_until, (long long)e->since,
                          (unsigned long long)e->failovers);
        }
}

static rw_rc write_atomic(const char *path, const char *data, size_t len, rw_err *err)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 8);
    if (!tmp)
        return rw_err_set(err, RW_NOMEM, "out of memory");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rw_err_set(err, RW_IO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return RW_IO;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rw_err_set(err, RW_IO, "%s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return RW_IO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        rw_err_set(err, RW_IO, "%s: fsync: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return RW_IO;
    }
    if (rename(tmp, path) != 0) {
        rw_err_set(err, RW_IO, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return RW_IO;
    }
    free(tmp);
    /* the rename itself is durable once the directory is synced */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = '\0';
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return RW_OK;
}

/* A standby series not heard from for this long is no longer buffered. */
static int64_t sb_idle_ms(const rw_ha *ha)
{
    int64_t t = 3 * ha->timeout_ms;
    return t > 300000 ? t : 300000;
}

static void sb_sweep(rw_ha *ha, ha_entry *e, int64_t now)
{
    for (sb *b = e->standby; b; b = b->next)
        for (size_t i = 0; i < b->nb; i++) {
            sb_series **pp = &b->b[i];
            while (*pp) {
                sb_series *x = *pp;
                if (now - x->seen_ms > sb_idle_ms(ha)) {
                    *pp = x->next;
                    ha->sb_bytes -= x->bytes;
                    b->n--;
                    free(x);
                } else {
                    pp = &x->next;
                }
            }
        }
}

static void forget_idle(rw_ha *ha, int64_t now)
{
    for (size_t i = 0; i < ha->nbuckets; i++) {
        ha_entry **pp = &ha->buckets[i];
        while (*pp) {
            ha_entry *e = *pp;
            sb_sweep(ha, e, now);
            if (e->seen_ms && now - e->seen_ms > IDLE_FORGET_MS) {
                *pp = e->next;
                entry_free_sb(ha, e);
                entry_free(e);
                ha->n--;
                ha->dirty = 1;
            } else {
                pp = &e->next;
            }
        }
    }
}

rw_rc rw_ha_persist(rw_ha *ha, rw_err *err)
{
    if (!ha->state_path)
        return RW_OK;
    rw_buf b;
    rw_buf_init(&b, 0);
    pthread_mutex_lock(&ha->mu);
    forget_idle(ha, rw_now_ms());
    if (!ha->dirty) {
        pthread_mutex_unlock(&ha->mu);
        return RW_OK;
    }
    render(ha, &b);
    ha->dirty = 0;
    pthread_mutex_unlock(&ha->mu);
    if (b.failed) {
        rw_buf_free(&b);
        pthread_mutex_lock(&ha->mu);
        ha->dirty = 1;
        pthread_mutex_unlock(&ha->mu);
        return rw_err_set(err, RW_NOMEM, "out of memory");
    }
    rw_rc rc = write_atomic(ha->state_path, b.p, b.len, err);
    rw_buf_free(&b);
    if (rc != RW_OK) {
        pthread_mutex_lock(&ha->mu);
        ha->dirty = 1; /* try again next time */
        pthread_mutex_unlock(&ha->mu);
    }
    return rc;
}

static rw_rc load(rw_ha *ha, rw_err *err)
{
    FILE *f = fopen(ha->state_path, "r");
    if (!f) {
        if (errno == ENOENT)
            return RW_OK;
        return rw_err_set(err, RW_IO, "%s: %s", ha->state_path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    rw_rc rc = RW_OK;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL;
        char *tok[8];
        int nt = 0;
        for (char *t = strtok_r(line, " \n", &save); t && nt < 8; t = strtok_r(NULL, " \n", &save))
            tok[nt++] = t;
        char *tenant = nt == 8 ? get_str(tok[0]) : NULL, *cluster = nt == 8 ? get_str(tok[1]) : NULL;
        char *elected = nt == 8 ? get_str(tok[2]) : NULL, *prev = nt == 8 ? get_str(tok[4]) : NULL;
        if (!tenant || !cluster || !elected || !prev || !*elected) {
            rc = rw_err_set(err, RW_BADREQ, "%s:%d: malformed HA election record", ha->state_path,
                            lineno);
            break;
        }
        uint64_t h = rw_in_pair_hash(tenant, cluster);
        ha_entry *e = find(ha, tenant, cluster, h);
        if (!e && !(e = insert(ha, tenant, cluster, h))) {
            rc = rw_err_set(err, RW_NOMEM, "%s:%d: cannot hold more HA elections",
                            ha->state_path, lineno);
            break;
        }
        if (set_str(&e->elected, elected) < 0 || set_str(&e->prev, *prev ? prev : NULL) < 0) {
            rc = rw_err_set(err, RW_NOMEM, "out of memory");
            break;
        }
        e->newest = strtoll(tok[3], NULL, 10);
        e->prev_until = strtoll(tok[5], NULL, 10);
        e->since = strtoll(tok[6], NULL, 10);
        e->failovers = strtoull(tok[7], NULL, 10);
        e->seen_ms = rw_now_ms();
    }
    free(line);
    fclose(f);
    return rc;
}

static void *persist_loop(void *arg)
{
    rw_ha *ha = arg;
    pthread_mutex_lock(&ha->mu);
    while (!ha->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += PERSIST_INTERVAL_MS / 1000;
        pthread_cond_timedwait(&ha->cv, &ha->mu, &ts);
        if (ha->stop)
            break;
        pthread_mutex_unlock(&ha->mu);
        rw_err e;
        rw_err_init(&e);
        if (rw_ha_persist(ha, &e) != RW_OK)
            rw_warn("ha: persisting elections failed (will retry): %s", e.msg);
        pthread_mutex_lock(&ha->mu);
    }
    pthread_mutex_unlock(&ha->mu);
    return NULL;
}

/* /metrics: per (tenant, cluster) counters, rendered from the table */
static void collect(void *ctx, rw_buf *out)
{
    rw_ha *ha = ctx;
    static const struct {
        const char *name, *help;
        int what;
    } fam[] = {
        {"rwgate_ha_samples_accepted_total", "Samples of series with a replica label accepted, "
                                             "per tenant and cluster.", 0},
        {"rwgate_ha_samples_deduplicated_total", "Samples dropped because their replica was not "
                                                 "elected for their time, per tenant and cluster.", 1},
        {"rwgate_ha_failovers_total", "Elections that moved to another replica, per tenant and "
                                      "cluster.", 2},
        {"rwgate_ha_elected_replica", "The elected replica per tenant and cluster (value 1).", 3},
    };
    pthread_mutex_lock(&ha->mu);
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        rw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
                      fam[f].what == 3 ? "gauge" : "counter");
        for (size_t i = 0; i < ha->nbuckets; i++)
            for (ha_entry *e = ha->buckets[i]; e; e = e->next) {
                if (fam[f].what == 3 && !e->elected)
                    continue;
                rw_buf_printf(out, "%s{tenant=", fam[f].name);
                rw_metrics_quote(out, e->tenant);
                rw_buf_puts(out, ",cluster=");
                rw_metrics_quote(out, e->cluster);
                if (fam[f].what == 3) {
                    rw_buf_puts(out, ",replica=");
                    rw_metrics_quote(out, e->elected);
                }
                uint64_t v = fam[f].what == 0 ? e->accepted : fam[f].what == 1 ? e->deduped
                             : fam[f].what == 2 ? e->failovers : 1;
                rw_buf_printf(out, "} %llu\n", (unsigned long long)v);
            }
    }
    rw_buf_printf(out, "# HELP rwgate_ha_untracked_samples_total Samples with a replica label "
                       "passed through undeduplicated because the HA table was full.\n"
                       "# TYPE rwgate_ha_untracked_samples_total counter\n"
                       "rwgate_ha_untracked_samples_total %llu\n"
                       "# HELP rwgate_ha_clusters Tenant and cluster pairs tracked by HA dedup.\n"
                       "# TYPE rwgate_ha_clusters gauge\nrwgate_ha_clusters %zu\n"
                       "# HELP rwgate_ha_standby_buffer_bytes Standby samples kept for a gapless "
                       "failover, bytes.\n# TYPE rwgate_ha_standby_buffer_bytes gauge\n"
                       "rwgate_ha_standby_buffer_bytes %zu\n"
                       "# HELP rwgate_ha_standby_buffer_full_total Standby samples not kept "
                       "because the buffer was full (a failover may leave a gap).\n"
                       "# TYPE rwgate_ha_standby_buffer_full_total counter\n"
                       "rwgate_ha_standby_buffer_full_total %llu\n"
                       "# HELP rwgate_ha_standby_replayed_samples_total Buffered standby samples "
                       "stored at failovers.\n# TYPE rwgate_ha_standby_replayed_samples_total "
                       "counter\nrwgate_ha_standby_replayed_samples_total %llu\n",
                  (unsigned long long)ha->untracked, ha->n, ha->sb_bytes,
                  (unsigned long long)ha->sb_full, (unsigned long long)ha->sb_replayed);
    pthread_mutex_unlock(&ha->mu);
}

rw_ha *rw_ha_open(const rw_ha_opts *o, rw_err *err)
{
    rw_ha *ha = calloc(1, sizeof *ha);
    if (!ha) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ha->mu, NULL);
    pthread_cond_init(&ha->cv, NULL);
    ha->nbuckets = 64;
    ha->buckets = calloc(ha->nbuckets, sizeof *ha->buckets);
    ha->timeout_ms = o->failover_timeout_ms > 0 ? o->failover_timeout_ms : RW_HA_DEFAULT_FAILOVER_MS;
    ha->max_clusters = o->max_clusters ? o->max_clusters : RW_HA_DEFAULT_MAX_CLUSTERS;
    ha->sb_cap = o->buffer_bytes;
    if (!ha->buckets || (o->state_path && !(ha->state_path = strdup(o->state_path)))) {
        rw_ha_close(ha);
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    if (ha->state_path) {
        if (load(ha, err) != RW_OK) {
            rw_ha_close(ha);
            return NULL;
        }
        if (ha->n)
            rw_info("ha: %zu elections restored from %s", ha->n, ha->state_path);
        if (pthread_create(&ha->thr, NULL, persist_loop, ha) == 0)
            ha->thr_started = 1;
    }
    if (o->metrics)
        rw_metrics_add_collector(o->metrics, collect, ha);
    return ha;
}

void rw_ha_close(rw_ha *ha)
{
    if (!ha)
        return;
    if (ha->thr_started) {
        pthread_mutex_lock(&ha->mu);
        ha->stop = 1;
        pthread_cond_signal(&ha->cv);
        pthread_mutex_unlock(&ha->mu);
        pthread_join(ha->thr, NULL);
    }
    if (ha->state_path && ha->buckets) {
        rw_err e;
        rw_err_init(&e);
        if (rw_ha_persist(ha, &e) != RW_OK)
            rw_warn("ha: persisting elections at shutdown failed: %s", e.msg);
    }
    for (size_t i = 0; ha->buckets && i < ha->nbuckets; i++)
        for (ha_entry *e = ha->buckets[i], *next; e; e = next) {
            next = e->next;
            entry_free_sb(ha, e);
            entry_free(e);
        }
    free(ha->buckets);
    free(ha->state_path);
    pthread_cond_destroy(&ha->cv);
    pthread_mutex_destroy(&ha->mu);
    free(ha);
}
