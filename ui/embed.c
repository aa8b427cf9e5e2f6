/* embed.c - the build-time generator that compiles the web UI's files into
 * the binary. CMake builds it as a host tool and runs it over ui/web/,
 * ui/dashboards/ and the vendored uPlot files; its output (a C file in the
 * build directory, never committed) is linked into the ui layer and served
 * by ui.c.
 *
 *   rw_ui_embed --out FILE.c --budget BYTES URLPATH=FILE ...
 *
 * For every file it records the content type (from the extension; an
 * unknown extension is an error, so nothing is served with a guessed type),
 * a content hash (XXH3-64 of the bytes served, the ETag) and the bytes
 * gzip-compressed (level 9, no file name, mtime 0: the same input gives the
 * same output on every build). HTML files are templates: "@ASSETS@" becomes
 * the URL prefix of the asset directory, /ui/a/<build hash>, where the build
 * hash covers every other file's path and hash, so a changed file changes
 * every asset URL and browsers can cache the assets forever. The sum of the
 * compressed sizes must stay within the budget, or the build fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zlib.h>

typedef struct asset {
    char *path;        /* URL path below the asset directory, e.g. "js/app.js" */
    const char *file;
    const char *type;
    unsigned char *raw;
    size_t nraw;
    unsigned char *gz;
    size_t ngz;
    uint64_t hash;
    int is_template;
} asset;

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".txt", "text/plain; charset=utf-8"},
    {".png", "image/png"},
};

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "rw_ui_embed: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static const char *type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    die("%s: no content type for this extension%s", path, "");
    return NULL;
}

static unsigned char *read_file(const char *name, size_t *n)
{
    FILE *f = fopen(name, "rb");
    if (!f)
        die("cannot open %s%s", name, "");
    size_t cap = 1 << 16, len = 0;
    unsigned char *p = malloc(cap);
    for (;;) {
        if (!p)
            die("out of memory reading %s%s", name, "");
        len += fread(p + len, 1, cap - len, f);
        if (len < cap)
            break;
        cap *= 2;
        p = realloc(p, cap);
    }
    if (ferror(f))
        die("cannot read %s%s", name, "");
    fclose(f);
    *n = len;
    return p;
}

/* Replaces every "@ASSETS@" in a template with prefix. */
static void substitute(asset *a, const char *prefix)
{
    static const char tok[] = "@ASSETS@";
    size_t tl = sizeof tok - 1, pl = strlen(prefix), count = 0;
    for (size_t i = 0; i + tl <= a->nraw; i++)
        if (memcmp(a->raw + i, tok, tl) == 0)
            count++, i += tl - 1;
    unsigned char *out = malloc(a->nraw + count * pl + 1), *o = out;
    if (!out)
        die("out of memory%s%s", "", "");
    for (size_t i = 0; i < a->nraw;) {
        if (i + tl <= a->nraw && memcmp(a->raw + i, tok, tl) == 0) {
            memcpy(o, prefix, pl);
            o += pl;
            i += tl;
        } else {
            *o++ = a->raw[i++];
        }
    }
    free(a->raw);
    a->raw = out;
    a->nraw = (size_t)(o - out);
}

static void compress_asset(asset *a)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper with zlib's fixed header (no name,
       mtime 0), so the output depends on the input only */
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2 failed for %s%s", a->file, "");
    size_t bound = deflateBound(&z, a->nraw) + 64;
    a->gz = malloc(bound);
    if (!a->gz)
        die("out of memory%s%s", "", "");
    z.next_in = a->raw;
    z.avail_in = (uInt)a->nraw;
    z.next_out = a->gz;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate failed for %s%s", a->file, "");
    a->ngz = z.total_out;
    deflateEnd(&z);
}

static int cmp_path(const void *x, const void *y)
{
    return strcmp(((const asset *)x)->path, ((const asset *)y)->path);
}

static void put_bytes(FILE *o, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(o, "%u,%s", p[i], (i % 24 == 23) ? "\n" : "");
    if (!n)
        fputs("0", o);
}

static void put_cstr(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', o);
        fputc(*s, o);
    }
    fputc('"', o);
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    long budget = 0;
    asset *as = calloc((size_t)argc, sizeof *as);
    size_t n = 0;
    if (!as)
        die("out of memory%s%s", "", "");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--budget") == 0 && i + 1 < argc) {
            budget = strtol(argv[++i], NULL, 10);
        } else {
            char *eq = strchr(argv[i], '=');
            if (!eq || eq == argv[i] || !eq[1])
                die("argument \"%s\": want URLPATH=FILE%s", argv[i], "");
            asset *a = &as[n++];
            a->path = strndup(argv[i], (size_t)(eq - argv[i]));
            a->file = eq + 1;
            a->type = type_of(a->path);
            a->is_template = strcmp(strrchr(a->path, '.'), ".html") == 0;
            if (a->path[0] == '/' || strstr(a->path, ".."))
                die("%s: asset paths are relative and stay below the asset directory%s",
                    a->path, "");
        }
    }
    if (!out || budget <= 0 || n == 0)
        die("usage: rw_ui_embed --out FILE.c --budget BYTES URLPATH=FILE ...%s%s", "", "");
    qsort(as, n, sizeof *as, cmp_path);
    for (size_t i = 1; i < n; i++)
        if (strcmp(as[i].path, as[i - 1].path) == 0)
            die("%s is listed twice%s", as[i].path, "");

    /* the build hash: every non-template file's path and content */
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (size_t i = 0; i < n; i++) {
        asset *a = &as[i];
        a->raw = read_file(a->file, &a->nraw);
        if (a->is_template)
            continue;
        a->hash = XXH3_64bits(a->raw, a->nraw);
        XXH3_64bits_update(st, a->path, strlen(a->path) + 1);
        XXH3_64bits_update(st, &a->hash, sizeof a->hash);
    }
    char build[17], prefix[64];
    snprintf(build, sizeof build, "%016llx", (unsigned long long)XXH3_64bits_digest(st));
    XXH3_freeState(st);
    snprintf(prefix, sizeof prefix, "/ui/a/%s", build);

    long total = 0;
    for (size_t i = 0; i < n; i++) {
        asset *a = &as[i];
        if (a->is_template) {
            substitute(a, prefix);
            a->hash = XXH3_64bits(a->raw, a->nraw);
        }
        compress_asset(a);
        total += (long)a->ngz;
    }
    if (total > budget) {
        fprintf(stderr, "rw_ui_embed: the UI is %ld bytes gzipped, over its budget of %ld:\n",
                total, budget);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "  %7zu  %s\n", as[i].ngz, as[i].path);
        return 1;
    }

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *o = fopen(tmp, "w");
    if (!o)
        die("cannot write %s%s", tmp, "");
    fprintf(o, "/* Generated by ui/embed.c from ui/web, ui/dashboards and uPlot; do not edit. */\n"
               "#include \"ui/assets.h\"\n\n");
    for (size_t i = 0; i < n; i++) {
        fprintf(o, "static const unsigned char gz%zu[] = {\n", i);
        put_bytes(o, as[i].gz, as[i].ngz);
        fputs("};\n", o);
    }
    fprintf(o, "\nconst char rw_ui_build_hash[] = \"%s\";\n", build);
    fprintf(o, "const size_t rw_ui_nassets = %zu;\n", n);
    fputs("const rw_ui_asset rw_ui_assets[] = {\n", o);
    for (size_t i = 0; i < n; i++) {
        fputs("    {", o);
        put_cstr(o, as[i].path);
        fputs(", ", o);
        put_cstr(o, as[i].type);
        fprintf(o, ", \"%016llx\", gz%zu, %zu, %zu},\n", (unsigned long long)as[i].hash, i,
                as[i].ngz, as[i].nraw);
    }
    fputs("};\n", o);
    if (fclose(o) != 0 || rename(tmp, out) != 0)
        die("cannot write %s%s", out, "");
    printf("rw_ui_embed: %zu files, %ld bytes gzipped (budget %ld), build %s\n", n, total,
           budget, build);
    for (size_t i = 0; i < n; i++) {
        free(as[i].path);
        free(as[i].raw);
        free(as[i].gz);
    }
    free(as);
    return 0;
}
