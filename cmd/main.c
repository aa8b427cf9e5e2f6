/* main.c - the rwgate process: command line, subcommands, signals.
 *
 *   rwgate [--config FILE] [--listen HOST:PORT] [--data DIR] [--shards N]
 *          [--retention DURATION] [--set KEY=VALUE ...]
 *   rwgate check config FILE
 *   rwgate check rules [FILE...]
 *   rwgate test rules [--run REGEX] FILE...
 *   rwgate hash-password [--iterations N]    (password on stdin)
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigwait: SIGHUP reloads, SIGTERM/SIGINT stop (in-flight requests finish,
 * the store is persisted, exit 0). */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <termios.h>
#include "app.h"
#include "core/auth.h"
#include "core/buf.h"
#include "core/log.h"
#include "rules/rules.h"

#define MAX_FLAGS 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rwgate [--config FILE] [--listen HOST:PORT] [--data DIR] [--shards N]\n"
            "              [--retention DURATION] [--set KEY=VALUE ...]\n"
            "       rwgate check config FILE\n"
            "       rwgate check rules [FILE...]      (promtool check rules)\n"
            "       rwgate test rules [--run REGEX] FILE...   (promtool test rules)\n"
            "       rwgate hash-password [--iterations N]  (reads the password from stdin)\n"
            "       rwgate help config        (every configuration key)\n"
            "       rwgate --version\n"
            "\n"
            "With no arguments rwgate serves on 127.0.0.1:9201 with data in ./data.\n"
            "KEY is a configuration key such as ingest.max_body_bytes or query.timeout\n"
            "(see deploy/rwgate.example.yml).\n");
}

static int check_config(const char *path)
{
    rw_config c;
    rw_err err;
    rw_err_init(&err);
    if (rw_app_load_config(path, NULL, 0, &c, &err) != RW_OK) {
        fprintf(stderr, "FAILED: %s\n", err.msg);
        rw_cfg_free(&rw_config_table, &c);
        return 1;
    }
    /* the rule files it names are part of it, as promtool check config has it */
    rw_buf rules;
    rw_buf_init(&rules, 0);
    char *dir = NULL;
    const char *sl = strrchr(path, '/');
    if (sl)
        dir = strndup(path, sl == path ? 1 : (size_t)(sl - path));
    rw_rc rrc = rw_rules_check_config(&c.rules, dir, &rules);
    free(dir);
    if (rrc != RW_OK) {
        fprintf(stderr, "FAILED: %s: rule files:\n%s", path, rules.p ? rules.p : "");
        rw_buf_free(&rules);
        rw_cfg_free(&rw_config_table, &c);
        return 1;
    }
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_cfg_dump(&rw_config_table, &c, &b);
    printf("SUCCESS: %s is valid. Effective configuration:\n%s", path, b.p ? b.p : "");
    if (rules.len)
        printf("%s", rules.p);
    rw_buf_free(&rules);
    rw_buf_free(&b);
    rw_cfg_free(&rw_config_table, &c);
    return 0;
}

/* Every configuration key with its type, default, whether a reload applies
 * it, and what it does. */
static int help_config(void)
{
    rw_buf b;
    rw_buf_init(&b, 0);
    rw_cfg_describe(&rw_config_table, &b);
    printf("KEY\tTYPE\tDEFAULT\tAPPLIES\tDESCRIPTION\n%s", b.p ? b.p : "");
    rw_buf_free(&b);
    return 0;
}

/* Reads a password from stdin (one line, without echo on a terminal) and
 * prints its PBKDF2 encoding for auth.tenants[].basic_auth.password_pbkdf2. */
static int hash_password(int argc, char **argv)
{
    uint32_t iter = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            iter = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: rwgate hash-password [--iterations N] < password\n");
            return 2;
        }
    }
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "Password: ");
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    char pw[1024];
    char *got = fgets(pw, sizeof pw, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    if (!got) {
        fprintf(stderr, "rwgate hash-password: no password on stdin\n");
        return 1;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (!pw[0]) {
        fprintf(stderr, "rwgate hash-password: empty password\n");
        return 1;
    }
    char out[256];
    rw_err err;
    rw_err_init(&err);
    rw_rc rc = rw_auth_hash_password(pw, iter, out, sizeof out, &err);
    memset(pw, 0, sizeof pw);
    if (rc != RW_OK) {
        fprintf(stderr, "rwgate hash-password: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", out);
    return 0;
}

/* Everything main does; the keys of --set flags it copies go to owned[]
 * (at most MAX_FLAGS), freed by main whatever path run returns by, so a
 * clean exit leaves nothing allocated. */
static int run(int argc, char **argv, char **owned, size_t *nowned)
{
    if (argc >= 2 && strcmp(argv[1], "hash-password") == 0)
        return hash_password(argc, argv);
    if (argc == 3 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "config") == 0)
        return help_config();
    if (argc >= 2 && strcmp(argv[1], "check") == 0) {
        if (argc == 4 && strcmp(argv[2], "config") == 0)
            return check_config(argv[3]);
        if (argc >= 3 && strcmp(argv[2], "rules") == 0)
            return rw_rules_check_main(argc - 3, argv + 3);
        usage(stderr);
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "test") == 0) {
        if (argc >= 4 && strcmp(argv[2], "rules") == 0) {
            /* the temporary stores' open/close lines are noise in a test report */
            setenv("RWGATE_LOG_LEVEL", "warn", 0);
            return rw_rules_test_main(argc - 3, argv + 3);
        }
        usage(stderr);
        return 2;
    }
    const char *config_path = NULL;
    rw_app_flag flags[MAX_FLAGS];
    size_t nflags = 0;
    static const struct {
        const char *flag, *key;
    } simple[] = {{"--listen", "http.listen"}, {"--data", "store.data_dir"},
                  {"--shards", "store.shards"}, {"--retention", "store.retention"}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("rwgate 0.1.0\n");
            return 0;
        }
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t alen = eq ? (size_t)(eq - a) : strlen(a);
        const char *key = NULL;
        int is_config = alen == 8 && strncmp(a, "--config", 8) == 0;
        int is_set = alen == 5 && strncmp(a, "--set", 5) == 0;
        for (size_t k = 0; k < sizeof simple / sizeof simple[0]; k++)
            if (strlen(simple[k].flag) == alen && strncmp(a, simple[k].flag, alen) == 0)
                key = simple[k].key;
        if (!key && !is_config && !is_set) {
            fprintf(stderr, "rwgate: unknown argument \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "rwgate: %s needs a value\n", a);
            return 2;
        }
        if (nflags >= MAX_FLAGS) {
            fprintf(stderr, "rwgate: too many flags\n");
            return 2;
        }
        if (is_config) {
            config_path = val;
        } else if (is_set) {
            const char *e = strchr(val, '=');
            if (!e) {
                fprintf(stderr, "rwgate: --set wants KEY=VALUE, got \"%s\"\n", val);
                return 2;
            }
            char *k = strndup(val, (size_t)(e - val));
            if (!k) {
                fprintf(stderr, "rwgate: out of memory\n");
                return 1;
            }
            owned[(*nowned)++] = k;
            flags[nflags].key = k;
            flags[nflags].value = e + 1;
            nflags++;
        } else {
            flags[nflags].key = key;
            flags[nflags].value = val;
            nflags++;
        }
    }

    /* block the signals before any thread starts so every thread inherits
       the mask and only sigwait below sees them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rw_err err;
    rw_err_init(&err);
    rw_app *app = rw_app_start(config_path, flags, nflags, &err);
    if (!app) {
        rw_error("cannot start: %s", err.msg);
        return 1;
    }
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            rw_info("SIGHUP: reloading configuration");
            rw_err_init(&err);
            rw_app_reload(app, &err);
            continue;
        }
        rw_info("%s received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    rw_app_stop(app);
    rw_info("stopped cleanly");
    return 0;
}

int main(int argc, char **argv)
{
    /* A query's step batches and reads take and free buffers of a few MiB
     * over and over; from mmap (glibc's default above 128 KiB, adjusted as
     * it goes) every one comes back as fresh pages that the kernel zeroes
     * and faults in again - a quarter of a long range query's time. Below
     * 32 MiB they come from the heap, which keeps up to 128 MiB of freed
     * memory for the next ones. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    char *owned[MAX_FLAGS];
    size_t nowned = 0;
    int rc = run(argc, argv, owned, &nowned);
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    return rc;
}
