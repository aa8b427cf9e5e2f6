/* test_rules_template.c - unit tests of alert templates (rules/template.h).
 *
 * The expected outputs of `prom_cases` were produced by the real Prometheus:
 * each template was put in an alert annotation and rendered by
 * `promtool test rules` (Debian prometheus 2.42) over the same data as
 * below (labels {__name__="m", instance="host-1:9100", job="node"}, value
 * 1234.5678, no external labels, series up{instance="b:9100"} 1 and
 * up{instance="a:9100"} 0 for `query "up"`), including Go's error texts.
 * The cases after them cover Prometheus 3 behaviour that 2.42 cannot show
 * (negative parseDuration, range over an integer, external labels and URL),
 * parse errors with positions, refusals of what rwgate does not support,
 * and the execution limits. */
#include <stdlib.h>
#include <string.h>
#include "rules/template.h"
#include "test.h"

static rw_label up1[] = {{"__name__", "up"}, {"instance", "b:9100"}, {"job", "node"}};
static rw_label up2[] = {{"__name__", "up"}, {"instance", "a:9100"}, {"job", "node"}};
static int nqueries;

/* A stand-in for the engine: "up" has two series, "nothing" none,
 * "42" is a scalar, "matrix" the wrong type; anything else fails. */
static rw_rc fake_query(void *ctx, const char *expr, rw_arena *a, rw_result *out, rw_err *err)
{
    (void)ctx;
    nqueries++;
    memset(out, 0, sizeof *out);
    if (!strcmp(expr, "up")) {
        out->type = RW_VAL_VECTOR;
        out->series = rw_arena_calloc(a, 2, sizeof *out->series);
        rw_point *p = rw_arena_calloc(a, 2, sizeof *p);
        p[0].v = 1;
        p[1].v = 0;
        out->series[0] = (rw_result_series){up1, 3, &p[0], 1};
        out->series[1] = (rw_result_series){up2, 3, &p[1], 1};
        out->nseries = 2;
        return RW_OK;
    }
    if (!strcmp(expr, "nothing")) {
        out->type = RW_VAL_VECTOR;
        return RW_OK;
    }
    if (!strcmp(expr, "42")) {
        out->type = RW_VAL_SCALAR;
        out->scalar = 42;
        return RW_OK;
    }
    if (!strcmp(expr, "matrix")) {
        out->type = RW_VAL_MATRIX;
        return RW_OK;
    }
    return rw_err_set(err, RW_BADREQ, "1:1: parse error: unexpected %s", expr);
}

static rw_label lbl[] = {{"__name__", "m"}, {"instance", "host-1:9100"}, {"job", "node"}};
static rw_label ext[] = {{"cluster", "c1"}, {"region", "eu"}};

/* Renders text; returns a malloc'd output or "<error expanding template:
 * MSG>" as Prometheus writes it, or "PARSE: MSG". */
static char *render_with(const char *text, const rw_tmpl_data *d)
{
    rw_err e;
    rw_err_init(&e);
    rw_tmpl *t = rw_tmpl_parse("__alert_A", text, &e);
    char *res;
    if (!t) {
        res = malloc(strlen(e.msg) + 8);
        sprintf(res, "PARSE: %s", e.msg);
        return res;
    }
    rw_arena *a = rw_arena_new(0, 0);
    char *out;
    if (rw_tmpl_exec(t, d, a, &out, &e) == RW_OK) {
        res = strdup(out);
    } else {
        res = malloc(strlen(e.msg) + 32);
        sprintf(res, "<error expanding template: %s>", e.msg);
    }
    rw_arena_free(a);
    rw_tmpl_free(t);
    return res;
}

static char *render(const char *text)
{
    rw_tmpl_data d = {lbl, 3, 1234.5678, NULL, 0, "", fake_query, NULL};
    return render_with(text, &d);
}

#define EXPECT(text, want)                                                        \
    do {                                                                          \
        char *got_ = render(text);                                                \
        CHECK_MSG(strcmp(got_, (want)) == 0, "%s\n   got  %s\n   want %s", (text), got_, (want)); \
        free(got_);                                                               \
    } while (0)

static const struct {
    const char *text, *want;
} prom_cases[] = {
    {"{{ $value }}",
     "1234.5678"},
    {"{{ .Value }}",
     "1234.5678"},
    {"{{ $labels.instance }} {{ .Labels.job }} [{{ $labels.missing }}]",
     "host-1:9100 node []"},
    {"{{ $externalLabels.cluster }}/{{ .ExternalLabels.region }} {{ $externalURL }} {{ .ExternalURL }}",
     "/  "},
    {"{{ humanize $value }} {{ humanize 0 }} {{ humanize 0.0001234 }} {{ humanize 1e30 }} {{ humanize -12345 }} {{ humanize \"1.5e6\" }}",
     "1.235k 0 123.4u 1e+06Y -12.35k 1.5M"},
    {"{{ humanize1024 1 }} {{ humanize1024 1025 }} {{ humanize1024 1e20 }} {{ humanize1024 -2048 }} {{ humanize1024 0.5 }}",
     "1 1.001ki 86.74Ei -2ki 0.5"},
    {"{{ humanizePercentage 0.12345 }} {{ humanizePercentage 1 }} {{ humanizePercentage 0 }}",
     "12.35% 100% 0%"},
    {"{{ humanizeDuration 0 }}|{{ humanizeDuration 1 }}|{{ humanizeDuration 59.5 }}|{{ humanizeDuration 61 }}|{{ humanizeDuration 3601 }}|{{ humanizeDuration 90061.5 }}|{{ humanizeDuration -90061.5 }}|{{ humanizeDuration 0.0012 }}|{{ humanizeDuration 1e-10 }}",
     "0s|1s|59.5s|1m 1s|1h 0m 1s|1d 1h 1m 1s|-1d 1h 1m 1s|1.2ms|100ps"},
    {"{{ humanizeTimestamp 0 }}|{{ humanizeTimestamp 1.5 }}|{{ humanizeTimestamp 1700000000.123 }}|{{ humanizeTimestamp -1.5 }}",
     "1970-01-01 00:00:00 +0000 UTC|1970-01-01 00:00:01.5 +0000 UTC|2023-11-14 22:13:20.122 +0000 UTC|1969-12-31 23:59:58.5 +0000 UTC"},
    {"{{ printf \"%.2f|%d|%s|%v|%q\" $value 3 \"x\" 1e6 \"a\\tb\" }}",
     "1234.57|3|x|1e+06|\"a\\tb\""},
    {"{{ printf \"%5.1f|%-6d|%06.2f|%+d|%x|%X|%o|%#x|%e|%E|%g\" 3.14159 42 -3.14159 5 255 255 8 255 123456.789 0.000123 0.000012345 }}",
     "  3.1|42    |-03.14|+5|ff|FF|10|0xff|1.234568e+05|1.230000E-04|1.2345e-05"},
    {"{{ printf \"%d\" $value }}|{{ printf \"%s\" 3 }}|{{ printf \"%d %d\" 1 }}|{{ printf \"%d\" 1 2 }}|{{ printf \"%\" }}|{{ printf \"%!\" }}",
     "%!d(float64=1234.5678)|%!s(int=3)|1 %!d(MISSING)|1%!(EXTRA int=2)|%!(NOVERB)|%!!(MISSING)"},
    {"{{ printf \"%v %v %v %v\" true nil \"s\" 1.5 }}",
     "true <nil> s 1.5"},
    {"{{ $labels }}|{{ .Labels }}|{{ printf \"%v\" $labels }}",
     "map[__name__:m instance:host-1:9100 job:node]|map[__name__:m instance:host-1:9100 job:node]|map[__name__:m instance:host-1:9100 job:node]"},
    {"{{ . }}",
     "{map[__name__:m instance:host-1:9100 job:node] map[]  1234.5678}"},
    {"{{ title \"hello world\" }}|{{ toUpper \"abc dEf\" }}|{{ toLower \"ABC DeF\" }}",
     "Hello World|ABC DEF|abc def"},
    {"{{ reReplaceAll \"(.*):(.*)\" \"$2-$1\" $labels.instance }}|{{ reReplaceAll \"a\" \"X\" \"banana\" }}|{{ reReplaceAll \"a*\" \"-\" \"baaac\" }}|{{ reReplaceAll \"(?P<h>[^:]+):.*\" \"${h}\" \"x:1\" }}|{{ reReplaceAll \"x\" \"$1y$$\" \"axb\" }}",
     "9100-host-1|bXnXnX|-b-c-|x|a$b"},
    {"{{ match \"^host\" $labels.instance }} {{ match \"^x\" \"abc\" }}",
     "true false"},
    {"{{ if gt $value 1000.0 }}big{{ else }}small{{ end }}",
     "big"},
    {"{{ if eq $labels.job \"node\" }}n{{ else if eq $labels.job \"x\" }}x{{ else }}o{{ end }}",
     "n"},
    {"{{ gt $value 10 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <gt $value 10>: error calling gt: incompatible types for comparison>"},
    {"{{ range query \"up\" }}{{ .Labels.instance }}={{ .Value }};{{ end }}",
     "b:9100=1;a:9100=0;"},
    {"{{ range $i, $s := query \"up\" }}{{ $i }}:{{ $s.Labels.instance }} {{ end }}",
     "0:b:9100 1:a:9100 "},
    {"{{ with query \"up\" }}{{ . | first | value }}{{ end }}|{{ with query \"nothing\" }}x{{ else }}none{{ end }}",
     "1|none"},
    {"{{ query \"up\" | first | label \"instance\" }}",
     "b:9100"},
    {"{{ range sortByLabel \"instance\" (query \"up\") }}{{ label \"instance\" . }} {{ end }}",
     "a:9100 b:9100 "},
    {"{{ $x := 5 }}{{ $x }}{{ $x = 6 }}{{ $x }}",
     "56"},
    {"a  {{- \" b \" -}}  c {{/* comment */}} d {{- /* c2 */ -}} e",
     "a b c  de"},
    {"{{ and 1 0 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 \"x\" }} {{ not 0 }} {{ not \"a\" }}",
     "0 2  x true false"},
    {"{{ len \"abc\" }} {{ len $labels }} {{ len (query \"up\") }} {{ index $labels \"job\" }} {{ index \"abc\" 1 }}",
     "3 3 2 node 98"},
    {"{{ stripPort \"host:9100\" }} {{ stripPort \"host\" }} {{ stripPort \"[::1]:80\" }} {{ stripPort \"1.2.3.4:5\" }}",
     "host host ::1 1.2.3.4"},
    {"{{ safeHtml \"<b>\" }} {{ html \"<a href='x'>&\" }} {{ urlquery \"a b&c\" }} {{ js \"a'b<c>\" }}",
     "<b> &lt;a href=&#39;x&#39;&gt;&amp; a+b%26c a\\'b\\u003Cc\\u003E"},
    {"{{ args 1 \"two\" }} {{ (args 1 2).arg1 }}",
     "map[arg0:1 arg1:two] 2"},
    {"{{ print 1 2 \"a\" \"b\" 3 }}|{{ println 1 \"a\" }}|{{ print }}",
     "1 2ab3|1 a\n|"},
    {"{{ printf \"%q %q %q\" \"\xc3""\xa9""\" \"\\u00a0\" \"\\x01\" }}|{{ printf \"%x % x %X\" \"hi\" \"hi\" \"hi\" }}",
     "\"\xc3""\xa9""\" \"\\u00a0\" \"\\x01\"|6869 68 69 6869"},
    {"{{ printf \"%T %T %T %T %T\" 1 1.5 \"s\" $labels (query \"up\") }}",
     "int float64 string map[string]string template.queryResult"},
    {"{{ printf \"%t %v\" true false }} {{ printf \"%5t|%-5v|\" true false }}",
     "true false  true|false|"},
    {"{{ printf \"%.3s|%5s|%-5s|%05d|%.0f|%.1f\" \"abcdef\" \"ab\" \"ab\" -42 2.5 0.05 }}",
     "abc|   ab|ab   |-0042|2|0.1"},
    {"{{ printf \"%c %U %#U %q\" 65 65 233 66 }}",
     "A U+0041 U+00E9 '\xc3""\xa9""' 'B'"},
    {"{{ 1.0 }} {{ 1e3 }} {{ 0x10 }} {{ 'a' }} {{ -5 }} {{ 010 }} {{ 1_000 }}",
     "1 1000 16 97 -5 8 1000"},
    {"{{ printf \"%v %v\" 1e21 1e-7 }} {{ 123456789.0 }} {{ 0.000001 }}",
     "1e+21 1e-07 1.23456789e+08 1e-06"},
    {"{{ graphLink \"up == 0\" }} {{ tableLink \"rate(x[5m])\" }}",
     "/graph?g0.expr=up+%3D%3D+0&g0.tab=0 /graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1"},
    {"{{ humanize \"abc\" }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanize \"abc\">: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax>"},
    {"{{ first (query \"nothing\") }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <first (query \"nothing\")>: error calling first: first() called on vector with no elements>"},
    {"{{ toUpper $value }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:123: executing \"__alert_A\" at <$value>: wrong type for value; expected string; got float64>"},
    {"{{ $value | toUpper }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:124: executing \"__alert_A\" at <toUpper>: wrong type for value; expected string; got float64>"},
    {"{{ index $labels 1 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <index $labels 1>: error calling index: value has type int; should be string>"},
    {"{{ reReplaceAll \"(\" \"x\" \"y\" }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <reReplaceAll \"(\" \"x\" \"y\">: error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: missing closing ): `(`>"},
    {"{{ match \"(\" \"y\" }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <match \"(\" \"y\">: error calling match: error parsing regexp: missing closing ): `(`>"},
    {"{{ range $labels }}{{ . }},{{ end }}|{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
     "m,host-1:9100,node,|__name__=m;instance=host-1:9100;job=node;"},
    {"{{ range query \"up\" }}{{ if eq .Value 0.0 }}{{ continue }}{{ end }}{{ .Labels.instance }}{{ break }}{{ end }}",
     "b:9100"},
    {"{{ .Labels.instance.x }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:122: executing \"__alert_A\" at <.Labels.instance.x>: can't evaluate field x in type string>"},
    {"{{ $value.x }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:121: executing \"__alert_A\" at <$value.x>: can't evaluate field x in type float64>"},
    {"{{ nil }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <nil>: nil is not a command>"},
    {"{{ \"a\" 1 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <\"a\">: can't give argument to non-function \"a\">"},
    {"{{ humanize }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanize>: wrong number of args for humanize: want 1 got 0>"},
    {"{{ printf \"%*d|%-*d|%.*f\" 5 1 4 2 2 3.14159 }}",
     "    1|2   |3.14"},
    {"{{ printf \"%[2]d %[1]d\" 1 2 }}|{{ printf \"%[3]d\" 1 }}",
     "2 1|%!d(BADINDEX)"},
    {"{{ printf \"%08.3f|%+.2e|% d|%+q\" -3.5 12345.678 5 \"\xc3""\xa9""\" }}",
     "-003.500|+1.23e+04| 5|\"\\u00e9\""},
    {"{{ printf \"%f %e %g %v\" (humanize 1 | len) 1.0 100000.0 100000.0 }}",
     "%!f(int=1) 1.000000e+00 100000 100000"},
    {"{{ printf \"%6.2f%%\" 12.345 }}",
     " 12.35%"},
    {"{{ printf \"%99999999d\" 1 }}",
     "%!(NOVERB)%!(EXTRA int=1)"},
    {"{{ printf \"%.99999999f|\" 1.5 }}",
     "%!(NOVERB)%!(EXTRA float64=1.5)"},
    {"{{ printf \"%-08d|%08s|%x|%X\" 5 \"ab\" -255 3.5 }}",
     "5       |000000ab|-ff|0X1.CP+01"},
    {"{{ printf \"%#o %#b %O %#q %5.2q\" 8 5 8 \"a`b\" \"abc\" }}",
     "010 0b101 0o10 \"a`b\"  \"ab\""},
    {"{{ printf \"%s\" $labels }}",
     "map[__name__:m instance:host-1:9100 job:node]"},
    {"{{ printf \"%d\" $labels }}",
     "map[%!d(string=__name__):%!d(string=m) %!d(string=instance):%!d(string=host-1:9100) %!d(string=job):%!d(string=node)]"},
    {"{{ printf \"%v\" (query \"up\" | first) }}",
     "&{map[__name__:up instance:b:9100 job:node] 1}"},
    {"{{ printf \"%+v\" (query \"up\" | first) }}",
     "&{Labels:map[__name__:up instance:b:9100 job:node] Value:1}"},
    {"{{ printf \"%s %v\" nil (args) }}",
     "%!s(<nil>) map[]"},
    {"{{ printf \"%.2f %v %v\" -0.0 -0.0 (humanize -0.0) }}",
     "-0.00 -0 -0"},
    {"{{ humanize 999.95 }} {{ humanize 999999.5 }} {{ humanize1024 1048575 }} {{ humanizePercentage 0.999999 }}",
     "1000 1000k 1024ki 100%"},
    {"{{ humanizeDuration 86399.999 }}|{{ humanizeDuration 0.999999 }}|{{ humanizeDuration 3600 }}|{{ humanizeDuration \"120\" }}",
     "23h 59m 59s|1000ms|1h 0m 0s|2m 0s"},
    {"{{ humanize true }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanize true>: error calling humanize: can't convert bool to float>"},
    {"{{ humanize (query \"up\") }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanize (query \"up\")>: error calling humanize: can't convert template.queryResult to float>"},
    {"{{ printf \"%5.1f|%-7.2e|%G|%g\" 1e20 -1.5e-10 1e-20 1e21 }}",
     "100000000000000000000.0|-1.50e-10|1E-20|1e+21"},
    {"{{ printf \"%6.3v|%.3v|%10.4g|\" 3.14159 1234567.0 0.00001234 }}",
     "  3.14|1.23e+06| 1.234e-05|"},
    {"{{ reReplaceAll \"^\" \"X\" \"abc\" }}|{{ reReplaceAll \"$\" \"X\" \"abc\" }}|{{ reReplaceAll \"\" \"-\" \"h\xc3""\xa9""llo\" }}|{{ reReplaceAll \"b*\" \"-\" \"abc\" }}",
     "Xabc|abcX|-h-\xc3""\xa9""-l-l-o-|-a-c-"},
    {"{{ reReplaceAll \"(a)(b)?\" \"[$2|$1|$3|${1}x|$1x]\" \"ab a\" }}",
     "[b|a||ax|] [|a||ax|]"},
    {"{{ stripDomain \"foo.bar.com:9090\" }} {{ stripDomain \"foo.bar\" }} {{ stripDomain \"10.0.0.1:80\" }} {{ stripDomain \"[::1]:80\" }}",
     "foo:9090 foo 10.0.0.1:80 [::1]:80"},
    {"{{ eq 1 1 2 }} {{ eq \"a\" \"b\" \"a\" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ ge \"b\" \"a\" }} {{ lt 1.5 2.5 }}",
     "true true true true true true true"},
    {"{{ eq 1 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <eq 1>: error calling eq: missing argument for comparison>"},
    {"{{ eq 1 1.0 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <eq 1 1.0>: error calling eq: incompatible types for comparison>"},
    {"{{ lt true false }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <lt true false>: error calling lt: invalid type for comparison>"},
    {"{{ eq nil nil }}",
     "true"},
    {"{{ lt $labels $labels }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <lt $labels $labels>: error calling lt: invalid type for comparison>"},
    {"{{ index (query \"up\") 1 | value }} {{ index (query \"up\") 5 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:150: executing \"__alert_A\" at <index (query \"up\") 5>: error calling index: index out of range: 5>"},
    {"{{ slice \"abcdef\" 1 3 }} {{ slice \"abc\" 2 }} {{ len (slice (query \"up\") 1) }}",
     "bc c 1"},
    {"{{ with $x := \"\" }}a{{ else }}b{{ end }}",
     "b"},
    {"{{ if and (gt $value 1.0) (lt $value 10000.0) }}in{{ end }}",
     "in"},
    {"{{ $labels.instance | reReplaceAll \":.*\" \"\" | toUpper | printf \"<%s>\" }}",
     "<HOST-1>"},
    {"{{ \"a\" | printf \"%s-%s\" \"b\" }}",
     "b-a"},
    {"{{- $v := $value -}}\n{{ if gt $v 10.0 -}}\nhigh {{ $v }}\n{{- end }}",
     "high 1234.5678"},
    {"x {{- 3 }}",
     "x3"},
    {"{{- 3 -}} y",
     "3y"},
    {"{{3 -}}\n\n z",
     "3z"},
    {"{{ printf \"%v\" . }}",
     "{map[__name__:m instance:host-1:9100 job:node] map[]  1234.5678}"},
    {"{{ .Labels.__name__ }} {{ index .Labels \"__name__\" }}",
     "m m"},
    {"{{ (args 1 2).arg5 }}|{{ printf \"%v\" (args 1).arg5 }}",
     "<no value>|<nil>"},
    {"{{ print nil }}|{{ print 1 nil 2 }}|{{ println }}",
     "<nil>|1 <nil> 2|\n"},
    {"{{ len nil }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <len nil>: error calling len: reflect: call of reflect.Value.Type on zero Value>"},
    {"{{ not nil }} {{ and }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:129: executing \"__alert_A\" at <and>: wrong number of args for and: want at least 1 got 0>"},
    {"{{ html 1 2 }} {{ urlquery \"x\" 3 }}",
     "1 2 x3"},
    {"{{ js \"\\u2028\xc3""\xa9""\" }}",
     "\\u2028\xc3""\xa9"""},
    {"{{ range query \"up\" }}{{ $.Labels.job }}/{{ $labels.instance }}/{{ .Labels.instance }} {{ end }}",
     "node/host-1:9100/b:9100 node/host-1:9100/a:9100 "},
    {"{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ end }}{{ $x }}",
     "2"},
    {"{{ $x := 1 }}{{ range query \"up\" }}{{ $x = .Value }}{{ end }}{{ $x }}",
     "0"},
    {"{{ range $v := query \"up\" }}{{ $v.Value }}{{ else }}empty{{ end }}|{{ range query \"nothing\" }}x{{ else }}empty{{ end }}",
     "10|empty"},
    {"{{ with $labels.instance }}{{ . }}{{ end }}{{ with $labels.nope }}x{{ else }}-{{ end }}",
     "host-1:9100-"},
    {"{{ if and $labels.job (eq $labels.job \"node\") }}ok{{ end }}{{ if or $labels.nope \"\" }}bad{{ else }}fine{{ end }}",
     "okfine"},
    {"{{ $ }}",
     "{map[__name__:m instance:host-1:9100 job:node] map[]  1234.5678}"},
    {"{{ (printf \"%s\" \"x\") }}{{ (1) }}",
     "x1"},
    {"{{ \"a\" | printf \"%s\" | printf \"[%s]\" }}",
     "[a]"},
    {"{{ humanize (printf \"%f\" $value) }}",
     "1.235k"},
    {"{{ index (index (query \"up\") 0).Labels \"instance\" }}",
     "b:9100"},
    {"{{ $q := query \"up\" }}{{ $_ := sortByLabel \"instance\" $q }}{{ range $q }}{{ .Labels.instance }} {{ end }}",
     "a:9100 b:9100 "},
    {"{{ not (eq 1 2) }} {{ not true }} {{ eq true true }} {{ ne \"a\" \"a\" }}",
     "true false true false"},
    {"{{ printf \"%v|%d|%s\" (len \"x\") (len $labels) (title \"x\") }}",
     "1|3|X"},
    {"{{ $labels.instance | stripPort | toUpper }}",
     "HOST-1"},
    {"{{- range $i, $e := query \"up\" -}}\n  {{ $i }}={{ $e.Value }}\n{{- end }}",
     "0=11=0"},
    {"{{ print \"a\" 1 2 \"b\" }}|{{ print 1.5 true }}|{{ print nil 1 }}",
     "a1 2b|1.5 true|<nil> 1"},
    {"{{ printf \"%s %s\" \"only\" }}",
     "only %!s(MISSING)"},
    {"{{ humanizeDuration 1e12 }} {{ humanizeDuration 1e19 }} {{ humanize 1e27 }} {{ humanizeTimestamp 1e10 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:191: executing \"__alert_A\" at <humanizeTimestamp 1e10>: error calling humanizeTimestamp: 1e+10 cannot be represented as a nanoseconds timestamp since it overflows int64>"},
    {"{{ humanizeTimestamp 1e11 }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <humanizeTimestamp 1e11>: error calling humanizeTimestamp: 1e+11 cannot be represented as a nanoseconds timestamp since it overflows int64>"},
    {"{{ printf \"%.3f %.0f %.10g %8.3e\" 0.0005 0.5 1e20 -0.00001234 }}",
     "0.001 0 1e+20 -1.234e-05"},
    {"{{ printf \"%x %X %o %b %c\" -255 3000 -8 5 0x1F600 }}",
     "-ff BB8 -10 101 \xf0""\x9f""\x98""\x80"""},
    {"{{ printf \"%08d|%-8d|%+08d|% 8d|%.3d|%8.3d\" -12 12 12 12 7 -7 }}",
     "-0000012|12      |+0000012|      12|007|    -007"},
    {"{{ printf \"%q\" \"\\u2028\\ufeff\\u00ad\\x7f\" }}",
     "\"\\u2028\\ufeff\\u00ad\\x7f\""},
    {"{{ printf \"%10.3s|%-10q|\" \"abcdef\" \"ab\" }}",
     "       abc|\"ab\"      |"},
    {"{{ reReplaceAll \"(?i)HOST\" \"h\" \"Host-Host\" }}|{{ reReplaceAll \"\\\\d+\" \"<$0>\" \"a1b22\" }}|{{ reReplaceAll \"(x)?y\" \"[$1]\" \"yxy\" }}",
     "h-h|a<1>b<22>|[][x]"},
    {"{{ match \"(?=x)\" \"x\" }}",
     "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing \"__alert_A\" at <match \"(?=x)\" \"x\">: error calling match: error parsing regexp: invalid or unsupported Perl syntax: `(?=`>"},
    {"{{ toLower \"\xc3""\x80""\xc3""\x89""\xc3""\x8e""\" }} {{ toUpper \"\xc3""\x9f""\" }} {{ title \"\xc7""\x86""\" }}",
     "\xc3""\xa0""\xc3""\xa9""\xc3""\xae"" \xc3""\x9f"" \xc7""\x85"""},
    {"{{ len (args) }} {{ args }} {{ (args 1 2 3 4 5 6 7 8 9 10 11).arg10 }} {{ args 1 2 3 4 5 6 7 8 9 10 11 }}",
     "0 map[] 11 map[arg0:1 arg1:2 arg10:11 arg2:3 arg3:4 arg4:5 arg5:6 arg6:7 arg7:8 arg8:9 arg9:10]"},
    {"{{ js \"<script>\\u0000\" }} {{ html \"\\u0000\" }}",
     "\\u003Cscript\\u003E\\u0000 \xef""\xbf""\xbd"""},
};

static void test_promtool_outputs(void)
{
    for (size_t i = 0; i < sizeof prom_cases / sizeof prom_cases[0]; i++)
        EXPECT(prom_cases[i].text, prom_cases[i].want);
}

/* What Prometheus 3 does and 2.42 cannot show. */
static void test_prometheus3(void)
{
    EXPECT("{{ parseDuration \"-5m\" }} {{ parseDuration \"1h30m\" }} {{ parseDuration \"0\" }}",
           "-300 5400 0");
    EXPECT("{{ parseDuration \"5x\" }}",
           "<error expanding template: error executing template __alert_A: template: "
           "__alert_A:1:115: executing \"__alert_A\" at <parseDuration \"5x\">: error calling "
           "parseDuration: not a valid duration string: \"5x\">");
    EXPECT("{{ range 3 }}{{ . }}{{ end }}|{{ range 0 }}x{{ else }}none{{ end }}", "012|none");
    EXPECT("{{ range $i, $e := 3 }}{{ end }}",
           "<error expanding template: error executing template __alert_A: template: "
           "__alert_A:1:121: executing \"__alert_A\" at <{{range $i, $e := 3}}{{end}}>: "
           "can't use 3 to iterate over more than one variable>");
    /* x/text/cases Title with NoLower: mid-word apostrophes and dots do not
     * start a word; other punctuation does */
    EXPECT("{{ title \"don't stop foo.bar x_y a-b hELLO 1abc\" }}",
           "Don't Stop Foo.bar X_y A-B HELLO 1Abc");
    EXPECT("{{ title \"élan ñu\" }}|{{ toUpper \"straße été\" }}|{{ toLower \"ÉTÉ Ω\" }}",
           "Élan Ñu|STRAßE ÉTÉ|été ω");
    EXPECT("{{ with $x := 1 }}{{ else with 2 }}{{ end }}{{ with 0 }}a{{ else with 2 }}{{ . }}{{ end }}",
           "2");
    EXPECT("{{ (query \"42\" | first).Value }} {{ (query \"42\" | first).Labels }}", "42 map[]");
    EXPECT("{{ query \"matrix\" }}",
           "<error expanding template: error executing template __alert_A: template: "
           "__alert_A:1:115: executing \"__alert_A\" at <query \"matrix\">: error calling query: "
           "rule result is not a vector or scalar>");
    EXPECT("{{ query \"bad(\" }}",
           "<error expanding template: error executing template __alert_A: template: "
           "__alert_A:1:115: executing \"__alert_A\" at <query \"bad(\">: error calling query: "
           "1:1: parse error: unexpected bad(>");
}

static void test_external(void)
{
    rw_tmpl_data d = {lbl, 3, 0.5, ext, 2, "https://rw.example/prefix/x?y=1", fake_query, NULL};
    char *s = render_with("{{ $externalLabels.cluster }}/{{ .ExternalLabels.region }} "
                          "{{ $externalURL }} {{ pathPrefix }} {{ externalURL }} {{ $value }}",
                          &d);
    CHECK_STR(s, "c1/eu https://rw.example/prefix/x?y=1 /prefix/x https://rw.example/prefix/x?y=1 0.5");
    free(s);
    s = render_with("{{ range $k, $v := $externalLabels }}{{ $k }}={{ $v }} {{ end }}", &d);
    CHECK_STR(s, "cluster=c1 region=eu ");
    free(s);
    /* no data at all */
    s = render_with("[{{ $labels.x }}|{{ $value }}|{{ $externalURL }}]", NULL);
    CHECK_STR(s, "[|0|]");
    free(s);
    s = render_with("{{ query \"up\" }}", NULL);
    CHECK(strstr(s, "error calling query: queries are not available here") != NULL);
    free(s);
}

static const struct {
    const char *text, *want;
} parse_cases[] = {
    {"{{ foo }}", "template: __alert_A:1:4: function \"foo\" not defined"},
    {"{{ $x }}", "template: __alert_A:1:4: undefined variable \"$x\""},
    {"{{ if 1 }}", "template: __alert_A:1:11: unexpected EOF"},
    {"{{ end }}", "template: __alert_A:1:8: unexpected {{end}}"},
    {"{{ else }}", "template: __alert_A:1:9: unexpected {{else}}"},
    {"{{ .a | 1 }}", "template: __alert_A:1:11: non executable command in pipeline stage 2"},
    {"{{ ( }}", "template: __alert_A:1:6: unclosed left paren"},
    {"{{ ) }}", "template: __alert_A:1:4: unexpected \")\" in command"},
    {"{{ \"abc }}", "template: __alert_A:1:4: unterminated quoted string"},
    {"{{ 1x }}", "template: __alert_A:1:4: bad number syntax: \"1x\""},
    {"{{ break }}", "template: __alert_A:1:4: {{break}} outside {{range}}"},
    {"{{/* x */ }}", "template: __alert_A:1:3: comment ends before closing delimiter"},
    {"{{/* x", "template: __alert_A:1:3: unclosed comment"},
    {"{{ \"a\".b }}", "template: __alert_A:1:9: unexpected . after term \"\\\"a\\\"\""},
    {"{{ 08 }}", "template: __alert_A:1:4: integer overflow: \"08\""},
    {"{{ - }}", "template: __alert_A:1:4: illegal number syntax: \"-\""},
    {"{{ $a, $b := 1 }}", "template: __alert_A:1:6: too many declarations in command"},
    {"{{ & }}", "template: __alert_A:1:4: unexpected \"&\" in command"},
    {"{{ if 1 }}{{ else }}{{ else }}{{ end }}", "template: __alert_A:1:29: expected end; found {{else}}"},
    {"{{\n  foo\n}}", "template: __alert_A:2:3: function \"foo\" not defined"},
    {"{{ \"\\q\" }}", "template: __alert_A:1:4: invalid syntax"},
    {"{{}}", "template: __alert_A:1:3: missing value for command"},
    {"{{ with $x := 1 }}{{ end }}{{ $x }}", "template: __alert_A:1:31: undefined variable \"$x\""},
    {"{{ 99999999999999999999 }}", "template: __alert_A:1:4: integer overflow: \"99999999999999999999\""},
    /* not supported by rwgate: refused at parse time, with the reason */
    {"{{ define \"x\" }}{{ end }}", "template: __alert_A:1:4: {{define}} is not supported by rwgate"},
    {"{{ template \"x\" }}", "template: __alert_A:1:4: {{template}} is not supported by rwgate"},
    {"{{ toTime 1 }}", "template: __alert_A:1:4: function \"toTime\" is not supported by rwgate"},
    {"{{ now }}", "template: __alert_A:1:4: function \"now\" is not supported by rwgate"},
    {"{{ call . }}", "template: __alert_A:1:4: function \"call\" is not supported by rwgate"},
    {"{{ 1i }}", "template: __alert_A:1:4: complex number 1i: complex numbers are not supported"},
};

static void test_parse_errors(void)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        rw_err e;
        rw_err_init(&e);
        rw_tmpl *t = rw_tmpl_parse("__alert_A", parse_cases[i].text, &e);
        CHECK_MSG(t == NULL, "%s parsed", parse_cases[i].text);
        rw_tmpl_free(t);
        CHECK_MSG(strncmp(e.msg, parse_cases[i].want, strlen(parse_cases[i].want)) == 0,
                  "%s\n   got  %s\n   want %s", parse_cases[i].text, e.msg, parse_cases[i].want);
        CHECK(e.code == RW_BADREQ);
        CHECK(e.pos >= 0 && (size_t)e.pos <= strlen(parse_cases[i].text));
    }
    /* nesting is capped instead of recursing without bound */
    char deep[4000];
    size_t n = 0;
    n += (size_t)sprintf(deep + n, "{{ ");
    for (int i = 0; i < 500; i++)
        deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 500; i++)
        deep[n++] = ')';
    strcpy(deep + n, " }}");
    rw_err e;
    rw_tmpl *t = rw_tmpl_parse("d", deep, &e);
    CHECK(t == NULL && strstr(e.msg, "max expression depth exceeded"));
    rw_tmpl_free(t);
}

static void test_limits(void)
{
    /* output cap */
    char *s = render("{{ range 100000 }}0123456789abcdef{{ end }}");
    CHECK(strstr(s, "template output exceeds") != NULL);
    free(s);
    /* iteration cap across nested ranges */
    s = render("{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}");
    CHECK(strstr(s, "range iterations exceed") != NULL);
    free(s);
    /* bytes built by functions without output */
    s = render("{{ range 1000 }}{{ $x := printf \"%999999d\" 1 }}{{ end }}");
    CHECK(strstr(s, "bytes of strings") != NULL);
    free(s);
    /* a width of 10^7 is accepted by Go's fmt (only the digit after 10^6
     * is refused); the output cap stops it */
    s = render("{{ printf \"%9999999d\" 1 }}");
    CHECK(strstr(s, "template output exceeds") != NULL);
    free(s);
    /* query calls */
    nqueries = 0;
    s = render("{{ range 1000 }}{{ query \"nothing\" }}{{ end }}");
    CHECK(strstr(s, "more than 100 queries") != NULL);
    CHECK(nqueries == RW_TMPL_MAX_QUERIES);
    free(s);
}

static void test_shared_and_reused(void)
{
    /* one parsed template, many executions with different data */
    rw_err e;
    rw_tmpl *t = rw_tmpl_parse("__alert_A", "{{ $labels.instance }} is {{ humanize $value }}", &e);
    CHECK(t != NULL);
    CHECK_STR(rw_tmpl_name(t), "__alert_A");
    for (int i = 0; i < 3; i++) {
        rw_label l[] = {{"instance", i ? "b" : "a"}};
        rw_tmpl_data d = {l, 1, 1000.0 * (i + 1), NULL, 0, NULL, NULL, NULL};
        rw_arena *a = rw_arena_new(0, 0);
        char *out;
        CHECK(rw_tmpl_exec(t, &d, a, &out, &e) == RW_OK);
        char want[64];
        snprintf(want, sizeof want, "%s is %dk", i ? "b" : "a", i + 1);
        CHECK_STR(out, want);
        rw_arena_free(a);
    }
    rw_tmpl_free(t);
    rw_tmpl_free(NULL);
}

int main(void)
{
    RUN(test_promtool_outputs);
    RUN(test_prometheus3);
    RUN(test_external);
    RUN(test_parse_errors);
    RUN(test_limits);
    RUN(test_shared_and_reused);
    TEST_DONE();
}
