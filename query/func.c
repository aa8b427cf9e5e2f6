/* func.c - the PromQL function table (see func.h): one row per function with
 * its argument types, arity and implementation. The parser type-checks calls
 * against it; the evaluator dispatches through it. Implementations live in
 * func_*.c, grouped by kind. */
#include "func.h"

#include <string.h>
#include "func_impl.h"

#define S RW_VAL_SCALAR
#define V RW_VAL_VECTOR
#define M RW_VAL_MATRIX
#define STR RW_VAL_STRING

static const rw_func table[] = {
    /* name, arg types, min, max(-1 variadic), return, impl */
    {"abs", {V}, 1, 1, V, rw_fn_math},
    {"absent", {V}, 1, 1, V, rw_fn_absent},
    {"absent_over_time", {M}, 1, 1, V, rw_fn_absent_over_time},
    {"acos", {V}, 1, 1, V, rw_fn_math},
    {"acosh", {V}, 1, 1, V, rw_fn_math},
    {"asin", {V}, 1, 1, V, rw_fn_math},
    {"asinh", {V}, 1, 1, V, rw_fn_math},
    {"atan", {V}, 1, 1, V, rw_fn_math},
    {"atanh", {V}, 1, 1, V, rw_fn_math},
    {"avg_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"ceil", {V}, 1, 1, V, rw_fn_math},
    {"changes", {M}, 1, 1, V, rw_fn_over_time},
    {"clamp", {V, S, S}, 3, 3, V, rw_fn_clamp},
    {"clamp_max", {V, S}, 2, 2, V, rw_fn_clamp},
    {"clamp_min", {V, S}, 2, 2, V, rw_fn_clamp},
    {"cos", {V}, 1, 1, V, rw_fn_math},
    {"cosh", {V}, 1, 1, V, rw_fn_math},
    {"count_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"day_of_month", {V}, 0, 1, V, rw_fn_calendar},
    {"day_of_week", {V}, 0, 1, V, rw_fn_calendar},
    {"day_of_year", {V}, 0, 1, V, rw_fn_calendar},
    {"days_in_month", {V}, 0, 1, V, rw_fn_calendar},
    {"deg", {V}, 1, 1, V, rw_fn_math},
    {"delta", {M}, 1, 1, V, rw_fn_rate},
    {"deriv", {M}, 1, 1, V, rw_fn_deriv},
    {"double_exponential_smoothing", {M, S, S}, 3, 3, V, rw_fn_smoothing},
    {"end", {0}, 0, 0, S, rw_fn_query_time},
    {"exp", {V}, 1, 1, V, rw_fn_math},
    {"first_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"floor", {V}, 1, 1, V, rw_fn_math},
    {"histogram_fraction", {S, S, V}, 3, 3, V, rw_fn_histogram_fraction},
    {"histogram_quantile", {S, V}, 2, 2, V, rw_fn_histogram_quantile},
    {"histogram_quantiles", {V, STR, S, S}, 3, 12, V, rw_fn_histogram_quantile},
    {"holt_winters", {M, S, S}, 3, 3, V, rw_fn_smoothing},
    {"hour", {V}, 0, 1, V, rw_fn_calendar},
    {"idelta", {M}, 1, 1, V, rw_fn_instant_rate},
    {"increase", {M}, 1, 1, V, rw_fn_rate},
    {"irate", {M}, 1, 1, V, rw_fn_instant_rate},
    {"label_join", {V, STR, STR, STR}, 3, -1, V, rw_fn_label_join},
    {"label_replace", {V, STR, STR, STR, STR}, 5, 5, V, rw_fn_label_replace},
    {"last_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"ln", {V}, 1, 1, V, rw_fn_math},
    {"log10", {V}, 1, 1, V, rw_fn_math},
    {"log2", {V}, 1, 1, V, rw_fn_math},
    {"mad_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"max_of", {S, S}, 2, 2, S, rw_fn_minmax_of},
    {"max_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"min_of", {S, S}, 2, 2, S, rw_fn_minmax_of},
    {"min_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"minute", {V}, 0, 1, V, rw_fn_calendar},
    {"month", {V}, 0, 1, V, rw_fn_calendar},
    {"pi", {0}, 0, 0, S, rw_fn_pi},
    {"predict_linear", {M, S}, 2, 2, V, rw_fn_deriv},
    {"present_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"quantile_over_time", {S, M}, 2, 2, V, rw_fn_quantile_over_time},
    {"rad", {V}, 1, 1, V, rw_fn_math},
    {"range", {0}, 0, 0, S, rw_fn_query_time},
    {"rate", {M}, 1, 1, V, rw_fn_rate},
    {"resets", {M}, 1, 1, V, rw_fn_over_time},
    {"round", {V, S}, 1, 2, V, rw_fn_round},
    {"scalar", {V}, 1, 1, S, rw_fn_scalar},
    {"sgn", {V}, 1, 1, V, rw_fn_math},
    {"sin", {V}, 1, 1, V, rw_fn_math},
    {"sinh", {V}, 1, 1, V, rw_fn_math},
    {"sort", {V}, 1, 1, V, rw_fn_sort},
    {"sort_by_label", {V, STR}, 1, -1, V, rw_fn_sort_by_label},
    {"sort_by_label_desc", {V, STR}, 1, -1, V, rw_fn_sort_by_label},
    {"sort_desc", {V}, 1, 1, V, rw_fn_sort},
    {"sqrt", {V}, 1, 1, V, rw_fn_math},
    {"start", {0}, 0, 0, S, rw_fn_query_time},
    {"stddev_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"stdvar_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"step", {0}, 0, 0, S, rw_fn_query_time},
    {"sum_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"tan", {V}, 1, 1, V, rw_fn_math},
    {"tanh", {V}, 1, 1, V, rw_fn_math},
    {"time", {0}, 0, 0, S, rw_fn_time},
    {"timestamp", {V}, 1, 1, V, rw_fn_timestamp},
    {"ts_of_first_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"ts_of_last_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"ts_of_max_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"ts_of_min_over_time", {M}, 1, 1, V, rw_fn_over_time},
    {"vector", {S}, 1, 1, V, rw_fn_vector},
    {"year", {V}, 0, 1, V, rw_fn_calendar},
};

const rw_func *rw_func_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = sizeof table / sizeof table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(table[mid].name, name, len);
        if (c == 0 && table[mid].name[len] != '\0')
            c = 1;
        if (c == 0)
            return &table[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const rw_func *rw_func_table(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}
