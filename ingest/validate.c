/* validate.c - per-series checks on the write path, after decoding and
 * before the store: the configured limits (labels per series, name and value
 * lengths) and the label rules (sorted, no duplicates, no empty names or
 * values, valid UTF-8, a metric name). A failing series is rejected alone;
 * its siblings in the request are still written. Also the label insertion
 * used for the tenant label. */
#include <string.h>
#include "ingest_int.h"

rw_rc rw_in_validate_series_lim(const rw_in_label_limits *lim, const rw_in_series *s,
                                rw_err *err)
{
    /* the messages name the limit (the config key), so a sender's operator
       knows what to ask for */
    if (s->labels_over)
        return rw_err_set(err, RW_LIMIT, "series has %zu labels, limit is %lld (max_labels_per_series)",
                          (size_t)s->labels_over, (long long)lim->max_labels);
    if (s->nlabels > (size_t)lim->max_labels)
        return rw_err_set(err, RW_LIMIT, "series has %zu labels, limit is %lld (max_labels_per_series)",
                          s->nlabels, (long long)lim->max_labels);
    for (size_t i = 0; i < s->nlabels; i++) {
        size_t nl = s->lens ? s->lens[2 * i] : strlen(s->labels[i].name);
        size_t vl = s->lens ? s->lens[2 * i + 1] : strlen(s->labels[i].value);
        if (nl > (size_t)lim->max_name)
            return rw_err_set(err, RW_LIMIT,
                              "label name \"%.40s...\" is %zu bytes, limit is %lld "
                              "(max_label_name_length)", s->labels[i].name, nl, (long long)lim->max_name);
        if (vl > (size_t)lim->max_value)
            return rw_err_set(err, RW_LIMIT,
                              "label %.64s: value is %zu bytes, limit is %lld (max_label_value_length)",
                              s->labels[i].name, vl, (long long)lim->max_value);
    }
    if (s->ascii && s->lens)
        return rw_labels_validate_shape(s->labels, s->lens, s->nlabels, err);
    return rw_labels_validate_lens(s->labels, s->lens, s->nlabels, err);
}

rw_rc rw_in_validate_series(const rw_ingest_config *c, const rw_in_series *s, rw_err *err)
{
    rw_in_label_limits lim = {c->max_labels_per_series, c->max_label_name_len,
                              c->max_label_value_len};
    return rw_in_validate_series_lim(&lim, s, err);
}

rw_rc rw_in_set_label(rw_arena *a, rw_in_series *s, const char *name, const char *value)
{
    size_t pos = 0;
    while (pos < s->nlabels && strcmp(s->labels[pos].name, name) < 0)
        pos++;
    if (pos < s->nlabels && strcmp(s->labels[pos].name, name) == 0) {
        s->labels[pos].value = value;
        if (s->lens)
            s->lens[2 * pos + 1] = (uint32_t)strlen(value);
        return RW_OK;
    }
    rw_label *nl = rw_arena_alloc(a, (s->nlabels + 1) * sizeof *nl);
    if (!nl)
        return RW_NOMEM;
    memcpy(nl, s->labels, pos * sizeof *nl);
    nl[pos].name = name;
    nl[pos].value = value;
    memcpy(nl + pos + 1, s->labels + pos, (s->nlabels - pos) * sizeof *nl);
    if (s->lens) {
        uint32_t *nlen = rw_arena_alloc(a, (s->nlabels + 1) * 2 * sizeof *nlen);
        if (!nlen)
            return RW_NOMEM;
        memcpy(nlen, s->lens, pos * 2 * sizeof *nlen);
        nlen[2 * pos] = (uint32_t)strlen(name);
        nlen[2 * pos + 1] = (uint32_t)strlen(value);
        memcpy(nlen + 2 * pos + 2, s->lens + 2 * pos, (s->nlabels - pos) * 2 * sizeof *nlen);
        s->lens = nlen;
    }
    s->labels = nl;
    s->nlabels++;
    return RW_OK;
}
