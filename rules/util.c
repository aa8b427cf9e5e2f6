/* util.c - small pieces the rules layer shares: diagnostics lists, YAML
 * a label builder with
 * Prometheus' "empty value deletes" rule, the set of series a rule wrote,
 * and the Go formats the API and notifier reproduce (strconv 'e' floats,
 * url.QueryEscape, time.Time JSON). */
#include "rules_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- diagnostics ---- */

void rules_diag_add(rules_diag *d, int warning, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!warning)
        d->nerrors++;
    char **nm = realloc(d->msg, (d->n + 1) * sizeof *nm);
    if (!nm)
        return;
    d->msg = nm;
    int *nw = realloc(d->is_warning, (d->n + 1) * sizeof *nw);
    if (!nw)
        return;
    d->is_warning = nw;
    d->msg[d->n] = strdup(buf);
    if (!d->msg[d->n])
        return;
    d->is_warning[d->n] = warning;
    d->n++;
}

void rules_diag_free(rules_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->msg[i]);
    free(d->msg);
    free(d->is_warning);
    memset(d, 0, sizeof *d);
}

/* ---- label builder ---- */

int lb_init(lbuild *b, rw_arena *a, const rw_label *from, size_t n, size_t extra)
{
    b->a = a;
    b->cap = n + extra + 4;
    b->n = n;
    b->l = rw_arena_alloc(a, b->cap * sizeof *b->l);
    if (!b->l)
        return -1;
    if (n)
        memcpy(b->l, from, n * sizeof *from);
    return 0;
}

void lb_del(lbuild *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->l[i].name, name) == 0) {
            memmove(&b->l[i], &b->l[i + 1], (b->n - i - 1) * sizeof *b->l);
            b->n--;
            return;
        }
}

int lb_set(lbuild *b, const char *name, const char *value)
{
    if (!value || !*value) {
        lb_del(b, name);
        return 0;
    }
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->l[i].name, name) == 0) {
            b->l[i].value = value;
            return 0;
        }
    if (b->n == b->cap) {
        rw_label *nl = rw_arena_realloc(b->a, b->l, b->cap * sizeof *nl, 2 * b->cap * sizeof *nl);
        if (!nl)
            return -1;
        b->l = nl;
        b->cap *= 2;
    }
    b->l[b->n].name = name;
    b->l[b->n].value = value;
    b->n++;
    return 0;
}

void lb_sort(lbuild *b) { rw_labels_sort(b->l, b->n); }

/* ---- series sets ---- */

int sset_init(series_set *s)
{
    memset(s, 0, sizeof *s);
    /* small blocks: every rule keeps one set, most hold a few series */
    s->arena = rw_arena_new(4096, 0);
    return s->arena ? 0 : -1;
}

void sset_free(series_set *s)
{
    rw_arena_free(s->arena);
    free(s->tab);
    memset(s, 0, sizeof *s);
}

static sset_ent *sset_find(const series_set *s, const rw_label *l, size_t n, uint64_t h)
{
    if (!s->cap)
        return NULL;
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        sset_ent *e = &s->tab[i];
        if (!e->labels)
            return e;
        if (e->hash == h && rw_labels_equal(e->labels, e->nlabels, l, n))
            return e;
    }
}

int sset_has(const series_set *s, const rw_label *l, size_t n, uint64_t h)
{
    sset_ent *e = sset_find(s, l, n, h);
    return e && e->labels;
}

int sset_add(series_set *s, const rw_label *l, size_t n, uint64_t h)
{
    if (!s->arena && sset_init(s) != 0)
        return -1;
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        sset_ent *nt = calloc(nc, sizeof *nt);
        if (!nt)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->tab[i].labels)
                continue;
            size_t j = s->tab[i].hash & (nc - 1);
            while (nt[j].labels)
                j = (j + 1) & (nc - 1);
            nt[j] = s->tab[i];
        }
        free(s->tab);
        s->tab = nt;
        s->cap = nc;
    }
    sset_ent *e = sset_find(s, l, n, h);
    if (e->labels)
        return 0;
    rw_label *c = rw_arena_alloc(s->arena, (n ? n : 1) * sizeof *c);
    if (!c)
        return -1;
    for (size_t i = 0; i < n; i++) {
        c[i].name = rw_arena_strdup(s->arena, l[i].name);
        c[i].value = rw_arena_strdup(s->arena, l[i].value);
        if (!c[i].name || !c[i].value)
            return -1;
    }
    e->hash = h;
    e->labels = c;
    e->nlabels = n;
    s->n++;
    return 0;
}

/* ---- rule results ---- */

size_t rules_result_len(const rw_result *res)
{
    return res->type == RW_VAL_SCALAR ? 1 : res->nseries;
}

void rules_result_sample(const rw_result *res, size_t i, const rw_label **l, size_t *n, double *v)
{
    if (res->type == RW_VAL_VECTOR) {
        *l = res->series[i].labels;
        *n = res->series[i].nlabels;
        *v = res->series[i].points[0].v;
    } else { /* a scalar: one sample without labels, as Prometheus' rule query */
        *l = NULL;
        *n = 0;
        *v = res->scalar;
    }
}

/* ---- Go formats ---- */

void rules_fmt_float_e(double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* the shortest precision that reads back, as strconv's -1 precision;
       C's %e writes at least two exponent digits, like Go */
    for (int prec = 0; prec < 17; prec++) {
        snprintf(out, cap, "%.*e", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
    snprintf(out, cap, "%.16e", v);
}

void rules_fmt_float_json(double v, char *out, size_t cap)
{
    if (v == 0 || !isfinite(v)) {
        snprintf(out, cap, isnan(v) ? "NaN" : v == 0 ? "0" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    double a = fabs(v);
    char e[40];
    rules_fmt_float_e(v, e, sizeof e); /* shortest digits: [-]d.ddde[+-]XX */
    if (a < 1e-6 || a >= 1e21) {
        /* encoding/json: exponent form with "e-07" written as "e-7" */
        char *x = strchr(e, 'e');
        if (x && (x[1] == '-' || x[1] == '+') && x[2] == '0' && x[3])
            memmove(x + 2, x + 3, strlen(x + 3) + 1);
        snprintf(out, cap, "%s", e);
        return;
    }
    /* digits and decimal exponent, laid out without an exponent */
    char digits[32];
    size_t nd = 0;
    const char *p = e;
    int neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd + 1 < sizeof digits)
            digits[nd++] = *p;
    int exp10 = atoi(p + 1); /* value = d.ddd x 10^exp10 */
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    rw_buf b;
    rw_buf_init(&b, 0);
    if (neg)
        rw_buf_putc(&b, '-');
    int point = exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        rw_buf_puts(&b, "0.");
        for (int i = 0; i < -point; i++)
            rw_buf_putc(&b, '0');
        rw_buf_append(&b, digits, nd);
    } else {
        for (int i = 0; i < point; i++)
            rw_buf_putc(&b, (size_t)i < nd ? digits[i] : '0');
        if ((size_t)point < nd) {
            rw_buf_putc(&b, '.');
            rw_buf_append(&b, digits + point, nd - (size_t)point);
        }
    }
    snprintf(out, cap, "%s", b.p ? b.p : "0");
    rw_buf_free(&b);
}

void rules_query_escape(rw_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            rw_buf_putc(b, (char)c);
        else if (c == ' ')
            rw_buf_putc(b, '+');
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rw_buf_append(b, e, 3);
        }
    }
}

void rules_fmt_time(int64_t ms, char *out, size_t cap)
{
    if (ms == RW_TIME_UNSET) {
        snprintf(out, cap, "0001-01-01T00:00:00Z");
        return;
    }
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - sec * 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        char f[8];
        snprintf(f, sizeof f, ".%03d", frac);
        size_t fl = strlen(f);
        while (f[fl - 1] == '0')
            f[--fl] = '\0';
        snprintf(out + n, cap - n, "%sZ", f);
    } else {
        snprintf(out + n, cap - n, "Z");
    }
}

/* ---- environment ---- */

rules_env *rules_env_new(const rw_label *ext, size_t next, const char *url, int64_t offset)
{
    rules_env *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    atomic_store(&e->refs, 1);
    e->default_query_offset_ms = offset;
    e->external_url = strdup(url ? url : "");
    e->ext = calloc(next ? next : 1, sizeof *e->ext);
    if (!e->external_url || !e->ext)
        goto fail;
    for (size_t i = 0; i < next; i++) {
        e->ext[i].name = strdup(ext[i].name);
        e->ext[i].value = strdup(ext[i].value);
        e->next = i + 1;
        if (!e->ext[i].name || !e->ext[i].value)
            goto fail;
    }
    rw_labels_sort(e->ext, e->next);
    return e;
fail:
    rules_env_unref(e);
    return NULL;
}

void rules_env_ref(rules_env *e) { atomic_fetch_add(&e->refs, 1); }

void rules_env_unref(rules_env *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    for (size_t i = 0; i < e->next; i++) {
        free((char *)e->ext[i].name);
        free((char *)e->ext[i].value);
    }
    free(e->ext);
    free(e->external_url);
    free(e);
}

rules_env *rules_ctx_env(rules_ctx *c)
{
    pthread_mutex_lock(&c->env_mu);
    rules_env *e = c->env;
    rules_env_ref(e);
    pthread_mutex_unlock(&c->env_mu);
    return e;
}

const char *rules_alert_state_str(int s)
{
    switch (s) {
    case ALERT_INACTIVE: return "inactive";
    case ALERT_PENDING: return "pending";
    case ALERT_FIRING: return "firing";
    default: return "unknown";
    }
}
