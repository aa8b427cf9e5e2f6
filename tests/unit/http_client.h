/* http_client.h - a minimal blocking HTTP/1.1 client for unit tests: one
 * request per connection, Connection: close, whole response read into a
 * malloc'd buffer. Not for production use; the server is what is tested. */
#ifndef RW_TEST_HTTP_CLIENT_H
#define RW_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct test_http_resp {
    int status;
    char *raw;        /* whole response, NUL-terminated */
    size_t raw_len;
    char *body;       /* points into raw */
    size_t body_len;
} test_http_resp;

static void test_http_free(test_http_resp *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* Header value from the response (case-insensitive), copied into out. */
static int test_http_header(const test_http_resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->raw, "\r\n");
    while (p && p + 2 < r->body) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        p = strstr(p, "\r\n");
    }
    return 0;
}

/* extra_headers: "Name: value\r\n..." or NULL. Returns 0 on success. */
static int test_http(int port, const char *method, const char *path, const char *extra_headers,
                     const void *body, size_t body_len, test_http_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char head[4096];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Content-Length: %zu\r\n%s\r\n",
                      method, path, body_len, extra_headers ? extra_headers : "");
    if (write(fd, head, (size_t)hn) != hn) {
        close(fd);
        return -1;
    }
    size_t off = 0;
    while (off < body_len) {
        ssize_t w = write(fd, (const char *)body + off, body_len - off);
        if (w <= 0)
            break; /* the server may close early (413): read what it said */
        off += (size_t)w;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    out->raw = buf;
    out->raw_len = len;
    if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1)
        return -1;
    char *b = strstr(buf, "\r\n\r\n");
    out->body = b ? b + 4 : buf + len;
    out->body_len = (size_t)(buf + len - out->body);
    char te[64];
    if (test_http_header(out, "Transfer-Encoding", te, sizeof te) && strstr(te, "chunked")) {
        /* de-chunk in place */
        char *src = out->body, *dst = out->body;
        for (;;) {
            size_t n = strtoul(src, &src, 16);
            src = strstr(src, "\r\n");
            if (!src || n == 0)
                break;
            src += 2;
            memmove(dst, src, n);
            dst += n;
            src += n + 2;
        }
        *dst = '\0';
        out->body_len = (size_t)(dst - out->body);
    }
    return 0;
}

#endif
