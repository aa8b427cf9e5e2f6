/* relabel.c - Prometheus relabel_config rules (see relabel.h): the config
 * table and its per-action validation, and rw_relabel_apply, which runs a
 * list of rules over one label set. It sits on the ingest path (the relabel
 * stage, once per series) and in the rules layer (alert relabeling).
 *
 * rw_relabel_apply works like Prometheus' labels.Builder: the input set is
 * the base and is never written; a label set by a rule goes to an "add"
 * list (in the order rules set it; a removed entry stays as a tombstone so
 * that positions hold), a label removed or overridden is marked in a
 * per-base-label byte. Past a few added labels (a labelmap over a wide
 * series) the add list gets a hash index by name, so rules stay linear in
 * the number of labels rather than quadratic. Rules that walk all labels
 * (labelmap, labeldrop, labelkeep) walk a snapshot in Builder.Range's
 * order - surviving base labels, then added labels in insertion order - so
 * that when two labels map onto one name the same one wins as in
 * Prometheus. Only when something changed is a new sorted array built in
 * the arena; an untouched series costs no allocation. All scratch lives in
 * the state and is reused. */
#include "relabel.h"

#include <locale.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>
#include <xxhash.h>
#include "buf.h"
#include "regex.h"
#include "text.h"

const char *const rw_relabel_action_names[] = {
    "replace", "keep", "drop", "keepequal", "dropequal", "hashmod",
    "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase", NULL,
};

/* derived flags */
enum {
    F_TARGET_VAR = 1,    /* target_label contains '$' */
    F_REPL_VAR = 2,      /* replacement contains '$' */
    F_REGEX_DEFAULT = 4, /* regex is "(.*)" */
    F_REPL_WHOLE = 8,    /* replacement "$1" with regex "(.*)": the value itself */
};

#define SCRATCH_CAP (1u << 20) /* joined values and expansions */

static const rw_cfg_key relabel_keys[] = {
    {"source_labels", RW_CFG_STRINGS, offsetof(rw_relabel_config, source_labels), NULL, 0, 0,
     RW_CFG_RELOAD, "Labels whose values are joined with the separator and matched.", NULL,
     NULL},
    {"separator", RW_CFG_STRING, offsetof(rw_relabel_config, separator), ";", 0, 0,
     RW_CFG_RELOAD, "Placed between the source label values.", NULL, NULL},
    {"regex", RW_CFG_REGEX, offsetof(rw_relabel_config, regex), "(.*)", 0, 0, RW_CFG_RELOAD,
     "Regular expression (RE2 syntax, fully anchored) matched against the joined value.",
     NULL, NULL},
    {"modulus", RW_CFG_INT, offsetof(rw_relabel_config, modulus), "0", 0, 0, RW_CFG_RELOAD,
     "Modulus of the hash of the joined value (hashmod).", NULL, NULL},
    {"target_label", RW_CFG_STRING, offsetof(rw_relabel_config, target_label), NULL, 0, 0,
     RW_CFG_RELOAD, "Label written by replace, hashmod, lowercase and uppercase.", NULL, NULL},
    {"replacement", RW_CFG_STRING, offsetof(rw_relabel_config, replacement), "$1", 0, 0,
     RW_CFG_RELOAD, "Value written by replace ($1, ${name} expand the regex groups).", NULL,
     NULL},
    {"action", RW_CFG_ENUM, offsetof(rw_relabel_config, action), "replace", 0, 0,
     RW_CFG_RELOAD, "What the rule does.", NULL, rw_relabel_action_names},
};

const rw_cfg_table rw_relabel_config_table =
    RW_CFG_TABLE("relabel_config", rw_relabel_config, relabel_keys,
                 (rw_cfg_check_fn)rw_relabel_config_validate, NULL);

/* ---- validation ---- */

static int name_valid(const char *s)
{
    return s && *s && rw_utf8_valid(s, strlen(s));
}

rw_rc rw_relabel_config_validate(rw_relabel_config *c, rw_err *err)
{
    int act = c->action;
    if (act < RW_RELABEL_REPLACE || act > RW_RELABEL_UPPERCASE)
        return rw_err_set(err, RW_BADREQ, "unknown relabel action");
    const char *an = rw_relabel_action_names[act];
    const char *sep = c->separator ? c->separator : "";
    const char *tl = c->target_label ? c->target_label : "";
    const char *repl = c->replacement ? c->replacement : "";
    const char *rsrc = c->regex.src ? c->regex.src : "";
    if (!c->regex.re)
        return rw_err_set(err, RW_BADREQ, "regex: not compiled");
    for (size_t i = 0; i < c->source_labels.n; i++)
        if (!name_valid(c->source_labels.v[i]))
            return rw_err_set(err, RW_BADREQ, "source_labels: \"%.64s\" is not a valid label name",
                              c->source_labels.v[i]);
    if (act == RW_RELABEL_HASHMOD && c->modulus <= 0)
        return rw_err_set(err, RW_BADREQ,
                          "relabel configuration for hashmod requires non-zero modulus");
    if (c->modulus < 0)
        return rw_err_set(err, RW_BADREQ, "modulus must not be negative");
    int needs_target = act == RW_RELABEL_REPLACE || act == RW_RELABEL_HASHMOD ||
                       act == RW_RELABEL_LOWERCASE || act == RW_RELABEL_UPPERCASE ||
                       act == RW_RELABEL_KEEPEQUAL || act == RW_RELABEL_DROPEQUAL;
    if (needs_target && !*tl)
        return rw_err_set(err, RW_BADREQ,
                          "relabel configuration for %s action requires 'target_label' value", an);
    /* with UTF-8 names a target with $variables is valid whenever it is a
       valid name as written; without, it must be one */
    if ((needs_target || act == RW_RELABEL_REPLACE) && !name_valid(tl))
        return rw_err_set(err, RW_BADREQ, "\"%.64s\" is invalid 'target_label' for %s action", tl,
                          an);
    int fixed_repl = act == RW_RELABEL_LOWERCASE || act == RW_RELABEL_UPPERCASE ||
                     act == RW_RELABEL_KEEPEQUAL || act == RW_RELABEL_DROPEQUAL;
    if (fixed_repl && strcmp(repl, "$1") != 0)
        return rw_err_set(err, RW_BADREQ, "'replacement' can not be set for %s action", an);
    if (act == RW_RELABEL_LABELMAP && !name_valid(repl))
        return rw_err_set(err, RW_BADREQ, "\"%.64s\" is invalid 'replacement' for %s action",
                          repl, an);
    if (act == RW_RELABEL_KEEPEQUAL || act == RW_RELABEL_DROPEQUAL) {
        if (strcmp(rsrc, "(.*)") != 0 || c->modulus != 0 || strcmp(sep, ";") != 0)
            return rw_err_set(err, RW_BADREQ,
                              "%s action requires only 'source_labels' and `target_label`, and "
                              "no other fields", an);
    }
    if (act == RW_RELABEL_LABELDROP || act == RW_RELABEL_LABELKEEP) {
        if (c->source_labels.n || *tl || c->modulus != 0 || strcmp(sep, ";") != 0 ||
            strcmp(repl, "$1") != 0)
            return rw_err_set(err, RW_BADREQ,
                              "%s action requires only 'regex', and no other fields", an);
    }
    if (!rw_utf8_valid(sep, strlen(sep)) || !rw_utf8_valid(repl, strlen(repl)))
        return rw_err_set(err, RW_BADREQ, "separator and replacement must be valid UTF-8");
    c->flags = 0;
    if (strchr(tl, '$'))
        c->flags |= F_TARGET_VAR;
    if (strchr(repl, '$'))
        c->flags |= F_REPL_VAR;
    if (strcmp(rsrc, "(.*)") == 0)
        c->flags |= F_REGEX_DEFAULT;
    if ((c->flags & F_REGEX_DEFAULT) && (!strcmp(repl, "$1") || !strcmp(repl, "${1}")))
        c->flags |= F_REPL_WHOLE;
    rw_regex_first_bytes(c->regex.re, c->first);
    c->sep_len = strlen(sep);
    c->target_len = strlen(tl);
    c->repl_len = strlen(repl);
    return RW_OK;
}

/* ---- state ---- */

/* A rule's outcome for one input (a joined value, or a label name for the
 * rules that walk names). Keys point at request memory (labels, arena), so
 * entries are only valid within one generation = one request. */
#define MEMO_SLOTS 2048

#define NHINTS 64

typedef struct hint {
    const char *name;     /* a configuration string */
    size_t pos;
} hint;

typedef struct memo {
    const rw_relabel_config *rule;
    const char *key;
    uint32_t klen, gen;
    int8_t matched;       /* keep/drop/replace/label rules: the regex matched */
    const char *a, *b;    /* replace: target (NULL = invalid), value;
                             labelmap: the new name; case/hashmod: the value */
} memo;

struct rw_relabel_state {
    rw_regex_md *md;
    rw_buf join, exp;
    EVP_MD_CTX *md5;
    /* builder */
    const rw_label *base;
    const uint32_t *blens;  /* name/value lengths of base, or NULL */
    size_t nbase;
    uint8_t *bdel;        /* base label i removed or overridden */
    size_t bdel_cap;
    size_t ndel;          /* number of bdel set */
    rw_label *add;        /* value NULL: removed (a tombstone) */
    size_t nadd, add_cap; /* slots, tombstones included */
    uint32_t *aidx;       /* hash index of add by name: slot + 1, 0 = empty */
    size_t aidx_n;        /* its size in use (power of 2; 0 = no index yet) */
    size_t aidx_cap;
    rw_label *snap;       /* Range snapshot */
    uint32_t *snaplen;    /* its name lengths */
    size_t snap_cap, snaplen_cap;
    int rule;             /* decided the last drop / failure */
    /* per-request memo of rule outcomes (rw_relabel_state_begin): the
       series of one request repeat their label names and most values */
    memo *memo;
    uint32_t gen;         /* 0 = memo off */
    hint hints[NHINTS];   /* last base position of config label names */
    uint8_t bfirst[32];   /* first bytes of the base's names */
};

rw_relabel_state *rw_relabel_state_new(void)
{
    rw_relabel_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    rw_buf_init(&st->join, SCRATCH_CAP);
    rw_buf_init(&st->exp, SCRATCH_CAP);
    st->md = rw_regex_md_new(9);
    st->md5 = EVP_MD_CTX_new();
    if (!st->md || !st->md5) {
        rw_relabel_state_free(st);
        return NULL;
    }
    return st;
}

void rw_relabel_state_free(rw_relabel_state *st)
{
    if (!st)
        return;
    rw_regex_md_free(st->md);
    rw_buf_free(&st->join);
    rw_buf_free(&st->exp);
    EVP_MD_CTX_free(st->md5);
    free(st->bdel);
    free(st->add);
    free(st->aidx);
    free(st->snap);
    free(st->snaplen);
    free(st->memo);
    free(st);
}

int rw_relabel_state_rule(const rw_relabel_state *st)
{
    return st->rule;
}

void rw_relabel_state_begin(rw_relabel_state *st)
{
    if (!st->memo && !(st->memo = calloc(MEMO_SLOTS, sizeof *st->memo)))
        return; /* no memo: slower, same results */
    if (++st->gen == 0) { /* wrapped: old entries must not match */
        memset(st->memo, 0, MEMO_SLOTS * sizeof *st->memo);
        st->gen = 1;
    }
}

static memo *memo_slot(rw_relabel_state *st, const rw_relabel_config *c, const char *k, size_t n)
{
    uint64_t h = XXH3_64bits_withSeed(k, n, (uint64_t)(uintptr_t)c);
    return &st->memo[h & (MEMO_SLOTS - 1)];
}

/* The memo entry for (rule, key) when present, else NULL with *slot set for
 * memo_put (NULL when the memo is off). */
static const memo *memo_get(rw_relabel_state *st, const rw_relabel_config *c, const char *k,
                            size_t n, memo **slot)
{
    *slot = NULL;
    if (!st->gen)
        return NULL;
    memo *m = memo_slot(st, c, k, n);
    if (m->gen == st->gen && m->rule == c && m->klen == n && !memcmp(m->key, k, n))
        return m;
    *slot = m;
    return NULL;
}

/* Records an outcome; key must live as long as the request (copied into
 * the arena when it is the join scratch). */
static void memo_put(rw_relabel_state *st, memo *slot, const rw_relabel_config *c, const char *k,
                     size_t n, rw_arena *a, int matched, const char *x, const char *y)
{
    if (!slot)
        return;
    if (st->join.p && k >= st->join.p && k < st->join.p + st->join.alloc &&
        !(k = rw_arena_strndup(a, k, n)))
        return;
    slot->rule = c;
    slot->key = k;
    slot->klen = (uint32_t)n;
    slot->gen = st->gen;
    slot->matched = (int8_t)matched;
    slot->a = x;
    slot->b = y;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* ---- the builder ---- */

/* strcmp with the first byte compared inline: label names mostly differ
 * there, and this runs several times per rule per series */
static inline int ncmp(const char *a, const char *b)
{
    if (a[0] != b[0])
        return (unsigned char)a[0] - (unsigned char)b[0];
    return strcmp(a, b);
}

static long base_find(const rw_relabel_state *st, const char *name)
{
    unsigned char b0 = (unsigned char)name[0];
    if (!((st->bfirst[b0 >> 3] >> (b0 & 7)) & 1))
        return -1; /* no base name starts with that byte */
    size_t lo = 0, hi = st->nbase;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = ncmp(st->base[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ---- the add list ---- */

#define AIDX_MIN 8 /* below this many slots a scan is cheaper than hashing */

/* the name of a tombstone whose label was set again in a later slot: by
 * address, so it matches no name and the index never holds it */
static const char DEAD[] = "";

static size_t aidx_home(const rw_relabel_state *st, const char *name)
{
    return (size_t)XXH3_64bits(name, strlen(name)) & (st->aidx_n - 1);
}

/* (re)builds the index over every slot at twice the load it must hold */
static int aidx_build(rw_relabel_state *st)
{
    size_t n = 4 * AIDX_MIN;
    while (n < 4 * st->nadd)
        n *= 2;
    if (grow((void **)&st->aidx, &st->aidx_cap, n, sizeof *st->aidx))
        return -1;
    st->aidx_n = n;
    memset(st->aidx, 0, n * sizeof *st->aidx);
    for (size_t i = 0; i < st->nadd; i++) {
        if (st->add[i].name == DEAD)
            continue;
        size_t h = aidx_home(st, st->add[i].name);
        while (st->aidx[h]) /* the other slots are of other names */
            h = (h + 1) & (st->aidx_n - 1);
        st->aidx[h] = (uint32_t)i + 1;
    }
    return 0;
}

/* the index entry for name: its slot + 1, or the empty entry where it goes */
static uint32_t *aidx_entry(const rw_relabel_state *st, const char *name)
{
    size_t h = aidx_home(st, name);
    while (st->aidx[h] && ncmp(st->add[st->aidx[h] - 1].name, name) != 0)
        h = (h + 1) & (st->aidx_n - 1);
    return &st->aidx[h];
}

/* the slot of name in the add list (live or tombstone), or -1 */
static long add_find(const rw_relabel_state *st, const char *name)
{
    if (st->aidx_n) {
        uint32_t e = *aidx_entry(st, name);
        return e ? (long)e - 1 : -1;
    }
    for (size_t i = 0; i < st->nadd; i++)
        if (st->add[i].name != DEAD && ncmp(st->add[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* drops the tombstones, keeping order (the index is then stale: off) */
static void add_compact(rw_relabel_state *st)
{
    size_t k = 0;
    for (size_t i = 0; i < st->nadd; i++)
        if (st->add[i].value)
            st->add[k++] = st->add[i];
    st->nadd = k;
    st->aidx_n = 0;
}

static int add_cmp(const void *a, const void *b)
{
    return ncmp(((const rw_label *)a)->name, ((const rw_label *)b)->name);
}

static const char *lb_get(const rw_relabel_state *st, const char *name)
{
    long i = add_find(st, name);
    if (i >= 0 && st->add[i].value)
        return st->add[i].value;
    long b = base_find(st, name);
    if (b >= 0 && !st->bdel[b])
        return st->base[b].value;
    return "";
}

/* lb_get with the value's length (known for base labels when the caller
 * gave lengths) */
/* base_find for a configuration string (stable address): the position it
 * had in the previous series is tried first - consecutive series mostly
 * share their label layout - and checked, so a wrong guess costs one
 * comparison */
static long base_find_hint(rw_relabel_state *st, const char *name)
{
    hint *h = &st->hints[((uintptr_t)name >> 4) & (NHINTS - 1)];
    if (h->name == name && h->pos < st->nbase && ncmp(st->base[h->pos].name, name) == 0)
        return (long)h->pos;
    long b = base_find(st, name);
    if (b >= 0) {
        h->name = name;
        h->pos = (size_t)b;
    }
    return b;
}

static const char *lb_get_len(rw_relabel_state *st, const char *name, size_t *len)
{
    long i = add_find(st, name);
    if (i >= 0 && st->add[i].value) {
        *len = strlen(st->add[i].value);
        return st->add[i].value;
    }
    long b = base_find_hint(st, name);
    if (b >= 0 && !st->bdel[b]) {
        *len = st->blens ? st->blens[2 * b + 1] : strlen(st->base[b].value);
        return st->base[b].value;
    }
    *len = 0;
    return "";
}

static void lb_mark_base(rw_relabel_state *st, const char *name)
{
    long b = base_find(st, name);
    if (b >= 0 && !st->bdel[b]) {
        st->bdel[b] = 1;
        st->ndel++;
    }
}

static void lb_del(rw_relabel_state *st, const char *name)
{
    long i = add_find(st, name);
    if (i >= 0)
        st->add[i].value = NULL;
    lb_mark_base(st, name);
}

/* name and value must outlive the request (config strings or arena) */
static int lb_set(rw_relabel_state *st, const char *name, const char *value)
{
    if (!*value) {
        lb_del(st, name);
        return 0;
    }
    uint32_t *e = st->aidx_n ? aidx_entry(st, name) : NULL;
    long i = e ? (long)*e - 1 : add_find(st, name);
    if (i >= 0 && st->add[i].value) {
        st->add[i].value = value;
        return 0;
    }
    /* new, or set again after a removal: it goes to the end (Builder order)
       and the removed slot is no longer found by name */
    if (i >= 0)
        st->add[i].name = DEAD;
    if (grow((void **)&st->add, &st->add_cap, st->nadd + 1, sizeof *st->add))
        return -1;
    size_t slot = st->nadd++;
    st->add[slot].name = name;
    st->add[slot].value = value;
    if (e && 2 * st->nadd <= st->aidx_n)
        *e = (uint32_t)slot + 1;
    else if (st->nadd >= AIDX_MIN && aidx_build(st))
        return -1;
    lb_mark_base(st, name);
    return 0;
}

/* Builder.Range's order: surviving base labels, then the added ones; with
 * each name's length (from the caller's lengths for base labels). */
static size_t lb_snapshot(rw_relabel_state *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->nbase; i++)
        if (!st->bdel[i]) {
            st->snaplen[n] = st->blens ? st->blens[2 * i] : (uint32_t)strlen(st->base[i].name);
            st->snap[n++] = st->base[i];
        }
    for (size_t i = 0; i < st->nadd; i++)
        if (st->add[i].value) {
            st->snaplen[n] = (uint32_t)strlen(st->add[i].name);
            st->snap[n++] = st->add[i];
        }
    return n;
}

/* ---- actions ---- */

/* The joined source label values; points into a label or the scratch. */
static const char *join_values(rw_relabel_state *st, const rw_relabel_config *c, size_t *len)
{
    size_t n = c->source_labels.n;
    if (n == 0) {
        *len = 0;
        return "";
    }
    if (n == 1)
        return lb_get_len(st, c->source_labels.v[0], len);
    rw_buf_reset(&st->join);
    for (size_t i = 0; i < n; i++) {
        if (i)
            rw_buf_append(&st->join, c->separator, c->sep_len);
        size_t vl;
        const char *v = lb_get_len(st, c->source_labels.v[i], &vl);
        rw_buf_append(&st->join, v, vl);
    }
    if (st->join.failed)
        return NULL;
    *len = st->join.len;
    return st->join.p ? st->join.p : "";
}

/* Expands tmpl against the last match into the arena; NULL on failure. */
static const char *expand(rw_relabel_state *st, rw_arena *a, const rw_relabel_config *c,
                          const char *tmpl, size_t tlen, const char *subj)
{
    rw_buf_reset(&st->exp);
    if (rw_regex_expand(c->regex.re, st->md, tmpl, tlen, subj, &st->exp) != RW_OK)
        return NULL;
    return rw_arena_strndup(a, st->exp.p ? st->exp.p : "", st->exp.len);
}

/* The C.UTF-8 locale for Unicode case mapping, created once per process
 * and read-only afterwards. */
static locale_t case_locale;
static pthread_once_t case_once = PTHREAD_ONCE_INIT;
static void case_locale_init(void) { case_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

/* strings.ToLower / strings.ToUpper: simple Unicode case mapping per code
 * point (ASCII without a table). */
static const char *map_case(rw_arena *a, const char *v, size_t len, int upper)
{
    size_t need = len * 2 + 4; /* a code point grows by at most one byte in UTF-8 */
    char *out = rw_arena_alloc(a, need);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    locale_t loc = NULL;
    while (i < len) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x80) {
            if (upper && ch >= 'a' && ch <= 'z')
                ch = (unsigned char)(ch - 32);
            else if (!upper && ch >= 'A' && ch <= 'Z')
                ch = (unsigned char)(ch + 32);
            out[o++] = (char)ch;
            i++;
            continue;
        }
        if (!loc) {
            pthread_once(&case_once, case_locale_init);
            loc = case_locale;
        }
        uint32_t cp;
        size_t k = rw_utf8_get(v + i, len - i, &cp);
        uint32_t m = cp;
        if (loc)
            m = (uint32_t)(upper ? towupper_l((wint_t)cp, loc) : towlower_l((wint_t)cp, loc));
        if (m > 0x10ffff || (m >= 0xd800 && m <= 0xdfff))
            m = cp;
        o += rw_utf8_put(out + o, m);
        i += k;
    }
    out[o] = '\0';
    return out;
}

static const char *hashmod(rw_relabel_state *st, rw_arena *a, const char *v, size_t len,
                           uint64_t modulus)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (!EVP_DigestInit_ex(st->md5, EVP_md5(), NULL) || !EVP_DigestUpdate(st->md5, v, len) ||
        !EVP_DigestFinal_ex(st->md5, d, &dl) || dl != 16)
        return NULL;
    uint64_t h = 0;
    for (int i = 8; i < 16; i++)
        h = (h << 8) | d[i];
    return rw_arena_sprintf(a, "%llu", (unsigned long long)(h % modulus));
}

static int ensure_groups(rw_relabel_state *st, const rw_relabel_config *c)
{
    int g = rw_regex_ngroups(c->regex.re);
    if (g <= rw_regex_md_groups(st->md))
        return 0;
    rw_regex_md *md = rw_regex_md_new(g);
    if (!md)
        return -1;
    rw_regex_md_free(st->md);
    st->md = md;
    return 0;
}

enum { R_KEEP, R_DROP, R_FAIL };

static int match(rw_relabel_state *st, const rw_relabel_config *c, const char *v, size_t len,
                 rw_err *err)
{
    if (ensure_groups(st, c))
        return rw_err_set(err, RW_NOMEM, "out of memory"), -1;
    return rw_regex_match(c->regex.re, st->md, v, len, err);
}

/* labelmap, labeldrop, labelkeep: a walk over a snapshot of the labels */
static int each_label(rw_relabel_state *st, const rw_relabel_config *c, rw_arena *a, rw_err *err)
{
    if (grow((void **)&st->snap, &st->snap_cap, st->nbase + st->nadd, sizeof *st->snap) ||
        grow((void **)&st->snaplen, &st->snaplen_cap, st->nbase + st->nadd, sizeof *st->snaplen))
        return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
    size_t n = lb_snapshot(st);
    for (size_t i = 0; i < n; i++) {
        const rw_label *l = &st->snap[i];
        size_t nl = st->snaplen[i];
        /* most names are decided by a comparison (a literal, a prefix that
           does not fit); the rest by the memo, the regex only once each */
        unsigned char b0 = (unsigned char)l->name[0];
        int m = (c->first[b0 >> 3] >> (b0 & 7)) & 1 ? rw_regex_quick(c->regex.re, l->name, nl) : 0;
        if (c->action == RW_RELABEL_LABELMAP) {
            if (m == 0)
                continue;
        } else if (m >= 0) {
            if ((c->action == RW_RELABEL_LABELDROP) == (m == 1))
                lb_del(st, l->name);
            continue;
        }
        memo *slot;
        const memo *hit = memo_get(st, c, l->name, nl, &slot);
        const char *nn = NULL;
        if (hit) {
            m = hit->matched;
            nn = hit->a;
        } else {
            if ((m = match(st, c, l->name, nl, err)) < 0)
                return R_FAIL;
            if (m && c->action == RW_RELABEL_LABELMAP) {
                nn = (c->flags & F_REPL_VAR) ? expand(st, a, c, c->replacement, c->repl_len, l->name)
                                             : c->replacement;
                if (!nn)
                    return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
            }
            memo_put(st, slot, c, l->name, nl, a, m, nn, NULL);
        }
        switch (c->action) {
        case RW_RELABEL_LABELMAP:
            if (m && lb_set(st, nn, l->value))
                return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
            break;
        case RW_RELABEL_LABELDROP:
            if (m)
                lb_del(st, l->name);
            break;
        default: /* labelkeep */
            if (!m)
                lb_del(st, l->name);
            break;
        }
    }
    return R_KEEP;
}

static int apply_one(rw_relabel_state *st, const rw_relabel_config *c, rw_arena *a, rw_err *err)
{
    if (c->action == RW_RELABEL_LABELMAP || c->action == RW_RELABEL_LABELDROP ||
        c->action == RW_RELABEL_LABELKEEP)
        return each_label(st, c, a, err);
    size_t len;
    const char *val = join_values(st, c, &len);
    if (!val)
        return rw_err_set(err, RW_LIMIT, "joined source label values are too long"), R_FAIL;
    int m;
    memo *slot = NULL;
    const memo *hit = NULL;
    if (c->action == RW_RELABEL_KEEP || c->action == RW_RELABEL_DROP) {
        int q = rw_regex_quick(c->regex.re, val, len);
        if (q >= 0)
            return (q != 0) == (c->action == RW_RELABEL_KEEP) ? R_KEEP : R_DROP;
    } else if (c->action == RW_RELABEL_REPLACE) {
        int q = rw_regex_quick(c->regex.re, val, len);
        if (q == 0)
            return R_KEEP; /* no match: no replacement */
        if (q == 1 && !(c->flags & F_TARGET_VAR)) {
            /* a match known without PCRE2 and no group to expand: the
               configured strings (or the whole value for "(.*)" -> "$1") */
            const char *res = c->replacement;
            if (c->flags & F_REPL_WHOLE)
                res = !len ? ""
                      : (st->join.p && val >= st->join.p && val < st->join.p + st->join.alloc)
                          ? rw_arena_strndup(a, val, len)
                          : val;
            if (!(c->flags & F_REPL_VAR) || (c->flags & F_REPL_WHOLE)) {
                if (!res || lb_set(st, c->target_label, res))
                    return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
                return R_KEEP;
            }
        }
    }
    if (c->action != RW_RELABEL_KEEPEQUAL && c->action != RW_RELABEL_DROPEQUAL)
        hit = memo_get(st, c, val, len, &slot);
    if (hit) {
        switch (c->action) {
        case RW_RELABEL_DROP:
        case RW_RELABEL_KEEP:
            return (hit->matched != 0) == (c->action == RW_RELABEL_KEEP) ? R_KEEP : R_DROP;
        case RW_RELABEL_REPLACE:
            if (!hit->matched || !hit->a)
                return R_KEEP;
            break;
        default:
            break;
        }
        if (lb_set(st, c->action == RW_RELABEL_REPLACE ? hit->a : c->target_label,
                   c->action == RW_RELABEL_REPLACE ? hit->b : hit->a))
            return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
        return R_KEEP;
    }
    switch (c->action) {
    case RW_RELABEL_DROP:
    case RW_RELABEL_KEEP:
        if ((m = match(st, c, val, len, err)) < 0)
            return R_FAIL;
        memo_put(st, slot, c, val, len, a, m, NULL, NULL);
        return (m != 0) == (c->action == RW_RELABEL_KEEP) ? R_KEEP : R_DROP;
    case RW_RELABEL_DROPEQUAL:
    case RW_RELABEL_KEEPEQUAL: {
        const char *t = lb_get(st, c->target_label);
        int eq = strlen(t) == len && memcmp(t, val, len) == 0;
        return eq == (c->action == RW_RELABEL_KEEPEQUAL) ? R_KEEP : R_DROP;
    }
    case RW_RELABEL_REPLACE: {
        if (len == 0 && (c->flags & F_REGEX_DEFAULT) && !(c->flags & (F_TARGET_VAR | F_REPL_VAR))) {
            if (lb_set(st, c->target_label, c->replacement))
                return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
            return R_KEEP;
        }
        if ((m = match(st, c, val, len, err)) < 0)
            return R_FAIL;
        if (!m) {
            memo_put(st, slot, c, val, len, a, 0, NULL, NULL);
            return R_KEEP;
        }
        /* val may point into the join scratch: expansions do not touch it */
        const char *target = c->target_label;
        if (c->flags & F_TARGET_VAR) {
            target = expand(st, a, c, c->target_label, c->target_len, val);
            if (!target)
                return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
            if (!name_valid(target)) {
                memo_put(st, slot, c, val, len, a, 1, NULL, NULL);
                return R_KEEP;
            }
        }
        const char *res = c->replacement;
        if (c->flags & F_REPL_VAR) {
            res = expand(st, a, c, c->replacement, c->repl_len, val);
            if (!res)
                return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
        }
        memo_put(st, slot, c, val, len, a, 1, target, res);
        if (lb_set(st, target, res))
            return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
        return R_KEEP;
    }
    case RW_RELABEL_LOWERCASE:
    case RW_RELABEL_UPPERCASE: {
        const char *r = map_case(a, val, len, c->action == RW_RELABEL_UPPERCASE);
        if (r)
            memo_put(st, slot, c, val, len, a, 1, r, NULL);
        if (!r || lb_set(st, c->target_label, r))
            return rw_err_set(err, RW_NOMEM, "out of memory"), R_FAIL;
        return R_KEEP;
    }
    case RW_RELABEL_HASHMOD: {
        const char *r = hashmod(st, a, val, len, (uint64_t)c->modulus);
        if (r)
            memo_put(st, slot, c, val, len, a, 1, r, NULL);
        if (!r || lb_set(st, c->target_label, r))
            return rw_err_set(err, RW_NOMEM, "hashmod: digest failed or out of memory"), R_FAIL;
        return R_KEEP;
    }
    }
    return rw_err_set(err, RW_INTERNAL, "unknown relabel action %d", c->action), R_FAIL;
}

rw_relabel_result rw_relabel_apply(rw_relabel_state *st, const rw_relabel_config *rules, size_t n,
                                   unsigned flags, rw_arena *a, const rw_label *in, size_t nin,
                                   rw_labels *out, rw_err *err)
{
    return rw_relabel_apply_lens(st, rules, n, flags, a, in, NULL, nin, out, NULL, err);
}

rw_relabel_result rw_relabel_apply_lens(rw_relabel_state *st, const rw_relabel_config *rules,
                                        size_t n, unsigned flags, rw_arena *a, const rw_label *in,
                                        const uint32_t *in_lens, size_t nin, rw_labels *out,
                                        const uint32_t **out_lens, rw_err *err)
{
    st->rule = -1;
    st->blens = in_lens;
    if (out_lens)
        *out_lens = in_lens;
    st->base = in;
    st->nbase = nin;
    st->nadd = 0;
    st->aidx_n = 0;
    st->ndel = 0;
    out->v = (rw_label *)in;
    out->n = nin;
    if (grow((void **)&st->bdel, &st->bdel_cap, nin ? nin : 1, 1)) {
        rw_err_set(err, RW_NOMEM, "out of memory");
        return RW_RELABEL_FAILED;
    }
    memset(st->bdel, 0, nin);
    memset(st->bfirst, 0, sizeof st->bfirst);
    for (size_t i = 0; i < nin; i++) {
        unsigned char b0 = (unsigned char)in[i].name[0];
        st->bfirst[b0 >> 3] |= (uint8_t)(1u << (b0 & 7));
    }
    for (size_t i = 0; i < n; i++) {
        int r = apply_one(st, &rules[i], a, err);
        if (r == R_KEEP)
            continue;
        st->rule = (int)i;
        if (r == R_DROP)
            return RW_RELABEL_DROPPED;
        if (err)
            rw_err_prefix(err, "relabel rule %zu (%s)", i, rw_relabel_action_names[rules[i].action]);
        return RW_RELABEL_FAILED;
    }
    add_compact(st);
    /* rules that set labels to the values they already had (a normalising
       rule on an already normal value) change nothing: keep the input */
    if (st->nadd && st->nadd == st->ndel) {
        size_t same = 0;
        for (size_t j = 0; j < st->nadd; j++) {
            long b = base_find(st, st->add[j].name);
            if (b < 0 || !st->bdel[b] || strcmp(st->base[b].value, st->add[j].value))
                break;
            same++;
        }
        if (same == st->nadd)
            st->nadd = st->ndel = 0;
    }
    if (st->nadd || st->ndel) {
        size_t nn = nin - st->ndel + st->nadd;
        rw_label *v = rw_arena_alloc(a, (nn ? nn : 1) * sizeof *v);
        if (!v) {
            rw_err_set(err, RW_NOMEM, "out of memory");
            return RW_RELABEL_FAILED;
        }
        /* sort the added labels, then merge with the sorted base */
        if (st->nadd > AIDX_MIN)
            qsort(st->add, st->nadd, sizeof *st->add, add_cmp);
        else
            for (size_t x = 1; x < st->nadd; x++) /* insertion sort: a rule adds few */
                for (size_t y = x; y > 0 && ncmp(st->add[y - 1].name, st->add[y].name) > 0; y--) {
                    rw_label t = st->add[y];
                    st->add[y] = st->add[y - 1];
                    st->add[y - 1] = t;
                }
        uint32_t *ol = NULL;
        if (out_lens) {
            if (!(ol = rw_arena_alloc(a, 2 * (nn ? nn : 1) * sizeof *ol))) {
                rw_err_set(err, RW_NOMEM, "out of memory");
                return RW_RELABEL_FAILED;
            }
        }
        size_t i = 0, j = 0, k = 0;
        while (i < nin || j < st->nadd) {
            if (i < nin && st->bdel[i]) {
                i++;
                continue;
            }
            if (j >= st->nadd || (i < nin && ncmp(in[i].name, st->add[j].name) < 0)) {
                if (ol) {
                    ol[2 * k] = in_lens ? in_lens[2 * i] : (uint32_t)strlen(in[i].name);
                    ol[2 * k + 1] = in_lens ? in_lens[2 * i + 1] : (uint32_t)strlen(in[i].value);
                }
                v[k++] = in[i++];
            } else {
                if (ol) {
                    ol[2 * k] = (uint32_t)strlen(st->add[j].name);
                    ol[2 * k + 1] = (uint32_t)strlen(st->add[j].value);
                }
                v[k++] = st->add[j++];
            }
        }
        out->v = v;
        out->n = k;
        if (out_lens)
            *out_lens = ol;
    }
    int has_name = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (!out->v[i].name[0]) {
            rw_err_set(err, RW_BADREQ, "relabeling produced an empty label name (value \"%.64s\")",
                       out->v[i].value);
            return RW_RELABEL_INVALID;
        }
        if (!has_name && ncmp(out->v[i].name, RW_METRIC_NAME) == 0)
            has_name = 1;
    }
    if ((flags & RW_RELABEL_REQUIRE_NAME) && !has_name) {
        rw_err_set(err, RW_BADREQ, "relabeling removed the metric name (__name__)");
        return RW_RELABEL_INVALID;
    }
    return RW_RELABEL_KEPT;
}
