/* func.c - the PromQL function table (see func.h): one row per function with
 * its argument types, arity, implementation and the variant (op) the
 * implementation runs. The parser type-checks calls against it; the
 * evaluator dispatches through it. Implementations live in
 * func_*.c, grouped by kind. */
#include "func.h"

#include <string.h>
#include "func_impl.h"

#define S RW_VAL_SCALAR
#define V RW_VAL_VECTOR
#define M RW_VAL_MATRIX
#define STR RW_VAL_STRING

static const rw_func table[] = {
    /* name, arg types, min, max(-1 variadic), return, impl, op */
    {"abs", {V}, 1, 1, V, rw_fn_math, RW_MATH_ABS},
    {"absent", {V}, 1, 1, V, rw_fn_absent},
    {"absent_over_time", {M}, 1, 1, V, rw_fn_absent_over_time},
    {"acos", {V}, 1, 1, V, rw_fn_math, RW_MATH_ACOS},
    {"acosh", {V}, 1, 1, V, rw_fn_math, RW_MATH_ACOSH},
    {"asin", {V}, 1, 1, V, rw_fn_math, RW_MATH_ASIN},
    {"asinh", {V}, 1, 1, V, rw_fn_math, RW_MATH_ASINH},
    {"atan", {V}, 1, 1, V, rw_fn_math, RW_MATH_ATAN},
    {"atanh", {V}, 1, 1, V, rw_fn_math, RW_MATH_ATANH},
    {"avg_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_AVG},
    {"ceil", {V}, 1, 1, V, rw_fn_math, RW_MATH_CEIL},
    {"changes", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_CHANGES},
    {"clamp", {V, S, S}, 3, 3, V, rw_fn_clamp, RW_CLAMP_BOTH},
    {"clamp_max", {V, S}, 2, 2, V, rw_fn_clamp, RW_CLAMP_MAX},
    {"clamp_min", {V, S}, 2, 2, V, rw_fn_clamp, RW_CLAMP_MIN},
    {"cos", {V}, 1, 1, V, rw_fn_math, RW_MATH_COS},
    {"cosh", {V}, 1, 1, V, rw_fn_math, RW_MATH_COSH},
    {"count_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_COUNT},
    {"day_of_month", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_DAY_OF_MONTH},
    {"day_of_week", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_DAY_OF_WEEK},
    {"day_of_year", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_DAY_OF_YEAR},
    {"days_in_month", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_DAYS_IN_MONTH},
    {"deg", {V}, 1, 1, V, rw_fn_math, RW_MATH_DEG},
    {"delta", {M}, 1, 1, V, rw_fn_rate, RW_RANGE_DELTA},
    {"deriv", {M}, 1, 1, V, rw_fn_deriv, RW_RANGE_DERIV},
    {"double_exponential_smoothing", {M, S, S}, 3, 3, V, rw_fn_smoothing, RW_RANGE_SMOOTH},
    {"end", {0}, 0, 0, S, rw_fn_query_time, RW_QT_END},
    {"exp", {V}, 1, 1, V, rw_fn_math, RW_MATH_EXP},
    {"first_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_FIRST},
    {"floor", {V}, 1, 1, V, rw_fn_math, RW_MATH_FLOOR},
    {"histogram_fraction", {S, S, V}, 3, 3, V, rw_fn_histogram_fraction},
    {"histogram_quantile", {S, V}, 2, 2, V, rw_fn_histogram_quantile, RW_HQ_ONE},
    {"histogram_quantiles", {V, STR, S, S}, 3, 12, V, rw_fn_histogram_quantile, RW_HQ_MANY},
    {"holt_winters", {M, S, S}, 3, 3, V, rw_fn_smoothing, RW_RANGE_SMOOTH},
    {"hour", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_HOUR},
    {"idelta", {M}, 1, 1, V, rw_fn_instant_rate, RW_RANGE_IDELTA},
    {"increase", {M}, 1, 1, V, rw_fn_rate, RW_RANGE_INCREASE},
    {"irate", {M}, 1, 1, V, rw_fn_instant_rate, RW_RANGE_IRATE},
    {"label_join", {V, STR, STR, STR}, 3, -1, V, rw_fn_label_join},
    {"label_replace", {V, STR, STR, STR, STR}, 5, 5, V, rw_fn_label_replace},
    {"last_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_LAST},
    {"ln", {V}, 1, 1, V, rw_fn_math, RW_MATH_LN},
    {"log10", {V}, 1, 1, V, rw_fn_math, RW_MATH_LOG10},
    {"log2", {V}, 1, 1, V, rw_fn_math, RW_MATH_LOG2},
    {"mad_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_MAD},
    {"max_of", {S, S}, 2, 2, S, rw_fn_minmax_of, RW_OF_MAX},
    {"max_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_MAX},
    {"min_of", {S, S}, 2, 2, S, rw_fn_minmax_of, RW_OF_MIN},
    {"min_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_MIN},
    {"minute", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_MINUTE},
    {"month", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_MONTH},
    {"pi", {0}, 0, 0, S, rw_fn_pi},
    {"predict_linear", {M, S}, 2, 2, V, rw_fn_deriv, RW_RANGE_PREDICT},
    {"present_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_PRESENT},
    {"quantile_over_time", {S, M}, 2, 2, V, rw_fn_quantile_over_time, RW_RANGE_QUANTILE},
    {"rad", {V}, 1, 1, V, rw_fn_math, RW_MATH_RAD},
    {"range", {0}, 0, 0, S, rw_fn_query_time, RW_QT_RANGE},
    {"rate", {M}, 1, 1, V, rw_fn_rate, RW_RANGE_RATE},
    {"resets", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_RESETS},
    {"round", {V, S}, 1, 2, V, rw_fn_round},
    {"scalar", {V}, 1, 1, S, rw_fn_scalar},
    {"sgn", {V}, 1, 1, V, rw_fn_math, RW_MATH_SGN},
    {"sin", {V}, 1, 1, V, rw_fn_math, RW_MATH_SIN},
    {"sinh", {V}, 1, 1, V, rw_fn_math, RW_MATH_SINH},
    {"sort", {V}, 1, 1, V, rw_fn_sort, RW_SORT_ASC},
    {"sort_by_label", {V, STR}, 1, -1, V, rw_fn_sort_by_label, RW_SORT_ASC},
    {"sort_by_label_desc", {V, STR}, 1, -1, V, rw_fn_sort_by_label, RW_SORT_DESC},
    {"sort_desc", {V}, 1, 1, V, rw_fn_sort, RW_SORT_DESC},
    {"sqrt", {V}, 1, 1, V, rw_fn_math, RW_MATH_SQRT},
    {"start", {0}, 0, 0, S, rw_fn_query_time, RW_QT_START},
    {"stddev_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_STDDEV},
    {"stdvar_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_STDVAR},
    {"step", {0}, 0, 0, S, rw_fn_query_time, RW_QT_STEP},
    {"sum_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_SUM},
    {"tan", {V}, 1, 1, V, rw_fn_math, RW_MATH_TAN},
    {"tanh", {V}, 1, 1, V, rw_fn_math, RW_MATH_TANH},
    {"time", {0}, 0, 0, S, rw_fn_time},
    {"timestamp", {V}, 1, 1, V, rw_fn_timestamp},
    {"ts_of_first_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_TS_FIRST},
    {"ts_of_last_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_TS_LAST},
    {"ts_of_max_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_TS_MAX},
    {"ts_of_min_over_time", {M}, 1, 1, V, rw_fn_over_time, RW_RANGE_TS_MIN},
    {"vector", {S}, 1, 1, V, rw_fn_vector},
    {"year", {V}, 0, 1, V, rw_fn_calendar, RW_CAL_YEAR},
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
