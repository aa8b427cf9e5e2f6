/* func_impl.h - implementations behind the function table (func.c), one
 * declaration per implementation; several functions of one kind share an
 * implementation that looks at call->u.call.fn->name once per call. Internal
 * to query/; defined in func_*.c. */
#ifndef RW_QUERY_FUNC_IMPL_H
#define RW_QUERY_FUNC_IMPL_H

#include "func.h"

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
