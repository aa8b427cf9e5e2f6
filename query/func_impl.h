/* func_impl.h - implementations behind the function table (func.c), one
 * declaration per implementation. Several functions of one kind share an
 * implementation; the table row's `op` (one of the enums below) tells it
 * which one it runs, so no function name is compared at evaluation time.
 * Internal to query/; defined in func_*.c. */
#ifndef RW_QUERY_FUNC_IMPL_H
#define RW_QUERY_FUNC_IMPL_H

#include "func.h"

/* rw_fn_math: the element-wise kernels */
enum {
    RW_MATH_ABS, RW_MATH_CEIL, RW_MATH_FLOOR, RW_MATH_EXP, RW_MATH_SQRT, RW_MATH_LN,
    RW_MATH_LOG2, RW_MATH_LOG10, RW_MATH_SIN, RW_MATH_COS, RW_MATH_TAN, RW_MATH_ASIN,
    RW_MATH_ACOS, RW_MATH_ATAN, RW_MATH_SINH, RW_MATH_COSH, RW_MATH_TANH, RW_MATH_ASINH,
    RW_MATH_ACOSH, RW_MATH_ATANH, RW_MATH_DEG, RW_MATH_RAD, RW_MATH_SGN, RW_MATH__COUNT
};
/* rw_fn_clamp, rw_fn_minmax_of */
enum { RW_CLAMP_BOTH, RW_CLAMP_MAX, RW_CLAMP_MIN };
enum { RW_OF_MAX, RW_OF_MIN };
/* rw_fn_query_time */
enum { RW_QT_START, RW_QT_END, RW_QT_RANGE, RW_QT_STEP };
/* rw_fn_calendar */
enum {
    RW_CAL_YEAR, RW_CAL_MONTH, RW_CAL_DAY_OF_MONTH, RW_CAL_DAY_OF_WEEK, RW_CAL_DAY_OF_YEAR,
    RW_CAL_HOUR, RW_CAL_MINUTE, RW_CAL_DAYS_IN_MONTH
};
/* rw_fn_sort, rw_fn_sort_by_label */
enum { RW_SORT_ASC, RW_SORT_DESC };
/* rw_fn_histogram_quantile */
enum { RW_HQ_ONE, RW_HQ_MANY };
/* range functions (func_range.c): what each window computes */
enum {
    RW_RANGE_RATE, RW_RANGE_INCREASE, RW_RANGE_DELTA, RW_RANGE_IRATE, RW_RANGE_IDELTA,
    RW_RANGE_DERIV, RW_RANGE_PREDICT, RW_RANGE_SMOOTH, RW_RANGE_AVG, RW_RANGE_COUNT,
    RW_RANGE_SUM, RW_RANGE_MIN, RW_RANGE_MAX, RW_RANGE_STDDEV, RW_RANGE_STDVAR, RW_RANGE_LAST,
    RW_RANGE_FIRST, RW_RANGE_PRESENT, RW_RANGE_CHANGES, RW_RANGE_RESETS, RW_RANGE_MAD,
    RW_RANGE_QUANTILE, RW_RANGE_TS_FIRST, RW_RANGE_TS_LAST, RW_RANGE_TS_MAX, RW_RANGE_TS_MIN
};

#define RW_FN(name) int name(struct rw_eval_ctx *ctx, const struct rw_node *call, \
                             struct rw_eval_value *out)

RW_FN(rw_fn_math);
RW_FN(rw_fn_absent);
RW_FN(rw_fn_absent_over_time);
RW_FN(rw_fn_over_time);
RW_FN(rw_fn_quantile_over_time);
RW_FN(rw_fn_clamp);
RW_FN(rw_fn_calendar);
RW_FN(rw_fn_rate);
RW_FN(rw_fn_instant_rate);
RW_FN(rw_fn_deriv);
RW_FN(rw_fn_smoothing);
RW_FN(rw_fn_histogram_quantile);
RW_FN(rw_fn_label_join);
RW_FN(rw_fn_label_replace);
RW_FN(rw_fn_pi);
RW_FN(rw_fn_time);
RW_FN(rw_fn_round);
RW_FN(rw_fn_scalar);
RW_FN(rw_fn_sort);
RW_FN(rw_fn_sort_by_label);
RW_FN(rw_fn_timestamp);
RW_FN(rw_fn_vector);
RW_FN(rw_fn_query_time);
RW_FN(rw_fn_minmax_of);
RW_FN(rw_fn_histogram_fraction);

#endif
