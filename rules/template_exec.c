/* template_exec.c - executes a parsed alert template (template.c) over an
 * alert's data: labels, value, external labels and URL, and a query
 * callback. The alerting rule calls rw_tmpl_exec() for every label and
 * annotation of every active alert at each evaluation.
 *
 * Evaluation follows Go's text/template exec.go node by node, because the
 * outputs and the error messages have to be Prometheus' own: the variable
 * stack with its scoping (a control structure pops what was declared in
 * it), pipelines passing the previous value as the last argument, typed
 * parameters with Go's conversion rules (an untyped number becomes an int
 * or a float64 by its spelling; `gt $value 10` is an error, as in Go),
 * missingkey=zero map lookups, short-circuit and/or, break and continue,
 * range over query results, label maps, args maps and integers.
 *
 * Everything an execution allocates comes from the caller's arena; the
 * output is built in a capped buffer. Range iterations, queries, output and
 * the bytes of strings built are bounded (template.h), so a template cannot
 * make an evaluation run away. */
#include "template_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P_NONE ((tparam)-1)

static const tv TV_MISSING_ = {TV_INVALID, {0}};

/* ---- errors ---- */

rw_rc tmpl_fail(texec *x, rw_rc code, const char *fmt, ...)
{
    char msg[RW_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *name = x->t->name;
    if (!x->at) {
        rw_err_set(x->err, code, "error executing template %s: template: %s: %s", name, name, msg);
        return code;
    }
    int pos = x->at->pos, line = 1, lastnl = -1;
    for (int i = 0; i < pos && (size_t)i < x->t->len; i++)
        if (x->t->text[i] == '\n')
            line++, lastnl = i;
    int col = lastnl < 0 ? pos + TMPL_PROM_PREFIX : pos - (lastnl + 1);
    rw_buf ctx;
    rw_buf_init(&ctx, 200);
    tmpl_node_string(x->at, &ctx);
    rw_err_set(x->err, code,
               "error executing template %s: template: %s:%d:%d: executing \"%s\" at <%s>: %s", name,
               name, line, col, name, ctx.p ? ctx.p : "", msg);
    rw_buf_free(&ctx);
    return code;
}

/* ---- strings ---- */

rw_rc tmpl_str(texec *x, const char *p, size_t n, tv *out)
{
    x->work += n;
    if (x->work > RW_TMPL_MAX_WORK)
        return tmpl_fail(x, RW_LIMIT, "template built more than %u bytes of strings",
                         (unsigned)RW_TMPL_MAX_WORK);
    char *s = rw_arena_strndup(x->a, p ? p : "", n);
    if (!s)
        return tmpl_fail(x, RW_NOMEM, "out of memory");
    out->k = TV_STRING;
    out->u.s.p = s;
    out->u.s.n = n;
    return RW_OK;
}

rw_rc tmpl_buf_str(texec *x, rw_buf *b, tv *out)
{
    if (b->failed) {
        rw_buf_free(b);
        return tmpl_fail(x, RW_LIMIT, "template built more than %u bytes of strings",
                         (unsigned)RW_TMPL_MAX_WORK);
    }
    rw_rc rc = tmpl_str(x, b->p, b->len, out);
    rw_buf_free(b);
    return rc;
}

/* ---- variables ---- */

static rw_rc push(texec *x, const char *name, tv v)
{
    if (x->nvars == x->capvars) {
        size_t cap = x->capvars ? x->capvars * 2 : 16;
        tvar *nv = realloc(x->vars, cap * sizeof *nv);
        if (!nv)
            return tmpl_fail(x, RW_NOMEM, "out of memory");
        x->vars = nv;
        x->capvars = cap;
    }
    x->vars[x->nvars].name = name;
    x->vars[x->nvars].val = v;
    x->nvars++;
    return RW_OK;
}

static rw_rc set_var(texec *x, const char *name, tv v)
{
    for (size_t i = x->nvars; i-- > 0;)
        if (strcmp(x->vars[i].name, name) == 0) {
            x->vars[i].val = v;
            return RW_OK;
        }
    return tmpl_fail(x, RW_EXEC, "undefined variable: %s", name);
}

static rw_rc var_value(texec *x, const char *name, tv *out)
{
    for (size_t i = x->nvars; i-- > 0;)
        if (strcmp(x->vars[i].name, name) == 0) {
            *out = x->vars[i].val;
            return RW_OK;
        }
    return tmpl_fail(x, RW_EXEC, "undefined variable: %s", name);
}

/* ---- values ---- */

int tmpl_truth(const tv *v)
{
    switch (v->k) {
    case TV_INVALID:
        return 0;
    case TV_BOOL:
        return v->u.b;
    case TV_INT:
        return v->u.i != 0;
    case TV_FLOAT:
        return v->u.f != 0;
    case TV_STRING:
    case TV_HTML:
        return v->u.s.n > 0;
    case TV_LABELS:
        return v->u.lm && v->u.lm->n > 0;
    case TV_SAMPLE:
        return v->u.sm != NULL;
    case TV_VECTOR:
        return v->u.vec && v->u.vec->n > 0;
    case TV_ARGS:
        return v->u.args && v->u.args->n > 0;
    case TV_DATA:
        return 1;
    }
    return 0;
}

const char *tmpl_type_name(const tv *v)
{
    switch (v->k) {
    case TV_INVALID:
        return "<nil>";
    case TV_BOOL:
        return "bool";
    case TV_INT:
        return "int";
    case TV_FLOAT:
        return "float64";
    case TV_STRING:
        return "string";
    case TV_HTML:
        return "template.HTML";
    case TV_LABELS:
        return "map[string]string";
    case TV_SAMPLE:
        return "*template.sample";
    case TV_VECTOR:
        return "template.queryResult";
    case TV_ARGS:
        return "map[string]interface {}";
    case TV_DATA:
        return "struct { Labels map[string]string; ExternalLabels map[string]string; "
               "ExternalURL string; Value interface {} }";
    }
    return "?";
}

static const char *param_name(tparam p)
{
    switch (p) {
    case P_STRING:
        return "string";
    case P_SAMPLE:
        return "*template.sample";
    case P_VECTOR:
        return "template.queryResult";
    default:
        return "interface {}";
    }
}

static rw_rc validate(texec *x, tv v, tparam typ, tv *out)
{
    if (v.k == TV_INVALID) {
        if (typ == P_STRING)
            return tmpl_fail(x, RW_EXEC, "invalid value; expected string");
        out->k = typ == P_SAMPLE ? TV_SAMPLE : typ == P_VECTOR ? TV_VECTOR : TV_INVALID;
        out->u.sm = NULL;
        if (typ == P_VECTOR)
            out->u.vec = NULL;
        return RW_OK;
    }
    int ok = typ == P_NONE || typ == P_ANY || (typ == P_STRING && v.k == TV_STRING) ||
             (typ == P_SAMPLE && v.k == TV_SAMPLE) || (typ == P_VECTOR && v.k == TV_VECTOR);
    if (!ok)
        return tmpl_fail(x, RW_EXEC, "wrong type for value; expected %s; got %s", param_name(typ),
                         tmpl_type_name(&v));
    *out = v;
    return RW_OK;
}

static rw_rc ideal_constant(texec *x, const tnode *n, tv *out)
{
    x->at = n;
    int hexint = n->srclen > 2 && n->src[0] == '0' && (n->src[1] == 'x' || n->src[1] == 'X') &&
                 !memchr(n->src, 'p', n->srclen) && !memchr(n->src, 'P', n->srclen);
    int runeint = n->srclen > 0 && n->src[0] == '\'';
    int dotted = 0;
    for (size_t i = 0; i < n->srclen; i++)
        if (strchr(".eEpP", n->src[i]))
            dotted = 1;
    if (n->is_float && !hexint && !runeint && dotted) {
        out->k = TV_FLOAT;
        out->u.f = n->f64;
    } else if (n->is_int) {
        out->k = TV_INT;
        out->u.i = n->i64;
    } else if (n->is_uint) {
        return tmpl_fail(x, RW_EXEC, "%.*s overflows int", (int)n->srclen, n->src);
    } else {
        out->k = TV_INVALID;
    }
    return RW_OK;
}

/* ---- evaluation ---- */

static rw_rc eval_pipeline(texec *x, tv dot, const tnode *pipe, tv *out);
static rw_rc eval_function(texec *x, tv dot, const tnode *ident, const tnode *cmd, int with_args,
                           const tv *final, tv *out);
static rw_rc walk(texec *x, tv dot, const tnode *n);

static rw_rc not_a_function(texec *x, const tnode *cmd, const tv *final)
{
    if ((cmd && cmd->nkids > 1) || final) {
        rw_buf b;
        rw_buf_init(&b, 200);
        tmpl_node_string(cmd ? cmd->kids[0] : x->at, &b);
        rw_rc rc = tmpl_fail(x, RW_EXEC, "can't give argument to non-function %s", b.p ? b.p : "");
        rw_buf_free(&b);
        return rc;
    }
    return RW_OK;
}

static const char *label_get(const rw_label *l, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(l[i].name) == len && memcmp(l[i].name, name, len) == 0)
            return l[i].value;
    return NULL;
}

/* One field step: receiver.name. has_args: arguments or a piped value were
 * given to the last field, which only a method could take. */
static rw_rc eval_field(texec *x, const char *name, int has_args, tv recv, tv *out)
{
    switch (recv.k) {
    case TV_INVALID:
        out->k = TV_INVALID;
        return RW_OK;
    case TV_DATA:
        if (!strcmp(name, "Labels") || !strcmp(name, "ExternalLabels") ||
            !strcmp(name, "ExternalURL") || !strcmp(name, "Value")) {
            if (has_args)
                return tmpl_fail(x, RW_EXEC, "%s has arguments but cannot be invoked as function",
                                 name);
            if (name[0] == 'L') {
                out->k = TV_LABELS;
                out->u.lm = &x->labels;
            } else if (name[0] == 'V') {
                out->k = TV_FLOAT;
                out->u.f = x->d->value;
            } else if (!strcmp(name, "ExternalURL")) {
                const char *u = x->d->external_url ? x->d->external_url : "";
                out->k = TV_STRING;
                out->u.s.p = u;
                out->u.s.n = strlen(u);
            } else {
                out->k = TV_LABELS;
                out->u.lm = &x->external;
            }
            return RW_OK;
        }
        break;
    case TV_SAMPLE:
        if (!strcmp(name, "Labels") || !strcmp(name, "Value")) {
            if (!recv.u.sm)
                return tmpl_fail(x, RW_EXEC, "nil pointer evaluating *template.sample.%s", name);
            if (has_args)
                return tmpl_fail(x, RW_EXEC, "%s has arguments but cannot be invoked as function",
                                 name);
            if (name[0] == 'L') {
                tlabels *lm = rw_arena_alloc(x->a, sizeof *lm);
                if (!lm)
                    return tmpl_fail(x, RW_NOMEM, "out of memory");
                lm->v = recv.u.sm->labels;
                lm->n = recv.u.sm->nlabels;
                out->k = TV_LABELS;
                out->u.lm = lm;
            } else {
                out->k = TV_FLOAT;
                out->u.f = recv.u.sm->value;
            }
            return RW_OK;
        }
        break;
    case TV_LABELS: {
        if (has_args)
            return tmpl_fail(x, RW_EXEC, "%s is not a method but has arguments", name);
        const char *v = recv.u.lm ? label_get(recv.u.lm->v, recv.u.lm->n, name, strlen(name)) : NULL;
        out->k = TV_STRING;
        out->u.s.p = v ? v : "";
        out->u.s.n = v ? strlen(v) : 0;
        return RW_OK;
    }
    case TV_ARGS:
        if (has_args)
            return tmpl_fail(x, RW_EXEC, "%s is not a method but has arguments", name);
        out->k = TV_INVALID;
        if (!strncmp(name, "arg", 3) && name[3]) {
            char *end;
            unsigned long i = strtoul(name + 3, &end, 10);
            if (!*end && (name[3] != '0' || !name[4]) && recv.u.args && i < recv.u.args->n)
                *out = recv.u.args->v[i];
        }
        return RW_OK;
    default:
        break;
    }
    return tmpl_fail(x, RW_EXEC, "can't evaluate field %s in type %s", name, tmpl_type_name(&recv));
}

static rw_rc eval_field_chain(texec *x, tv recv, const char *const *ident, size_t n, int has_args,
                              tv *out)
{
    for (size_t i = 0; i < n; i++) {
        rw_rc rc = eval_field(x, ident[i], i + 1 == n ? has_args : 0, recv, &recv);
        if (rc != RW_OK)
            return rc;
    }
    *out = recv;
    return RW_OK;
}

static rw_rc eval_arg(texec *x, tv dot, tparam typ, const tnode *n, tv *out);

static rw_rc eval_chain(texec *x, tv dot, const tnode *chain, int has_args, tv *out)
{
    x->at = chain;
    if (chain->chain->type == N_NIL) {
        rw_buf b;
        rw_buf_init(&b, 200);
        tmpl_node_string(chain, &b);
        rw_rc rc = tmpl_fail(x, RW_EXEC, "indirection through explicit nil in %s", b.p ? b.p : "");
        rw_buf_free(&b);
        return rc;
    }
    tv recv;
    rw_rc rc = eval_arg(x, dot, P_NONE, chain->chain, &recv);
    if (rc != RW_OK)
        return rc;
    return eval_field_chain(x, recv, chain->ident, chain->nident, has_args, out);
}

static rw_rc eval_variable(texec *x, const tnode *v, const tnode *cmd, const tv *final, tv *out)
{
    x->at = v;
    tv val;
    rw_rc rc = var_value(x, v->ident[0], &val);
    if (rc != RW_OK)
        return rc;
    if (v->nident == 1) {
        if ((rc = not_a_function(x, cmd, final)) != RW_OK)
            return rc;
        *out = val;
        return RW_OK;
    }
    int has_args = (cmd && cmd->nkids > 1) || final;
    return eval_field_chain(x, val, v->ident + 1, v->nident - 1, has_args, out);
}

static rw_rc eval_arg(texec *x, tv dot, tparam typ, const tnode *n, tv *out)
{
    x->at = n;
    tv v;
    rw_rc rc;
    switch (n->type) {
    case N_DOT:
        return validate(x, dot, typ, out);
    case N_NIL:
        if (typ == P_STRING)
            return tmpl_fail(x, RW_EXEC, "cannot assign nil to string");
        return validate(x, TV_MISSING_, typ, out);
    case N_FIELD:
        if ((rc = eval_field_chain(x, dot, n->ident, n->nident, 0, &v)) != RW_OK)
            return rc;
        return validate(x, v, typ, out);
    case N_VAR:
        if ((rc = eval_variable(x, n, NULL, NULL, &v)) != RW_OK)
            return rc;
        return validate(x, v, typ, out);
    case N_PIPE:
        if ((rc = eval_pipeline(x, dot, n, &v)) != RW_OK)
            return rc;
        return validate(x, v, typ, out);
    case N_IDENT:
        if ((rc = eval_function(x, dot, n, n, 0, NULL, &v)) != RW_OK)
            return rc;
        return validate(x, v, typ, out);
    case N_CHAIN:
        if ((rc = eval_chain(x, dot, n, 0, &v)) != RW_OK)
            return rc;
        return validate(x, v, typ, out);
    default:
        break;
    }
    x->at = n;
    rw_buf b;
    rw_buf_init(&b, 200);
    tmpl_node_string(n, &b);
    const char *ns = b.p ? b.p : "";
    switch ((int)typ) {
    case P_STRING:
        if (n->type == N_STRING) {
            rw_buf_free(&b);
            out->k = TV_STRING;
            out->u.s.p = n->text;
            out->u.s.n = n->len;
            return RW_OK;
        }
        rc = tmpl_fail(x, RW_EXEC, "expected string; found %s", ns);
        break;
    case P_ANY:
    case (int)P_NONE:
        rw_buf_free(&b);
        if (n->type == N_BOOL) {
            out->k = TV_BOOL;
            out->u.b = n->b;
            return RW_OK;
        }
        if (n->type == N_NUMBER)
            return ideal_constant(x, n, out);
        if (n->type == N_STRING) {
            out->k = TV_STRING;
            out->u.s.p = n->text;
            out->u.s.n = n->len;
            return RW_OK;
        }
        return tmpl_fail(x, RW_EXEC, "can't handle assignment to empty interface argument");
    default:
        rc = tmpl_fail(x, RW_EXEC, "can't handle %s for arg of type %s", ns, param_name(typ));
    }
    rw_buf_free(&b);
    return rc;
}

static rw_rc eval_function(texec *x, tv dot, const tnode *ident, const tnode *cmd, int with_args,
                           const tv *final, tv *out)
{
    x->at = ident;
    const tfunc *f = &tmpl_funcs[ident->fn];
    const tnode *const *args = with_args ? (const tnode *const *)cmd->kids + 1 : NULL;
    size_t nargs = with_args ? cmd->nkids - 1 : 0;
    size_t num_in = nargs + (final ? 1 : 0);
    if (f->variadic) {
        if (num_in < (size_t)f->nparams)
            return tmpl_fail(x, RW_EXEC, "wrong number of args for %s: want at least %d got %zu",
                             f->name, f->nparams, nargs);
    } else if (num_in != (size_t)f->nparams) {
        return tmpl_fail(x, RW_EXEC, "wrong number of args for %s: want %d got %zu", f->name,
                         f->nparams, num_in);
    }
    rw_rc rc;
    if (TMPL_IS_ANDOR(ident->fn)) {
        int is_or = f->name[0] == 'o';
        tv v = TV_MISSING_;
        for (size_t i = 0; i < nargs; i++) {
            if ((rc = eval_arg(x, dot, P_ANY, args[i], &v)) != RW_OK)
                return rc;
            if (tmpl_truth(&v) == is_or) {
                *out = v;
                return RW_OK;
            }
        }
        if (final)
            v = *final;
        *out = v;
        return RW_OK;
    }
    tv *argv = num_in ? rw_arena_calloc(x->a, num_in, sizeof *argv) : NULL;
    if (num_in && !argv)
        return tmpl_fail(x, RW_NOMEM, "out of memory");
    size_t i = 0;
    for (; i < nargs; i++) {
        tparam t = i < (size_t)f->nparams ? f->params[i] : P_ANY;
        if ((rc = eval_arg(x, dot, t, args[i], &argv[i])) != RW_OK)
            return rc;
    }
    if (final) {
        tparam t = i < (size_t)f->nparams ? f->params[i] : P_ANY;
        if ((rc = validate(x, *final, t, &argv[i])) != RW_OK)
            return rc;
    }
    x->at = cmd;
    return f->fn(x, argv, num_in, out);
}

static rw_rc eval_command(texec *x, tv dot, const tnode *cmd, const tv *final, tv *out)
{
    const tnode *first = cmd->kids[0];
    rw_rc rc;
    switch (first->type) {
    case N_FIELD:
        x->at = first;
        return eval_field_chain(x, dot, first->ident, first->nident, cmd->nkids > 1 || final, out);
    case N_CHAIN:
        return eval_chain(x, dot, first, cmd->nkids > 1 || final, out);
    case N_IDENT:
        return eval_function(x, dot, first, cmd, 1, final, out);
    case N_PIPE:
        if ((rc = not_a_function(x, cmd, final)) != RW_OK)
            return rc;
        return eval_pipeline(x, dot, first, out);
    case N_VAR:
        return eval_variable(x, first, cmd, final, out);
    default:
        break;
    }
    x->at = first;
    if ((rc = not_a_function(x, cmd, final)) != RW_OK)
        return rc;
    switch (first->type) {
    case N_BOOL:
        out->k = TV_BOOL;
        out->u.b = first->b;
        return RW_OK;
    case N_DOT:
        *out = dot;
        return RW_OK;
    case N_NIL:
        return tmpl_fail(x, RW_EXEC, "nil is not a command");
    case N_NUMBER:
        return ideal_constant(x, first, out);
    case N_STRING:
        out->k = TV_STRING;
        out->u.s.p = first->text;
        out->u.s.n = first->len;
        return RW_OK;
    default:
        return tmpl_fail(x, RW_INTERNAL, "can't evaluate command");
    }
}

static rw_rc eval_pipeline(texec *x, tv dot, const tnode *pipe, tv *out)
{
    x->at = pipe;
    tv v = TV_MISSING_;
    int have = 0;
    for (size_t i = 0; i < pipe->nkids; i++) {
        tv nv;
        rw_rc rc = eval_command(x, dot, pipe->kids[i], have ? &v : NULL, &nv);
        if (rc != RW_OK)
            return rc;
        v = nv;
        have = 1;
    }
    for (size_t i = 0; i < pipe->ndecl; i++) {
        rw_rc rc = pipe->is_assign ? set_var(x, pipe->decl[i], v) : push(x, pipe->decl[i], v);
        if (rc != RW_OK)
            return rc;
    }
    *out = v;
    return RW_OK;
}

/* ---- output ---- */

static rw_rc out_check(texec *x)
{
    if (x->out.failed)
        return tmpl_fail(x, RW_LIMIT, "template output exceeds %u bytes",
                         (unsigned)RW_TMPL_MAX_OUTPUT);
    return RW_OK;
}

static rw_rc print_value(texec *x, const tv *v)
{
    if (v->k == TV_INVALID) {
        rw_buf_puts(&x->out, "<no value>");
    } else if (v->k == TV_SAMPLE && !v->u.sm) {
        rw_buf_puts(&x->out, "<nil>");
    } else {
        /* Go prints what a pointer points to: a sample as its struct */
        rw_rc rc = tmpl_fmt_value(x, &x->out, v, 'v', v->k == TV_SAMPLE ? -1 : 0);
        if (rc != RW_OK)
            return rc;
    }
    return out_check(x);
}

/* ---- walking ---- */

static rw_rc walk_list(texec *x, tv dot, const tnode *list)
{
    for (size_t i = 0; list && i < list->nkids; i++) {
        rw_rc rc = walk(x, dot, list->kids[i]);
        if (rc != RW_OK || x->brk)
            return rc;
    }
    return RW_OK;
}

static rw_rc walk_if_with(texec *x, tv dot, const tnode *n)
{
    size_t mark = x->nvars;
    tv val;
    rw_rc rc = eval_pipeline(x, dot, n->pipe, &val);
    if (rc == RW_OK) {
        if (tmpl_truth(&val))
            rc = walk_list(x, n->type == N_WITH ? val : dot, n->list);
        else if (n->elist)
            rc = walk_list(x, dot, n->elist);
    }
    x->nvars = mark;
    return rc;
}

/* One range iteration: binds the declared variables, walks the body. */
static rw_rc one_iteration(texec *x, const tnode *r, size_t mark, tv index, tv elem)
{
    const tnode *pipe = r->pipe;
    rw_rc rc;
    if (++x->iters > RW_TMPL_MAX_ITER)
        return tmpl_fail(x, RW_LIMIT, "range iterations exceed %u", (unsigned)RW_TMPL_MAX_ITER);
    if (pipe->ndecl > 0) {
        if (pipe->is_assign) {
            rc = set_var(x, pipe->decl[0], pipe->ndecl > 1 ? index : elem);
            if (rc != RW_OK)
                return rc;
        } else {
            x->vars[x->nvars - 1].val = elem;
        }
    }
    if (pipe->ndecl > 1) {
        if (pipe->is_assign) {
            if ((rc = set_var(x, pipe->decl[1], elem)) != RW_OK)
                return rc;
        } else {
            x->vars[x->nvars - 2].val = index;
        }
    }
    rc = walk_list(x, elem, r->list);
    x->nvars = mark;
    if (x->brk == 2)
        x->brk = 0; /* continue */
    return rc;
}

static int label_cmp_idx(const void *a, const void *b)
{
    const rw_label *x = *(const rw_label *const *)a, *y = *(const rw_label *const *)b;
    return strcmp(x->name, y->name);
}

static rw_rc walk_range(texec *x, tv dot, const tnode *r)
{
    x->at = r;
    size_t outer = x->nvars;
    tv val;
    rw_rc rc = eval_pipeline(x, dot, r->pipe, &val);
    if (rc != RW_OK) {
        x->nvars = outer;
        return rc;
    }
    size_t mark = x->nvars;
    int ran = 0;
    switch (val.k) {
    case TV_INT:
        if (r->pipe->ndecl > 1) {
            x->at = r;
            rc = tmpl_fail(x, RW_EXEC, "can't use %lld to iterate over more than one variable",
                           (long long)val.u.i);
            break;
        }
        for (int64_t i = 0; i < val.u.i && rc == RW_OK && !x->brk; i++) {
            tv e = {TV_INT, {.i = i}};
            ran = 1;
            rc = one_iteration(x, r, mark, TV_MISSING_, e);
        }
        break;
    case TV_VECTOR:
        for (size_t i = 0; val.u.vec && i < val.u.vec->n && rc == RW_OK && !x->brk; i++) {
            tv idx = {TV_INT, {.i = (int64_t)i}}, e = {TV_SAMPLE, {.sm = val.u.vec->v[i]}};
            ran = 1;
            rc = one_iteration(x, r, mark, idx, e);
        }
        break;
    case TV_LABELS: {
        size_t n = val.u.lm ? val.u.lm->n : 0;
        const rw_label **ord = n ? rw_arena_alloc(x->a, n * sizeof *ord) : NULL;
        if (n && !ord) {
            rc = tmpl_fail(x, RW_NOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < n; i++)
            ord[i] = &val.u.lm->v[i];
        if (n)
            qsort(ord, n, sizeof *ord, label_cmp_idx);
        for (size_t i = 0; i < n && rc == RW_OK && !x->brk; i++) {
            tv k = {TV_STRING, {.s = {ord[i]->name, strlen(ord[i]->name)}}};
            tv e = {TV_STRING, {.s = {ord[i]->value, strlen(ord[i]->value)}}};
            ran = 1;
            rc = one_iteration(x, r, mark, k, e);
        }
        break;
    }
    case TV_ARGS: {
        /* keys arg0..argN in Go's sorted (string) order */
        size_t n = val.u.args ? val.u.args->n : 0;
        char **keys = n ? rw_arena_alloc(x->a, n * sizeof *keys) : NULL;
        if (n && !keys) {
            rc = tmpl_fail(x, RW_NOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            keys[i] = rw_arena_sprintf(x->a, "arg%zu", i);
            if (!keys[i])
                return tmpl_fail(x, RW_NOMEM, "out of memory");
        }
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
                char *t = keys[j];
                keys[j] = keys[j - 1];
                keys[j - 1] = t;
            }
        for (size_t i = 0; i < n && rc == RW_OK && !x->brk; i++) {
            size_t ai = strtoul(keys[i] + 3, NULL, 10);
            tv k = {TV_STRING, {.s = {keys[i], strlen(keys[i])}}};
            ran = 1;
            rc = one_iteration(x, r, mark, k, val.u.args->v[ai]);
        }
        break;
    }
    case TV_INVALID:
        break;
    default: {
        rw_buf b;
        rw_buf_init(&b, 4096);
        if (val.k == TV_SAMPLE && !val.u.sm)
            rw_buf_puts(&b, "<nil>");
        else
            tmpl_fmt_value(x, &b, &val, 'v', val.k == TV_SAMPLE ? -1 : 0);
        x->at = r;
        rc = tmpl_fail(x, RW_EXEC, "range can't iterate over %s", b.p ? b.p : "");
        rw_buf_free(&b);
    }
    }
    if (x->brk == 1)
        x->brk = 0; /* break ends this range only */
    if (rc == RW_OK && !ran && r->elist)
        rc = walk_list(x, dot, r->elist);
    x->nvars = outer;
    return rc;
}

static rw_rc walk(texec *x, tv dot, const tnode *n)
{
    x->at = n;
    switch (n->type) {
    case N_TEXT:
        rw_buf_append(&x->out, n->text, n->len);
        return out_check(x);
    case N_ACTION: {
        tv v;
        rw_rc rc = eval_pipeline(x, dot, n->pipe, &v);
        if (rc != RW_OK)
            return rc;
        if (n->pipe->ndecl == 0)
            return print_value(x, &v);
        return RW_OK;
    }
    case N_IF:
    case N_WITH:
        return walk_if_with(x, dot, n);
    case N_RANGE:
        return walk_range(x, dot, n);
    case N_LIST:
        return walk_list(x, dot, n);
    case N_BREAK:
        x->brk = 1;
        return RW_OK;
    case N_CONTINUE:
        x->brk = 2;
        return RW_OK;
    default:
        return tmpl_fail(x, RW_INTERNAL, "unknown node");
    }
}

rw_rc rw_tmpl_exec(const rw_tmpl *t, const rw_tmpl_data *d, rw_arena *a, char **out, rw_err *err)
{
    *out = NULL;
    static const rw_tmpl_data empty;
    if (!d)
        d = &empty;
    texec x;
    memset(&x, 0, sizeof x);
    x.t = t;
    x.d = d;
    x.a = a;
    x.err = err;
    x.labels.v = d->labels;
    x.labels.n = d->nlabels;
    x.external.v = d->external_labels;
    x.external.n = d->nexternal;
    rw_buf_init(&x.out, RW_TMPL_MAX_OUTPUT);
    tv data = {TV_DATA, {0}};
    tv labels = {TV_LABELS, {.lm = &x.labels}};
    tv ext = {TV_LABELS, {.lm = &x.external}};
    const char *u = d->external_url ? d->external_url : "";
    tv url = {TV_STRING, {.s = {u, strlen(u)}}};
    tv value = {TV_FLOAT, {.f = d->value}};
    rw_rc rc;
    if ((rc = push(&x, "$", data)) == RW_OK && (rc = push(&x, "$labels", labels)) == RW_OK &&
        (rc = push(&x, "$externalLabels", ext)) == RW_OK &&
        (rc = push(&x, "$externalURL", url)) == RW_OK && (rc = push(&x, "$value", value)) == RW_OK)
        rc = walk_list(&x, data, t->root);
    if (rc == RW_OK) {
        char *s = rw_arena_strndup(a, x.out.p ? x.out.p : "", x.out.len);
        if (!s)
            rc = rw_err_set(err, RW_NOMEM, "template %s: out of memory", t->name);
        *out = s;
    }
    rw_buf_free(&x.out);
    free(x.vars);
    return rc;
}
