/* json.h - JSON and number formatting for the HTTP API and text exposition.
 * Floats are written the way Prometheus writes them, so clients that compare
 * strings (promtool, Grafana, the conformance harness) see the same text. */
#ifndef RW_JSON_H
#define RW_JSON_H

#include <stdint.h>
#include "buf.h"

/* Shortest round-trip float like Go's strconv 'f' with an 'e' fallback for
 * |v| < 1e-6 or >= 1e21 (Prometheus' JSON sample values); "NaN", "+Inf",
 * "-Inf" for the specials. Returns the length written (out holds >= 32). */
int rw_fmt_float_json(double v, char *out);
/* Go's strconv 'g' with shortest precision (text exposition format). */
int rw_fmt_float_g(double v, char *out);

/* "..." with JSON escaping. */
rw_rc rw_json_str(rw_buf *b, const char *s);
rw_rc rw_json_strn(rw_buf *b, const char *s, size_t n);
/* A label set as a JSON object {"name":"value",...}, in the set's order. */
struct rw_label;
rw_rc rw_json_labels(rw_buf *b, const struct rw_label *l, size_t n);
/* A sample pair [t_seconds, "value"] as the query API writes it. */
rw_rc rw_json_point(rw_buf *b, int64_t t_ms, double v);

#endif
