/* lex.h - the PromQL tokenizer's interface, internal to query/ (used by
 * parse.c only). The lexer turns the whole query into an array of tokens in
 * the parse arena up front; a lexical error becomes a final RW_TK_ERROR token
 * so the parser reports it only when it reaches that point (as Prometheus'
 * lazily driven lexer does), and parse errors earlier in the text win. */
#ifndef RW_QUERY_LEX_H
#define RW_QUERY_LEX_H

#include <stddef.h>
#include <stdint.h>
#include "core/arena.h"
#include "core/err.h"
#include "ast.h"

typedef enum {
    RW_TK_EOF,
    RW_TK_ERROR,        /* str = message */
    RW_TK_IDENT,        /* [a-zA-Z_][a-zA-Z0-9_]*, kw says whether it is a keyword */
    RW_TK_METRIC_IDENT, /* an identifier containing ':' */
    RW_TK_NUMBER,       /* num */
    RW_TK_DURATION,     /* dur_ms */
    RW_TK_STRING,       /* str/slen = decoded value */
    RW_TK_LPAREN, RW_TK_RPAREN, RW_TK_LBRACE, RW_TK_RBRACE, RW_TK_LBRACKET, RW_TK_RBRACKET,
    RW_TK_COMMA, RW_TK_COLON, RW_TK_AT,
    RW_TK_ASSIGN,       /* =  (label matching) */
    RW_TK_EQL_REGEX,    /* =~ */
    RW_TK_NEQ_REGEX,    /* !~ */
    /* binary operators; the order matches nothing, see tok_binop() in parse.c */
    RW_TK_EQLC, RW_TK_NEQ, RW_TK_LSS, RW_TK_LTE, RW_TK_GTR, RW_TK_GTE,
    RW_TK_ADD, RW_TK_SUB, RW_TK_MUL, RW_TK_DIV, RW_TK_MOD, RW_TK_POW
} rw_tok_kind;

/* Keywords are identifiers with a meaning in some positions; they are matched
 * case-insensitively (Prometheus accepts `SUM BY (x)`). Label names and metric
 * names may still spell a keyword: the parser looks at kw only where a
 * keyword can appear. */
typedef enum {
    RW_KW_NONE,
    RW_KW_AND, RW_KW_OR, RW_KW_UNLESS, RW_KW_ATAN2,
    RW_KW_BY, RW_KW_WITHOUT, RW_KW_ON, RW_KW_IGNORING, RW_KW_GROUP_LEFT, RW_KW_GROUP_RIGHT,
    RW_KW_BOOL, RW_KW_OFFSET, RW_KW_START, RW_KW_END,
    RW_KW_AGG /* an aggregation operator; the token's agg says which */
} rw_keyword;

typedef struct rw_token {
    rw_tok_kind kind;
    rw_keyword kw;
    rw_aggop agg;        /* when kw == RW_KW_AGG */
    int pos, len;        /* byte range of the token text */
    double num;          /* RW_TK_NUMBER */
    int64_t dur_ms;      /* RW_TK_DURATION */
    const char *str;     /* RW_TK_STRING: decoded, NUL-terminated (may contain NULs,
                            see slen); RW_TK_ERROR: message */
    size_t slen;
} rw_token;

/* Tokenizes `input` (n bytes) into an arena array that always ends with an
 * RW_TK_EOF or RW_TK_ERROR token. Fails only when the arena is exhausted. */
rw_rc rw_lex(const char *input, size_t n, rw_arena *a, rw_token **out, size_t *nout,
             rw_err *err);

/* How a token reads in "unexpected ..." messages, Prometheus style:
 * `<op:*>`, `<by>`, `<aggr:sum>`, `identifier "foo"`, `number "1"`,
 * `"("`, `end of input`. Writes into buf (cap bytes) and returns it. */
const char *rw_tok_desc(const char *input, const rw_token *t, char *buf, size_t cap);

#endif
