/* sample.c - small helpers around samples: the staleness marker and the
 * names of rejection reasons. */
#include "store.h"

#include <string.h>

double rw_stale_nan(void)
{
    uint64_t u = RW_STALE_NAN_BITS;
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

const char *rw_reject_reason_str(rw_reject_reason r)
{
    switch (r) {
    case RW_REJ_OUT_OF_ORDER: return "out_of_order";
    case RW_REJ_DUPLICATE: return "duplicate_timestamp";
    case RW_REJ_TOO_OLD: return "too_old";
    case RW_REJ_SERIES_LIMIT: return "series_limit";
    default: return "unknown";
    }
}
