/* template_int.h - internals shared by the template parser (template.c), its
 * executor (template_exec.c), the function table (template_funcs.c) and Go's
 * fmt formatting (template_fmt.c). Other layers include template.h only.
 *
 * The parse tree mirrors Go's text/template/parse node kinds so that the
 * executor can follow Go's evaluation rules node by node; every node keeps
 * its byte position for error messages. Nodes live in the template's arena.
 * Run-time values (tv) mirror the Go types Prometheus' templates see:
 * bool, int, float64, string, template.HTML, map[string]string (labels),
 * *template.sample, template.queryResult, map[string]interface{} (args) and
 * the alert data struct. */
#ifndef RW_TEMPLATE_INT_H
#define RW_TEMPLATE_INT_H

#include <stdint.h>
#include "core/buf.h"
#include "template.h"

/* Prometheus prepends "{{$labels := .Labels}}{{$externalLabels :=
 * .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
 * (112 bytes, no newline) to every alert template: columns on line 1 of
 * execution errors are shifted by that much. */
#define TMPL_PROM_PREFIX 112
#define TMPL_MAX_DEPTH 100 /* nesting of control structures and parentheses */

typedef enum {
    N_TEXT,
    N_ACTION,
    N_IF,
    N_RANGE,
    N_WITH,
    N_LIST,
    N_BREAK,
    N_CONTINUE,
    N_END,  /* parse-time only */
    N_ELSE, /* parse-time only */
    N_PIPE,
    N_CMD,
    N_FIELD,
    N_VAR,
    N_CHAIN,
    N_DOT,
    N_NIL,
    N_BOOL,
    N_NUMBER,
    N_STRING,
    N_IDENT
} tnode_type;

typedef struct tnode tnode;
struct tnode {
    tnode_type type;
    int pos;           /* byte offset in the text */
    tnode **kids;      /* LIST: nodes; PIPE: commands; CMD: arguments */
    size_t nkids;
    /* PIPE */
    const char **decl; /* declared / assigned variable names */
    size_t ndecl;
    int is_assign;
    /* IF / RANGE / WITH / ACTION */
    tnode *pipe, *list, *elist;
    /* FIELD / VAR / CHAIN: identifiers (FIELD without dots, VAR starting
     * with its $name); CHAIN: fields applied to `chain` */
    const char **ident;
    size_t nident;
    tnode *chain;
    /* TEXT, STRING (decoded), IDENT (name) */
    const char *text;
    size_t len;
    const char *src; /* NUMBER / STRING: as written */
    size_t srclen;
    /* NUMBER */
    int is_int, is_uint, is_float;
    int64_t i64;
    uint64_t u64;
    double f64;
    /* BOOL */
    int b;
    /* IDENT */
    int fn; /* index in tmpl_funcs */
    /* STRING: compiled regex when this literal is the pattern of
     * reReplaceAll / match (NULL: compile at run time) */
    void *re;
    int re_failed;
};

struct rw_tmpl {
    rw_arena *arena;
    const char *name;
    const char *text;
    size_t len;
    tnode *root;
    void **regexes; /* compiled literal patterns to free */
    size_t nregexes, capregexes;
};

/* ---- lexer (template_lex.c) ---- */

typedef enum {
    I_ERROR,
    I_BOOL,
    I_CHAR,
    I_CHARCONST,
    I_COMPLEX,
    I_ASSIGN,
    I_DECLARE,
    I_EOF,
    I_FIELD,
    I_IDENT,
    I_LDELIM,
    I_LPAREN,
    I_NUMBER,
    I_PIPE,
    I_RAWSTRING,
    I_RDELIM,
    I_RPAREN,
    I_SPACE,
    I_STRING,
    I_TEXT,
    I_VARIABLE,
    I_KEYWORD, /* keywords follow */
    I_BLOCK,
    I_BREAK,
    I_CONTINUE,
    I_DOT,
    I_DEFINE,
    I_ELSE,
    I_END,
    I_IF,
    I_NIL,
    I_RANGE,
    I_TEMPLATE,
    I_WITH
} itype;

typedef struct item {
    itype typ;
    int pos;
    const char *val;
    size_t len;
    int line;
} item;

typedef enum { S_TEXT, S_LDELIM, S_COMMENT, S_RDELIM, S_INSIDE, S_SPACE, S_DONE } lstate;

typedef struct lexer {
    const char *in;
    size_t len;
    size_t pos, start, width;
    int paren;
    int line, start_line;
    lstate state;
    int rparen_error; /* an unmatched ')' was emitted: the error comes next */
    rw_arena *a;
} lexer;

int32_t tmpl_decode(const char *s, size_t n, size_t *w); /* 0xfffd for a bad byte */
item tmpl_lex_item(lexer *l);

/* ---- values ---- */

typedef enum {
    TV_INVALID, /* Go's invalid reflect.Value: nil, missing */
    TV_BOOL,
    TV_INT,
    TV_FLOAT,
    TV_STRING,
    TV_HTML,    /* template.HTML (safeHtml): prints as a string */
    TV_LABELS,  /* map[string]string */
    TV_SAMPLE,  /* *template.sample (may be nil) */
    TV_VECTOR,  /* template.queryResult */
    TV_ARGS,    /* map[string]interface{} from args */
    TV_DATA     /* the alert data struct */
} tv_kind;

typedef struct tsample {
    const rw_label *labels;
    size_t nlabels;
    double value;
} tsample;

typedef struct tvector {
    tsample **v; /* sortByLabel sorts in place, as Go sorts the slice */
    size_t n;
} tvector;

typedef struct tv tv;
typedef struct targs {
    tv *v;
    size_t n;
} targs;

typedef struct tlabels {
    const rw_label *v;
    size_t n;
} tlabels;

struct tv {
    tv_kind k;
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        const tlabels *lm;
        tsample *sm;
        tvector *vec;
        const targs *args;
    } u;
};

/* ---- execution state ---- */

typedef struct tvar {
    const char *name;
    tv val;
} tvar;

typedef struct texec {
    const rw_tmpl *t;
    const rw_tmpl_data *d;
    rw_arena *a;
    rw_err *err;
    rw_buf out;
    tvar *vars;
    size_t nvars, capvars;
    tlabels labels, external;
    size_t iters, queries, work;
    const tnode *at; /* node for error context */
    int brk;         /* 1: break, 2: continue pending */
} texec;

/* Records an execution error in Go's shape and returns RW_EXEC (or code). */
rw_rc tmpl_fail(texec *x, rw_rc code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Go's String() of a node, appended to b. */
void tmpl_node_string(const tnode *n, rw_buf *b);

/* Arena string helpers; they count towards RW_TMPL_MAX_WORK. */
rw_rc tmpl_str(texec *x, const char *p, size_t n, tv *out);
rw_rc tmpl_buf_str(texec *x, rw_buf *b, tv *out); /* takes b's bytes, frees b */

/* ---- functions ---- */

typedef enum {
    P_ANY,    /* interface{} / reflect.Value */
    P_STRING, /* string */
    P_SAMPLE, /* *template.sample */
    P_VECTOR  /* template.queryResult */
} tparam;

typedef rw_rc (*tfunc_fn)(texec *x, const tv *args, size_t n, tv *out);

typedef struct tfunc {
    const char *name;
    tfunc_fn fn;        /* NULL: known but not supported */
    int nparams;        /* fixed parameters */
    int variadic;       /* then any number of P_ANY */
    tparam params[3];
    const char *why;    /* unsupported: the reason */
} tfunc;

extern const tfunc tmpl_funcs[];
extern const size_t tmpl_nfuncs;
int tmpl_func_find(const char *name, size_t len); /* index or -1 */
int tmpl_func_is(int fn, const char *name);

/* Short-circuit builtins handled by the executor. */
#define TMPL_IS_ANDOR(f) (tmpl_func_is((f), "and") || tmpl_func_is((f), "or"))

/* Truth of a value as Go's `if` sees it. */
int tmpl_truth(const tv *v);
/* Go type name of a value ("float64", "map[string]string", ...). */
const char *tmpl_type_name(const tv *v);

/* Compiles a Go (RE2-syntax) regular expression, unanchored, with PCRE2.
 * NULL with a Go-style message in msg on failure. */
void *tmpl_regex_compile(const char *pat, size_t len, char *msg, size_t cap);
void tmpl_regex_free(void *re);
rw_rc tmpl_f_match(texec *x, const tv *args, size_t n, tv *out);
rw_rc tmpl_f_re_replace_all(texec *x, const tv *args, size_t n, tv *out);

/* ---- Go fmt ---- */

/* fmt.Sprint / %v of one value. */
rw_rc tmpl_fmt_value(texec *x, rw_buf *b, const tv *v, int verb, int depth);
/* fmt.Sprintf(format, args...). */
rw_rc tmpl_sprintf(texec *x, rw_buf *b, const char *f, size_t flen, const tv *args, size_t n);
/* fmt.Sprint(args...) and fmt.Sprintln(args...). */
rw_rc tmpl_sprint(texec *x, rw_buf *b, const tv *args, size_t n, int ln);
/* Go's %.Ng of v ("NaN", "+Inf", "-Inf" for the specials). */
void tmpl_fmt_g(double v, int prec, char *out, size_t cap);
/* strconv.Quote. */
rw_rc tmpl_quote(rw_buf *b, const char *s, size_t n, int ascii);
/* strconv.ParseFloat: 0 on success, else -1 (syntax) or -2 (range). */
int tmpl_parse_float(const char *s, size_t n, double *out);

#endif
