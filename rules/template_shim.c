/* template_shim.c - SHIM (rules branch only; delete on merging the "notify"
 * helper's rules/template.c).
 *
 * A deliberately small stand-in for the template engine so the rule engine
 * can be built and tested before the real one lands: literal text plus
 * {{ $labels.NAME }}, {{ $value }}, {{ $externalLabels.NAME }},
 * {{ $externalURL }} (and the .Labels/.Value/.ExternalLabels/.ExternalURL
 * forms), with {{- / -}} trimming. Anything else is a parse error. */
#include "template.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/json.h"

enum { P_TEXT, P_LABEL, P_VALUE, P_EXT, P_URL };

typedef struct piece {
    int kind;
    char *s; /* text, or the label name */
} piece;

struct rw_tmpl {
    piece *p;
    size_t n;
};

void rw_tmpl_free(rw_tmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->p[i].s);
    free(t->p);
    free(t);
}

static int add(rw_tmpl *t, int kind, const char *s, size_t n)
{
    piece *np = realloc(t->p, (t->n + 1) * sizeof *np);
    if (!np)
        return -1;
    t->p = np;
    t->p[t->n].kind = kind;
    t->p[t->n].s = strndup(s, n);
    if (!t->p[t->n].s)
        return -1;
    t->n++;
    return 0;
}

static int ident(char c) { return isalnum((unsigned char)c) || c == '_'; }

rw_tmpl *rw_tmpl_parse(const char *name, const char *text, rw_err *err)
{
    rw_tmpl *t = calloc(1, sizeof *t);
    if (!t) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return NULL;
    }
    const char *p = text;
    int line = 1;
    while (*p) {
        const char *open = strstr(p, "{{");
        size_t tl = open ? (size_t)(open - p) : strlen(p);
        const char *close = open ? strstr(open + 2, "}}") : NULL;
        if (open && !close) {
            rw_err_set(err, RW_BADREQ, "template: %s:%d: unclosed action", name, line);
            goto fail;
        }
        const char *a = open ? open + 2 : NULL, *e = close;
        if (a && *a == '-' && a[1] == ' ') {
            a++;
            while (tl > 0 && isspace((unsigned char)p[tl - 1]))
                tl--;
        }
        if (tl && add(t, P_TEXT, p, tl) != 0)
            goto nomem;
        for (const char *q = p; q < p + tl; q++)
            line += *q == '\n';
        if (!open)
            break;
        int trim_after = e - a >= 2 && e[-1] == '-' && e[-2] == ' ';
        if (trim_after)
            e--;
        while (a < e && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            e--;
        size_t n = (size_t)(e - a);
        static const struct {
            const char *prefix;
            int kind, named;
        } forms[] = {{"$labels.", P_LABEL, 1},       {".Labels.", P_LABEL, 1},
                     {"$externalLabels.", P_EXT, 1}, {".ExternalLabels.", P_EXT, 1},
                     {"$value", P_VALUE, 0},         {".Value", P_VALUE, 0},
                     {"$externalURL", P_URL, 0},     {".ExternalURL", P_URL, 0}};
        int ok = 0;
        for (size_t f = 0; f < sizeof forms / sizeof forms[0] && !ok; f++) {
            size_t pl = strlen(forms[f].prefix);
            if (n < pl || strncmp(a, forms[f].prefix, pl) != 0)
                continue;
            if (!forms[f].named) {
                if (n != pl)
                    continue;
                if (add(t, forms[f].kind, "", 0) != 0)
                    goto nomem;
                ok = 1;
                break;
            }
            const char *nm = a + pl;
            size_t nl = n - pl;
            if (nl == 0)
                continue;
            for (size_t i = 0; i < nl; i++)
                if (!ident(nm[i]))
                    nl = 0;
            if (nl == 0)
                continue;
            if (add(t, forms[f].kind, nm, n - pl) != 0)
                goto nomem;
            ok = 1;
        }
        if (!ok) {
            rw_err_set(err, RW_BADREQ,
                       "template: %s:%d: unsupported action {{%.*s}} (template shim: only "
                       "$labels.x, $value, $externalLabels.x, $externalURL)",
                       name, line, (int)n, a);
            goto fail;
        }
        p = close + 2;
        if (trim_after)
            while (isspace((unsigned char)*p))
                p++;
    }
    return t;
nomem:
    rw_err_set(err, RW_NOMEM, "out of memory");
fail:
    rw_tmpl_free(t);
    return NULL;
}

rw_rc rw_tmpl_exec(const rw_tmpl *t, const rw_tmpl_data *d, rw_arena *a, char **out, rw_err *err)
{
    rw_buf b;
    rw_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < t->n; i++) {
        const piece *pc = &t->p[i];
        const char *v = NULL;
        char num[40];
        switch (pc->kind) {
        case P_TEXT: v = pc->s; break;
        case P_LABEL: v = rw_labels_get(d->labels, d->nlabels, pc->s); break;
        case P_EXT: v = rw_labels_get(d->external_labels, d->nexternal, pc->s); break;
        case P_URL: v = d->external_url; break;
        case P_VALUE:
            rw_fmt_float_g(d->value, num);
            v = num;
            break;
        }
        rw_buf_puts(&b, v ? v : "");
    }
    if (b.failed) {
        rw_buf_free(&b);
        return rw_err_set(err, RW_LIMIT, "template output too large");
    }
    *out = rw_arena_strdup(a, b.p ? b.p : "");
    rw_buf_free(&b);
    return *out ? RW_OK : rw_err_set(err, RW_NOMEM, "out of memory");
}
