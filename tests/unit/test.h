/* test.h - a minimal unit-test harness: CHECK() records a failure with file
 * and line and goes on; TEST_MAIN prints "N passed, N failed" and returns
 * non-zero on any failure (ctest reads the exit code). */
#ifndef RW_TEST_H
#define RW_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) {                                                              \
            t_pass++;                                                            \
        } else {                                                                 \
            t_fail++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        if (cond) {                                                              \
            t_pass++;                                                            \
        } else {                                                                 \
            t_fail++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

#define CHECK_STR(a, b)                                                          \
    CHECK_MSG(strcmp((a), (b)) == 0, "got \"%s\", want \"%s\"", (a), (b))

#define CHECK_INT(a, b)                                                          \
    CHECK_MSG((long long)(a) == (long long)(b), "got %lld, want %lld", (long long)(a), (long long)(b))

#define RUN(fn)                                                                  \
    do {                                                                         \
        fprintf(stderr, "-- %s\n", #fn);                                         \
        fn();                                                                    \
    } while (0)

#define TEST_DONE()                                                              \
    do {                                                                         \
        printf("%d passed, %d failed\n", t_pass, t_fail);                        \
        return t_fail ? 1 : 0;                                                   \
    } while (0)

#endif
