/* labels.h - label sets as rwgate passes them between layers.
 *
 * A label set is an array of (name, value) pairs of NUL-terminated strings,
 * sorted by name with no duplicate names; the metric name is the label
 * "__name__". Who owns the strings is said by whoever hands the set out (an
 * arena in most cases). The hash is XXH3-64 over name\xff value\xff ... and is
 * computed once per series on the ingest path. */
#ifndef RW_LABELS_H
#define RW_LABELS_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define RW_METRIC_NAME "__name__"

/* Most labels one series may have: the upper bound of
 * ingest.max_labels_per_series, and what the store accepts back from its own
 * files (one limit, so recovery never refuses what ingest accepted). */
#define RW_LABELS_MAX 65535

typedef struct rw_label {
    const char *name;
    const char *value;
} rw_label;

typedef struct rw_labels {
    rw_label *v;
    size_t n;
} rw_labels;

uint64_t rw_labels_hash(const rw_label *l, size_t n);
/* The same hash when the lengths are known: lens[2i], lens[2i+1] are the
 * lengths of l[i].name and l[i].value. */
uint64_t rw_labels_hash_lens(const rw_label *l, const uint32_t *lens, size_t n);
/* Hash of the set without the labels whose names are in `skip`
 * (or with only those, when `only` is set): PromQL grouping and matching. */
uint64_t rw_labels_hash_subset(const rw_label *l, size_t n, const char *const *names,
                               size_t nnames, int only);
/* Total order: pairwise by name, then value; shorter set first when a prefix. */
int rw_labels_cmp(const rw_label *a, size_t na, const rw_label *b, size_t nb);
int rw_labels_equal(const rw_label *a, size_t na, const rw_label *b, size_t nb);
/* Value of `name`, or NULL when absent. Binary search: the set must be sorted. */
const char *rw_labels_get(const rw_label *l, size_t n, const char *name);
/* Sorts by name (insertion sort: sets are small). */
void rw_labels_sort(rw_label *l, size_t n);

/* Validation used by the write path. A label name is non-empty valid UTF-8
 * (Prometheus 3 accepts UTF-8 names); a value is valid UTF-8. */
int rw_utf8_valid(const char *s, size_t n);
int rw_label_name_legacy(const char *s, size_t n); /* [a-zA-Z_][a-zA-Z0-9_]* */
int rw_metric_name_legacy(const char *s, size_t n); /* [a-zA-Z_:][a-zA-Z0-9_:]* */

/* Checks that a set is sorted, has no duplicate or empty names, no empty
 * values, valid UTF-8 and a __name__. On failure fills err (RW_BADREQ) with
 * a message naming the label. */
rw_rc rw_labels_validate(const rw_label *l, size_t n, rw_err *err);
/* The same with known lengths (lens as for rw_labels_hash_lens); then a NUL
 * byte inside a name or value is found and rejected too. */
rw_rc rw_labels_validate_lens(const rw_label *l, const uint32_t *lens, size_t n, rw_err *err);
/* rw_labels_validate_lens without the text check, for a caller that has
 * already seen every name and value byte to be ASCII and not NUL (lens
 * required). */
rw_rc rw_labels_validate_shape(const rw_label *l, const uint32_t *lens, size_t n, rw_err *err);

/* Writes {a="b", c="d"} (Prometheus style, metric name in front) into out;
 * returns the length it needed (snprintf semantics). */
size_t rw_labels_format(const rw_label *l, size_t n, char *out, size_t cap);

#endif
